//! The I/O loop of one live stream: binary audio and text control messages into the
//! [`ListenStream`], its messages out in order (finals held back `final_delay_ms`), the
//! 10 s idle rule (`NET-0001`), the stream faults and shutdown.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use serde_json::Value;
use tokio::time::{sleep_until, Instant};
use tracing::debug;

use super::messages;
use super::stats::Count;
use super::stream::{Kind, ListenStream, Outgoing};
use super::{Fault, Shared};
use crate::fake_common::server::deadline;

const NORMAL: u16 = 1000;
const GOING_AWAY: u16 = 1001;
const POLICY: u16 = 1008;
const INTERNAL_ERROR: u16 = 1011;
/// The real reason is longer (and links the docs); this keeps its code.
const IDLE_REASON: &str = "NET-0001: no audio or KeepAlive received within the timeout window";

/// Messages due at an instant, kept in order: a later message is never due earlier.
#[derive(Default)]
struct Outbox(VecDeque<(Instant, Outgoing)>);

impl Outbox {
    fn push(&mut self, message: Outgoing, delay: Duration) {
        let due = Instant::now() + delay;
        let due = self.0.back().map_or(due, |(last, _)| due.max(*last));
        self.0.push_back((due, message));
    }

    fn next_due(&self) -> Option<Instant> {
        self.0.front().map(|(due, _)| *due)
    }
}

/// How the loop ends a stream.
enum End {
    /// Close with this code and reason.
    Close(u16, &'static str),
    /// Drop the connection without a close frame.
    Drop,
    /// The client went away.
    Gone,
}

pub(crate) async fn serve(
    ws: WebSocket,
    shared: Arc<Shared>,
    stream: ListenStream,
    rate: u32,
    fault: Fault,
) {
    let mut conn = Connection {
        shared,
        stream,
        rate,
        fault,
        outbox: Outbox::default(),
        results_sent: 0,
        closing: false,
        odd_byte: None,
    };
    let end = conn.run(ws).await;
    debug!(end, "fake Deepgram stream over");
}

struct Connection {
    shared: Arc<Shared>,
    stream: ListenStream,
    /// Rate of the audio (from the query).
    rate: u32,
    fault: Fault,
    outbox: Outbox,
    results_sent: u32,
    /// `CloseStream` received: close once the outbox is empty.
    closing: bool,
    /// A trailing byte of an odd-length audio frame, completed by the next frame.
    odd_byte: Option<u8>,
}

impl Connection {
    async fn run(&mut self, mut ws: WebSocket) -> &'static str {
        let idle = Duration::from_millis(self.shared.cfg.idle_timeout_ms);
        let mut idle_at = Instant::now() + idle;
        let mut shutdown = self.shared.shutdown.clone();
        let started = Instant::now();
        let end = loop {
            if let Some(end) = self.fault_due() {
                break end;
            }
            if self.closing && self.outbox.0.is_empty() {
                break End::Close(NORMAL, "");
            }
            let due = self.outbox.next_due();
            tokio::select! {
                msg = ws.recv() => {
                    let msg = match msg {
                        Some(Ok(m)) => m,
                        Some(Err(e)) => {
                            debug!(error = %e, "fake Deepgram read failed");
                            break End::Gone;
                        }
                        None => break End::Gone,
                    };
                    match msg {
                        Message::Binary(bytes) => {
                            idle_at = Instant::now() + idle;
                            self.on_audio(&bytes);
                        }
                        Message::Text(text) => {
                            idle_at = Instant::now() + idle;
                            if let Some(end) = self.on_text(text.as_str()) {
                                break end;
                            }
                        }
                        Message::Close(_) => break End::Gone,
                        _ => {}
                    }
                }
                _ = sleep_until(deadline(due, started)), if due.is_some() => {
                    if let Some((_, out)) = self.outbox.0.pop_front() {
                        if !self.send(&mut ws, out).await {
                            break End::Gone;
                        }
                    }
                }
                _ = sleep_until(idle_at), if !self.closing => {
                    self.shared.stats.add(Count::IdleClose);
                    break End::Close(INTERNAL_ERROR, IDLE_REASON);
                }
                _ = shutdown.changed() => break End::Close(GOING_AWAY, "fake server stopping"),
            }
            self.queue_new();
        };
        match end {
            End::Close(code, reason) => {
                if code == INTERNAL_ERROR && reason != IDLE_REASON {
                    let error = messages::error("NET-0000", "fault injection: stream failed");
                    let _ = ws.send(Message::text(error)).await;
                }
                let frame = CloseFrame {
                    code,
                    reason: reason.into(),
                };
                let _ = ws.send(Message::Close(Some(frame))).await;
                // The close handshake: read until the client's Close. Closing the socket
                // with its audio unread would send a TCP reset, and the client could lose
                // the error message above before reading it.
                let _ = tokio::time::timeout(Duration::from_secs(2), async {
                    while let Some(Ok(msg)) = ws.recv().await {
                        if matches!(msg, Message::Close(_)) {
                            break;
                        }
                    }
                })
                .await;
                "closed"
            }
            End::Drop => "dropped",
            End::Gone => "client gone",
        }
    }

    /// A result-count fault that has come due.
    fn fault_due(&self) -> Option<End> {
        match self.fault {
            Fault::DropAfterResults(n) if self.results_sent >= n => Some(End::Drop),
            Fault::ErrorAfterResults(n) if self.results_sent >= n => {
                Some(End::Close(INTERNAL_ERROR, "fault injection"))
            }
            _ => None,
        }
    }

    fn on_audio(&mut self, bytes: &[u8]) {
        let stats = &self.shared.stats;
        stats.add(Count::BinaryFrame);
        if self.closing {
            stats.protocol_error("audio after CloseStream".into());
            return;
        }
        let mut data = Vec::with_capacity(bytes.len() + 1);
        data.extend(self.odd_byte.take());
        data.extend_from_slice(bytes);
        if data.len() % 2 == 1 {
            stats.protocol_error(format!(
                "audio frame of {} bytes: not whole samples",
                bytes.len()
            ));
            self.odd_byte = data.pop();
        }
        let samples = voice_core::audio::pcm::from_le_bytes(&data);
        stats.audio_received(samples.len(), self.rate);
        self.stream.push(&samples);
    }

    /// A control message; `Some` when it ends the stream.
    fn on_text(&mut self, text: &str) -> Option<End> {
        let stats = &self.shared.stats;
        stats.add(Count::TextMessage);
        let kind = serde_json::from_str::<Value>(text)
            .ok()
            .and_then(|v| v.get("type").and_then(Value::as_str).map(str::to_string));
        match kind.as_deref() {
            Some("KeepAlive") => stats.add(Count::KeepAlive),
            Some("Finalize") => {
                stats.add(Count::Finalize);
                if !self.closing {
                    self.stream.finalize();
                }
            }
            Some("CloseStream") => {
                stats.add(Count::CloseStream);
                if !self.closing {
                    self.closing = true;
                    self.stream.close_stream();
                }
            }
            _ => {
                let shown: String = text.chars().take(80).collect();
                stats.protocol_error(format!("unknown control message: {shown}"));
                return Some(End::Close(POLICY, "invalid control message"));
            }
        }
        None
    }

    /// Moves what the stream produced into the outbox (nothing with the `Hang` fault).
    fn queue_new(&mut self) {
        let delay = Duration::from_millis(self.shared.cfg.final_delay_ms);
        for out in std::mem::take(&mut self.stream.out) {
            if self.fault == Fault::Hang {
                continue;
            }
            let wait = match out.kind {
                Kind::Final { .. } => delay,
                _ => Duration::ZERO,
            };
            self.outbox.push(out, wait);
        }
        if self.fault == Fault::Hang {
            // A hung service never finishes a CloseStream either.
            self.closing = false;
        }
    }

    async fn send(&mut self, ws: &mut WebSocket, out: Outgoing) -> bool {
        if ws.send(Message::text(out.json)).await.is_err() {
            return false;
        }
        let stats = &self.shared.stats;
        if out.kind.is_result() {
            self.results_sent += 1;
            stats.add(Count::Result);
        }
        match out.kind {
            Kind::Interim => stats.add(Count::Interim),
            Kind::Final { speech_final, .. } => {
                stats.add(Count::Final);
                if speech_final {
                    stats.add(Count::SpeechFinal);
                }
            }
            Kind::SpeechStarted => stats.add(Count::SpeechStarted),
            Kind::UtteranceEnd => stats.add(Count::UtteranceEnd),
            Kind::Metadata => {}
        }
        true
    }
}
