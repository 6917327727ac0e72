use chrono::{Duration, Utc};

use super::*;
use crate::db::DbError;
use crate::tenancy::model::Role;

fn new_key(role: Role) -> NewApiKey {
    NewApiKey {
        name: Some("painel".into()),
        role,
        expires_at: None,
    }
}

/// Runs one statement around row-level security (to age a key).
async fn admin_execute(db: &Db, sql: &'static str, id: Uuid) {
    db.admin(move |tx| {
        Box::pin(async move {
            tx.execute(sql, &[&id]).await?;
            Ok::<_, DbError>(())
        })
    })
    .await
    .expect(sql);
}

#[tokio::test]
async fn keys_are_created_looked_up_and_revoked() {
    let scratch = scratch().await;
    let db = &scratch.db;
    let t = tenant(db, "a.example").await.id;

    let (record, text) = scoped!(db, t, |tx| create_key(tx, t, new_key(Role::Supervisor))
        .await)
    .await
    .expect("create");
    // vk_ + 8 + _ + 32, alphanumeric parts; the prefix is what lists show.
    assert_eq!(text.len(), 3 + 8 + 1 + 32, "{}", text.len());
    assert!(text.starts_with(&format!("vk_{}_", record.prefix)));
    assert!(text[3..]
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_'));
    assert_eq!(record.prefix.len(), 8);
    assert_eq!(record.role, Role::Supervisor);
    assert_eq!(record.name, "painel");
    assert_eq!(record.last_used_at, None);
    assert_eq!(record.revoked_at, None);
    let shown = format!(
        "{record:?} {}",
        serde_json::to_string(&record).expect("json")
    );
    assert!(
        !shown.contains(&text[12..]),
        "the secret part is never shown: {shown}"
    );

    let (other, other_text) = scoped!(db, t, |tx| create_key(tx, t, new_key(Role::Viewer)).await)
        .await
        .expect("second");
    assert_ne!(text, other_text);
    assert_ne!(record.prefix, other.prefix);

    let identity = lookup_key(db, &text).await.expect("lookup").expect("valid");
    assert_eq!(identity.key_id, record.id);
    assert_eq!(identity.tenant_id, t);
    assert_eq!(identity.role, Role::Supervisor);
    assert_eq!(
        lookup_key(db, &format!("  {text}\n"))
            .await
            .expect("lookup"),
        Some(identity),
        "surrounding whitespace is ignored"
    );

    // last_used_at: set on use, then at most once a minute.
    let id = record.id;
    let used = scoped!(db, t, |tx| get_key(tx, id).await)
        .await
        .expect("get")
        .last_used_at
        .expect("marked used");
    lookup_key(db, &text).await.expect("lookup again");
    let again = scoped!(db, t, |tx| get_key(tx, id).await)
        .await
        .expect("get")
        .last_used_at;
    assert_eq!(again, Some(used), "not rewritten within a minute");
    admin_execute(
        db,
        "UPDATE api_keys SET last_used_at = now() - interval '2 minutes' WHERE id = $1",
        id,
    )
    .await;
    lookup_key(db, &text).await.expect("lookup later");
    let later = scoped!(db, t, |tx| get_key(tx, id).await)
        .await
        .expect("get")
        .last_used_at
        .expect("used");
    assert!(
        later > Utc::now() - Duration::seconds(30),
        "rewritten after a minute"
    );

    // Unknown or malformed keys are simply not valid.
    let mut forged = text.clone().into_bytes();
    let last = forged.len() - 1;
    forged[last] = if forged[last] == b'a' { b'b' } else { b'a' };
    let forged = String::from_utf8(forged).expect("ascii");
    assert_eq!(lookup_key(db, &forged).await.expect("lookup"), None);
    assert_eq!(lookup_key(db, "").await.expect("lookup"), None);
    assert_eq!(
        lookup_key(db, "Bearer nonsense").await.expect("lookup"),
        None
    );
    assert_eq!(lookup_key(db, &text[..20]).await.expect("lookup"), None);

    let listed = scoped!(db, t, |tx| list_keys(tx, Page::default()).await)
        .await
        .expect("list");
    assert_eq!(listed.len(), 2);
    assert!(listed.iter().any(|k| k.id == other.id));

    let revoked = scoped!(db, t, |tx| revoke_key(tx, id).await)
        .await
        .expect("revoke");
    let revoked_at = revoked.revoked_at.expect("revoked");
    assert_eq!(lookup_key(db, &text).await.expect("lookup"), None);
    let again = scoped!(db, t, |tx| revoke_key(tx, id).await)
        .await
        .expect("revoke twice");
    assert_eq!(again.revoked_at, Some(revoked_at), "the first time is kept");
    assert!(
        lookup_key(db, &other_text).await.expect("lookup").is_some(),
        "the other key still works"
    );
    let missing = Uuid::new_v4();
    assert_not_found(scoped!(db, t, |tx| revoke_key(tx, missing).await).await);
    assert_not_found(scoped!(db, t, |tx| get_key(tx, missing).await).await);
}

#[tokio::test]
async fn expired_keys_are_not_valid() {
    let scratch = scratch().await;
    let db = &scratch.db;
    let t = tenant(db, "a.example").await.id;
    let mut expiring = new_key(Role::Agent);
    expiring.expires_at = Some(Utc::now() + Duration::hours(1));
    let (record, text) = scoped!(db, t, |tx| create_key(tx, t, expiring).await)
        .await
        .expect("create");
    assert!(record.expires_at.is_some());
    assert!(lookup_key(db, &text).await.expect("lookup").is_some());
    admin_execute(
        db,
        "UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE id = $1",
        record.id,
    )
    .await;
    assert_eq!(lookup_key(db, &text).await.expect("lookup"), None);

    let mut past = new_key(Role::Agent);
    past.expires_at = Some(Utc::now() - Duration::minutes(1));
    assert_invalid(
        scoped!(db, t, |tx| create_key(tx, t, past).await).await,
        "expires_at",
    );
    let mut long = new_key(Role::Agent);
    long.name = Some("x".repeat(201));
    assert_invalid(
        scoped!(db, t, |tx| create_key(tx, t, long).await).await,
        "name",
    );
    assert!(serde_json::from_str::<NewApiKey>(r#"{"role": "root"}"#).is_err());
    let parsed: NewApiKey =
        serde_json::from_str(r#"{"role": "viewer", "expires_at": "2099-01-01T00:00:00Z"}"#)
            .expect("parse");
    assert_eq!(parsed.role, Role::Viewer);
}
