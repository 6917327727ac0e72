//! The CRM push against the strict Pipedrive fake over real HTTP, and its events in a real
//! PostgreSQL: what is found, made, skipped and retried, and that a retry adds nothing twice.

use std::time::Duration;

use call_insights::calls::model::CallInsights;
use call_insights::crm::{self, CallForCrm, CrmStatus, Pipedrive, PipedriveSettings, PushedSteps};
use uuid::Uuid;
use voice_core::config::Secret;
use voice_core::db::scratch::ScratchDb;
use voice_sim::fake_pipedrive::{FakePipedrive, FakePipedriveConfig, Fault, TokenIn};

async fn fake() -> FakePipedrive {
    FakePipedrive::start(FakePipedriveConfig::default())
        .await
        .unwrap()
}

fn client(fake: &FakePipedrive, token: &str, timeout_secs: u64) -> Pipedrive {
    Pipedrive::from_settings(&PipedriveSettings {
        url: fake.url(),
        api_token: Secret::new(token),
        timeout_secs,
        user_id: Some(1),
    })
    .unwrap()
}

/// A call from the number of the fake's person (`+55 11 99999-0000`, id 101).
fn call(from: &str) -> CallForCrm {
    CallForCrm {
        call_id: Uuid::new_v4(),
        provider_call_id: "pd-1".into(),
        from: from.into(),
        to: "+551130000000".into(),
        phones_hashed: false,
        started_at: Some(chrono::Utc::now()),
        duration_sec: Some(95),
        insights: Some(CallInsights {
            summary: "Cliente quer <b>desconto</b>.".into(),
            pain_points: vec![],
            objections: vec!["preço".into()],
            next_actions: vec![],
            tags: vec![],
        }),
        scorecard: None,
        panel_url: None,
    }
}

#[tokio::test]
async fn a_push_finds_the_caller_and_adds_a_note_and_a_call_activity() {
    let pd = fake().await;
    let events = client(&pd, &pd.api_token(), 5)
        .push(&call("+5511999990000"), &PushedSteps::default())
        .await;
    let steps: Vec<_> = events.iter().map(|e| (e.action, e.status)).collect();
    assert_eq!(
        steps,
        [
            (crm::PERSON_LOOKUP, CrmStatus::Ok),
            (crm::NOTE, CrmStatus::Ok),
            (crm::ACTIVITY, CrmStatus::Ok)
        ],
        "{events:?}"
    );
    assert_eq!(events[0].external_id.as_deref(), Some("101"));
    let notes = pd.notes();
    assert_eq!(notes[0]["person_id"], 101);
    assert_eq!(notes[0]["pinned_to_person_flag"], true);
    let content = notes[0]["content"].as_str().unwrap();
    assert!(
        content.contains("Cliente quer &lt;b&gt;desconto&lt;/b&gt;."),
        "{content}"
    );
    let activity = &pd.activities()[0];
    assert_eq!(activity["type"], "call");
    assert_eq!(activity["done"], true);
    assert_eq!(activity["duration"], "00:02");
    assert_eq!(activity["person_id"], 101);
    assert_eq!(
        events[2].external_id,
        activity["id"].as_u64().map(|i| i.to_string())
    );
    // The token travelled in the header, never in a URL.
    assert!(pd.requests().iter().all(|r| r.token_in == TokenIn::Header));
}

#[tokio::test]
async fn nobody_to_find_means_nothing_is_written() {
    let pd = fake().await;
    let c = client(&pd, &pd.api_token(), 5);
    for (from, hashed, reason) in [
        ("+5521000000000", false, "nobody"),
        ("1001", false, "no caller number"),
        ("h:3f2a", true, "hashed"),
    ] {
        let mut call = call(from);
        call.phones_hashed = hashed;
        let events = c.push(&call, &PushedSteps::default()).await;
        assert_eq!(events.len(), 1, "{events:?}");
        assert_eq!(events[0].status, CrmStatus::Skipped);
        assert!(events[0].detail["reason"]
            .as_str()
            .unwrap()
            .contains(reason));
        assert!(!crm::should_retry(&events));
    }
    // Only the real number was searched for.
    assert_eq!(pd.stats().searches, 1);
    assert!(pd.notes().is_empty() && pd.activities().is_empty());
}

#[tokio::test]
async fn failures_say_whether_to_retry_and_never_show_the_token() {
    let pd = fake().await;
    // A wrong token: refused, not worth a retry, and the token is nowhere in the error.
    let events = client(&pd, "wrong-token-abc", 5)
        .push(&call("+5511999990000"), &PushedSteps::default())
        .await;
    assert_eq!(events[0].status, CrmStatus::Failed);
    assert!(!events[0].retryable);
    assert_eq!(events[0].detail["http_status"], 401);
    assert!(!events[0]
        .error
        .as_deref()
        .unwrap()
        .contains("wrong-token-abc"));

    // 429 and 5xx are worth a retry.
    for fault in [Fault::RateLimited { retry_after_s: 1 }, Fault::Refuse(503)] {
        pd.set_faults(vec![fault], Fault::None);
        let events = client(&pd, &pd.api_token(), 5)
            .push(&call("+5511999990000"), &PushedSteps::default())
            .await;
        assert!(crm::should_retry(&events), "{events:?}");
    }

    // No answer in time: retryable too.
    pd.set_faults(vec![Fault::Hang], Fault::None);
    let events = client(&pd, &pd.api_token(), 1)
        .push(&call("+5511999990000"), &PushedSteps::default())
        .await;
    assert!(events[0].retryable);
    assert!(events[0]
        .error
        .as_deref()
        .unwrap()
        .contains("no answer in time"));
}

#[tokio::test]
async fn a_retry_pushes_only_what_is_missing_and_events_stay_in_their_tenant() {
    let scratch = ScratchDb::create(2).await.expect("PostgreSQL");
    let db = &scratch.db;
    let tenant = db
        .create_tenant(Uuid::new_v4(), "crm-a.example.com")
        .await
        .unwrap();
    let other = db
        .create_tenant(Uuid::new_v4(), "crm-b.example.com")
        .await
        .unwrap();
    let call_id = Uuid::new_v4();
    db.with_tenant(tenant, move |tx| {
        Box::pin(async move {
            tx.execute(
                "INSERT INTO calls (id, tenant_id, provider_call_id, from_number, to_number, status)
                 VALUES ($1, $2, 'crm-retry', '+5511999990000', '+551130000000', 'processed')",
                &[&call_id, &tenant],
            )
            .await?;
            Ok::<_, voice_core::db::DbError>(())
        })
    })
    .await
    .unwrap();

    let pd = fake().await;
    let c = client(&pd, &pd.api_token(), 5);
    let mut request = call("+5511999990000");
    request.call_id = call_id;
    // The search works, the note fails with a 500, the activity goes through.
    pd.set_faults(vec![Fault::None, Fault::Refuse(500)], Fault::None);
    let first = c.push(&request, &PushedSteps::default()).await;
    assert!(crm::should_retry(&first), "{first:?}");
    crm::record(db, tenant, call_id, &first).await.unwrap();

    let done = crm::pushed_steps(db, tenant, call_id).await.unwrap();
    assert_eq!(
        done,
        PushedSteps {
            person_id: Some(101),
            note: false,
            activity: true
        }
    );
    let searches = pd.stats().searches;
    let second = c.push(&request, &done).await;
    assert_eq!(second.len(), 1, "only the note is left: {second:?}");
    assert_eq!(second[0].action, crm::NOTE);
    crm::record(db, tenant, call_id, &second).await.unwrap();
    assert!(crm::pushed_steps(db, tenant, call_id)
        .await
        .unwrap()
        .complete());
    assert_eq!(
        pd.stats().searches,
        searches,
        "the person was not searched again"
    );
    assert_eq!(pd.notes().len(), 1);
    assert_eq!(pd.activities().len(), 1);

    // Another tenant sees none of it, and cannot write events on this call.
    assert_eq!(
        crm::pushed_steps(db, other, call_id).await.unwrap(),
        PushedSteps::default()
    );
    assert!(crm::record(db, other, call_id, &second).await.is_err());
    tokio::time::sleep(Duration::from_millis(10)).await;
}
