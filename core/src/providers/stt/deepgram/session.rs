//! The task that owns one live stream's socket: caller audio out as binary frames,
//! `KeepAlive` when the caller is quiet, `Finalize` on request, `CloseStream` when the
//! input is dropped; results in, through [`TranscriptState`], to the events channel.
//!
//! The socket is read only when the events channel has room, so a slow consumer slows
//! Deepgram down instead of stalling the caller's audio going the other way.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio::time::{sleep_until, Instant};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tracing::{debug, warn};

use super::messages::{CLOSE_STREAM, FINALIZE, KEEP_ALIVE};
use super::state::{Outcome, TranscriptState};
use crate::audio::pcm;
use crate::providers::stt::{SttEvent, SttInput};
use crate::providers::ws_connect::Ws;
use crate::providers::ws_session::{self, close_reason, Sink, Stream};
use crate::providers::ProviderError;

/// How long the last results may take after `CloseStream`.
const FLUSH_GRACE: Duration = Duration::from_secs(5);

pub async fn run(
    ws: Ws,
    mut input: mpsc::Receiver<SttInput>,
    events: mpsc::Sender<SttEvent>,
    keepalive: Duration,
) {
    let (mut sink, mut stream) = ws.split();
    let mut state = TranscriptState::default();
    // Deepgram's idle clock restarts on audio or any text message.
    let mut last_sent = Instant::now();
    loop {
        tokio::select! {
            next = input.recv() => {
                let message = match next {
                    Some(SttInput::Audio(samples)) if samples.is_empty() => continue,
                    Some(SttInput::Audio(samples)) => Message::binary(pcm::to_le_bytes(&samples)),
                    Some(SttInput::Finalize) => {
                        state.finalize_sent();
                        Message::text(FINALIZE)
                    }
                    None => {
                        debug!("stt input dropped; closing the Deepgram stream");
                        if sink.send(Message::text(CLOSE_STREAM)).await.is_ok() {
                            flush_then_close(sink, stream, &mut state, &events).await;
                        }
                        return;
                    }
                };
                if let Err(e) = sink.send(message).await {
                    report(&events, unavailable(format!("sending to Deepgram failed: {e}"))).await;
                    return;
                }
                last_sent = Instant::now();
            }
            _ = sleep_until(last_sent + keepalive) => {
                if let Err(e) = sink.send(Message::text(KEEP_ALIVE)).await {
                    report(&events, unavailable(format!("sending KeepAlive failed: {e}"))).await;
                    return;
                }
                last_sent = Instant::now();
            }
            next = read_when_room(&events, &mut stream) => {
                let Some((permit, msg)) = next else {
                    debug!("stt events dropped; closing the Deepgram stream");
                    return ws_session::close(sink, stream).await;
                };
                let produced = match read(msg, &mut state) {
                    Read::Events(e) => e,
                    Read::Ping => {
                        // Queued pongs go out with the next write; flush so they are not late.
                        let _ = sink.flush().await;
                        Vec::new()
                    }
                    Read::End(error) => {
                        permit.send(fatal(error));
                        return ws_session::close(sink, stream).await;
                    }
                };
                let mut produced = produced.into_iter();
                match produced.next() {
                    Some(first) => permit.send(first),
                    None => drop(permit),
                }
                for event in produced {
                    if events.send(event).await.is_err() {
                        return ws_session::close(sink, stream).await;
                    }
                }
            }
        }
    }
}

/// What one socket read means.
enum Read {
    Events(Vec<SttEvent>),
    Ping,
    /// The stream is over with this error.
    End(ProviderError),
}

fn read(msg: Option<Result<Message, WsError>>, state: &mut TranscriptState) -> Read {
    match msg {
        Some(Ok(Message::Text(text))) => match state.on_text(&text) {
            Outcome::Events(events) => Read::Events(events),
            Outcome::Fatal(error) => Read::End(error),
        },
        Some(Ok(Message::Binary(_))) => Read::Events(vec![SttEvent::Error {
            error: ProviderError::Protocol("Deepgram sent a binary frame".into()),
            fatal: false,
        }]),
        Some(Ok(Message::Close(frame))) => Read::End(closed(frame.as_ref())),
        Some(Ok(Message::Ping(_))) => Read::Ping,
        Some(Ok(_)) => Read::Events(Vec::new()),
        Some(Err(e)) => Read::End(unavailable(format!("Deepgram connection failed: {e}"))),
        None => Read::End(unavailable("Deepgram connection ended".into())),
    }
}

/// A close we did not ask for. 1008 (policy: audio it cannot decode) will not get better
/// on retry; anything else (1011 `NET-0001` idle, a restart) may.
fn closed(frame: Option<&CloseFrame>) -> ProviderError {
    let message = format!("Deepgram closed the stream: {}", close_reason(frame));
    match frame.map(|f| f.code) {
        Some(CloseCode::Policy) => ProviderError::Refused(message),
        _ => ProviderError::Unavailable(message),
    }
}

/// After `CloseStream`: the last results, until Deepgram closes (normally) or the grace
/// runs out. An error on the way is still reported.
async fn flush_then_close(
    mut sink: Sink,
    mut stream: Stream,
    state: &mut TranscriptState,
    events: &mpsc::Sender<SttEvent>,
) {
    let deadline = Instant::now() + FLUSH_GRACE;
    loop {
        let msg = tokio::select! {
            msg = stream.next() => msg,
            _ = sleep_until(deadline) => {
                debug!("Deepgram did not close after CloseStream");
                return ws_session::close(sink, stream).await;
            }
        };
        if let Some(Ok(Message::Close(Some(frame)))) = &msg {
            if frame.code == CloseCode::Normal {
                // Flushes our reply to Deepgram's close.
                let _ = sink.close().await;
                return;
            }
        }
        match read(msg, state) {
            Read::Events(list) => {
                for event in list {
                    if events.send(event).await.is_err() {
                        return ws_session::close(sink, stream).await;
                    }
                }
            }
            Read::Ping => {
                let _ = sink.flush().await;
            }
            Read::End(error) => {
                let _ = events.send(fatal(error)).await;
                return;
            }
        }
    }
}

/// Next socket message once one event fits in the channel; `None` if nobody listens.
async fn read_when_room<'a>(
    events: &'a mpsc::Sender<SttEvent>,
    stream: &mut Stream,
) -> Option<(mpsc::Permit<'a, SttEvent>, Option<Result<Message, WsError>>)> {
    let permit = events.reserve().await.ok()?;
    Some((permit, stream.next().await))
}

fn unavailable(message: String) -> ProviderError {
    ProviderError::Unavailable(message)
}

/// The error that ends the stream, logged once here.
fn fatal(error: ProviderError) -> SttEvent {
    warn!(%error, "Deepgram stream over");
    SttEvent::Error { error, fatal: true }
}

async fn report(events: &mpsc::Sender<SttEvent>, error: ProviderError) {
    let _ = events.send(fatal(error)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closes_map_to_errors() {
        let policy = CloseFrame {
            code: CloseCode::Policy,
            reason: "DATA-0000".into(),
        };
        assert!(
            matches!(closed(Some(&policy)), ProviderError::Refused(m) if m.contains("DATA-0000"))
        );
        let idle = CloseFrame {
            code: CloseCode::Error,
            reason: "NET-0001".into(),
        };
        assert!(matches!(closed(Some(&idle)), ProviderError::Unavailable(m) if m.contains("1011")));
        assert!(matches!(closed(None), ProviderError::Unavailable(_)));
    }
}
