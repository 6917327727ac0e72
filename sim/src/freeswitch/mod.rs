//! A simulated FreeSWITCH: calls that stream caller speech to the bridge the way
//! mod_audio_stream (libwsc / ixwebsocket builds) or mod_audio_fork do, and play what the
//! bridge sends back the way each fork plays it (reference/freeswitch.md §0–§3, §7).
//!
//! - [`run_call`] runs one call from a [`CallSpec`] and returns a [`CallReport`].
//! - [`FakeFreeswitch`] is the switch side for file playout: ESL server, temp files,
//!   `uuid_broadcast` / `uuid_break` against the simulated channels.
//! - The pieces ([`UplinkFramer`], [`Downlink`], [`Player`], [`files`]) are public for tests.

pub mod call_report;
pub mod call_spec;
pub mod caller;
pub mod connection;
pub mod downlink;
pub mod esl_backend;
pub mod files;
pub mod link;
pub mod player;
pub mod profile;
pub mod script;
pub mod uplink;

#[cfg(test)]
mod tests;

pub use call_report::{CallError, CallReport, ErrorKind, ProviderDelays, TurnReport};
pub use call_spec::{CallSpec, Metadata, UrlStyle};
pub use caller::{error_kinds, run_call};
pub use downlink::Downlink;
pub use esl_backend::{ChannelCommand, FakeFreeswitch};
pub use player::{PlayChunk, Player, SegmentStats, Source};
pub use profile::{ClearKind, Mix, ModuleProfile, Playout};
pub use script::{default_script, CallerTurn};
pub use uplink::UplinkFramer;
