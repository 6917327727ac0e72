//! The parts of a call's page made from the pipeline's shared types
//! ([`crate::calls::model`]): transcript, segments, insights, scorecard.

use std::fmt::Write;

use crate::calls::model::{CallInsights, Scorecard, SegmentPart, Utterance};

use super::html::{date, duration, esc};
use super::i18n::Lang;

/// How a speaker is named: our bridge records the caller on channel 0 and the agent on 1.
fn speaker(lang: Lang, n: u32) -> String {
    let t = lang.text();
    match n {
        0 => t.caller.to_string(),
        1 => t.attendant.to_string(),
        n => format!("{} {}", t.speaker, n + 1),
    }
}

/// Seconds as the `data-start` attribute the script reads (plain decimal).
fn secs(v: f64) -> String {
    if v.is_finite() {
        format!("{v}")
    } else {
        "0".to_string()
    }
}

/// The transcript by speaker: each utterance seeks the player when clicked.
pub fn transcript(lang: Lang, utterances: &[Utterance]) -> String {
    let t = lang.text();
    if utterances.is_empty() {
        return format!("<p class=\"hint\">{}</p>", esc(t.no_transcript));
    }
    let mut out = String::from("<ol class=\"transcript\" id=\"transcript\">");
    for u in utterances {
        let _ = write!(
            out,
            "<li class=\"s{cls}\" data-start=\"{start}\" data-end=\"{end}\" tabindex=\"0\">\
<span class=\"time\">{clock}</span><div><span class=\"who\">{who}</span>{text}</div></li>",
            cls = u.speaker.min(9),
            start = secs(u.start),
            end = secs(u.end),
            clock = esc(&duration(u.start)),
            who = esc(&speaker(lang, u.speaker)),
            text = esc(&u.text),
        );
    }
    out.push_str("</ol>");
    out
}

/// The segments, as a table.
pub fn segments(lang: Lang, parts: &[SegmentPart]) -> String {
    let t = lang.text();
    if parts.is_empty() {
        return String::new();
    }
    let mut out = format!("<h3>{}</h3><table class=\"grid\"><tbody>", esc(t.segments));
    for s in parts {
        let _ = write!(
            out,
            "<tr><td class=\"mono\">{a}–{b}</td><td><span class=\"tag\">{label}</span></td><td>{excerpt}</td></tr>",
            a = esc(&duration(s.start_sec)),
            b = esc(&duration(s.end_sec)),
            label = esc(&s.label),
            excerpt = esc(&s.excerpt),
        );
    }
    out.push_str("</tbody></table>");
    out
}

fn list(title: &str, items: &[String]) -> String {
    if items.is_empty() {
        return String::new();
    }
    let mut out = format!("<h3>{}</h3><ul class=\"plain\">", esc(title));
    for i in items {
        let _ = write!(out, "<li>{}</li>", esc(i));
    }
    out.push_str("</ul>");
    out
}

/// Tags as chips.
pub fn tags(items: &[String]) -> String {
    items
        .iter()
        .map(|tag| format!("<span class=\"tag\">{}</span>", esc(tag)))
        .collect()
}

/// Summary, pain points, objections, next actions (with due dates), tags.
pub fn insights(lang: Lang, insights: Option<&CallInsights>) -> String {
    let t = lang.text();
    let Some(i) = insights else {
        return format!("<p class=\"hint\">{}</p>", esc(t.no_insights));
    };
    let mut out = format!(
        "<h3>{}</h3><p class=\"summary\">{}</p>",
        esc(t.summary),
        esc(&i.summary)
    );
    out.push_str(&list(t.pain_points, &i.pain_points));
    out.push_str(&list(t.objections, &i.objections));
    if !i.next_actions.is_empty() {
        let _ = write!(out, "<h3>{}</h3><ul class=\"plain\">", esc(t.next_actions));
        for a in &i.next_actions {
            let due = a
                .due_date
                .map(|d| {
                    format!(
                        "<span class=\"due\">{}: {}</span>",
                        esc(t.due),
                        esc(&date(&d, lang))
                    )
                })
                .unwrap_or_default();
            let _ = write!(out, "<li>{}{due}</li>", esc(&a.title));
        }
        out.push_str("</ul>");
    }
    if !i.tags.is_empty() {
        let _ = write!(out, "<h3>{}</h3><div>{}</div>", esc(t.tags), tags(&i.tags));
    }
    out
}

/// A number without a needless `.0`.
pub fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v:.1}")
    }
}

/// The scorecard: items, weights, scores (as meters), total over maximum.
pub fn scorecard(lang: Lang, card: Option<&Scorecard>) -> String {
    let t = lang.text();
    let Some(c) = card else {
        return format!("<p class=\"hint\">{}</p>", esc(t.no_scorecard));
    };
    let mut out = format!(
        "<p class=\"total\">{} <small>/ {} · {}</small></p>\
<table class=\"grid\"><thead><tr><th>{}</th><th class=\"num\">{}</th><th class=\"num\">{}</th><th></th></tr></thead><tbody>",
        esc(&number(c.total_score)),
        esc(&number(c.max_score)),
        esc(&c.template_key),
        esc(t.item),
        esc(t.weight),
        esc(t.score),
    );
    for i in &c.items {
        let reason = if i.reason.is_empty() {
            String::new()
        } else {
            format!("<div class=\"hint\">{}</div>", esc(&i.reason))
        };
        let _ = write!(
            out,
            "<tr><td>{item}{reason}</td><td class=\"num\">{w}</td><td class=\"num score\">{s}</td>\
<td><meter min=\"0\" max=\"{w}\" value=\"{s}\"></meter></td></tr>",
            item = esc(&i.item),
            w = esc(&number(i.weight)),
            s = esc(&number(i.score)),
        );
    }
    let _ = write!(
        out,
        "</tbody><tfoot><tr><td>{}</td><td class=\"num\">{}</td><td class=\"num score\">{}</td><td></td></tr></tfoot></table>",
        esc(t.total),
        esc(&number(c.max_score)),
        esc(&number(c.total_score)),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utterances_carry_their_times_and_are_escaped() {
        let html = transcript(
            Lang::Pt,
            &[Utterance {
                speaker: 0,
                start: 6.5,
                end: 9.25,
                text: "<b>oi</b>".into(),
            }],
        );
        assert!(html.contains("data-start=\"6.5\" data-end=\"9.25\""));
        assert!(html.contains("&lt;b&gt;oi&lt;/b&gt;") && html.contains("Cliente"));
        assert!(transcript(Lang::En, &[]).contains("No transcript."));
    }

    #[test]
    fn numbers_drop_a_needless_fraction() {
        assert_eq!(number(7.0), "7");
        assert_eq!(number(7.25), "7.2");
    }
}
