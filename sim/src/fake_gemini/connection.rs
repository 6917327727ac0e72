//! The I/O loop of one fake session: frames and timers into the [`Session`], its outbox
//! onto the socket (binary or text frames), plus the timed faults.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::sync::watch;
use tokio::time::{sleep_until, Instant};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;
use tracing::debug;

use super::session::Session;
use super::{Fault, Shared};
use crate::fake_common::server::{self, deadline, send_all, Ws};

/// Between `goAway` and the close that follows it.
const GO_AWAY_GRACE: Duration = Duration::from_millis(300);
/// How long to wait for the client's Close reply.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

pub(crate) async fn serve(
    mut ws: Ws,
    shared: Arc<Shared>,
    fault: Fault,
    mut shutdown: watch::Receiver<bool>,
) {
    let started = Instant::now();
    let at = |ms: u64| Some(started + Duration::from_millis(ms));
    let setup_deadline = started + Duration::from_millis(shared.cfg.setup_timeout_ms);
    let mut close_at = match fault {
        Fault::CloseAfterMs(ms) => at(ms),
        _ => None,
    };
    let mut go_away_at = match fault {
        Fault::GoAwayAfterMs(ms) => at(ms),
        _ => None,
    };
    let binary = shared.cfg.binary_frames;
    let go_away_fault = matches!(fault, Fault::GoAwayAfterMs(_));
    let mut session = Session::new(shared.clone(), fault);
    loop {
        let wake = session.next_wake();
        tokio::select! {
            msg = ws.next() => match msg {
                Some(Ok(Message::Text(text))) => {
                    session.on_client_frame(text.as_bytes(), Instant::now())
                }
                Some(Ok(Message::Binary(bytes))) => session.on_client_frame(&bytes, Instant::now()),
                Some(Ok(Message::Close(_))) | None => {
                    // Sends the Close reply tungstenite queued.
                    let _ = ws.flush().await;
                    break;
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    debug!(error = %e, "fake Gemini session read failed");
                    break;
                }
            },
            _ = sleep_until(deadline(wake, started)), if wake.is_some() => {
                session.on_timer(Instant::now());
            }
            _ = sleep_until(setup_deadline), if !session.has_setup() => {
                session.setup_timed_out(shared.cfg.setup_timeout_ms);
            }
            _ = sleep_until(deadline(go_away_at, started)), if go_away_at.is_some() => {
                go_away_at = None;
                session.go_away();
                close_at = Some(Instant::now() + GO_AWAY_GRACE);
            }
            _ = sleep_until(deadline(close_at, started)), if close_at.is_some() => {
                let code = if go_away_fault {
                    CloseCode::Away
                } else {
                    CloseCode::Error
                };
                let _ = flush(&mut ws, &mut session, binary).await;
                close(&mut ws, code, "fault injection: closing").await;
                break;
            }
            _ = shutdown.changed() => {
                close(&mut ws, CloseCode::Away, "fake server stopping").await;
                break;
            }
        }
        if !flush(&mut ws, &mut session, binary).await {
            break;
        }
        if let Some((code, reason)) = session.take_close() {
            close(&mut ws, CloseCode::from(code), &reason).await;
            break;
        }
    }
}

/// Writes the outbox; false when the socket is gone.
async fn flush(ws: &mut Ws, session: &mut Session, binary: bool) -> bool {
    let out = session.take_out();
    let to_message = |payload: String| {
        if binary {
            Message::binary(payload.into_bytes())
        } else {
            Message::text(payload)
        }
    };
    send_all(ws, out.into_iter().map(to_message).collect()).await
}

/// Sends a Close frame and waits a moment for the client's reply.
async fn close(ws: &mut Ws, code: CloseCode, reason: &str) {
    if !server::close(ws, code, reason).await {
        return;
    }
    let _ = tokio::time::timeout(CLOSE_GRACE, async {
        while let Some(Ok(_)) = ws.next().await {}
    })
    .await;
}
