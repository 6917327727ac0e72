//! What the CRM receives, built from the call: the note's HTML (pt-BR) and the call
//! activity. Everything the LLM wrote is HTML-escaped: a transcript can contain anything.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::CallForCrm;

/// Longest activity subject; Pipedrive shows it in one line.
const SUBJECT_CHARS: usize = 80;

/// `<`, `>`, `&`, `"` and `'` as entities.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The note: summary, pain points, objections, next actions, tags, the score and a link
/// to the call in the panel.
pub fn note_html(call: &CallForCrm) -> String {
    let mut html = String::from("<p><b>Ligação analisada</b>");
    if let Some(at) = call.started_at {
        html.push_str(&format!(" em {}", at.format("%d/%m/%Y %H:%M UTC")));
    }
    if let Some(secs) = call.duration_sec.filter(|s| *s > 0) {
        html.push_str(&format!(" ({})", spoken_duration(secs)));
    }
    html.push_str("</p>");
    match &call.insights {
        Some(i) => {
            html.push_str(&format!("<p>{}</p>", escape(&i.summary)));
            list(&mut html, "Dores", i.pain_points.iter().map(|p| escape(p)));
            list(
                &mut html,
                "Objeções",
                i.objections.iter().map(|o| escape(o)),
            );
            list(
                &mut html,
                "Próximos passos",
                i.next_actions.iter().map(|a| match a.due_date {
                    Some(d) => format!("{} (até {})", escape(&a.title), d.format("%d/%m/%Y")),
                    None => escape(&a.title),
                }),
            );
            if !i.tags.is_empty() {
                let tags: Vec<String> = i.tags.iter().map(|t| escape(t)).collect();
                html.push_str(&format!("<p><b>Tags:</b> {}</p>", tags.join(", ")));
            }
        }
        None => html.push_str("<p>Sem resumo.</p>"),
    }
    if let Some(s) = &call.scorecard {
        html.push_str(&format!(
            "<p><b>Nota:</b> {} de {} ({})</p>",
            number(s.total_score),
            number(s.max_score),
            escape(&s.template_key)
        ));
    }
    if let Some(url) = &call.panel_url {
        let url = escape(url);
        html.push_str(&format!(
            "<p><a href=\"{url}\">Ver a ligação no painel</a></p>"
        ));
    }
    html
}

/// The body of `POST /api/v2/activities`: a done call, when and how long it was.
pub fn activity(call: &CallForCrm, person_id: u64, owner_id: Option<u64>) -> Value {
    let summary = call
        .insights
        .as_ref()
        .map(|i| i.summary.trim())
        .filter(|s| !s.is_empty());
    let subject = match summary {
        Some(s) => format!("Ligação: {}", shorten(s, SUBJECT_CHARS)),
        None => "Ligação".to_string(),
    };
    let mut body = json!({
        "subject": subject,
        "type": "call",
        "done": true,
        "busy": false,
        "person_id": person_id,
        "participants": [{"person_id": person_id, "primary": true}],
    });
    let Some(fields) = body.as_object_mut() else {
        return body;
    };
    if let Some(at) = call.started_at {
        let (date, time) = due(at);
        fields.insert("due_date".into(), json!(date));
        fields.insert("due_time".into(), json!(time));
    }
    if let Some(secs) = call.duration_sec.filter(|s| *s > 0) {
        fields.insert("duration".into(), json!(hh_mm(secs)));
    }
    if let Some(owner) = owner_id {
        fields.insert("owner_id".into(), json!(owner));
    }
    if let Some(s) = summary {
        fields.insert("note".into(), json!(format!("<p>{}</p>", escape(s))));
    }
    body
}

/// Pipedrive's `due_date` and `due_time` (UTC).
fn due(at: DateTime<Utc>) -> (String, String) {
    (
        at.format("%Y-%m-%d").to_string(),
        at.format("%H:%M").to_string(),
    )
}

/// `HH:MM`, minutes rounded up (a 10 s call lasts 00:01), at most 99:59.
pub fn hh_mm(secs: i32) -> String {
    let minutes = (i64::from(secs.max(0)) + 59) / 60;
    let minutes = minutes.min(99 * 60 + 59);
    format!("{:02}:{:02}", minutes / 60, minutes % 60)
}

fn spoken_duration(secs: i32) -> String {
    let (m, s) = (secs / 60, secs % 60);
    if m == 0 {
        format!("{s} s")
    } else {
        format!("{m} min {s:02} s")
    }
}

fn list(html: &mut String, title: &str, items: impl Iterator<Item = String>) {
    let items: Vec<String> = items.map(|i| format!("<li>{i}</li>")).collect();
    if !items.is_empty() {
        html.push_str(&format!(
            "<p><b>{title}:</b></p><ul>{}</ul>",
            items.concat()
        ));
    }
}

/// `50` rather than `50.0`; one decimal otherwise.
fn number(n: f64) -> String {
    if n.fract() == 0.0 {
        format!("{n:.0}")
    } else {
        format!("{n:.1}")
    }
}

/// At most `max` characters, with an ellipsis when cut.
fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let cut: String = text.chars().take(max.saturating_sub(1)).collect();
    format!("{}…", cut.trim_end())
}
