//! Against the real PostgreSQL (`TEST_DATABASE_URL`, default the local server as
//! `postgres`): each test gets a fresh migrated database ([`ScratchDb`]), dropped at the end.

use base64::Engine;
use uuid::Uuid;

use super::*;
use crate::db::scratch::ScratchDb;
use crate::tenancy::crypto::CredentialKey;
use crate::tenancy::model::Tenant;

/// `$body` (a `Result<_, StoreError>` expression using `$tx`) in one transaction of
/// `$tenant`, through [`Db::with_tenant`].
macro_rules! scoped {
    ($db:expr, $tenant:expr, |$tx:ident| $body:expr) => {
        $db.with_tenant($tenant, move |$tx| Box::pin(async move { $body }))
    };
}

mod agents;
mod api_keys;
mod isolation;
mod knowledge;
mod providers;
mod tenants;

async fn scratch() -> ScratchDb {
    ScratchDb::create(4)
        .await
        .expect("create a scratch database (is PostgreSQL running?)")
}

fn new_tenant_named(domain: &str) -> NewTenant {
    NewTenant {
        domain_uuid: Uuid::new_v4(),
        domain_name: domain.into(),
        timezone: None,
        enabled: None,
        max_concurrent_calls: None,
        busy_transfer: None,
        requests_per_minute: None,
        require_consent: None,
        retention_days: None,
    }
}

async fn tenant(db: &Db, domain: &str) -> Tenant {
    create_tenant(db, new_tenant_named(domain))
        .await
        .expect("create tenant")
}

fn key_of(byte: u8) -> CredentialKey {
    CredentialKey::from_base64(&base64::engine::general_purpose::STANDARD.encode([byte; 32]))
        .expect("a 32-byte key")
}

fn secrets(value: &str) -> std::collections::BTreeMap<String, String> {
    std::collections::BTreeMap::from([("api_key".to_string(), value.to_string())])
}

#[track_caller]
fn assert_invalid<T: std::fmt::Debug>(result: Result<T, StoreError>, needle: &str) {
    match result {
        Err(StoreError::Invalid(message)) => {
            assert!(message.contains(needle), "{message:?} mentions {needle:?}")
        }
        other => panic!("expected Invalid({needle:?}), got {other:?}"),
    }
}

#[track_caller]
fn assert_conflict<T: std::fmt::Debug>(result: Result<T, StoreError>, needle: &str) {
    match result {
        Err(StoreError::Conflict(message)) => {
            assert!(message.contains(needle), "{message:?} mentions {needle:?}")
        }
        other => panic!("expected Conflict({needle:?}), got {other:?}"),
    }
}

#[track_caller]
fn assert_not_found<T: std::fmt::Debug>(result: Result<T, StoreError>) {
    assert!(
        matches!(result, Err(StoreError::NotFound)),
        "expected NotFound, got {result:?}"
    );
}

#[test]
fn pages_are_checked() {
    assert_eq!(
        Page::default(),
        Page {
            limit: 50,
            offset: 0
        }
    );
    assert!(Page::new(Some(200), Some(0)).is_ok());
    assert!(matches!(
        Page::new(Some(0), None),
        Err(StoreError::Invalid(_))
    ));
    assert!(matches!(
        Page::new(Some(201), None),
        Err(StoreError::Invalid(_))
    ));
    assert!(matches!(
        Page::new(None, Some(-1)),
        Err(StoreError::Invalid(_))
    ));
    let parsed: Page = serde_json::from_str(r#"{"offset": 10}"#).expect("a page");
    assert_eq!(
        parsed,
        Page {
            limit: 50,
            offset: 10
        }
    );
}
