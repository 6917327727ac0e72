//! The I/O loop of one fake stream: client frames into the [`Session`], the audio it
//! asks for rendered and queued with its send times (first byte delay, pacing), the
//! inactivity timeout, the mid-stream faults, and the end (`isFinal`, close 1000).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio::sync::watch;
use tokio::time::{sleep_until, Instant};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;
use tracing::debug;

use super::handshake::Upgrade;
use super::session::{Action, Session};
use super::stats::{Count, SessionStats};
use super::voice::{self, Cutting};
use super::{Fault, Shared};
use crate::fake_common::reply::off_runtime;
use crate::fake_common::server::{close, deadline, send_all, Ws};

/// How the service words its inactivity close (seen in the wild, code 1008).
const INACTIVITY: &str = "Have not received a new text input within the timeout. \
                          Streaming input terminated.";
/// What the service says when it fails (seen in the wild).
const SORRY: &str = "We are sorry, something went wrong. You are not charged for this request.";
/// How long to wait for the client's Close reply after ours.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// A server message waiting for its time.
struct Queued {
    at: Instant,
    what: Out,
}

enum Out {
    Audio {
        json: String,
        bytes: u64,
        samples: usize,
    },
    Final,
}

/// How a stream ended, seen from the loop.
enum End {
    /// The client closed or vanished.
    ClientGone,
    /// We closed it (final, rejection, inactivity, fault, shutdown).
    Closed,
}

pub(crate) async fn serve(
    ws: Ws,
    shared: Arc<Shared>,
    upgrade: Upgrade,
    fault: Fault,
    shutdown: watch::Receiver<bool>,
) {
    let record = shared.stats.new_session(SessionStats {
        voice_id: upgrade.voice_id.clone(),
        model_id: upgrade.model_id.clone(),
        output_format: upgrade.format.name(),
        language_code: upgrade.language_code.clone(),
        inactivity_timeout_s: upgrade.inactivity_timeout_s,
        key_in_header: upgrade.key_in_header,
        ..Default::default()
    });
    let mut stream = Stream {
        session: Session::new(shared.clone(), &upgrade, record),
        shared,
        upgrade,
        fault,
        record,
        queue: VecDeque::new(),
        cursor: Instant::now(),
        chunks_sent: 0,
        hung: false,
        final_sent: false,
    };
    if let End::ClientGone = stream.run(ws, shutdown).await {
        if !stream.final_sent {
            stream.shared.stats.add(Count::ClosedByClient);
            stream
                .shared
                .stats
                .session(record, |s| s.closed_by_client = true);
        }
    }
}

struct Stream {
    shared: Arc<Shared>,
    session: Session,
    upgrade: Upgrade,
    fault: Fault,
    record: usize,
    queue: VecDeque<Queued>,
    /// When everything queued so far has gone out.
    cursor: Instant,
    chunks_sent: u32,
    /// [`Fault::HangAfterChunks`] struck: nothing more is sent.
    hung: bool,
    final_sent: bool,
}

impl Stream {
    async fn run(&mut self, mut ws: Ws, mut shutdown: watch::Receiver<bool>) -> End {
        let started = Instant::now();
        let idle_after = Duration::from_secs(self.upgrade.inactivity_timeout_s);
        let mut last_heard = started;
        loop {
            let next_send = if self.hung {
                None
            } else {
                self.queue.front().map(|q| q.at)
            };
            let idle_at = (!self.session.ended() && !self.hung).then(|| last_heard + idle_after);
            let actions = tokio::select! {
                msg = ws.next() => match msg {
                    Some(Ok(Message::Text(text))) => {
                        last_heard = Instant::now();
                        self.session.on_text(&text)
                    }
                    Some(Ok(Message::Binary(_))) => self.session.on_binary(),
                    Some(Ok(Message::Close(_))) | None => {
                        // Sends the Close reply tungstenite queued.
                        let _ = ws.flush().await;
                        return End::ClientGone;
                    }
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => {
                        debug!(error = %e, "fake ElevenLabs TTS read failed");
                        return End::ClientGone;
                    }
                },
                _ = sleep_until(deadline(next_send, started)), if next_send.is_some() => {
                    match self.send_due(&mut ws).await {
                        Some(end) => return end,
                        None => continue,
                    }
                }
                _ = sleep_until(deadline(idle_at, started)), if idle_at.is_some() => {
                    self.shared.stats.add(Count::InactivityClose);
                    let _ = close(&mut ws, CloseCode::Policy, INACTIVITY).await;
                    return End::Closed;
                }
                _ = shutdown.changed() => {
                    let _ = close(&mut ws, CloseCode::Away, "fake server stopping").await;
                    return End::Closed;
                }
            };
            for action in actions {
                if let Some(end) = self.apply(&mut ws, action).await {
                    return end;
                }
            }
        }
    }

    /// Queues what `action` asks for; `Some` when the stream is over.
    async fn apply(&mut self, ws: &mut Ws, action: Action) -> Option<End> {
        match action {
            Action::Speak(text) => {
                if let Err(e) = self.speak(text).await {
                    debug!(error = %e, "fake ElevenLabs TTS could not render");
                    return Some(reject(ws, "internal_error", SORRY).await);
                }
                None
            }
            Action::Final => {
                let at = self.cursor.max(Instant::now());
                self.queue.push_back(Queued {
                    at,
                    what: Out::Final,
                });
                None
            }
            Action::Reject { error, message } => Some(reject(ws, error, &message).await),
        }
    }

    /// Renders `text` and queues its messages: the first `first_byte_ms` after now (or
    /// right after the audio already queued), the rest paced by `realtime_factor`.
    async fn speak(&mut self, text: String) -> anyhow::Result<()> {
        let cfg = &self.shared.cfg;
        let (format, rate) = (self.upgrade.format, self.upgrade.format.rate());
        let samples = match &cfg.voice {
            v @ voice::Voice::Tone { .. } => v.render(&text, rate)?,
            v => {
                let (v, t) = (v.clone(), text.clone());
                off_runtime("rendering speech", move || v.render(&t, rate)).await?
            }
        };
        let cutting = Cutting {
            chunk_ms: cfg.chunk_ms,
            odd: cfg.odd_chunks,
            alignment: cfg.alignment,
        };
        let messages = voice::messages(&text, &samples, format, cutting);
        let ready = Instant::now() + Duration::from_millis(cfg.first_byte_ms);
        let start = ready.max(self.cursor);
        let per_ms = format.bytes_per_ms();
        let bytes_per_sample = format.encoding().bytes_per_sample() as u64;
        let mut offset_ms = 0.0;
        for m in messages {
            let at = start
                + Duration::from_secs_f64(offset_ms / 1000.0 / f64::from(cfg.realtime_factor));
            offset_ms += m.bytes as f64 / per_ms;
            let samples = (m.bytes / bytes_per_sample) as usize;
            self.queue.push_back(Queued {
                at,
                what: Out::Audio {
                    json: m.json,
                    bytes: m.bytes,
                    samples,
                },
            });
        }
        self.cursor =
            start + Duration::from_secs_f64(offset_ms / 1000.0 / f64::from(cfg.realtime_factor));
        Ok(())
    }

    /// Sends every queued message whose time has come; `Some` when the stream is over.
    async fn send_due(&mut self, ws: &mut Ws) -> Option<End> {
        let now = Instant::now();
        let mut batch = Vec::new();
        while self.queue.front().is_some_and(|q| q.at <= now) {
            let Some(next) = self.queue.pop_front() else {
                break;
            };
            match self.fault {
                Fault::ErrorAfterChunks(n) if n == self.chunks_sent => {
                    let _ = send_all(ws, batch).await;
                    return Some(reject(ws, "internal_error", SORRY).await);
                }
                Fault::DropAfterChunks(n) if n == self.chunks_sent => {
                    let _ = send_all(ws, batch).await;
                    debug!("fake ElevenLabs TTS: dropping the connection (fault)");
                    return Some(End::Closed); // the socket is dropped without a Close
                }
                Fault::HangAfterChunks(n) if n == self.chunks_sent => {
                    self.hung = true;
                    break;
                }
                _ => {}
            }
            match next.what {
                Out::Audio {
                    json,
                    bytes,
                    samples,
                } => {
                    batch.push(Message::text(json));
                    self.chunks_sent += 1;
                    let rate = self.upgrade.format.rate();
                    self.shared
                        .stats
                        .audio_sent(self.record, bytes, samples, rate);
                }
                Out::Final => {
                    batch.push(Message::text(json!({"isFinal": true}).to_string()));
                    if !send_all(ws, batch).await {
                        return Some(End::ClientGone);
                    }
                    self.final_sent = true;
                    self.shared.stats.add(Count::Final);
                    self.shared
                        .stats
                        .session(self.record, |s| s.final_sent = true);
                    finish(ws).await;
                    return Some(End::Closed);
                }
            }
        }
        if !send_all(ws, batch).await {
            return Some(End::ClientGone);
        }
        None
    }
}

/// The service's error message, then close 1008 with it as the reason.
async fn reject(ws: &mut Ws, error: &str, message: &str) -> End {
    let body = json!({"message": message, "error": error, "code": 1008});
    let _ = ws.send(Message::text(body.to_string())).await;
    let _ = close(ws, CloseCode::Policy, message).await;
    End::Closed
}

/// Close 1000, then a moment for the client's reply.
async fn finish(ws: &mut Ws) {
    if !close(ws, CloseCode::Normal, "").await {
        return;
    }
    let _ = tokio::time::timeout(CLOSE_GRACE, async {
        while let Some(Ok(msg)) = ws.next().await {
            if msg.is_close() {
                break;
            }
        }
    })
    .await;
}
