//! The calls list and a call's detail. The pages render from the view types below, filled
//! from the calls API's query layer (`crate::calls::query`): the panel runs no SQL of its own
//! for calls.

use std::fmt::Write;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

use super::auth::Session;
use super::html::{datetime, duration, esc, status_class, url_part, Tab};
use super::i18n::{Lang, STAGES, STATUSES};
use super::render;
use crate::admin::access::{allows, Action};
use crate::calls::model::{
    CallInsights, NextAction, Scorecard, ScoredItem, SegmentPart, Utterance,
};
use crate::calls::query::{self, CallFilter, RawCallFilter};
use crate::state::AppState;

/// Rows per page.
pub const PER_PAGE: u32 = 25;

/// The list's filters, as the form sends them (empty fields are no filter).
#[derive(Debug, Default, Clone, Deserialize)]
pub struct Filter {
    #[serde(default)]
    pub from: String,
    #[serde(default)]
    pub to: String,
    #[serde(default)]
    pub agent: String,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub tag: String,
    #[serde(default)]
    pub q: String,
    #[serde(default)]
    pub page: Option<u32>,
}

impl Filter {
    /// The filter as a query string (without `page`), for the pager's links.
    pub fn query(&self) -> String {
        [
            ("from", &self.from),
            ("to", &self.to),
            ("agent", &self.agent),
            ("status", &self.status),
            ("tag", &self.tag),
            ("q", &self.q),
        ]
        .iter()
        .filter(|(_, v)| !v.trim().is_empty())
        .map(|(k, v)| format!("{k}={}", url_part(v.trim())))
        .collect::<Vec<_>>()
        .join("&")
    }

    pub fn page(&self) -> u32 {
        self.page.unwrap_or(1).max(1)
    }
}

/// One row of the list.
#[derive(Debug, Clone)]
pub struct Row {
    pub id: Uuid,
    pub started_at: Option<DateTime<Utc>>,
    pub from: String,
    pub to: String,
    pub agent: String,
    pub duration_sec: Option<f64>,
    pub status: String,
    pub tags: Vec<String>,
    /// The scorecard's total.
    pub score: Option<f64>,
}

/// A page of the list.
#[derive(Debug, Clone, Default)]
pub struct Page {
    pub rows: Vec<Row>,
    pub total: u64,
}

/// One push to the CRM.
#[derive(Debug, Clone)]
pub struct CrmRow {
    pub provider: String,
    pub action: String,
    pub status: String,
    pub external_id: Option<String>,
    pub error: Option<String>,
    pub at: Option<DateTime<Utc>>,
}

/// Everything a call's page shows.
#[derive(Debug, Clone)]
pub struct Detail {
    pub id: Uuid,
    pub provider_call_id: String,
    pub source: String,
    pub from: String,
    pub to: String,
    pub agent: String,
    pub started_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    pub duration_sec: Option<f64>,
    pub consent: Option<bool>,
    pub status: String,
    /// `{"download": {"status": "done", "ms": 120, "attempts": 1}, …}`.
    pub stage_status: Value,
    pub error: Option<String>,
    pub has_recording: bool,
    /// The signed-in key's role may listen to recordings.
    pub can_listen: bool,
    pub utterances: Vec<Utterance>,
    pub segments: Vec<SegmentPart>,
    pub insights: Option<CallInsights>,
    pub scorecard: Option<Scorecard>,
    pub crm: Vec<CrmRow>,
}

/// Why a page has no data.
pub enum Unavailable {
    /// A filter that cannot be used (the query layer says which and why).
    BadFilter(String),
    Failed,
}

/// The form's filter as the calls query takes it.
fn call_filter(f: &Filter) -> Result<CallFilter, Unavailable> {
    let text = |v: &String| Some(v.clone()).filter(|v| !v.trim().is_empty());
    let raw = RawCallFilter {
        page: Some(f.page().to_string()),
        per_page: Some(PER_PAGE.to_string()),
        from: text(&f.from),
        to: text(&f.to),
        agent: text(&f.agent),
        status: text(&f.status),
        tag: text(&f.tag),
        q: text(&f.q),
    };
    CallFilter::parse(&raw).map_err(|e| Unavailable::BadFilter(e.message))
}

/// The calls of `tenant` matching `filter`.
async fn load_list(state: &AppState, tenant: Uuid, filter: &Filter) -> Result<Page, Unavailable> {
    let query = call_filter(filter)?;
    let page = query::list_calls(&state.db, tenant, &query)
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, "panel: listing calls");
            Unavailable::Failed
        })?;
    Ok(Page {
        total: u64::try_from(page.total).unwrap_or(0),
        rows: page
            .items
            .into_iter()
            .map(|s| Row {
                id: s.call.id,
                started_at: s.call.started_at.or(Some(s.created_at)),
                from: s.call.from,
                to: s.call.to,
                agent: s.call.agent_id,
                duration_sec: s.call.duration_sec.map(f64::from),
                status: s.call.status,
                tags: s.tags,
                score: s.total_score,
            })
            .collect(),
    })
}

/// A JSON column as a typed list; what does not fit shows as nothing rather than failing
/// the page (the pipeline validated it when it was stored).
fn typed<T: serde::de::DeserializeOwned>(v: Value) -> Vec<T> {
    serde_json::from_value(v).unwrap_or_default()
}

/// One call of `tenant`; `Ok(None)`: no such call.
async fn load_detail(
    state: &AppState,
    tenant: Uuid,
    id: Uuid,
) -> Result<Option<Detail>, Unavailable> {
    let Some(d) = query::call_detail(&state.db, tenant, id)
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, "panel: reading a call");
            Unavailable::Failed
        })?
    else {
        return Ok(None);
    };
    let scorecard = d.scorecard.map(|s| {
        let items: Vec<ScoredItem> = typed(s.items_json);
        let max = s
            .max_score
            .unwrap_or_else(|| items.iter().map(|i| i.weight).sum());
        Scorecard {
            template_id: None,
            template_key: s.template_key,
            items,
            total_score: s.total_score,
            max_score: max,
        }
    });
    Ok(Some(Detail {
        id: d.call.id,
        provider_call_id: d.call.provider_call_id,
        source: d.call.source,
        from: d.call.from,
        to: d.call.to,
        agent: d.call.agent_id,
        started_at: d.call.started_at,
        ended_at: d.call.ended_at,
        duration_sec: d.call.duration_sec.map(f64::from),
        consent: d.call.consent,
        status: d.call.status,
        stage_status: d.stage_status,
        error: d.error,
        has_recording: d
            .recording
            .as_ref()
            .is_some_and(|r| r.storage_key.is_some() && r.deleted_at.is_none()),
        can_listen: false,
        utterances: d
            .transcript
            .map(|t| typed(t.diarization_json))
            .unwrap_or_default(),
        segments: d
            .segments
            .into_iter()
            .map(|s| SegmentPart {
                label: s.label,
                start_sec: s.start_sec,
                end_sec: s.end_sec,
                excerpt: s.excerpt,
            })
            .collect(),
        insights: d.insights.map(|i| CallInsights {
            summary: i.summary,
            pain_points: typed(i.pain_points_json),
            objections: typed(i.objections_json),
            next_actions: typed::<NextAction>(i.next_actions_json),
            tags: i.tags,
        }),
        scorecard,
        crm: d
            .crm_events
            .into_iter()
            .map(|e| CrmRow {
                provider: e.provider,
                action: e.action,
                status: e.status,
                external_id: e.external_id,
                error: e.error,
                at: Some(e.created_at),
            })
            .collect(),
    }))
}

fn unavailable(lang: Lang, why: Unavailable) -> String {
    let text = match (why, lang) {
        (Unavailable::BadFilter(e), _) => e,
        (Unavailable::Failed, Lang::Pt) => {
            "Não foi possível ler as chamadas agora; tente de novo em instantes.".to_string()
        }
        (Unavailable::Failed, Lang::En) => {
            "The calls could not be read just now; try again in a moment.".to_string()
        }
    };
    format!("<p class=\"alert\" role=\"alert\">{}</p>", esc(&text))
}

fn filters_form(lang: Lang, f: &Filter) -> String {
    let t = lang.text();
    let mut options = format!("<option value=\"\">{}</option>", esc(t.any));
    for s in STATUSES {
        let selected = if f.status == s { " selected" } else { "" };
        let _ = write!(
            options,
            "<option value=\"{s}\"{selected}>{}</option>",
            esc(t.status(s))
        );
    }
    let input = |name: &str, label: &str, kind: &str, value: &str, extra: &str| {
        format!(
            "<div><label for=\"f-{name}\">{label}</label><input id=\"f-{name}\" name=\"{name}\" type=\"{kind}\" value=\"{value}\"{extra}></div>",
            label = esc(label),
            value = esc(value),
        )
    };
    format!(
        "<section class=\"card\"><form class=\"filters\" method=\"get\" action=\"/panel/calls\">{from}{to}{agent}\
<div><label for=\"f-status\">{status}</label><select id=\"f-status\" name=\"status\">{options}</select></div>\
{tag}{q}<div class=\"actions\"><button type=\"submit\" class=\"primary\">{filter}</button>\
<a class=\"button ghost\" href=\"/panel/calls\">{clear}</a></div></form></section>",
        from = input("from", t.date_from, "date", &f.from, ""),
        to = input("to", t.date_to, "date", &f.to, ""),
        agent = input("agent", t.agent, "text", &f.agent, ""),
        status = esc(t.status),
        tag = input("tag", t.tag, "text", &f.tag, ""),
        q = input(
            "q",
            t.search,
            "search",
            &f.q,
            &format!(" placeholder=\"{}\"", esc(t.search_placeholder))
        ),
        filter = esc(t.filter),
        clear = esc(t.clear),
    )
}

fn table(lang: Lang, page: &Page) -> String {
    let t = lang.text();
    let mut out = format!(
        "<div class=\"table-wrap\"><table class=\"grid calls\"><thead><tr><th>{}</th><th>{}</th><th>{}</th>\
<th>{}</th><th class=\"num\">{}</th><th>{}</th><th>{}</th><th class=\"num\">{}</th></tr></thead><tbody>",
        esc(t.date),
        esc(t.from),
        esc(t.to),
        esc(t.agent),
        esc(t.duration),
        esc(t.status),
        esc(t.tags),
        esc(t.score),
    );
    if page.rows.is_empty() {
        let _ = write!(
            out,
            "<tr><td colspan=\"8\" class=\"empty\">{}</td></tr>",
            esc(t.no_calls)
        );
    }
    for r in &page.rows {
        let when = r
            .started_at
            .map(|at| datetime(&at, lang))
            .unwrap_or_else(|| "–".into());
        let score = r.score.map(render::number).unwrap_or_else(|| "–".into());
        let _ = write!(
            out,
            "<tr data-id=\"{id}\"><td class=\"mono\"><a href=\"/panel/calls/{id}\">{when}</a></td><td class=\"mono\">{from}</td>\
<td class=\"mono\">{to}</td><td>{agent}</td><td class=\"num\">{dur}</td><td><span class=\"{class}\">{status}</span></td>\
<td>{tags}</td><td class=\"num score\">{score}</td></tr>",
            id = r.id,
            when = esc(&when),
            from = esc(&r.from),
            to = esc(&r.to),
            agent = esc(&r.agent),
            dur = esc(&r.duration_sec.map(duration).unwrap_or_else(|| "–".into())),
            class = status_class(&r.status),
            status = esc(t.status(&r.status)),
            tags = render::tags(&r.tags),
            score = esc(&score),
        );
    }
    out.push_str("</tbody></table></div>");
    out
}

fn pager(lang: Lang, f: &Filter, total: u64) -> String {
    let t = lang.text();
    let page = f.page();
    let pages = total.div_ceil(u64::from(PER_PAGE)).max(1);
    let base = f.query();
    let link = |n: u64, label: &str, enabled: bool| {
        let q = if base.is_empty() {
            format!("page={n}")
        } else {
            format!("{base}&page={n}")
        };
        let class = if enabled {
            "button ghost"
        } else {
            "button ghost disabled"
        };
        format!(
            "<a class=\"{class}\" href=\"/panel/calls?{}\">{}</a>",
            esc(&q),
            esc(label)
        )
    };
    format!(
        "<div class=\"pager\"><span>{} {page} / {pages} · {total} {}</span><span class=\"links\">{}{}</span></div>",
        esc(t.page),
        esc(t.of_total),
        link(u64::from(page).saturating_sub(1).max(1), t.previous, page > 1),
        link(u64::from(page) + 1, t.next, u64::from(page) < pages),
    )
}

/// The list page's body: filters, then the table and pager (or why there is no data).
pub fn list_body(lang: Lang, filter: &Filter, data: Result<&Page, String>) -> String {
    let t = lang.text();
    let data = match data {
        Ok(page) => format!(
            "<section class=\"card\">{}{}</section>",
            table(lang, page),
            pager(lang, filter, page.total)
        ),
        Err(why) => why,
    };
    format!(
        "<div class=\"page-head\"><h1>{}</h1></div>{}{data}",
        esc(t.calls),
        filters_form(lang, filter)
    )
}

/// `GET /panel/calls`.
pub async fn list(
    State(state): State<Arc<AppState>>,
    session: Session,
    Query(filter): Query<Filter>,
) -> Response {
    let lang = session.lang;
    let body = match load_list(&state, session.key.tenant_id, &filter).await {
        Ok(page) => list_body(lang, &filter, Ok(&page)),
        Err(why) => list_body(lang, &filter, Err(unavailable(lang, why))),
    };
    session.render(StatusCode::OK, lang.text().calls, Tab::Calls, &body)
}

fn facts(lang: Lang, d: &Detail) -> String {
    let t = lang.text();
    let when =
        |at: &Option<DateTime<Utc>>| at.map(|a| datetime(&a, lang)).unwrap_or_else(|| "–".into());
    let consent = match d.consent {
        Some(true) => t.yes,
        Some(false) => t.no,
        None => t.unknown,
    };
    let mut out = format!(
        "<h2>{}</h2><dl class=\"facts\"><dt>{}</dt><dd class=\"mono\">{}</dd><dt>{}</dt><dd class=\"mono\">{}</dd>\
<dt>{}</dt><dd>{}</dd><dt>{}</dt><dd>{}</dd><dt>{}</dt><dd>{}</dd><dt>{}</dt><dd class=\"mono\">{}</dd>\
<dt>{}</dt><dd>{}</dd><dt>{}</dt><dd>{}</dd></dl>",
        esc(t.facts),
        esc(t.from),
        esc(&d.from),
        esc(t.to),
        esc(&d.to),
        esc(t.agent),
        esc(&d.agent),
        esc(t.started),
        esc(&when(&d.started_at)),
        esc(t.ended),
        esc(&when(&d.ended_at)),
        esc(t.duration),
        esc(&d.duration_sec.map(duration).unwrap_or_else(|| "–".into())),
        esc(t.consent),
        esc(consent),
        esc(t.source),
        esc(&d.source),
    );
    if let Some(stages) = d.stage_status.as_object().filter(|s| !s.is_empty()) {
        let _ = write!(out, "<h3>{}</h3><div class=\"stages\">", esc(t.stages));
        // Pipeline order first, then whatever else was recorded.
        let mut keys: Vec<&String> = stages.keys().collect();
        let rank = |k: &str| {
            STAGES
                .iter()
                .position(|(s, _, _)| *s == k)
                .unwrap_or(usize::MAX)
        };
        keys.sort_by_key(|k| (rank(k), k.as_str()));
        for stage in keys {
            let v = &stages[stage.as_str()];
            let status = v.get("status").and_then(Value::as_str).unwrap_or("");
            let class = match status {
                "done" => "badge ok",
                "failed" => "badge bad",
                "skipped" => "badge muted",
                _ => "badge busy",
            };
            let ms = v
                .get("ms")
                .and_then(Value::as_u64)
                .map(|ms| format!(" · {:.1}s", ms as f64 / 1000.0))
                .unwrap_or_default();
            let _ = write!(
                out,
                "<span class=\"{class}\" title=\"{status}\">{}{}</span>",
                esc(&lang.stage(stage)),
                esc(&ms)
            );
        }
        out.push_str("</div>");
    }
    if let Some(error) = &d.error {
        let _ = write!(
            out,
            "<p class=\"error-text\">{}: {}</p>",
            esc(t.error),
            esc(error)
        );
    }
    out
}

fn crm(lang: Lang, rows: &[CrmRow]) -> String {
    let t = lang.text();
    if rows.is_empty() {
        return format!("<p class=\"hint\">{}</p>", esc(t.no_crm));
    }
    let mut out = format!(
        "<table class=\"grid\"><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>ID</th></tr></thead><tbody>",
        esc(t.when),
        esc(t.action),
        esc(t.status)
    );
    for r in rows {
        let class = match r.status.as_str() {
            "ok" => "badge ok",
            "failed" => "badge bad",
            _ => "badge muted",
        };
        let error = r
            .error
            .as_deref()
            .map(|e| format!("<div class=\"error-text\">{}</div>", esc(e)))
            .unwrap_or_default();
        let _ = write!(
            out,
            "<tr><td class=\"mono\">{}</td><td>{} · {}{error}</td><td><span class=\"{class}\">{}</span></td><td class=\"mono\">{}</td></tr>",
            esc(&r.at.map(|a| datetime(&a, lang)).unwrap_or_else(|| "–".into())),
            esc(&r.provider),
            esc(&r.action),
            esc(&r.status),
            esc(r.external_id.as_deref().unwrap_or("–")),
        );
    }
    out.push_str("</tbody></table>");
    out
}

/// A call's whole page body.
pub fn detail_body(lang: Lang, d: &Detail) -> String {
    let t = lang.text();
    let player = if d.has_recording && !d.can_listen {
        format!("<p class=\"hint\">{}</p>", esc(t.no_listen))
    } else if d.has_recording {
        format!(
            "<audio controls preload=\"metadata\" data-transcript=\"transcript\" src=\"/calls/{}/recording\"></audio>",
            d.id
        )
    } else {
        format!("<p class=\"hint\">{}</p>", esc(t.no_recording))
    };
    format!(
        "<p><a href=\"/panel/calls\">← {back}</a></p>\
<div class=\"page-head\"><h1>{call} {pid}</h1><span class=\"{class}\">{status}</span></div>\
<div class=\"detail\"><div>\
<section class=\"card\"><h2>{recording}</h2>{player}</section>\
<section class=\"card\"><h2>{transcript}</h2>{utterances}{segments}</section></div>\
<div><section class=\"card\">{facts}</section>\
<section class=\"card\"><h2>{insights}</h2>{insights_body}</section>\
<section class=\"card\"><h2>{scorecard}</h2>{scorecard_body}</section>\
<section class=\"card\"><h2>{crm}</h2>{crm_body}</section></div></div>",
        back = esc(t.back_to_calls),
        call = esc(t.call),
        pid = esc(&d.provider_call_id),
        class = status_class(&d.status),
        status = esc(t.status(&d.status)),
        recording = esc(t.recording),
        transcript = esc(t.transcript),
        utterances = render::transcript(lang, &d.utterances),
        segments = render::segments(lang, &d.segments),
        facts = facts(lang, d),
        insights = esc(t.insights),
        insights_body = render::insights(lang, d.insights.as_ref()),
        scorecard = esc(t.scorecard),
        scorecard_body = render::scorecard(lang, d.scorecard.as_ref()),
        crm = esc(t.crm),
        crm_body = crm(lang, &d.crm),
    )
}

/// `GET /panel/calls/{id}`.
pub async fn detail(
    State(state): State<Arc<AppState>>,
    session: Session,
    Path(id): Path<String>,
) -> Response {
    let lang = session.lang;
    let t = lang.text();
    let not_found = |session: &Session| {
        let body = format!(
            "<p><a href=\"/panel/calls\">← {}</a></p><p class=\"alert\">{}</p>",
            esc(t.back_to_calls),
            esc(t.not_found)
        );
        session.render(StatusCode::NOT_FOUND, t.call, Tab::Calls, &body)
    };
    let Ok(id) = id.parse::<Uuid>() else {
        return not_found(&session);
    };
    match load_detail(&state, session.key.tenant_id, id).await {
        Ok(Some(mut d)) => {
            d.can_listen = allows(session.key.role, Action::ListenRecordings);
            let title = format!("{} {}", t.call, d.provider_call_id);
            session.render(StatusCode::OK, &title, Tab::Calls, &detail_body(lang, &d))
        }
        Ok(None) => not_found(&session),
        Err(why) => session.render(
            StatusCode::SERVICE_UNAVAILABLE,
            t.call,
            Tab::Calls,
            &unavailable(lang, why),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pager_keeps_the_filters() {
        let f = Filter {
            status: "failed".into(),
            q: "preço alto".into(),
            page: Some(2),
            ..Filter::default()
        };
        assert_eq!(f.query(), "status=failed&q=pre%C3%A7o%20alto");
        let html = pager(Lang::Pt, &f, 60);
        assert!(html.contains("status=failed&amp;q=pre%C3%A7o%20alto&amp;page=3"));
        assert!(html.contains("Página 2 / 3"));
    }

    #[test]
    fn rows_escape_what_callers_sent() {
        let page = Page {
            rows: vec![Row {
                id: Uuid::nil(),
                started_at: None,
                from: "<script>".into(),
                to: "1000".into(),
                agent: "a\"b".into(),
                duration_sec: Some(61.0),
                status: "processed".into(),
                tags: vec!["<t>".into()],
                score: Some(7.0),
            }],
            total: 1,
        };
        let html = table(Lang::Pt, &page);
        assert!(!html.contains("<script>") && html.contains("&lt;script&gt;"));
        assert!(html.contains("a&quot;b") && html.contains("&lt;t&gt;"));
        assert!(html.contains("Processada") && html.contains(">7<") && html.contains("1:01"));
    }
}
