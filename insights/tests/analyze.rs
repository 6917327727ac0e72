//! The LLM stages against the strict fake chat server, over real HTTP.

use call_insights::analyze::{default_template, AnalyzeError, AnalyzeSettings, Analyzer};
use call_insights::calls::model::{Transcription, Utterance};
use chrono::NaiveDate;
use voice_core::config::Secret;
use voice_sim::fake_llm::{FakeLlm, FakeLlmConfig, Fault, ReplyRule};

const ANALYSIS: &str = r#"{"segments":[
 {"label":"abertura","startSec":0,"endSec":4,"excerpt":"Bom dia, aqui é a Ana"},
 {"label":"descoberta","startSec":4,"endSec":12,"excerpt":"o custo do frete"},
 {"label":"fechamento","startSec":12,"endSec":500,"excerpt":"mando a proposta amanhã"}],
 "insights":{"summary":"Cliente quer reduzir o custo do frete.","painPoints":["custo do frete alto"],
 "objections":["preço"],"nextActions":[{"title":"Enviar proposta","dueDate":"2026-12-03"},
 {"title":"Agendar demo","dueDate":null}],"tags":["frete","proposta"]}}"#;

fn call() -> Transcription {
    let u = |speaker, start, end, text: &str| Utterance {
        speaker,
        start,
        end,
        text: text.into(),
    };
    Transcription {
        language: "pt-BR".into(),
        provider: "deepgram".into(),
        text: String::new(),
        words: vec![],
        utterances: vec![
            u(1, 0.0, 4.0, "Bom dia, aqui é a Ana da Fretes Já."),
            u(0, 4.0, 12.0, "Oi Ana, nosso problema é o custo do frete."),
            u(1, 12.0, 20.0, "Entendi, mando a proposta amanhã."),
        ],
    }
}

fn date() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 12, 2).unwrap()
}

async fn fake(analysis: &[&str], scorecard: &[&str]) -> FakeLlm {
    let rule = |marker: &str, replies: &[&str]| {
        ReplyRule::new(marker, replies.iter().map(|r| r.to_string()).collect())
    };
    let mut reply_rules = vec![];
    if !analysis.is_empty() {
        reply_rules.push(rule("# call-analysis", analysis));
    }
    if !scorecard.is_empty() {
        reply_rules.push(rule("# call-scorecard", scorecard));
    }
    FakeLlm::start(FakeLlmConfig {
        first_token_ms: 0,
        token_interval_ms: 0,
        reply_rules,
        ..Default::default()
    })
    .await
    .unwrap()
}

fn analyzer(fake: &FakeLlm, provider: &str) -> Analyzer {
    let url = if provider == "anthropic" {
        fake.messages_url()
    } else {
        fake.chat_completions_url()
    };
    let model = if provider == "anthropic" {
        "claude-haiku-4-5"
    } else {
        "gpt-4o-mini"
    };
    Analyzer::from_settings(&AnalyzeSettings {
        provider: provider.into(),
        url,
        model: model.into(),
        api_key: Secret::new(fake.api_key()),
        timeout_secs: 10,
        ..Default::default()
    })
    .unwrap()
}

/// Scorecard answer for the default template with every item at `score` (capped).
fn scores(score: f64, extra: &str) -> String {
    let items: Vec<String> = default_template()
        .items
        .iter()
        .map(|i| {
            format!(
                r#"{{"item":"{}","score":{},"reason":"ok"}}"#,
                i.item,
                score.min(i.weight)
            )
        })
        .collect();
    format!(r#"{{"items":[{}{extra}],"total":999}}"#, items.join(","))
}

#[tokio::test]
async fn valid_analysis_is_parsed_and_prompt_has_transcript_and_date() {
    for provider in ["openai", "anthropic"] {
        let fake = fake(&[ANALYSIS], &[]).await;
        let a = analyzer(&fake, provider)
            .analyze(&call(), date())
            .await
            .unwrap();
        assert_eq!(a.segments.len(), 3);
        assert_eq!(a.segments[2].end_sec, 20.0, "clamped to the call");
        assert_eq!(a.insights.tags, ["frete", "proposta"]);
        assert_eq!(
            a.insights.next_actions[0].due_date,
            NaiveDate::from_ymd_opt(2026, 12, 3)
        );
        assert_eq!(a.prompt_version, "analysis@1");
        let stats = fake.stats();
        assert_eq!(stats.accepted.len(), 1);
        let user = stats.accepted[0].texts("user").join("\n");
        assert!(user.contains("2026-12-02"), "{user}");
        assert!(user.contains("Falante 0: Oi Ana, nosso problema é o custo do frete."));
        assert!(user.contains("Falante 1: Bom dia, aqui é a Ana da Fretes Já."));
        assert!(stats.accepted[0].system.contains("Responda SOMENTE"));
    }
}

#[tokio::test]
async fn fenced_json_is_accepted() {
    let fenced = format!("```json\n{ANALYSIS}\n```");
    let fake = fake(&[&fenced], &[]).await;
    let a = analyzer(&fake, "openai")
        .analyze(&call(), date())
        .await
        .unwrap();
    assert_eq!(a.model, "gpt-4o-mini");
}

#[tokio::test]
async fn invalid_then_valid_retries_with_the_reason() {
    let fake = fake(&["Claro! Aqui está a análise.", ANALYSIS], &[]).await;
    let a = analyzer(&fake, "openai").analyze(&call(), date()).await;
    assert!(a.is_ok(), "{a:?}");
    let stats = fake.stats();
    assert_eq!(stats.accepted.len(), 2);
    let second = stats.accepted[1].texts("user").join("\n");
    assert!(second.contains("not valid JSON"), "{second}");
    assert_eq!(
        stats.accepted[1].texts("assistant"),
        ["Claro! Aqui está a análise."]
    );
}

#[tokio::test]
async fn always_invalid_gives_invalid_output_after_max_attempts() {
    let bad = ANALYSIS.replace("\"abertura\"", "\"saudacao\"");
    let fake = fake(&[&bad], &[]).await;
    let err = analyzer(&fake, "openai")
        .analyze(&call(), date())
        .await
        .unwrap_err();
    match err {
        AnalyzeError::InvalidOutput(why) => assert!(why.contains("saudacao"), "{why}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(fake.stats().accepted.len(), 3);
}

#[tokio::test]
async fn scorecard_total_is_ours() {
    let fake = fake(&[], &[&scores(10.0, "")]).await;
    let template = default_template();
    let card = analyzer(&fake, "openai")
        .score(&call(), &template)
        .await
        .unwrap();
    let want: f64 = template.items.iter().map(|i| i.weight.min(10.0)).sum();
    assert_eq!(card.total_score, want);
    assert_ne!(card.total_score, 999.0);
    assert_eq!(card.max_score, 100.0);
    assert_eq!(card.template_key, "diagnostico");
    assert_eq!(card.items.len(), template.items.len());
    let user = fake.stats().accepted[0].texts("user").join("\n");
    assert!(user.contains("Próximos passos (peso 20)"), "{user}");
}

#[tokio::test]
async fn unknown_missing_or_too_high_items_are_refused() {
    let unknown = scores(5.0, r#",{"item":"Simpatia","score":1}"#);
    let full = scores(5.0, "");
    let missing = full.replace(r#"{"item":"Dor","score":5,"reason":"ok"},"#, "");
    assert_ne!(missing, full);
    let too_high = full.replace(r#""Dor","score":5"#, r#""Dor","score":26"#);
    for (answer, why) in [
        (unknown, "not in the template"),
        (missing, "items missing: Dor"),
        (too_high, "between 0 and its weight"),
    ] {
        let fake = fake(&[], &[&answer]).await;
        let err = analyzer(&fake, "openai")
            .score(&call(), &default_template())
            .await
            .unwrap_err();
        match err {
            AnalyzeError::InvalidOutput(r) => assert!(r.contains(why), "{r}"),
            other => panic!("{other:?}"),
        }
    }
}

#[tokio::test]
async fn provider_500_is_retryable() {
    let fake = fake(&[ANALYSIS], &[]).await;
    fake.set_fault(Fault::Status(500));
    let err = analyzer(&fake, "openai")
        .analyze(&call(), date())
        .await
        .unwrap_err();
    assert!(matches!(err, AnalyzeError::Retryable(_)), "{err:?}");
}

#[test]
fn unknown_provider_is_a_config_error() {
    let s = AnalyzeSettings {
        provider: "gemini".into(),
        ..Default::default()
    };
    assert!(matches!(
        Analyzer::from_settings(&s),
        Err(AnalyzeError::Config(_))
    ));
}
