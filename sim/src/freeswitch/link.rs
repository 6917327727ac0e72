//! The state of the module's socket inside a call: connecting (in the background, so the
//! call's clock keeps ticking), open, waiting to reconnect (ixwebsocket), or gone.

use std::time::Duration;

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::StreamExt;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use super::call_report::ErrorKind;
use super::connection::{open, WsStream};
use super::profile::ModuleProfile;

type ConnectResult = Result<WsStream, (ErrorKind, String)>;

/// The module's socket.
pub enum Link {
    /// Connect + upgrade running in a task.
    Connecting(JoinHandle<ConnectResult>),
    /// Connected.
    Open {
        /// Outgoing half.
        sink: SplitSink<WsStream, Message>,
        /// Incoming half.
        stream: SplitStream<WsStream>,
    },
    /// ixwebsocket waits before reconnecting.
    Retry(Instant),
    /// No socket and none coming.
    Down,
}

/// What happened on the socket.
pub enum LinkEvent {
    /// The connect task finished.
    Connected(Box<ConnectResult>),
    /// A message, an error, or the end of the stream.
    Message(Option<Result<Message, WsError>>),
    /// Time to reconnect.
    RetryDue,
}

impl Link {
    /// Starts connecting to `url` as `profile`.
    pub fn connect(url: String, profile: ModuleProfile, headers: Vec<(String, String)>) -> Self {
        Link::Connecting(tokio::spawn(
            async move { open(&url, &profile, &headers).await },
        ))
    }

    /// An open link from a connected socket.
    pub fn opened(ws: WsStream) -> Self {
        let (sink, stream) = ws.split();
        Link::Open { sink, stream }
    }

    /// True when messages can be sent.
    pub fn is_open(&self) -> bool {
        matches!(self, Link::Open { .. })
    }

    /// Waits for the next thing to happen (cancel-safe).
    pub async fn next_event(&mut self) -> LinkEvent {
        match self {
            Link::Connecting(task) => {
                LinkEvent::Connected(Box::new(task.await.unwrap_or_else(|e| {
                    Err((ErrorKind::Internal, format!("connect task: {e}")))
                })))
            }
            Link::Open { stream, .. } => LinkEvent::Message(stream.next().await),
            Link::Retry(at) => {
                tokio::time::sleep_until(*at).await;
                LinkEvent::RetryDue
            }
            Link::Down => std::future::pending().await,
        }
    }
}

/// ixwebsocket's backoff: `2^retry * 100 ms`, at most 10 s.
pub fn reconnect_delay(retry: u32) -> Duration {
    Duration::from_millis((100u64 << retry.min(7)).min(10_000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_ten_seconds() {
        assert_eq!(reconnect_delay(0), Duration::from_millis(100));
        assert_eq!(reconnect_delay(3), Duration::from_millis(800));
        assert_eq!(reconnect_delay(20), Duration::from_secs(10));
    }
}
