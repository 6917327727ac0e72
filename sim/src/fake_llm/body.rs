//! Streaming one answer: a task writes the frames into the response body, paced, framed
//! as the [`WireStyle`] says, broken as the [`Fault`] says, and records how the stream
//! ended. The body is fed through a one-slot channel, so the task notices at once when
//! the client goes away (the server drops the body with the connection).

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use tokio::sync::mpsc;

use super::render::{Frame, Kind};
use super::stats::Outcome;
use super::{Fault, Shared, WireStyle};

type Item = Result<Bytes, std::io::Error>;

/// What one stream sends.
pub(crate) struct Plan {
    pub frames: Vec<Frame>,
    /// The provider's mid-stream error event.
    pub error_event: String,
    pub fault: Fault,
    pub tool_calls: usize,
}

/// The response body streaming `plan`.
pub(crate) fn stream(plan: Plan, shared: Arc<Shared>) -> Body {
    let (tx, rx) = mpsc::channel::<Item>(1);
    tokio::spawn(async move {
        shared.stats.stream_started(plan.tool_calls);
        let outcome = send_all(&plan, &tx, &shared).await;
        shared.stats.stream_ended(outcome);
    });
    Body::from_stream(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    }))
}

async fn send_all(plan: &Plan, tx: &mpsc::Sender<Item>, shared: &Shared) -> Outcome {
    let cfg = &shared.cfg;
    let first_token = Duration::from_millis(cfg.first_token_ms);
    let interval = Duration::from_millis(cfg.token_interval_ms);
    let mut shutdown = shared.shutdown.clone();
    let mut content_sent = 0;
    let mut started = false;
    for frame in &plan.frames {
        if frame.kind != Kind::Preamble {
            if let Some(outcome) = fault(plan, content_sent, tx, &mut shutdown, &cfg.wire).await {
                return outcome;
            }
        }
        let wait = match frame.kind {
            Kind::Preamble => Duration::ZERO,
            _ if !started => first_token,
            Kind::Content => interval,
            Kind::Follow => Duration::ZERO,
        };
        if frame.kind != Kind::Preamble {
            started = true;
        }
        if !pause(wait, tx, &mut shutdown).await {
            return Outcome::Cancelled;
        }
        if !write(&frame.text, &cfg.wire, tx).await {
            return Outcome::Cancelled;
        }
        if frame.kind == Kind::Content {
            content_sent += 1;
        }
    }
    Outcome::Completed
}

/// Applies the fault due after `content_sent` content chunks; `Some` ends the stream.
async fn fault(
    plan: &Plan,
    content_sent: usize,
    tx: &mpsc::Sender<Item>,
    shutdown: &mut tokio::sync::watch::Receiver<bool>,
    wire: &WireStyle,
) -> Option<Outcome> {
    match plan.fault {
        Fault::ErrorEventAfter(n) if n == content_sent => {
            write(&plan.error_event, wire, tx).await;
            Some(Outcome::Faulted)
        }
        Fault::DropAfter(n) if n == content_sent => {
            // An error from the body makes the server abort the connection.
            let _ = tx
                .send(Err(std::io::Error::other("fault: drop mid-stream")))
                .await;
            Some(Outcome::Faulted)
        }
        // Returning drops the sender: the body ends cleanly, unfinished.
        Fault::EndAfter(n) if n == content_sent => Some(Outcome::Faulted),
        Fault::HangAfterFirstToken if content_sent >= 1 => {
            tokio::select! {
                _ = tx.closed() => {}
                _ = shutdown.wait_for(|stop| *stop) => {}
            }
            Some(Outcome::Faulted)
        }
        _ => None,
    }
}

/// Waits `d`; false when the client went away or the fake stopped meanwhile.
async fn pause(
    d: Duration,
    tx: &mpsc::Sender<Item>,
    shutdown: &mut tokio::sync::watch::Receiver<bool>,
) -> bool {
    if d.is_zero() {
        return !tx.is_closed();
    }
    tokio::select! {
        _ = tokio::time::sleep(d) => true,
        _ = tx.closed() => false,
        _ = shutdown.wait_for(|stop| *stop) => false,
    }
}

/// Writes one event (split in pieces, with `\r\n`, as asked); false when the client
/// went away.
async fn write(text: &str, wire: &WireStyle, tx: &mpsc::Sender<Item>) -> bool {
    let text = if wire.crlf {
        text.replace('\n', "\r\n")
    } else {
        text.to_string()
    };
    let bytes = Bytes::from(text);
    for piece in split(&bytes, wire.split_writes) {
        if tx.send(Ok(piece)).await.is_err() {
            return false;
        }
        if wire.split_writes {
            // Let the server write this piece on its own before the next.
            tokio::task::yield_now().await;
        }
    }
    true
}

/// `bytes` whole, or cut after its first byte, in the middle and before its last byte
/// (even inside a UTF-8 character or between `\r` and `\n`).
fn split(bytes: &Bytes, split: bool) -> Vec<Bytes> {
    let len = bytes.len();
    if !split || len < 4 {
        return vec![bytes.clone()];
    }
    let cuts = [0, 1, len / 2, len - 1, len];
    cuts.windows(2)
        .filter(|w| w[0] < w[1])
        .map(|w| bytes.slice(w[0]..w[1]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_cover_the_event() {
        let b = Bytes::from("data: {}\n\n");
        let parts = split(&b, true);
        assert_eq!(parts.len(), 4);
        assert_eq!(parts.concat(), b.to_vec());
        assert_eq!(parts[0], Bytes::from("d"));
        assert_eq!(split(&b, false), vec![b.clone()]);
        assert_eq!(split(&Bytes::from("ab"), true).len(), 1);
    }
}
