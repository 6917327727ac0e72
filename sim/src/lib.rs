//! voice-sim: a FreeSWITCH call simulator and protocol-faithful fake AI providers.
//!
//! Used by tests, the load tool (`voice-sim load`) and the offline demo. Production code
//! never depends on this crate.

pub mod bridge_process;
mod fake_common;
pub mod fake_deepgram;
pub mod fake_elevenlabs;
pub mod fake_elevenlabs_tts;
pub mod fake_esl;
pub mod fake_gemini;
pub mod fake_llm;
pub mod fake_openai;
pub mod fake_openai_audio;
pub mod fake_pipedrive;
pub mod freeswitch;
pub mod load;
pub mod log_capture;
pub mod report;
pub mod speech;
pub mod turn_load;
