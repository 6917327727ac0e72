//! The `/stream/{domain}/{call_uuid}` WebSocket endpoint FreeSWITCH connects to.
//!
//! The handler checks everything it can before upgrading (dialect, URL parameters), then,
//! once upgraded, completes the call's identity from the metadata frame if the URL lacked
//! it, resolves the tenant, and hands the socket to the call: a new one, or the live call
//! with the same UUID when the module reconnected.

mod dialect;
pub mod inbound;
mod params;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use tracing::{info, warn};

pub use dialect::{detect, Dialect, DialectError, StreamBuild, AUDIO_FORK_SUBPROTOCOL};
pub use params::{Mix, ParamError, StreamParams, SUPPORTED_RATES};

use crate::call::{self, CallPlan};
use crate::state::AppState;
use crate::tenancy::Resolution;

/// WebSocket close codes we use.
pub mod close_code {
    pub const NORMAL: u16 = 1000;
    pub const GOING_AWAY: u16 = 1001;
    pub const INVALID_DATA: u16 = 1007;
    pub const POLICY: u16 = 1008;
    pub const TOO_BIG: u16 = 1009;
    pub const INTERNAL: u16 = 1011;
}

/// Read buffer for each stream (a 20 ms frame is 320–3840 B); larger messages still
/// arrive whole, over several reads.
const READ_BUFFER: usize = 4 * 1024;

/// An upgraded stream and what its handshake said.
pub struct Connection {
    pub socket: WebSocket,
    pub dialect: Dialect,
    pub params: StreamParams,
    /// Frames read while waiting for the metadata, to be processed first.
    pub early: Vec<Message>,
}

pub async fn handler(
    State(state): State<Arc<AppState>>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let refuse = |status: StatusCode, why: String| {
        state.metrics.calls_refused.inc();
        warn!(path = %uri.path(), reason = %why, "stream refused");
        (status, why).into_response()
    };
    if state.is_shutting_down() {
        return refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "bridge is shutting down".into(),
        );
    }
    let query = uri.query();
    let forced = query.and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("dialect=")));
    let dialect = match detect(&headers, forced) {
        Ok(d) => d,
        Err(e) => return refuse(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let segments: Vec<&str> = uri
        .path()
        .trim_start_matches('/')
        .split('/')
        .skip(1) // "stream"
        .filter(|s| !s.is_empty())
        .collect();
    if segments.len() > 2 {
        return refuse(
            StatusCode::BAD_REQUEST,
            "expected /stream/{domain}/{call_uuid}".into(),
        );
    }
    let params = match StreamParams::from_url(&segments, query) {
        Ok(p) => p,
        Err(e) => return refuse(StatusCode::BAD_REQUEST, e.to_string()),
    };
    // Room for our own size check, which closes cleanly with a reason.
    let limit = state
        .config
        .server
        .max_frame_bytes
        .saturating_mul(2)
        .max(64 * 1024);
    // tungstenite zero-fills its whole read buffer on every read: keep it near the size of
    // a frame (128 KiB by default cost more CPU than everything else on a call).
    let mut ws = ws
        .max_message_size(limit)
        .max_frame_size(limit)
        .read_buffer_size(READ_BUFFER);
    if dialect == Dialect::AudioFork {
        ws = ws.protocols([AUDIO_FORK_SUBPROTOCOL]);
    }
    ws.on_upgrade(move |socket| accept(state, socket, dialect, params))
}

/// After the upgrade: identify the call, then hand the socket to it.
async fn accept(state: Arc<AppState>, socket: WebSocket, dialect: Dialect, params: StreamParams) {
    let mut conn = Box::new(Connection {
        socket,
        dialect,
        params,
        early: Vec::new(),
    });
    if conn.params.tenant.is_none() || conn.params.call_id.is_none() {
        let wait = Duration::from_millis(state.config.server.metadata_timeout_ms);
        if let Err(why) = read_metadata(&mut conn, wait).await {
            state.metrics.calls_refused.inc();
            warn!(dialect = dialect.name(), reason = %why, "stream refused");
            return close(conn.socket, close_code::POLICY, &why).await;
        }
    }
    let (Some(tenant), Some(call_id)) = (conn.params.tenant.clone(), conn.params.call_id.clone())
    else {
        return close(conn.socket, close_code::POLICY, "no tenant or call uuid").await;
    };
    let conn = match state.calls.reattach(&call_id, conn) {
        Ok(()) => {
            state.metrics.stream_reconnects.inc();
            info!(call = %call_id, dialect = dialect.name(), "stream reconnected to live call");
            return;
        }
        Err(conn) => conn,
    };
    let resolution = match &state.tenancy {
        Some(tenancy) => tenancy.resolve(&state.config, &tenant, &conn.params).await,
        None => None,
    };
    let (tenant, settings) = match resolution {
        Some(Resolution::Call { domain, settings }) => (domain, settings),
        Some(Resolution::Refuse(why)) => {
            state.metrics.calls_refused.inc();
            warn!(call = %call_id, tenant = %tenant, reason = %why, "stream refused");
            return close(conn.socket, close_code::POLICY, &why).await;
        }
        Some(Resolution::Apology {
            domain,
            settings,
            reason,
        }) => {
            state.metrics.calls_refused.inc();
            warn!(call = %call_id, tenant = %domain, reason = %reason, "call refused: apology prompt, then hang-up");
            return call::start(
                state,
                conn,
                domain,
                call_id,
                settings,
                CallPlan::Apology(reason),
                None,
            );
        }
        // Not a database tenant: the TOML tenants and allow_unknown_tenants decide.
        None => match state.config.tenant_settings(&tenant) {
            Some(settings) => (tenant, settings),
            None => {
                state.metrics.calls_refused.inc();
                warn!(call = %call_id, tenant = %tenant, "stream refused: unknown tenant");
                return close(conn.socket, close_code::POLICY, "unknown tenant").await;
            }
        },
    };
    let slot_key = match &settings.db {
        Some(db) => format!("db:{}", db.tenant_id),
        None => format!("toml:{tenant}"),
    };
    match state.slots.take(&slot_key, settings.max_calls) {
        Some(slot) => call::start(
            state,
            conn,
            tenant,
            call_id,
            settings,
            CallPlan::Agent,
            Some(slot),
        ),
        None => {
            state.metrics.calls_over_cap.inc();
            warn!(call = %call_id, tenant = %tenant, cap = ?settings.max_calls, "call over the tenant's cap");
            call::start(state, conn, tenant, call_id, settings, CallPlan::Busy, None)
        }
    }
}

/// Waits for the metadata text frame that names the tenant and call.
async fn read_metadata(conn: &mut Connection, wait: Duration) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let msg = match tokio::time::timeout_at(deadline, conn.socket.next()).await {
            Err(_) => return Err("no metadata naming the tenant and call uuid".into()),
            Ok(None) | Ok(Some(Err(_))) => return Err("stream closed before its metadata".into()),
            Ok(Some(Ok(msg))) => msg,
        };
        match &msg {
            Message::Text(text) => {
                match inbound::classify_text(text.as_str()) {
                    Ok(inbound::Text::Json(map)) => conn
                        .params
                        .apply_metadata(&map)
                        .map_err(|e| format!("bad metadata: {e}"))?,
                    Ok(inbound::Text::Plain(_)) => {
                        return Err("metadata is not a JSON object".into())
                    }
                    Err(e) => return Err(e.to_string()),
                }
                conn.early.push(msg);
                if conn.params.tenant.is_some() && conn.params.call_id.is_some() {
                    return Ok(());
                }
                return Err(
                    "metadata does not name the tenant (domain_name) and call (uuid)".into(),
                );
            }
            Message::Binary(_) if conn.early.len() < 250 => conn.early.push(msg),
            Message::Binary(_) => return Err("too much audio before the metadata".into()),
            Message::Close(_) => return Err("stream closed before its metadata".into()),
            Message::Ping(_) | Message::Pong(_) => {}
        }
    }
}

/// Closes a socket with a code and a short reason (trimmed to the 123-byte limit).
pub async fn close(mut socket: WebSocket, code: u16, reason: &str) {
    let reason: String = reason.chars().take(100).collect();
    let _ = socket
        .send(Message::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        })))
        .await;
    // Give the peer a moment to answer the close; never wait long.
    let _ = tokio::time::timeout(Duration::from_millis(500), async {
        while socket.next().await.is_some() {}
    })
    .await;
}
