//! FreeSWITCH event socket (ESL) client, inbound mode.
//!
//! We connect to `mod_event_socket` (default `127.0.0.1:8021`), answer its `auth/request`,
//! subscribe with `event plain …`, then keep one TCP connection alive from a background task,
//! reconnecting forever. [`EslClient`] is a cheap, cloneable handle to that task.
//!
//! - [`protocol`]: message framing (headers, blank line, `Content-Length` body).
//! - [`event`]: decoded `text/event-plain` events.
//! - [`client`]: the public handle (`api`, `bgapi`, `events`).
//! - `connection`: the task that owns the socket and matches replies to commands.

pub mod client;
mod config;
mod connection;
pub mod event;
pub mod protocol;

pub use client::EslClient;
pub use config::EslConfig;
pub use event::EslEvent;

/// Why an ESL command (or the connection) failed. `Clone` so the last failure can be kept
/// and shown later.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EslError {
    /// No authenticated connection right now; the command was not sent.
    #[error("not connected to the FreeSWITCH event socket")]
    NotConnected,
    /// No reply within `command_timeout_ms` (or the connect/handshake took too long).
    #[error("timed out waiting for FreeSWITCH")]
    Timeout,
    /// The connection dropped before the reply came.
    #[error("connection to FreeSWITCH lost")]
    ConnectionLost,
    /// FreeSWITCH refused the password.
    #[error("FreeSWITCH refused the event socket password")]
    AuthFailed,
    /// FreeSWITCH sent something that breaks the protocol.
    #[error("event socket protocol error: {0}")]
    Protocol(String),
    /// Socket connect/read/write failure.
    #[error("event socket I/O error: {0}")]
    Io(String),
    /// FreeSWITCH answered `-ERR …` to a command whose reply has no body (`bgapi`, `event`).
    #[error("FreeSWITCH rejected the command: {0}")]
    Rejected(String),
    /// A command or configuration we refuse to send (e.g. a line break would inject commands).
    #[error("invalid event socket input: {0}")]
    Invalid(String),
}

/// Whether an `api` reply body reports success. FreeSWITCH bodies start with `+OK` or
/// `-ERR`; some commands (`uuid_exists`, `show …`) answer with plain data, which counts as
/// success unless it starts with `-ERR` or `-USAGE`.
pub fn is_ok(body: &str) -> bool {
    let body = body.trim_start();
    !(body.starts_with("-ERR") || body.starts_with("-USAGE"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_ok_reads_the_reply_prefix() {
        assert!(is_ok("+OK\n"));
        assert!(is_ok("+OK Job-UUID: x\n"));
        assert!(is_ok("true"));
        assert!(!is_ok("-ERR no such channel\n"));
        assert!(!is_ok("-USAGE: <uuid>\n"));
        assert!(!is_ok("  -ERR x"));
    }
}
