use serde_json::json;

use super::*;
use crate::tenancy::model::AgentMode;

fn full_agent() -> NewAgent {
    NewAgent {
        name: "Recepção".into(),
        mode: Some(AgentMode::Cascaded),
        prompt: Some("Você atende a recepção.".into()),
        language: Some("pt-BR".into()),
        voice: Some("alloy".into()),
        greeting: Some("Olá!".into()),
        vad: Some(json!({"threshold": 0.6})),
        turn: Some(json!({"max_silence_ms": 2500})),
        barge_in: Some(json!({"enabled": true})),
        handoff: Some(json!({"extension": "1000"})),
        playout: Some(json!({"dialect": "stream"})),
        settings: Some(json!({"failover": {"enabled": true}})),
        tools: Some(json!([{"name": "lookup_knowledge"}])),
        numbers: Some(vec!["551140041234".into(), "*99".into()]),
        is_default: Some(true),
        enabled: Some(true),
    }
}

#[tokio::test]
async fn agents_round_trip() {
    let scratch = scratch().await;
    let db = &scratch.db;
    let t = tenant(db, "a.example").await.id;

    let created = scoped!(db, t, |tx| create_agent(tx, t, full_agent()).await)
        .await
        .expect("create");
    assert_eq!(created.tenant_id, t);
    assert_eq!(created.mode, AgentMode::Cascaded);
    assert_eq!(created.vad, json!({"threshold": 0.6}));
    assert_eq!(created.tools, json!([{"name": "lookup_knowledge"}]));
    assert_eq!(created.numbers, vec!["551140041234", "*99"]);
    assert!(created.is_default);

    let plain = scoped!(db, t, |tx| create_agent(tx, t, NewAgent::named("Vendas"))
        .await)
    .await
    .expect("create with defaults");
    assert_eq!(plain.mode, AgentMode::Realtime);
    assert_eq!(plain.language, "pt-BR");
    assert_eq!(plain.vad, json!({}));
    assert_eq!(plain.tools, json!([]));
    assert!(plain.numbers.is_empty());
    assert!(!plain.is_default && plain.enabled);

    let id = created.id;
    let got = scoped!(db, t, |tx| get_agent(tx, id).await)
        .await
        .expect("get");
    assert_eq!(got, created);
    let listed = scoped!(db, t, |tx| list_agents(tx, Page::default()).await)
        .await
        .expect("list");
    assert_eq!(listed, vec![created.clone(), plain.clone()], "by name");
    let paged = scoped!(db, t, |tx| list_agents(
        tx,
        Page {
            limit: 1,
            offset: 1
        }
    )
    .await)
    .await
    .expect("page");
    assert_eq!(paged, vec![plain.clone()]);

    let patch: AgentPatch = serde_json::from_value(json!({
        "prompt": "Novo prompt",
        "mode": "turn",
        "numbers": ["2000"],
        "vad": {"threshold": 0.4},
        "enabled": false
    }))
    .expect("patch");
    let updated = scoped!(db, t, |tx| update_agent(tx, id, patch).await)
        .await
        .expect("update");
    assert_eq!(updated.prompt, "Novo prompt");
    assert_eq!(updated.mode, AgentMode::Turn);
    assert_eq!(updated.numbers, vec!["2000"]);
    assert_eq!(updated.vad, json!({"threshold": 0.4}));
    assert!(!updated.enabled);
    assert_eq!(updated.greeting, created.greeting, "absent fields are kept");
    assert_eq!(updated.created_at, created.created_at);
    assert!(updated.updated_at >= created.updated_at);
    let unchanged = scoped!(db, t, |tx| update_agent(tx, id, AgentPatch::default())
        .await)
    .await
    .expect("empty patch");
    assert_eq!(unchanged, updated);

    scoped!(db, t, |tx| delete_agent(tx, id).await)
        .await
        .expect("delete");
    assert_not_found(scoped!(db, t, |tx| get_agent(tx, id).await).await);
    assert_not_found(scoped!(db, t, |tx| delete_agent(tx, id).await).await);
    assert_not_found(
        scoped!(db, t, |tx| update_agent(
            tx,
            id,
            AgentPatch {
                prompt: Some("x".into()),
                ..AgentPatch::default()
            }
        )
        .await)
        .await,
    );
}

#[tokio::test]
async fn agent_input_is_checked() {
    let scratch = scratch().await;
    let db = &scratch.db;
    let t = tenant(db, "a.example").await.id;
    let attempt = |new: NewAgent| {
        let db = db.clone();
        async move { scoped!(db, t, |tx| create_agent(tx, t, new).await).await }
    };

    assert_invalid(attempt(NewAgent::named("  ")).await, "name");
    assert_invalid(attempt(NewAgent::named("x".repeat(201))).await, "name");
    let mut bad = NewAgent::named("a");
    bad.vad = Some(json!([1]));
    assert_invalid(attempt(bad).await, "vad must be a JSON object");
    let mut bad = NewAgent::named("a");
    bad.settings = Some(json!("text"));
    assert_invalid(attempt(bad).await, "settings must be a JSON object");
    let mut bad = NewAgent::named("a");
    bad.tools = Some(json!({}));
    assert_invalid(attempt(bad).await, "tools must be a JSON array");
    let mut bad = NewAgent::named("a");
    bad.numbers = Some(vec!["12 34".into()]);
    assert_invalid(attempt(bad).await, "12 34");
    let mut bad = NewAgent::named("a");
    bad.numbers = Some(vec!["1000".into(), "1000".into()]);
    assert_invalid(attempt(bad).await, "twice");
    let mut bad = NewAgent::named("a");
    bad.numbers = Some((0..101).map(|n| n.to_string()).collect());
    assert_invalid(attempt(bad).await, "100 numbers");
    let mut bad = NewAgent::named("a");
    bad.language = Some(String::new());
    assert_invalid(attempt(bad).await, "language");
    assert_invalid(
        scoped!(db, t, |tx| list_agents(
            tx,
            Page {
                limit: 0,
                offset: 0
            }
        )
        .await)
        .await,
        "limit",
    );
    assert_invalid(
        scoped!(db, t, |tx| list_agents(
            tx,
            Page {
                limit: 10,
                offset: -1
            }
        )
        .await)
        .await,
        "offset",
    );
    assert!(serde_json::from_value::<NewAgent>(json!({"name": "a", "mode": "robot"})).is_err());
    assert!(serde_json::from_value::<NewAgent>(json!({"name": "a", "colour": 1})).is_err());

    let none = scoped!(db, t, |tx| list_agents(tx, Page::default()).await)
        .await
        .expect("list");
    assert!(none.is_empty(), "nothing was written");
}

#[tokio::test]
async fn names_and_numbers_belong_to_one_agent() {
    let scratch = scratch().await;
    let db = &scratch.db;
    let t = tenant(db, "a.example").await.id;
    let mut first = NewAgent::named("Recepção");
    first.numbers = Some(vec!["1000".into(), "1001".into()]);
    let first = scoped!(db, t, |tx| create_agent(tx, t, first).await)
        .await
        .expect("first");

    assert_conflict(
        scoped!(db, t, |tx| create_agent(tx, t, NewAgent::named("Recepção"))
            .await)
        .await,
        "an agent named \"Recepção\" already exists",
    );
    let mut claims = NewAgent::named("Vendas");
    claims.numbers = Some(vec!["2000".into(), "1001".into()]);
    assert_conflict(
        scoped!(db, t, |tx| create_agent(tx, t, claims).await).await,
        "number \"1001\" already reaches agent \"Recepção\"",
    );
    let second = scoped!(db, t, |tx| create_agent(tx, t, NewAgent::named("Vendas"))
        .await)
    .await
    .expect("second");
    let id = second.id;
    assert_conflict(
        scoped!(db, t, |tx| update_agent(
            tx,
            id,
            AgentPatch {
                numbers: Some(vec!["1000".into()]),
                ..AgentPatch::default()
            }
        )
        .await)
        .await,
        "\"1000\"",
    );
    assert_conflict(
        scoped!(db, t, |tx| update_agent(
            tx,
            id,
            AgentPatch {
                name: Some("Recepção".into()),
                ..AgentPatch::default()
            }
        )
        .await)
        .await,
        "Recepção",
    );
    // An agent keeps its own numbers when they are written again.
    let first_id = first.id;
    let rewritten = scoped!(db, t, |tx| update_agent(
        tx,
        first_id,
        AgentPatch {
            numbers: Some(vec!["1001".into(), "1000".into()]),
            ..AgentPatch::default()
        }
    )
    .await)
    .await
    .expect("own numbers");
    assert_eq!(rewritten.numbers, vec!["1001", "1000"]);

    // Another tenant may use the same name and numbers.
    let other = tenant(db, "b.example").await.id;
    let mut same = NewAgent::named("Recepção");
    same.numbers = Some(vec!["1000".into()]);
    scoped!(db, other, |tx| create_agent(tx, other, same).await)
        .await
        .expect("another tenant's agent");
}

#[tokio::test]
async fn one_default_agent_per_tenant() {
    let scratch = scratch().await;
    let db = &scratch.db;
    let t = tenant(db, "a.example").await.id;
    let other = tenant(db, "b.example").await.id;
    let mut theirs = NewAgent::named("Deles");
    theirs.is_default = Some(true);
    let theirs = scoped!(db, other, |tx| create_agent(tx, other, theirs).await)
        .await
        .expect("other tenant's default");

    let mut a = NewAgent::named("A");
    a.is_default = Some(true);
    let a = scoped!(db, t, |tx| create_agent(tx, t, a).await)
        .await
        .expect("a");
    let mut b = NewAgent::named("B");
    b.is_default = Some(true);
    let b = scoped!(db, t, |tx| create_agent(tx, t, b).await)
        .await
        .expect("b");
    let defaults = |tenant: Uuid| {
        let db = db.clone();
        async move {
            scoped!(db, tenant, |tx| list_agents(tx, Page::default()).await)
                .await
                .expect("list")
                .into_iter()
                .filter(|a| a.is_default)
                .map(|a| a.id)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(defaults(t).await, vec![b.id], "the newest default wins");

    let a_id = a.id;
    scoped!(db, t, |tx| update_agent(
        tx,
        a_id,
        AgentPatch {
            is_default: Some(true),
            ..AgentPatch::default()
        }
    )
    .await)
    .await
    .expect("make a the default");
    assert_eq!(defaults(t).await, vec![a.id]);

    // A failed update (no such agent) leaves the default where it was.
    let missing = Uuid::new_v4();
    assert_not_found(
        scoped!(db, t, |tx| update_agent(
            tx,
            missing,
            AgentPatch {
                is_default: Some(true),
                ..AgentPatch::default()
            }
        )
        .await)
        .await,
    );
    assert_eq!(defaults(t).await, vec![a.id]);
    assert_eq!(
        defaults(other).await,
        vec![theirs.id],
        "other tenant untouched"
    );
}
