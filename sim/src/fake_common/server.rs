//! The plumbing around every fake's sessions: the listener that stops when the fake is
//! dropped, the checked WebSocket upgrade with its deadline, the faults planned per
//! connection, and writing a session's outbox onto its socket.

use std::collections::VecDeque;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context};
use futures_util::{Sink, SinkExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::handshake::server::{
    Callback, ErrorResponse, Request, Response,
};
use tokio_tungstenite::tungstenite::http::StatusCode;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::WebSocketStream;
use tracing::{debug, warn};

use super::stats::lock;

/// A server-side WebSocket of a fake.
pub(crate) type Ws = WebSocketStream<TcpStream>;

/// Time allowed for a client to finish the HTTP upgrade.
const UPGRADE_TIMEOUT: Duration = Duration::from_secs(10);

/// Far enough in the future to never fire (a disabled timer still needs a deadline).
const NEVER: Duration = Duration::from_secs(86_400);

/// 127.0.0.1 with a free port: where fakes listen unless told otherwise.
pub(crate) fn local_any_port() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// Replies go out in chunks of `chunk_ms`, `realtime_factor` times faster than real time;
/// both must be positive. `chunk_field` names the setting in the error.
pub(crate) fn check_pacing(
    chunk_field: &str,
    chunk_ms: u32,
    realtime_factor: f32,
) -> anyhow::Result<()> {
    if chunk_ms == 0 || !(realtime_factor.is_finite() && realtime_factor > 0.0) {
        bail!("{chunk_field} and realtime_factor must be positive");
    }
    Ok(())
}

/// Binds `addr`; returns the listener and the address it got (the port, when 0 was asked).
pub(crate) async fn bind(addr: SocketAddr) -> anyhow::Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    let addr = listener.local_addr()?;
    Ok((listener, addr))
}

/// A fake's server task. Dropping it tells the sessions to close (they watch the
/// shutdown channel) and stops the task, so a fake stops when dropped.
pub(crate) struct ServerTask {
    shutdown: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl ServerTask {
    /// `task` serves until dropped; its sessions watch `shutdown`'s receivers.
    pub fn new(shutdown: watch::Sender<bool>, task: JoinHandle<()>) -> Self {
        Self { shutdown, task }
    }

    /// Listens on `addr` and accepts connections, each handled by its own
    /// `handle(tcp, shared, shutdown)` task; returns the address bound too. `name` (the
    /// provider) goes into the logs.
    pub async fn listen<S, H, Fut>(
        addr: SocketAddr,
        name: &'static str,
        shared: Arc<S>,
        handle: H,
    ) -> anyhow::Result<(SocketAddr, Self)>
    where
        S: Send + Sync + 'static,
        H: Fn(TcpStream, Arc<S>, watch::Receiver<bool>) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let (listener, addr) = bind(addr).await?;
        let (shutdown, stop) = watch::channel(false);
        let task = tokio::spawn(async move {
            loop {
                match listener.accept().await {
                    Ok((tcp, peer)) => {
                        debug!(%peer, "fake {name} connection");
                        tokio::spawn(handle(tcp, shared.clone(), stop.clone()));
                    }
                    Err(e) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        warn!(error = %e, "fake {name} accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            }
        });
        Ok((addr, Self { shutdown, task }))
    }
}

impl Drop for ServerTask {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        self.task.abort();
    }
}

/// Why a fake refuses an upgrade, in its provider's style.
pub(crate) trait Refusal {
    /// The HTTP response that says so.
    fn into_response(self) -> ErrorResponse;
}

/// The tungstenite upgrade callback: runs `check` and keeps what it accepted.
struct Checked<'a, T, F> {
    check: F,
    accepted: &'a mut Option<T>,
}

impl<T, R, F> Callback for Checked<'_, T, F>
where
    R: Refusal,
    F: FnOnce(&Request) -> Result<T, R>,
{
    fn on_request(self, request: &Request, response: Response) -> Result<Response, ErrorResponse> {
        *self.accepted = Some((self.check)(request).map_err(R::into_response)?);
        Ok(response)
    }
}

/// Upgrades `tcp` to a WebSocket when `check` accepts the request; `None` when refused,
/// failed or too slow. `name` goes into the logs.
pub(crate) async fn upgrade<T, R, F>(tcp: TcpStream, name: &str, check: F) -> Option<(Ws, T)>
where
    R: Refusal,
    F: FnOnce(&Request) -> Result<T, R> + Unpin,
{
    let _ = tcp.set_nodelay(true);
    let mut accepted = None;
    let callback = Checked {
        check,
        accepted: &mut accepted,
    };
    let upgraded = tokio::time::timeout(
        UPGRADE_TIMEOUT,
        tokio_tungstenite::accept_hdr_async_with_config(
            tcp,
            callback,
            Some(crate::freeswitch::connection::small_read_buffer()),
        ),
    )
    .await;
    let ws = match upgraded {
        Ok(Ok(ws)) => ws,
        Ok(Err(e)) => {
            debug!(error = %e, "fake {name} upgrade refused or failed");
            return None;
        }
        Err(_) => {
            debug!("fake {name} upgrade timed out");
            return None;
        }
    };
    Some((ws, accepted?))
}

/// The HTTP status a refusal fault asks for (503 when it is not a valid status).
pub(crate) fn fault_status(status: u16) -> StatusCode {
    StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE)
}

/// The value of `name` in the request's query string.
pub(crate) fn query_param<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.uri()
        .query()
        .unwrap_or("")
        .split('&')
        .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
}

/// Faults for the next connections, one each, then `after` for the rest.
pub(crate) struct FaultPlan<F>(Mutex<Plan<F>>);

struct Plan<F> {
    next: VecDeque<F>,
    after: F,
}

impl<F: Clone> FaultPlan<F> {
    /// `fault` for every connection.
    pub fn new(fault: F) -> Self {
        Self(Mutex::new(Plan {
            next: VecDeque::new(),
            after: fault,
        }))
    }

    /// The fault for a new connection (counting it against a limited plan).
    pub fn next(&self) -> F {
        let mut plan = lock(&self.0);
        match plan.next.pop_front() {
            Some(fault) => fault,
            None => plan.after.clone(),
        }
    }

    /// `fault` for every connection from now on.
    pub fn set(&self, fault: F) {
        self.set_sequence(Vec::new(), fault);
    }

    /// One fault per connection, in order, then `after`.
    pub fn set_sequence(&self, next: Vec<F>, after: F) {
        *lock(&self.0) = Plan {
            next: next.into(),
            after,
        };
    }
}

/// When an optional timer fires: `at`, or never.
pub(crate) fn deadline(at: Option<Instant>, started: Instant) -> Instant {
    at.unwrap_or(started + NEVER)
}

/// Feeds `messages` and flushes; false when the socket is gone. With nothing to send it
/// does not touch the socket.
pub(crate) async fn send_all<S, M>(ws: &mut S, messages: Vec<M>) -> bool
where
    S: Sink<M> + Unpin,
{
    if messages.is_empty() {
        return true;
    }
    for msg in messages {
        if ws.feed(msg).await.is_err() {
            return false;
        }
    }
    ws.flush().await.is_ok()
}

/// Close reasons are limited to 123 bytes by the WebSocket protocol.
const MAX_REASON: usize = 120;

/// Sends a Close frame, its reason cut to what the protocol allows; false when the socket
/// is gone.
pub(crate) async fn close(ws: &mut Ws, code: CloseCode, reason: &str) -> bool {
    let mut cut = reason.len().min(MAX_REASON);
    while !reason.is_char_boundary(cut) {
        cut -= 1;
    }
    let frame = CloseFrame {
        code,
        reason: reason[..cut].into(),
    };
    ws.close(Some(frame)).await.is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fault_plan_runs_out_into_its_default() {
        let plan = FaultPlan::new(0);
        assert_eq!((plan.next(), plan.next()), (0, 0));
        plan.set_sequence(vec![1, 2], 3);
        assert_eq!(
            [plan.next(), plan.next(), plan.next(), plan.next()],
            [1, 2, 3, 3]
        );
        plan.set(4);
        assert_eq!(plan.next(), 4);
    }

    #[test]
    fn query_params_and_fault_statuses() {
        let req = Request::builder()
            .uri("/p?model=gpt&key=k&keys=x&empty=")
            .body(())
            .unwrap();
        assert_eq!(query_param(&req, "model"), Some("gpt"));
        assert_eq!(query_param(&req, "key"), Some("k"));
        assert_eq!(query_param(&req, "empty"), Some(""));
        assert_eq!(query_param(&req, "other"), None);
        assert_eq!(fault_status(429), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(fault_status(42), StatusCode::SERVICE_UNAVAILABLE);
    }

    #[test]
    fn pacing_must_be_positive() {
        assert!(check_pacing("chunk_ms", 100, 4.0).is_ok());
        for (ms, factor) in [(0, 4.0), (100, 0.0), (100, f32::NAN), (100, -1.0)] {
            let err = check_pacing("chunk_ms", ms, factor).unwrap_err();
            assert_eq!(
                err.to_string(),
                "chunk_ms and realtime_factor must be positive"
            );
        }
    }
}
