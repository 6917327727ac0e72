//! What the three fake providers (OpenAI, Gemini, ElevenLabs) do alike, kept in one
//! place so their behaviour cannot drift apart: the energy VAD's 20 ms windows, spoken
//! replies cut into chunks, the listener and upgrade plumbing, and the stats recorders'
//! building blocks. Each fake keeps its own protocol rules.

pub(crate) mod encoding;
pub(crate) mod energy_vad;
pub(crate) mod reply;
pub(crate) mod server;
pub(crate) mod stats;
#[cfg(test)]
pub(crate) mod test_support;
