use super::*;

#[tokio::test]
async fn tenants_round_trip() {
    let scratch = scratch().await;
    let db = &scratch.db;
    let domain_uuid = Uuid::new_v4();
    let created = create_tenant(
        db,
        NewTenant {
            domain_uuid,
            domain_name: "Clinica.Example".into(),
            timezone: Some("America/Manaus".into()),
            enabled: Some(true),
            max_concurrent_calls: Some(3),
            busy_transfer: Some("1000".into()),
            requests_per_minute: Some(120),
            require_consent: Some(true),
            retention_days: Some(90),
        },
    )
    .await
    .expect("create");
    assert_eq!(created.domain_uuid, domain_uuid);
    assert_eq!(created.timezone, "America/Manaus");
    assert_eq!(created.max_concurrent_calls, Some(3));
    assert_eq!(get_tenant(db, created.id).await.expect("get"), created);

    let other = tenant(db, "b.example").await;
    assert_eq!(other.timezone, "America/Sao_Paulo", "the table's default");
    assert_eq!(other.busy_transfer, "");
    assert_eq!(other.max_concurrent_calls, None);
    let listed = list_tenants(db, Page::default()).await.expect("list");
    assert_eq!(
        listed,
        vec![other.clone(), created.clone()],
        "by domain name, any case"
    );
    let second = list_tenants(
        db,
        Page {
            limit: 1,
            offset: 1,
        },
    )
    .await
    .expect("page");
    assert_eq!(second, vec![created.clone()]);

    // By name in any case, and by the domain uuid's text.
    assert_eq!(
        lookup_tenant(db, "CLINICA.example").await.expect("lookup"),
        Some(created.clone())
    );
    assert_eq!(
        lookup_tenant(db, &domain_uuid.to_string())
            .await
            .expect("lookup"),
        Some(created.clone())
    );
    assert_eq!(
        lookup_tenant(db, "nobody.example").await.expect("lookup"),
        None
    );
    assert_eq!(lookup_tenant(db, "").await.expect("lookup"), None);
    assert_eq!(lookup_tenant(db, "a b").await.expect("lookup"), None);

    // null clears, absent keeps.
    let patch: TenantPatch =
        serde_json::from_str(r#"{"max_concurrent_calls": null, "timezone": "UTC"}"#)
            .expect("patch");
    assert_eq!(patch.max_concurrent_calls, Some(None));
    assert_eq!(patch.requests_per_minute, None);
    let updated = update_tenant(db, created.id, patch).await.expect("update");
    assert_eq!(updated.max_concurrent_calls, None);
    assert_eq!(updated.requests_per_minute, Some(120));
    assert_eq!(updated.timezone, "UTC");
    let updated = update_tenant(
        db,
        created.id,
        TenantPatch {
            enabled: Some(false),
            domain_name: Some("clinica2.example".into()),
            ..TenantPatch::default()
        },
    )
    .await
    .expect("update");
    assert!(!updated.enabled);
    assert_eq!(updated.domain_name, "clinica2.example");
    assert_eq!(
        update_tenant(db, created.id, TenantPatch::default())
            .await
            .expect("empty patch"),
        updated
    );

    delete_tenant(db, created.id).await.expect("delete");
    assert_not_found(get_tenant(db, created.id).await);
    assert_not_found(delete_tenant(db, created.id).await);
    assert_not_found(update_tenant(db, created.id, TenantPatch::default()).await);
    assert_not_found(
        update_tenant(
            db,
            created.id,
            TenantPatch {
                enabled: Some(true),
                ..TenantPatch::default()
            },
        )
        .await,
    );
    assert_eq!(
        lookup_tenant(db, "clinica2.example").await.expect("lookup"),
        None
    );
    assert_eq!(get_tenant(db, other.id).await.expect("other stays"), other);
}

#[tokio::test]
async fn deleting_a_tenant_takes_what_it_owns() {
    let scratch = scratch().await;
    let db = &scratch.db;
    let t = tenant(db, "a.example").await;
    let id = t.id;
    let (_, text) = scoped!(db, id, |tx| {
        create_agent(tx, id, NewAgent::named("Recepção")).await?;
        create_key(
            tx,
            id,
            NewApiKey {
                name: None,
                role: crate::tenancy::model::Role::Admin,
                expires_at: None,
            },
        )
        .await
    })
    .await
    .expect("populate");
    assert!(lookup_key(db, &text).await.expect("lookup").is_some());
    delete_tenant(db, id).await.expect("delete");
    assert_eq!(lookup_key(db, &text).await.expect("lookup"), None);
    let agents = scoped!(db, id, |tx| list_agents(tx, Page::default()).await)
        .await
        .expect("list");
    assert!(agents.is_empty());
}

#[tokio::test]
async fn tenant_input_is_checked() {
    let scratch = scratch().await;
    let db = &scratch.db;
    let existing = tenant(db, "a.example").await;

    assert_invalid(
        create_tenant(db, new_tenant_named("a b.example")).await,
        "domain_name",
    );
    assert_invalid(create_tenant(db, new_tenant_named("")).await, "domain_name");
    assert_invalid(
        create_tenant(db, new_tenant_named(&"x".repeat(254))).await,
        "domain_name",
    );
    let mut bad = new_tenant_named("c.example");
    bad.timezone = Some("Mars/Olympus".into());
    assert_invalid(create_tenant(db, bad).await, "timezone");
    let mut bad = new_tenant_named("c.example");
    bad.requests_per_minute = Some(0);
    assert_invalid(create_tenant(db, bad).await, "requests_per_minute");
    let mut bad = new_tenant_named("c.example");
    bad.max_concurrent_calls = Some(-1);
    assert_invalid(create_tenant(db, bad).await, "max_concurrent_calls");
    let mut bad = new_tenant_named("c.example");
    bad.busy_transfer = Some("sofia/ext 1000".into());
    assert_invalid(create_tenant(db, bad).await, "busy_transfer");
    let mut bad = new_tenant_named("c.example");
    bad.retention_days = Some(0);
    assert_invalid(create_tenant(db, bad).await, "retention_days");
    // LGPD rules: set, then back to the service's with null.
    let set = update_tenant(
        db,
        existing.id,
        TenantPatch {
            require_consent: Some(Some(true)),
            retention_days: Some(Some(30)),
            ..TenantPatch::default()
        },
    )
    .await
    .expect("set LGPD rules");
    assert_eq!(
        (set.require_consent, set.retention_days),
        (Some(true), Some(30))
    );
    let cleared = update_tenant(
        db,
        existing.id,
        TenantPatch {
            require_consent: Some(None),
            retention_days: Some(None),
            ..TenantPatch::default()
        },
    )
    .await
    .expect("clear LGPD rules");
    assert_eq!(
        (cleared.require_consent, cleared.retention_days),
        (None, None)
    );
    assert_invalid(
        update_tenant(
            db,
            existing.id,
            TenantPatch {
                requests_per_minute: Some(Some(-5)),
                ..TenantPatch::default()
            },
        )
        .await,
        "requests_per_minute",
    );
    assert_invalid(
        update_tenant(
            db,
            existing.id,
            TenantPatch {
                timezone: Some("Nowhere/Else".into()),
                ..TenantPatch::default()
            },
        )
        .await,
        "timezone",
    );

    // The same domain in another case, and the same FusionPBX domain uuid.
    assert_conflict(
        create_tenant(db, new_tenant_named("A.EXAMPLE")).await,
        "A.EXAMPLE",
    );
    let mut same_uuid = new_tenant_named("d.example");
    same_uuid.domain_uuid = existing.domain_uuid;
    assert_conflict(
        create_tenant(db, same_uuid).await,
        &existing.domain_uuid.to_string(),
    );
    let second = tenant(db, "e.example").await;
    assert_conflict(
        update_tenant(
            db,
            second.id,
            TenantPatch {
                domain_name: Some("a.example".into()),
                ..TenantPatch::default()
            },
        )
        .await,
        "a.example",
    );
    assert_eq!(get_tenant(db, existing.id).await.expect("get"), existing);

    // Unknown fields are refused when parsing.
    assert!(serde_json::from_str::<TenantPatch>(r#"{"id": "x"}"#).is_err());
    assert!(serde_json::from_str::<NewTenant>(
        r#"{"domain_uuid": "2b5b4b2e-8a8e-4b8e-9b8e-1b8e2b8e3b8e", "domain_name": "x", "nope": 1}"#
    )
    .is_err());
}
