//! The task behind one answer's [`TtsStream`](crate::providers::tts::TtsStream): text
//! pieces out as they come (each flushed), audio in as it comes, EOS when the text ends,
//! and the socket closed the moment nobody listens any more (barge-in).
//!
//! Timers: a keep-alive space while the LLM is slow (the service closes a socket after
//! `inactivity_timeout_s` without text), the first audio within `first_audio_timeout_ms`
//! of the first piece, and after EOS no silence longer than that before the end. Between
//! pieces silence is normal (the LLM is thinking), so a provider that hangs mid-answer
//! is caught once the text is closed.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio::time::{sleep_until, Instant};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;
use tracing::{debug, warn};

use super::connect::Ws;
use super::format::Decoder;
use super::messages::{self, ServerFrame};
use crate::config::Secret;
use crate::providers::tts::TtsEvent;
use crate::providers::ProviderError;

/// Far enough in the future to never fire (a disabled timer still needs a deadline).
const NEVER: Duration = Duration::from_secs(86_400);
/// How long a polite close waits for the service's Close reply.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// The timers of one stream.
pub struct Timing {
    pub keep_alive: Duration,
    pub audio_timeout: Duration,
}

/// Why the loop stopped.
enum End {
    /// Everything was spoken: `Done` went out; close politely.
    Done,
    /// Nobody listens (or the error was sent): close at once.
    Abandon,
}

pub async fn run(
    ws: Ws,
    text: mpsc::Receiver<String>,
    audio: mpsc::Sender<TtsEvent>,
    mut decoder: Decoder,
    timing: Timing,
    key: Secret,
) {
    let (mut sink, mut stream) = ws.split();
    let end = drive(
        &mut sink,
        &mut stream,
        text,
        &audio,
        &mut decoder,
        &timing,
        &key,
    )
    .await;
    let frame = CloseFrame {
        code: CloseCode::Normal,
        reason: "".into(),
    };
    if sink.send(Message::Close(Some(frame))).await.is_err() {
        return;
    }
    if let End::Done = end {
        let _ = tokio::time::timeout(CLOSE_GRACE, async {
            while let Some(Ok(msg)) = stream.next().await {
                if msg.is_close() {
                    break;
                }
            }
        })
        .await;
    }
}

type Sink = futures_util::stream::SplitSink<Ws, Message>;
type Stream = futures_util::stream::SplitStream<Ws>;

async fn drive(
    sink: &mut Sink,
    stream: &mut Stream,
    text: mpsc::Receiver<String>,
    audio: &mpsc::Sender<TtsEvent>,
    decoder: &mut Decoder,
    timing: &Timing,
    key: &Secret,
) -> End {
    let mut text = Some(text);
    let mut last_sent = Instant::now();
    let mut sent_any = false;
    let mut got_audio = false;
    // The audio watchdog (see the module docs); `None` when off.
    let mut deadline: Option<Instant> = None;
    let fail = |e: ProviderError| async move {
        let e = scrub(e, key);
        warn!(error = %e, "ElevenLabs speech stream failed");
        let _ = audio.send(TtsEvent::Error(e)).await;
        End::Abandon
    };
    loop {
        let keep_alive_at = last_sent + timing.keep_alive;
        tokio::select! {
            _ = audio.closed() => {
                debug!("speech dropped (barge-in): closing the stream");
                return End::Abandon;
            }
            piece = recv(&mut text) => {
                let now = Instant::now();
                let msg = match piece {
                    Some(piece) => match messages::piece(&piece) {
                        Some(msg) => {
                            sent_any = true;
                            if !got_audio && deadline.is_none() {
                                deadline = Some(now + timing.audio_timeout);
                            }
                            msg
                        }
                        None => continue,
                    },
                    None if !sent_any => {
                        // Nothing to say: no need to ask the service.
                        let _ = audio.send(TtsEvent::Done).await;
                        return End::Abandon;
                    }
                    None => {
                        text = None;
                        deadline = Some(now + timing.audio_timeout);
                        messages::eos()
                    }
                };
                if let Err(e) = sink.send(Message::text(msg)).await {
                    return fail(ProviderError::Unavailable(format!("sending text to ElevenLabs failed: {e}"))).await;
                }
                last_sent = now;
            }
            _ = sleep_until(keep_alive_at), if text.is_some() => {
                if let Err(e) = sink.send(Message::text(messages::keep_alive())).await {
                    return fail(ProviderError::Unavailable(format!("sending to ElevenLabs failed: {e}"))).await;
                }
                last_sent = Instant::now();
            }
            _ = sleep_until(deadline.unwrap_or_else(|| Instant::now() + NEVER)), if deadline.is_some() => {
                return fail(ProviderError::Timeout).await;
            }
            msg = stream.next() => {
                let eos_sent = text.is_none();
                let frame = match msg {
                    Some(Ok(Message::Text(t))) => messages::parse(&t),
                    Some(Ok(Message::Binary(_))) => Err(ProviderError::Protocol(
                        "binary frame: ElevenLabs sends JSON text frames".into(),
                    )),
                    Some(Ok(Message::Close(frame))) => {
                        let code = frame.as_ref().map_or(1005, |f| u16::from(f.code));
                        let reason = frame.as_ref().map_or("", |f| f.reason.as_str());
                        if code == 1000 && eos_sent {
                            // The SDK's normal end, even without `isFinal`.
                            let _ = audio.send(TtsEvent::Done).await;
                            return End::Abandon;
                        }
                        if code == 1000 {
                            return fail(ProviderError::Unavailable(
                                "ElevenLabs closed the stream before the text ended".into(),
                            )).await;
                        }
                        return fail(messages::close_error(code, reason)).await;
                    }
                    Some(Ok(_)) => {
                        // Pongs to its pings go out with the next write: flush them now.
                        let _ = sink.flush().await;
                        continue;
                    }
                    Some(Err(e)) => {
                        return fail(ProviderError::Unavailable(format!("ElevenLabs connection failed: {e}"))).await;
                    }
                    None => {
                        return fail(ProviderError::Unavailable("ElevenLabs connection ended".into())).await;
                    }
                };
                let (bytes, is_final) = match frame {
                    Ok(ServerFrame::Audio { bytes, is_final }) => (bytes, is_final),
                    Ok(ServerFrame::Error(e)) | Err(e) => return fail(e).await,
                };
                let samples = decoder.decode(&bytes);
                if !samples.is_empty() {
                    got_audio = true;
                    if audio.send(TtsEvent::Audio(samples)).await.is_err() {
                        debug!("speech dropped (barge-in): closing the stream");
                        return End::Abandon;
                    }
                }
                if eos_sent {
                    deadline = Some(Instant::now() + timing.audio_timeout);
                } else if got_audio {
                    deadline = None;
                }
                if is_final && eos_sent {
                    if decoder.has_half_sample() {
                        debug!("ElevenLabs audio ended with half a sample; dropped");
                    }
                    let _ = audio.send(TtsEvent::Done).await;
                    return End::Done;
                }
                if is_final {
                    // Single-context streams end only after EOS; read on and let the
                    // close (if one comes) say what happened.
                    debug!("isFinal before the end of the text; ignored");
                }
            }
        }
    }
}

/// The next piece; pending forever once the text has ended (`None` stays `None`).
async fn recv(text: &mut Option<mpsc::Receiver<String>>) -> Option<String> {
    match text {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// Takes the key out of an error message, should the service ever echo it.
fn scrub(e: ProviderError, key: &Secret) -> ProviderError {
    let k = key.expose();
    if k.len() < 4 {
        return e;
    }
    let clean = |m: String| m.replace(k, "***");
    match e {
        ProviderError::Refused(m) => ProviderError::Refused(clean(m)),
        ProviderError::Unavailable(m) => ProviderError::Unavailable(clean(m)),
        ProviderError::Protocol(m) => ProviderError::Protocol(clean(m)),
        ProviderError::Config(m) => ProviderError::Config(clean(m)),
        ProviderError::Timeout => ProviderError::Timeout,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_echoed_key_is_scrubbed() {
        let key = Secret::new("xi-secret-key");
        let e = scrub(ProviderError::Refused("bad key xi-secret-key".into()), &key);
        assert_eq!(e, ProviderError::Refused("bad key ***".into()));
        assert_eq!(scrub(ProviderError::Timeout, &key), ProviderError::Timeout);
    }
}
