use serde_json::json;

use super::*;
use crate::db::DbError;
use crate::tenancy::crypto::CryptoError;

const SECRET: &str = "sk-live-0123456789abcdefSEGREDO";

fn openai(name: &str, priority: i32, secret: Option<&str>) -> NewProvider {
    NewProvider {
        kind: "openai".into(),
        name: name.into(),
        settings: Some(json!({"chat": {"model": "gpt-4o-mini"}})),
        credentials: secret.map(secrets),
        priority: Some(priority),
        enabled: None,
    }
}

/// The `credentials` column as stored, read around row-level security.
async fn stored_credentials(db: &Db, id: Uuid) -> Option<Vec<u8>> {
    db.admin(move |tx| {
        Box::pin(async move {
            let row = tx
                .query_one(
                    "SELECT credentials FROM provider_instances WHERE id = $1",
                    &[&id],
                )
                .await?;
            Ok::<_, DbError>(row.try_get(0)?)
        })
    })
    .await
    .expect("read credentials")
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[tokio::test]
async fn credentials_are_sealed_and_only_the_chain_opens_them() {
    let scratch = scratch().await;
    let db = &scratch.db;
    let t = tenant(db, "a.example").await.id;
    let key = key_of(7);

    let k = key.clone();
    let created = scoped!(db, t, |tx| create_provider(
        tx,
        Some(&k),
        t,
        openai("principal", 10, Some(SECRET))
    )
    .await)
    .await
    .expect("create");
    assert!(created.has_credentials);
    assert_eq!(created.kind, "openai");
    assert_eq!(created.settings, json!({"chat": {"model": "gpt-4o-mini"}}));
    assert_eq!(created.priority, 10);

    let stored = stored_credentials(db, created.id)
        .await
        .expect("sealed bytes");
    assert!(
        !contains(&stored, SECRET),
        "the secret is not stored in the clear"
    );
    assert!(!contains(&stored, "api_key"), "nor its name");

    let id = created.id;
    let got = scoped!(db, t, |tx| get_provider(tx, id).await)
        .await
        .expect("get");
    assert_eq!(got, created);
    let listed = scoped!(db, t, |tx| list_providers(tx, Page::default()).await)
        .await
        .expect("list");
    assert_eq!(listed, vec![created.clone()]);
    let shown = format!(
        "{} {:?} {:?}",
        serde_json::to_string(&listed).expect("json"),
        listed,
        openai("x", 1, Some(SECRET))
    );
    assert!(!shown.contains(SECRET), "{shown}");

    let k = key.clone();
    let chain = scoped!(db, t, |tx| provider_chain(tx, Some(&k)).await)
        .await
        .expect("chain");
    assert_eq!(chain.len(), 1);
    assert_eq!(chain[0].0, created);
    let opened = chain[0].1.as_ref().expect("credentials");
    assert_eq!(
        opened.get("api_key").map(|s| s.expose().to_string()),
        Some(SECRET.to_string())
    );

    // The wrong key fails clearly, naming the instance, never showing the secret.
    let wrong = key_of(8);
    let failed = scoped!(db, t, |tx| provider_chain(tx, Some(&wrong)).await).await;
    match &failed {
        Err(StoreError::Crypto(e)) => {
            let message = e.to_string();
            assert!(message.contains("principal"), "{message}");
            assert!(message.contains(&id.to_string()), "{message}");
            assert!(!message.contains(SECRET), "{message}");
        }
        other => panic!("expected a crypto error, got {other:?}"),
    }
    // No key at all.
    assert!(matches!(
        scoped!(db, t, |tx| provider_chain(tx, None).await).await,
        Err(StoreError::Crypto(CryptoError::NoKey))
    ));
}

#[tokio::test]
async fn a_ciphertext_moved_to_another_row_does_not_open() {
    let scratch = scratch().await;
    let db = &scratch.db;
    let t = tenant(db, "a.example").await.id;
    let key = key_of(7);
    let k = key.clone();
    let (first, second) = scoped!(db, t, |tx| {
        let first = create_provider(tx, Some(&k), t, openai("um", 1, Some(SECRET))).await?;
        let second = create_provider(tx, Some(&k), t, openai("dois", 2, Some("other"))).await?;
        Ok::<_, StoreError>((first.id, second.id))
    })
    .await
    .expect("create");
    db.admin(move |tx| {
        Box::pin(async move {
            tx.execute(
                "UPDATE provider_instances SET credentials = \
                 (SELECT credentials FROM provider_instances WHERE id = $1) WHERE id = $2",
                &[&first, &second],
            )
            .await?;
            Ok::<_, DbError>(())
        })
    })
    .await
    .expect("copy the ciphertext");
    let failed = scoped!(db, t, |tx| provider_chain(tx, Some(&key)).await).await;
    match failed {
        Err(StoreError::Crypto(e)) => assert!(e.to_string().contains("\"dois\""), "{e}"),
        other => panic!("expected a crypto error, got {other:?}"),
    }
}

#[tokio::test]
async fn the_chain_is_enabled_instances_by_priority() {
    let scratch = scratch().await;
    let db = &scratch.db;
    let t = tenant(db, "a.example").await.id;
    let key = key_of(7);
    let k = key.clone();
    let (backup, main, off) = scoped!(db, t, |tx| {
        let backup = create_provider(tx, Some(&k), t, openai("reserva", 20, None)).await?;
        let main = create_provider(tx, Some(&k), t, openai("principal", 5, Some(SECRET))).await?;
        let mut disabled = openai("desligado", 1, None);
        disabled.enabled = Some(false);
        let off = create_provider(tx, Some(&k), t, disabled).await?;
        Ok::<_, StoreError>((backup, main, off))
    })
    .await
    .expect("create");
    assert!(!backup.has_credentials);
    assert!(!off.enabled);
    let k = key.clone();
    let chain = scoped!(db, t, |tx| provider_chain(tx, Some(&k)).await)
        .await
        .expect("chain");
    let names: Vec<&str> = chain.iter().map(|(p, _)| p.name.as_str()).collect();
    assert_eq!(names, vec!["principal", "reserva"]);
    assert!(chain[0].1.is_some());
    assert!(chain[1].1.is_none(), "no credentials, none opened");
    // Without credentials anywhere in the chain, no key is needed.
    let main_id = main.id;
    scoped!(db, t, |tx| update_provider(
        tx,
        None,
        main_id,
        ProviderPatch {
            enabled: Some(false),
            ..ProviderPatch::default()
        }
    )
    .await)
    .await
    .expect("disable");
    let chain = scoped!(db, t, |tx| provider_chain(tx, None).await)
        .await
        .expect("chain without key");
    assert_eq!(chain.len(), 1);
    assert_eq!(chain[0].0.id, backup.id);
}

#[tokio::test]
async fn providers_update_and_delete() {
    let scratch = scratch().await;
    let db = &scratch.db;
    let t = tenant(db, "a.example").await.id;
    let key = key_of(7);
    let k = key.clone();
    let (one, two) = scoped!(db, t, |tx| {
        let one = create_provider(tx, Some(&k), t, openai("um", 1, Some(SECRET))).await?;
        let two = create_provider(tx, Some(&k), t, openai("dois", 2, None)).await?;
        Ok::<_, StoreError>((one, two))
    })
    .await
    .expect("create");

    // New credentials replace the old ones.
    let (k, id) = (key.clone(), one.id);
    let patch: ProviderPatch = serde_json::from_value(json!({
        "credentials": {"api_key": "sk-new"},
        "priority": 3,
        "settings": {"chat": {"model": "gpt-4o"}}
    }))
    .expect("patch");
    let updated = scoped!(db, t, |tx| update_provider(tx, Some(&k), id, patch).await)
        .await
        .expect("update");
    assert!(updated.has_credentials);
    assert_eq!(updated.priority, 3);
    assert_eq!(updated.settings, json!({"chat": {"model": "gpt-4o"}}));
    let k = key.clone();
    let chain = scoped!(db, t, |tx| provider_chain(tx, Some(&k)).await)
        .await
        .expect("chain");
    let names: Vec<&str> = chain.iter().map(|(p, _)| p.name.as_str()).collect();
    assert_eq!(names, vec!["dois", "um"], "reordered by the new priority");
    let opened = chain[1].1.as_ref().expect("credentials");
    assert_eq!(opened.get("api_key").map(|s| s.expose()), Some("sk-new"));

    // Credentials without a key are refused; null clears them (no key needed).
    let id = two.id;
    let failed = scoped!(db, t, |tx| update_provider(
        tx,
        None,
        id,
        ProviderPatch {
            credentials: Some(Some(secrets("x"))),
            ..ProviderPatch::default()
        }
    )
    .await)
    .await;
    assert!(matches!(
        failed,
        Err(StoreError::Crypto(CryptoError::NoKey))
    ));
    let id = one.id;
    let patch: ProviderPatch = serde_json::from_value(json!({"credentials": null})).expect("patch");
    assert_eq!(patch.credentials, Some(None));
    let cleared = scoped!(db, t, |tx| update_provider(tx, None, id, patch).await)
        .await
        .expect("clear");
    assert!(!cleared.has_credentials);
    assert_eq!(stored_credentials(db, id).await, None);

    let id = two.id;
    assert_conflict(
        scoped!(db, t, |tx| update_provider(
            tx,
            None,
            id,
            ProviderPatch {
                name: Some("um".into()),
                ..ProviderPatch::default()
            }
        )
        .await)
        .await,
        "a provider instance named \"um\" already exists",
    );
    scoped!(db, t, |tx| delete_provider(tx, id).await)
        .await
        .expect("delete");
    assert_not_found(scoped!(db, t, |tx| get_provider(tx, id).await).await);
    assert_not_found(scoped!(db, t, |tx| delete_provider(tx, id).await).await);
    let k = key.clone();
    assert_not_found(
        scoped!(db, t, |tx| update_provider(
            tx,
            Some(&k),
            id,
            ProviderPatch {
                credentials: Some(Some(secrets("x"))),
                ..ProviderPatch::default()
            }
        )
        .await)
        .await,
    );
}

#[tokio::test]
async fn provider_input_is_checked() {
    let scratch = scratch().await;
    let db = &scratch.db;
    let t = tenant(db, "a.example").await.id;
    let key = key_of(7);
    let attempt = |new: NewProvider, with_key: bool| {
        let db = db.clone();
        let key = key.clone();
        async move {
            scoped!(db, t, |tx| create_provider(
                tx,
                with_key.then_some(&key),
                t,
                new
            )
            .await)
            .await
        }
    };
    let mut bad = openai("a", 1, None);
    bad.kind = "skynet".into();
    assert_invalid(attempt(bad, true).await, "skynet");
    assert_invalid(attempt(openai("", 1, None), true).await, "name");
    assert_invalid(attempt(openai("a", -1, None), true).await, "priority");
    let mut bad = openai("a", 1, None);
    bad.settings = Some(json!(["x"]));
    assert_invalid(attempt(bad, true).await, "settings");
    // Settings a call could not use are refused when written.
    let mut bad = openai("a", 1, None);
    bad.settings = Some(json!({"chat": {"modle": "gpt-4o"}}));
    assert_invalid(attempt(bad, true).await, "modle");
    let mut bad = openai("a", 1, None);
    bad.settings = Some(json!({"chat": {"api_key": "sk-in-the-clear"}}));
    assert_invalid(attempt(bad, true).await, "credentials");
    // A new address needs the instance's own key, or the platform's would go there.
    let mut bad = openai("a", 1, None);
    bad.settings = Some(json!({"chat": {"url": "http://elsewhere.example/v1/chat/completions"}}));
    assert_invalid(attempt(bad, true).await, "api_key");
    assert!(matches!(
        attempt(openai("a", 1, Some(SECRET)), false).await,
        Err(StoreError::Crypto(CryptoError::NoKey))
    ));
    let mut bad = openai("a", 1, None);
    bad.credentials = Some(std::collections::BTreeMap::from([(
        "API-KEY".to_string(),
        SECRET.to_string(),
    )]));
    match attempt(bad, true).await {
        Err(e @ StoreError::Crypto(CryptoError::Invalid(_))) => {
            assert!(!e.to_string().contains(SECRET), "{e}")
        }
        other => panic!("expected invalid credentials, got {other:?}"),
    }
    // No secrets at all is no credentials.
    let mut empty = openai("vazio", 1, None);
    empty.credentials = Some(Default::default());
    let created = attempt(empty, false).await.expect("empty credentials");
    assert!(!created.has_credentials);
    assert_conflict(
        attempt(openai("vazio", 2, None), true).await,
        "a provider instance named \"vazio\" already exists",
    );
    assert!(serde_json::from_value::<NewProvider>(
        json!({"kind": "openai", "name": "a", "api_key": "x"})
    )
    .is_err());
}
