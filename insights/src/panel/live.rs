//! Calls in progress on the bridge: `call.started` events of the last [`WINDOW_HOURS`] hours
//! without a `call.ended` for the same call id. `GET /panel/live/events` polls the event log
//! once a second and pushes the table's rows (server-rendered, escaped) when they change.

use std::collections::HashMap;
use std::convert::Infallible;
use std::fmt::Write;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::Response;
use chrono::{DateTime, Utc};
use futures_util::stream::{self, Stream};
use serde_json::Value;
use uuid::Uuid;
use voice_core::db::DbError;

use super::auth::Session;
use super::html::{datetime, duration, esc, Tab};
use super::i18n::Lang;
use crate::state::AppState;

/// A call older than this with no end is taken as lost, not live.
pub const WINDOW_HOURS: i64 = 4;
const POLL: Duration = Duration::from_secs(1);

/// One `call.started` or `call.ended` from the event log.
#[derive(Debug, Clone, PartialEq)]
pub struct CallEvent {
    pub call_id: String,
    pub kind: String,
    pub at: DateTime<Utc>,
    pub agent: Option<String>,
    pub data: Value,
}

/// A call in progress.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveCall {
    pub call_id: String,
    pub started_at: DateTime<Utc>,
    pub agent: Option<String>,
    pub caller: String,
    pub callee: String,
}

/// The calls started after `now - window` with no end, newest first.
pub fn live_calls(
    events: &[CallEvent],
    now: DateTime<Utc>,
    window: chrono::Duration,
) -> Vec<LiveCall> {
    let since = now - window;
    let mut calls: HashMap<&str, Option<LiveCall>> = HashMap::new();
    let mut ordered: Vec<&CallEvent> = events.iter().collect();
    ordered.sort_by_key(|e| e.at);
    for e in ordered {
        match e.kind.as_str() {
            "call.started" if e.at >= since => {
                // An end seen first (clock skew, out-of-order batches) keeps the call ended.
                calls.entry(&e.call_id).or_insert_with(|| {
                    let field = |name: &str| {
                        e.data
                            .get(name)
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_string()
                    };
                    Some(LiveCall {
                        call_id: e.call_id.clone(),
                        started_at: e.at,
                        agent: e.agent.clone(),
                        caller: field("caller"),
                        callee: field("callee"),
                    })
                });
            }
            "call.ended" => {
                calls.insert(&e.call_id, None);
            }
            _ => {}
        }
    }
    let mut live: Vec<LiveCall> = calls.into_values().flatten().collect();
    live.sort_by(|a, b| {
        b.started_at
            .cmp(&a.started_at)
            .then(a.call_id.cmp(&b.call_id))
    });
    live
}

/// The start and end events of `tenant`'s last [`WINDOW_HOURS`] hours.
async fn recent_events(state: &AppState, tenant: Uuid) -> Result<Vec<CallEvent>, DbError> {
    state
        .db
        .with_tenant(tenant, |tx| {
            Box::pin(async move {
                let rows = tx
                    .query(
                        "SELECT e.call_id, e.kind, e.at, a.name, e.data FROM events e \
                         LEFT JOIN agents a ON a.id = e.agent_id \
                         WHERE e.call_id IS NOT NULL \
                           AND e.kind IN ('call.started', 'call.ended') \
                           AND e.at > now() - make_interval(hours => $1) \
                         ORDER BY e.at",
                        &[&(WINDOW_HOURS as i32)],
                    )
                    .await?;
                Ok::<_, DbError>(
                    rows.iter()
                        .map(|r| CallEvent {
                            call_id: r.get(0),
                            kind: r.get(1),
                            at: r.get(2),
                            agent: r.get(3),
                            data: r.get(4),
                        })
                        .collect(),
                )
            })
        })
        .await
}

/// The calls in progress as the panel may show them: numbers as the calls list stores them
/// (keyed hashes under `HASH_PHONE_NUMBERS`; the bridge's events carry them in clear).
fn shown(state: &AppState, events: &[CallEvent], now: DateTime<Utc>) -> Vec<LiveCall> {
    let privacy = &state.config.privacy;
    let mut calls = live_calls(events, now, chrono::Duration::hours(WINDOW_HOURS));
    for c in &mut calls {
        c.caller = privacy.store_number(&c.caller);
        c.callee = privacy.store_number(&c.callee);
    }
    calls
}

/// The table rows of `calls` (escaped), or one row saying there are none.
pub fn rows(calls: &[LiveCall], lang: Lang, now: DateTime<Utc>) -> String {
    let t = lang.text();
    if calls.is_empty() {
        return format!(
            "<tr><td colspan=\"5\" class=\"empty\">{}</td></tr>",
            esc(t.no_live)
        );
    }
    let mut out = String::new();
    for c in calls {
        let seconds = (now - c.started_at).num_seconds().max(0) as f64;
        let _ = write!(
            out,
            "<tr data-call=\"{id}\"><td>{started}</td><td>{from}</td><td>{to}</td><td>{agent}</td>\
<td><span class=\"badge busy pulse\">{elapsed}</span></td></tr>",
            id = esc(&c.call_id),
            started = esc(&datetime(&c.started_at, lang)),
            from = esc(&c.caller),
            to = esc(&c.callee),
            agent = esc(c.agent.as_deref().unwrap_or("–")),
            elapsed = esc(&duration(seconds)),
        );
    }
    out
}

/// `GET /panel/live`.
pub async fn page(State(state): State<Arc<AppState>>, session: Session) -> Response {
    let t = session.lang.text();
    let now = Utc::now();
    let initial = match recent_events(&state, session.key.tenant_id).await {
        Ok(events) => rows(&shown(&state, &events, now), session.lang, now),
        Err(e) => {
            tracing::warn!(error = %e, "panel: reading live calls");
            String::new()
        }
    };
    let body = format!(
        "<div class=\"page-head\"><h1>{live}</h1><span id=\"live-status\" class=\"badge muted\" \
data-ok=\"{ok}\" data-retry=\"{retry}\">…</span></div><p class=\"sub\">{intro}</p>\
<section class=\"card\"><div class=\"table-wrap\"><table class=\"grid\" id=\"live\" data-source=\"/panel/live/events?lang={code}\">\
<thead><tr><th>{started}</th><th>{from}</th><th>{to}</th><th>{agent}</th><th>{duration}</th></tr></thead>\
<tbody>{initial}</tbody></table></div></section>",
        live = esc(t.live),
        ok = esc(t.live_connected),
        retry = esc(t.live_reconnecting),
        intro = esc(t.live_intro),
        code = session.lang.code(),
        started = esc(t.started),
        from = esc(t.from),
        to = esc(t.to),
        agent = esc(t.agent),
        duration = esc(t.duration),
    );
    session.render(StatusCode::OK, t.live, Tab::Live, &body)
}

/// `GET /panel/live/events`: `event: calls` with the table rows whenever they change
/// (and once at the start); the elapsed times are refreshed by the same push.
pub async fn events(
    State(state): State<Arc<AppState>>,
    session: Session,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let tenant = session.key.tenant_id;
    let lang = session.lang;
    let stream = stream::unfold(
        (state, String::new(), true),
        move |(state, last, first)| async move {
            loop {
                if !first {
                    tokio::time::sleep(POLL).await;
                }
                let now = Utc::now();
                let html = match recent_events(&state, tenant).await {
                    Ok(events) => rows(&shown(&state, &events, now), lang, now),
                    Err(e) => {
                        tracing::warn!(error = %e, "panel: reading live calls");
                        if first {
                            tokio::time::sleep(POLL).await;
                        }
                        continue;
                    }
                };
                if html != last || first {
                    let event = Event::default().event("calls").data(html.clone());
                    return Some((Ok(event), (state, html, false)));
                }
                tokio::time::sleep(POLL).await;
            }
        },
    );
    Sse::new(stream).keep_alive(KeepAlive::default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn at(minutes_ago: i64, now: DateTime<Utc>) -> DateTime<Utc> {
        now - chrono::Duration::minutes(minutes_ago)
    }

    fn event(id: &str, kind: &str, at: DateTime<Utc>) -> CallEvent {
        CallEvent {
            call_id: id.to_string(),
            kind: kind.to_string(),
            at,
            agent: Some("Vendas".to_string()),
            data: json!({"caller": "+5511999990000", "callee": "1000"}),
        }
    }

    #[test]
    fn started_without_an_end_is_live() {
        let now = Utc::now();
        let events = vec![
            event("a", "call.started", at(10, now)),
            event("b", "call.started", at(5, now)),
            event("a", "call.ended", at(2, now)),
            event("c", "call.started", at(1, now)),
            event("c", "turn.completed", at(0, now)),
        ];
        let live = live_calls(&events, now, chrono::Duration::hours(4));
        let ids: Vec<&str> = live.iter().map(|c| c.call_id.as_str()).collect();
        assert_eq!(ids, ["c", "b"]);
        assert_eq!(live[0].caller, "+5511999990000");
        assert_eq!(live[0].agent.as_deref(), Some("Vendas"));
    }

    #[test]
    fn old_or_ended_first_calls_are_not_live() {
        let now = Utc::now();
        let events = vec![
            event("old", "call.started", at(5 * 60, now)),
            // Written out of order: the end is older than the start.
            event("skew", "call.ended", at(3, now)),
            event("skew", "call.started", at(2, now)),
        ];
        assert!(live_calls(&events, now, chrono::Duration::hours(4)).is_empty());
    }

    #[test]
    fn rows_escape_what_the_bridge_wrote() {
        let now = Utc::now();
        let mut e = event("<x>", "call.started", at(1, now));
        e.data = json!({"caller": "<img src=x>", "callee": "1000"});
        let live = live_calls(&[e], now, chrono::Duration::hours(4));
        let html = rows(&live, Lang::Pt, now);
        assert!(html.contains("&lt;img src=x&gt;") && !html.contains("<img"));
        assert!(rows(&[], Lang::Pt, now).contains("Nenhuma chamada em andamento."));
    }
}
