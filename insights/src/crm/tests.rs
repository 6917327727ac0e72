use chrono::{NaiveDate, TimeZone, Utc};
use uuid::Uuid;

use super::content::{activity, escape, hh_mm, note_html};
use super::*;
use crate::calls::model::{CallInsights, NextAction, Scorecard, ScoredItem};

fn call() -> CallForCrm {
    CallForCrm {
        call_id: Uuid::nil(),
        provider_call_id: "c-1".into(),
        from: "+5511999990000".into(),
        to: "+551130000000".into(),
        phones_hashed: false,
        started_at: Some(Utc.with_ymd_and_hms(2026, 12, 3, 14, 5, 9).unwrap()),
        duration_sec: Some(425),
        insights: Some(CallInsights {
            summary: "Cliente <script>alert(1)</script> quer & frete".into(),
            pain_points: vec!["custo alto".into()],
            objections: vec![],
            next_actions: vec![NextAction {
                title: "Enviar proposta".into(),
                due_date: NaiveDate::from_ymd_opt(2026, 12, 10),
            }],
            tags: vec!["frete".into()],
        }),
        scorecard: Some(Scorecard {
            template_id: None,
            template_key: "default".into(),
            items: vec![ScoredItem {
                item: "abertura".into(),
                weight: 100.0,
                score: 50.0,
                reason: String::new(),
            }],
            total_score: 50.0,
            max_score: 100.0,
        }),
        panel_url: Some("https://insights.example.com/panel/calls/x?a=1&b=2".into()),
    }
}

#[test]
fn the_note_escapes_what_the_llm_wrote_and_says_everything() {
    let html = note_html(&call());
    assert!(!html.contains("<script>"), "{html}");
    assert!(html.contains("Cliente &lt;script&gt;alert(1)&lt;/script&gt; quer &amp; frete"));
    assert!(html.contains("<li>custo alto</li>"));
    assert!(
        !html.contains("Objeções"),
        "an empty list is left out: {html}"
    );
    assert!(html.contains("Enviar proposta (até 10/12/2026)"));
    assert!(html.contains("<b>Nota:</b> 50 de 100 (default)"));
    assert!(html.contains("03/12/2026 14:05 UTC (7 min 05 s)"));
    assert!(html.contains("href=\"https://insights.example.com/panel/calls/x?a=1&amp;b=2\""));
}

#[test]
fn the_activity_is_a_done_call_with_pipedrive_formats() {
    let body = activity(&call(), 7, Some(3));
    assert_eq!(body["type"], "call");
    assert_eq!(body["done"], true);
    assert_eq!(body["due_date"], "2026-12-03");
    assert_eq!(body["due_time"], "14:05");
    assert_eq!(body["duration"], "00:08");
    assert_eq!(body["owner_id"], 3);
    assert_eq!(body["participants"][0]["person_id"], 7);
    assert!(body["subject"]
        .as_str()
        .unwrap()
        .starts_with("Ligação: Cliente"));
    assert!(!body["note"].as_str().unwrap().contains("<script>"));

    let mut bare = call();
    bare.insights = None;
    bare.started_at = None;
    bare.duration_sec = None;
    let body = activity(&bare, 7, None);
    assert_eq!(body["subject"], "Ligação");
    for absent in ["due_date", "due_time", "duration", "owner_id", "note"] {
        assert!(body.get(absent).is_none(), "{absent}: {body}");
    }
}

#[test]
fn durations_round_up_to_the_minute_and_stay_in_range() {
    assert_eq!(hh_mm(1), "00:01");
    assert_eq!(hh_mm(60), "00:01");
    assert_eq!(hh_mm(61), "00:02");
    assert_eq!(hh_mm(3600), "01:00");
    assert_eq!(hh_mm(i32::MAX), "99:59");
    assert_eq!(hh_mm(-5), "00:00");
    assert_eq!(escape("a'b\"c"), "a&#39;b&quot;c");
}

#[test]
fn only_a_retryable_failure_asks_for_a_retry() {
    let failed = |retryable| CrmEvent {
        retryable,
        ..CrmEvent::failed(
            NOTE,
            CrmError {
                message: "x".into(),
                status: Some(500),
                retryable,
            },
        )
    };
    assert!(should_retry(&[
        CrmEvent::ok(PERSON_LOOKUP, None, serde_json::json!({})),
        failed(true)
    ]));
    assert!(!should_retry(&[failed(false)]));
    assert!(!should_retry(&[CrmEvent::skipped(
        PERSON_LOOKUP,
        "no number"
    )]));
    assert_eq!(failed(true).detail["http_status"], 500);
}

#[test]
fn settings_from_the_environment() {
    let env = |pairs: &'static [(&'static str, &'static str)]| {
        move |k: &str| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    };
    let on = CrmSettings::default()
        .with_env(env(&[
            ("ENABLE_CRM_PUSH", "true"),
            ("PIPEDRIVE_API_TOKEN", " tok "),
        ]))
        .unwrap();
    assert!(on.enabled);
    assert_eq!(on.pipedrive.api_token.expose(), "tok");
    let err = CrmSettings::default()
        .with_env(env(&[("ENABLE_CRM_PUSH", "1")]))
        .unwrap_err();
    assert!(err.contains("PIPEDRIVE_API_TOKEN"), "{err}");
    assert!(CrmSettings::default()
        .with_env(env(&[("ENABLE_CRM_PUSH", "maybe")]))
        .is_err());
    let off = CrmSettings::default().with_env(env(&[])).unwrap();
    assert!(!off.enabled);
}

#[test]
fn a_client_needs_a_token_and_an_http_url_and_never_shows_the_token() {
    let mut s = PipedriveSettings::default();
    assert!(Pipedrive::from_settings(&s).is_err());
    s.api_token = voice_core::config::Secret::new("secret-token-1");
    s.url = "ftp://x".into();
    assert!(Pipedrive::from_settings(&s).is_err());
    s.url = "http://127.0.0.1:1/".into();
    let client = Pipedrive::from_settings(&s).unwrap();
    assert!(!format!("{client:?}").contains("secret-token-1"));
}
