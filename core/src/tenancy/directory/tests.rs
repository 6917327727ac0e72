//! Against the real PostgreSQL (`TEST_DATABASE_URL`), each test in a scratch database.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::json;

use super::*;
use crate::db::scratch::ScratchDb;

/// How long a committed change may take to reach the next resolve.
const FRESHNESS: Duration = Duration::from_secs(1);

async fn scratch() -> ScratchDb {
    ScratchDb::create(4)
        .await
        .expect("scratch database (is PostgreSQL running?)")
}

async fn directory(scratch: &ScratchDb) -> Directory {
    Directory::start(scratch.db.clone(), &scratch.url, Some(key()))
        .await
        .expect("directory starts")
}

fn key() -> CredentialKey {
    CredentialKey::from_base64(&base64::engine::general_purpose::STANDARD.encode([3u8; 32]))
        .unwrap()
}

/// Runs one statement as `tenant` (row-level security on, as the services run).
async fn as_tenant(db: &Db, tenant: Uuid, sql: &str, params: Vec<String>) -> u64 {
    let what = sql.to_string();
    let sql = sql.to_string();
    db.with_tenant(tenant, move |tx| {
        Box::pin(async move {
            let refs: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = params
                .iter()
                .map(|p| p as &(dyn tokio_postgres::types::ToSql + Sync))
                .collect();
            Ok::<_, DbError>(tx.execute(&sql, &refs).await?)
        })
    })
    .await
    .unwrap_or_else(|e| panic!("{what}: {e}"))
}

/// A tenant with one agent; returns (tenant id, domain uuid, agent id).
async fn tenant_with_agent(db: &Db, domain: &str, prompt: &str) -> (Uuid, Uuid, Uuid) {
    let domain_uuid = Uuid::new_v4();
    let tenant = db.create_tenant(domain_uuid, domain).await.unwrap();
    let agent = add_agent(db, tenant, "recepcao", prompt, &[], false).await;
    (tenant, domain_uuid, agent)
}

async fn add_agent(
    db: &Db,
    tenant: Uuid,
    name: &str,
    prompt: &str,
    numbers: &[&str],
    is_default: bool,
) -> Uuid {
    let id = Uuid::new_v4();
    let numbers = format!("{{{}}}", numbers.join(","));
    as_tenant(
        db,
        tenant,
        "INSERT INTO agents (id, tenant_id, name, prompt, numbers, is_default) \
         VALUES ($1::text::uuid, $2::text::uuid, $3, $4, $5::text::text[], $6::text::boolean)",
        vec![
            id.to_string(),
            tenant.to_string(),
            name.into(),
            prompt.into(),
            numbers,
            is_default.to_string(),
        ],
    )
    .await;
    id
}

async fn add_provider(db: &Db, tenant: Uuid, kind: &str, name: &str, priority: i32) -> Uuid {
    let id = Uuid::new_v4();
    let credentials =
        Credentials::new(BTreeMap::from([("api_key".into(), format!("sk-{name}"))])).unwrap();
    let sealed = key().seal(tenant, id, &credentials).unwrap();
    let sealed_hex: String = sealed.iter().map(|b| format!("{b:02x}")).collect();
    as_tenant(
        db,
        tenant,
        "INSERT INTO provider_instances (id, tenant_id, kind, name, settings, credentials, priority) \
         VALUES ($1::text::uuid, $2::text::uuid, $3, $4, $5::text::jsonb, decode($6, 'hex'), $7::text::int)",
        vec![
            id.to_string(),
            tenant.to_string(),
            kind.into(),
            name.into(),
            json!({"model": name}).to_string(),
            sealed_hex,
            priority.to_string(),
        ],
    )
    .await;
    id
}

/// Resolves `domain` until `seen` holds, returning how long after `since` that was.
async fn until_seen(
    directory: &Directory,
    domain: &str,
    since: Instant,
    seen: impl Fn(Option<&TenantConfig>) -> bool,
) -> Duration {
    loop {
        let config = directory.tenant(domain).await.unwrap();
        if seen(config.as_deref()) {
            return since.elapsed();
        }
        assert!(
            since.elapsed() < FRESHNESS * 3,
            "change not seen after {:?}",
            since.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn resolves_by_name_in_any_case_and_by_uuid() {
    let scratch = scratch().await;
    let (tenant, domain_uuid, agent) = tenant_with_agent(
        &scratch.db,
        "Clinica.Example.com",
        "Você é a recepcionista.",
    )
    .await;
    let directory = directory(&scratch).await;

    let by_name = directory
        .tenant("clinica.example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by_name.tenant.id, tenant);
    assert_eq!(by_name.agents.len(), 1);
    assert_eq!(by_name.agents[0].id, agent);
    assert_eq!(by_name.agents[0].prompt, "Você é a recepcionista.");
    let upper = directory
        .tenant("CLINICA.EXAMPLE.COM")
        .await
        .unwrap()
        .unwrap();
    let by_uuid = directory
        .tenant(&domain_uuid.to_string())
        .await
        .unwrap()
        .unwrap();
    let by_upper_uuid = directory
        .tenant(&domain_uuid.to_string().to_uppercase())
        .await
        .unwrap()
        .unwrap();
    // One cached entry behind every spelling.
    assert!(Arc::ptr_eq(&by_name, &upper));
    assert!(Arc::ptr_eq(&by_name, &by_uuid));
    assert!(Arc::ptr_eq(&by_name, &by_upper_uuid));

    assert!(directory
        .tenant("other.example.com")
        .await
        .unwrap()
        .is_none());
    assert!(directory
        .tenant(&Uuid::new_v4().to_string())
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn an_agent_update_is_seen_by_the_next_resolve_within_a_second() {
    let scratch = scratch().await;
    let (tenant, _, agent) = tenant_with_agent(&scratch.db, "a.example", "old prompt").await;
    let directory = directory(&scratch).await;
    let before = directory.tenant("a.example").await.unwrap().unwrap();
    assert_eq!(before.agents[0].prompt, "old prompt");
    assert!(Arc::ptr_eq(
        &before,
        &directory.tenant("a.example").await.unwrap().unwrap()
    ));

    as_tenant(
        &scratch.db,
        tenant,
        "UPDATE agents SET prompt = $1 WHERE id = $2::text::uuid",
        vec!["new prompt".into(), agent.to_string()],
    )
    .await;
    let committed = Instant::now();
    let took = until_seen(&directory, "a.example", committed, |c| {
        c.is_some_and(|c| c.agents[0].prompt == "new prompt")
    })
    .await;
    assert!(took < FRESHNESS, "prompt change seen after {took:?}");
    println!("agent prompt change seen after {took:?}");
}

#[tokio::test]
async fn provider_changes_and_a_disabled_tenant_are_seen_within_a_second() {
    let scratch = scratch().await;
    let (tenant, _, _) = tenant_with_agent(&scratch.db, "b.example", "p").await;
    let second = add_provider(&scratch.db, tenant, "gemini_live", "gemini", 20).await;
    let first = add_provider(&scratch.db, tenant, "openai_realtime", "openai", 10).await;
    let directory = directory(&scratch).await;

    let config = directory.tenant("b.example").await.unwrap().unwrap();
    let chain: Vec<Uuid> = config.providers.iter().map(|(p, _)| p.id).collect();
    assert_eq!(chain, vec![first, second], "by ascending priority");
    let (_, credentials) = &config.providers[0];
    assert_eq!(
        credentials
            .as_ref()
            .and_then(|c| c.get("api_key"))
            .map(|s| s.expose().to_string()),
        Some("sk-openai".to_string())
    );

    // Disabling the first instance reorders the chain.
    as_tenant(
        &scratch.db,
        tenant,
        "UPDATE provider_instances SET enabled = false WHERE id = $1::text::uuid",
        vec![first.to_string()],
    )
    .await;
    let committed = Instant::now();
    let took = until_seen(&directory, "b.example", committed, |c| {
        c.is_some_and(|c| c.providers.len() == 1 && c.providers[0].0.id == second)
    })
    .await;
    assert!(took < FRESHNESS, "provider change seen after {took:?}");

    // Disabling the tenant (the admin path).
    let id = tenant;
    scratch
        .db
        .admin(move |tx| {
            Box::pin(async move {
                tx.execute(
                    "SELECT set_config('app.tenant_id', $1, true)",
                    &[&id.to_string()],
                )
                .await?;
                tx.execute("UPDATE tenants SET enabled = false WHERE id = $1", &[&id])
                    .await?;
                Ok::<_, DbError>(())
            })
        })
        .await
        .unwrap();
    let committed = Instant::now();
    let took = until_seen(&directory, "b.example", committed, |c| {
        c.is_some_and(|c| !c.tenant.enabled)
    })
    .await;
    assert!(took < FRESHNESS, "tenant disable seen after {took:?}");
}

#[tokio::test]
async fn agents_are_chosen_by_number_then_default_then_the_only_one() {
    let scratch = scratch().await;
    let db = &scratch.db;
    let tenant = db.create_tenant(Uuid::new_v4(), "c.example").await.unwrap();
    let sales = add_agent(db, tenant, "vendas", "v", &["3001", "vendas"], false).await;
    let directory = directory(&scratch).await;

    // One agent: it answers every number.
    let config = directory.tenant("c.example").await.unwrap().unwrap();
    assert_eq!(config.agent_for(Some("9999")).map(|a| a.id), Some(sales));
    assert_eq!(config.agent_for(None).map(|a| a.id), Some(sales));

    // Two agents and no default: only claimed numbers reach one.
    let support = add_agent(db, tenant, "suporte", "s", &["3002"], false).await;
    let committed = Instant::now();
    until_seen(&directory, "c.example", committed, |c| {
        c.is_some_and(|c| c.agents.len() == 2)
    })
    .await;
    let config = directory.tenant("c.example").await.unwrap().unwrap();
    assert_eq!(config.agent_for(Some("3002")).map(|a| a.id), Some(support));
    assert_eq!(config.agent_for(Some("vendas")).map(|a| a.id), Some(sales));
    assert!(config.agent_for(Some("9999")).is_none());
    assert!(config.agent_for(None).is_none());

    // A default takes the numbers no agent claims.
    let front = add_agent(db, tenant, "recepcao", "r", &[], true).await;
    let committed = Instant::now();
    until_seen(&directory, "c.example", committed, |c| {
        c.is_some_and(|c| c.agents.len() == 3)
    })
    .await;
    let config = directory.tenant("c.example").await.unwrap().unwrap();
    assert_eq!(config.agent_for(Some("9999")).map(|a| a.id), Some(front));
    assert_eq!(config.agent_for(None).map(|a| a.id), Some(front));
    assert_eq!(config.agent_for(Some("3001")).map(|a| a.id), Some(sales));

    // Disabled agents are not there at all, even for their own number.
    as_tenant(
        db,
        tenant,
        "UPDATE agents SET enabled = false WHERE id = $1::text::uuid",
        vec![sales.to_string()],
    )
    .await;
    let committed = Instant::now();
    until_seen(&directory, "c.example", committed, |c| {
        c.is_some_and(|c| c.agents.len() == 2)
    })
    .await;
    let config = directory.tenant("c.example").await.unwrap().unwrap();
    assert!(config.agents.iter().all(|a| a.id != sales));
    assert_eq!(config.agent_for(Some("3001")).map(|a| a.id), Some(front));
}

#[tokio::test]
async fn after_the_listener_is_lost_it_reconnects_and_the_cache_starts_over() {
    let scratch = scratch().await;
    let (tenant, _, agent) = tenant_with_agent(&scratch.db, "d.example", "one").await;
    let directory = directory(&scratch).await;
    let before = directory.tenant("d.example").await.unwrap().unwrap();
    assert_eq!(directory.listen_sessions(), 1);

    // Kill the listener's backend, as a server restart or a network cut would.
    let killed = scratch
        .db
        .admin(|tx| {
            Box::pin(async move {
                let row = tx
                    .query_one(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
                         WHERE application_name = $1 AND datname = current_database()",
                        &[&APPLICATION_NAME],
                    )
                    .await?;
                Ok::<_, DbError>(row.get::<_, i64>(0))
            })
        })
        .await
        .unwrap();
    assert_eq!(killed, 1);
    let started = Instant::now();
    while directory.listen_sessions() < 2 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "listener did not reconnect"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(directory.is_listening());
    let after = directory.tenant("d.example").await.unwrap().unwrap();
    assert!(
        !Arc::ptr_eq(&before, &after),
        "the cache was cleared on reconnect"
    );

    // And the new listener drops entries too.
    as_tenant(
        &scratch.db,
        tenant,
        "UPDATE agents SET prompt = 'two' WHERE id = $1::text::uuid",
        vec![agent.to_string()],
    )
    .await;
    let took = until_seen(&directory, "d.example", Instant::now(), |c| {
        c.is_some_and(|c| c.agents[0].prompt == "two")
    })
    .await;
    assert!(took < FRESHNESS, "change seen after {took:?}");
}

#[tokio::test]
async fn without_a_listener_nothing_is_served_from_the_cache() {
    let scratch = scratch().await;
    let (tenant, _, agent) = tenant_with_agent(&scratch.db, "e.example", "one").await;
    let directory = Directory::unlistened(scratch.db.clone(), None);
    let first = directory.tenant("e.example").await.unwrap().unwrap();
    let second = directory.tenant("e.example").await.unwrap().unwrap();
    assert!(!Arc::ptr_eq(&first, &second), "loaded afresh each time");
    as_tenant(
        &scratch.db,
        tenant,
        "UPDATE agents SET prompt = 'two' WHERE id = $1::text::uuid",
        vec![agent.to_string()],
    )
    .await;
    // No notification can arrive, yet the very next resolve sees the change.
    let config = directory.tenant("e.example").await.unwrap().unwrap();
    assert_eq!(config.agents[0].prompt, "two");
}

#[tokio::test]
async fn a_bad_listen_url_fails_at_start() {
    let scratch = scratch().await;
    let err = Directory::start(
        scratch.db.clone(),
        "postgres://postgres:hunter2@127.0.0.1:1/nowhere",
        None,
    )
    .await
    .unwrap_err();
    assert!(!err.to_string().contains("hunter2"), "{err}");
    let err = Directory::start(scratch.db.clone(), "not a url at all=", None)
        .await
        .unwrap_err();
    assert!(matches!(err, DbError::InvalidUrl { .. }), "{err}");
}
