//! The I/O loop of one fake session: frames and timers into the [`Session`], its outbox
//! onto the socket, plus the close fault.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::sync::watch;
use tokio::time::{sleep_until, Instant};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;
use tracing::debug;

use super::handshake::Upgrade;
use super::session::Session;
use super::{Fault, Shared};
use crate::fake_common::server::{close, deadline, send_all, Ws};

/// Session numbers, unique in the process (ids in logs and events).
static SESSION_NO: AtomicU64 = AtomicU64::new(1);

pub(crate) async fn serve(
    mut ws: Ws,
    shared: Arc<Shared>,
    upgrade: Upgrade,
    fault: Fault,
    mut shutdown: watch::Receiver<bool>,
) {
    let started = Instant::now();
    let close_at = match fault {
        Fault::CloseAfterMs(ms) => Some(started + Duration::from_millis(ms)),
        _ => None,
    };
    let session_no = SESSION_NO.fetch_add(1, Ordering::Relaxed);
    let mut session = Session::new(shared, &upgrade, fault, session_no);
    if !flush(&mut ws, &mut session).await {
        return;
    }
    loop {
        let wake = session.next_wake();
        tokio::select! {
            msg = ws.next() => match msg {
                Some(Ok(Message::Text(text))) => session.on_client_text(&text, Instant::now()),
                Some(Ok(Message::Binary(_))) => session.binary_frame(),
                Some(Ok(Message::Close(_))) | None => {
                    // Sends the Close reply tungstenite queued.
                    let _ = ws.flush().await;
                    break;
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    debug!(error = %e, "fake OpenAI session read failed");
                    break;
                }
            },
            _ = sleep_until(deadline(wake, started)), if wake.is_some() => {
                session.on_timer(Instant::now());
            }
            _ = sleep_until(deadline(close_at, started)), if close_at.is_some() => {
                let _ = close(&mut ws, CloseCode::Error, "fault injection: closing").await;
                break;
            }
            _ = shutdown.changed() => {
                let _ = close(&mut ws, CloseCode::Away, "fake server stopping").await;
                break;
            }
        }
        if let Some(delay) = session.take_flush_delay() {
            tokio::time::sleep(delay).await;
        }
        if !flush(&mut ws, &mut session).await {
            break;
        }
    }
}

/// Writes the outbox; false when the socket is gone.
async fn flush(ws: &mut Ws, session: &mut Session) -> bool {
    let out = session.out.take().into_iter().map(Message::text).collect();
    send_all(ws, out).await
}
