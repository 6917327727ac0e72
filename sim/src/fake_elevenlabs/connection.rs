//! The I/O loop of one fake conversation: frames and timers into the [`Session`], its
//! outbox onto the socket, plus the close fault and shutdown.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use tokio::time::{sleep_until, Instant};
use tracing::debug;

use super::session::Session;
use super::{Fault, Shared};
use crate::fake_common::server::{deadline, send_all};

/// WebSocket close codes.
const GOING_AWAY: u16 = 1001;
const INTERNAL_ERROR: u16 = 1011;

pub(crate) async fn serve(mut ws: WebSocket, shared: Arc<Shared>, fault: Fault) {
    let started = Instant::now();
    let close_at = match fault {
        Fault::CloseAfterMs(ms) => Some(started + Duration::from_millis(ms)),
        _ => None,
    };
    let mut shutdown = shared.shutdown.clone();
    let mut session = Session::new(shared, fault);
    loop {
        let wake = session.next_wake();
        tokio::select! {
            msg = ws.recv() => match msg {
                Some(Ok(Message::Text(text))) => session.on_client_text(text.as_str(), Instant::now()),
                Some(Ok(Message::Binary(_))) => session.binary_frame(),
                Some(Ok(Message::Close(_))) | None => break,
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    debug!(error = %e, "fake ElevenLabs read failed");
                    break;
                }
            },
            _ = sleep_until(deadline(wake, started)), if wake.is_some() => {
                session.on_timer(Instant::now());
            }
            _ = sleep_until(deadline(close_at, started)), if close_at.is_some() => {
                close(&mut ws, INTERNAL_ERROR, "fault injection: closing").await;
                break;
            }
            _ = shutdown.changed() => {
                close(&mut ws, GOING_AWAY, "fake server stopping").await;
                break;
            }
        }
        if !flush(&mut ws, &mut session).await {
            break;
        }
    }
}

/// Writes the outbox; false when the socket is gone.
async fn flush(ws: &mut WebSocket, session: &mut Session) -> bool {
    let out = std::mem::take(&mut session.out);
    send_all(ws, out.into_iter().map(Message::text).collect()).await
}

async fn close(ws: &mut WebSocket, code: u16, reason: &str) {
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    let _ = ws.send(Message::Close(Some(frame))).await;
}
