//! Strict checks of the model's analysis answer; each refusal says why, in words the model
//! can act on when it is asked again.

use chrono::NaiveDate;
use serde::Deserialize;
use serde_json::Value;

use crate::calls::model::{CallInsights, NextAction, SegmentPart};

/// The segment labels the prompt allows.
pub const SEGMENT_LABELS: [&str; 7] = [
    "abertura",
    "descoberta",
    "apresentacao",
    "objecoes",
    "negociacao",
    "fechamento",
    "outro",
];
const MAX_SUMMARY_CHARS: usize = 2000;
const MAX_LIST_ITEMS: usize = 20;
const MAX_TAG_CHARS: usize = 40;

/// The answer as one JSON object: bare, or inside one ```json fence; nothing else.
pub fn json_object(answer: &str) -> Result<serde_json::Map<String, Value>, String> {
    let text = answer.trim();
    let text = match text.strip_prefix("```") {
        Some(rest) => {
            let rest = rest.strip_prefix("json").unwrap_or(rest);
            rest.strip_suffix("```")
                .ok_or("a ```json fence was opened but not closed")?
                .trim()
        }
        None => text,
    };
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err("the answer must be one JSON object".into()),
        Err(e) => Err(format!("the answer is not valid JSON: {e}")),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawAnalysis {
    segments: Vec<RawSegment>,
    insights: RawInsights,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawSegment {
    label: String,
    start_sec: f64,
    end_sec: f64,
    #[serde(default)]
    excerpt: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawInsights {
    summary: String,
    pain_points: Vec<String>,
    objections: Vec<String>,
    next_actions: Vec<RawAction>,
    tags: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawAction {
    title: String,
    due_date: Option<String>,
}

/// Parses and checks an analysis answer for a call of `duration` seconds.
pub fn analysis(answer: &str, duration: f64) -> Result<(Vec<SegmentPart>, CallInsights), String> {
    let object = json_object(answer)?;
    let raw: RawAnalysis = serde_json::from_value(Value::Object(object))
        .map_err(|e| format!("the JSON does not match the schema: {e}"))?;
    Ok((segments(raw.segments, duration)?, insights(raw.insights)?))
}

/// Known labels; times clamped to the call, then in order and not overlapping.
fn segments(raw: Vec<RawSegment>, duration: f64) -> Result<Vec<SegmentPart>, String> {
    let mut out: Vec<SegmentPart> = Vec::with_capacity(raw.len());
    for (i, s) in raw.into_iter().enumerate() {
        let label = s.label.trim().to_lowercase();
        if !SEGMENT_LABELS.contains(&label.as_str()) {
            return Err(format!(
                "segments[{i}].label {:?} is not one of {}",
                s.label,
                SEGMENT_LABELS.join(", ")
            ));
        }
        if !s.start_sec.is_finite() || !s.end_sec.is_finite() {
            return Err(format!("segments[{i}] has a time that is not a number"));
        }
        let start = s.start_sec.clamp(0.0, duration);
        let end = s.end_sec.clamp(0.0, duration);
        if start > end {
            return Err(format!(
                "segments[{i}] starts ({start}) after it ends ({end}); the call lasts {duration:.1} s"
            ));
        }
        if let Some(prev) = out.last() {
            if start < prev.end_sec {
                return Err(format!(
                    "segments[{i}] starts at {start} before segments[{}] ends at {}: segments must be in order and must not overlap",
                    i - 1,
                    prev.end_sec
                ));
            }
        }
        out.push(SegmentPart {
            label,
            start_sec: start,
            end_sec: end,
            excerpt: s.excerpt.trim().to_string(),
        });
    }
    Ok(out)
}

fn insights(raw: RawInsights) -> Result<CallInsights, String> {
    let summary = raw.summary.trim().to_string();
    if summary.is_empty() {
        return Err("insights.summary is empty".into());
    }
    if summary.chars().count() > MAX_SUMMARY_CHARS {
        return Err(format!(
            "insights.summary has more than {MAX_SUMMARY_CHARS} characters"
        ));
    }
    let pain_points = strings("insights.painPoints", raw.pain_points)?;
    let objections = strings("insights.objections", raw.objections)?;
    let titles = strings(
        "insights.nextActions",
        raw.next_actions.iter().map(|a| a.title.clone()).collect(),
    )?;
    let mut next_actions = Vec::with_capacity(titles.len());
    for (i, (title, raw)) in titles.into_iter().zip(raw.next_actions).enumerate() {
        let due_date = match raw.due_date.as_deref().map(str::trim) {
            None => None,
            Some(d) => Some(NaiveDate::parse_from_str(d, "%Y-%m-%d").map_err(|_| {
                format!("insights.nextActions[{i}].dueDate {d:?} is not a YYYY-MM-DD date or null")
            })?),
        };
        next_actions.push(NextAction { title, due_date });
    }
    let tags = strings("insights.tags", raw.tags)?;
    for tag in &tags {
        if !is_slug(tag) {
            return Err(format!(
                "insights.tags: {tag:?} must be a lowercase slug (a-z, 0-9, '-'), at most {MAX_TAG_CHARS} characters"
            ));
        }
    }
    Ok(CallInsights {
        summary,
        pain_points,
        objections,
        next_actions,
        tags,
    })
}

/// Trimmed, none empty, at most 20.
fn strings(field: &str, list: Vec<String>) -> Result<Vec<String>, String> {
    if list.len() > MAX_LIST_ITEMS {
        return Err(format!("{field} has more than {MAX_LIST_ITEMS} items"));
    }
    list.into_iter()
        .enumerate()
        .map(|(i, s)| {
            let s = s.trim().to_string();
            if s.is_empty() {
                Err(format!("{field}[{i}] is empty"))
            } else {
                Ok(s)
            }
        })
        .collect()
}

fn is_slug(tag: &str) -> bool {
    tag.len() <= MAX_TAG_CHARS
        && !tag.starts_with('-')
        && !tag.ends_with('-')
        && tag
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: &str = r#"{"segments":[{"label":"abertura","startSec":0,"endSec":10,"excerpt":" oi "},
        {"label":"fechamento","startSec":10,"endSec":99,"excerpt":"tchau"}],
        "insights":{"summary":"Resumo","painPoints":["custo"],"objections":[],
        "nextActions":[{"title":"Enviar proposta","dueDate":"2026-12-04"},{"title":"Ligar","dueDate":null}],
        "tags":["crm","plano-pro"]}}"#;

    #[test]
    fn accepts_bare_and_fenced_and_clamps() {
        let (segs, ins) = analysis(OK, 60.0).unwrap();
        assert_eq!(segs[1].end_sec, 60.0);
        assert_eq!(segs[0].excerpt, "oi");
        assert_eq!(ins.next_actions[1].due_date, None);
        assert!(analysis(&format!("```json\n{OK}\n```"), 60.0).is_ok());
        assert!(analysis(&format!("Aqui está: {OK}"), 60.0).is_err());
    }

    #[test]
    fn refuses_with_reasons() {
        let cases = [
            (OK.replace("\"abertura\"", "\"intro\""), "not one of"),
            (OK.replace("\"startSec\":10", "\"startSec\":5"), "overlap"),
            (OK.replace("2026-12-04", "sexta"), "dueDate"),
            (OK.replace("plano-pro", "Plano Pro"), "slug"),
            (OK.replace("\"Resumo\"", "\"  \""), "summary is empty"),
            (
                OK.replace("[\"custo\"]", "[\"\"]"),
                "painPoints[0] is empty",
            ),
            ("[1]".to_string(), "one JSON object"),
        ];
        for (text, why) in cases {
            let err = analysis(&text, 60.0).unwrap_err();
            assert!(err.contains(why), "{err}");
        }
    }
}
