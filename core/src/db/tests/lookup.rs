//! Migration 0002's lookups, as a service login that is neither superuser nor BYPASSRLS
//! nor the tables' owner: a domain and an API key can be resolved before any tenant is
//! known, and nothing else of any tenant is readable outside a tenant-scoped transaction.

use super::fixtures::*;
use super::*;

/// A LOGIN role that is only a member of `voice_app`, dropped afterwards.
struct ServiceLogin {
    name: String,
}

impl ServiceLogin {
    async fn create() -> Self {
        let name = format!("voice_svc_{}", Uuid::new_v4().simple());
        server_client()
            .await
            .batch_execute(&format!(
                "CREATE ROLE {name} LOGIN NOSUPERUSER NOBYPASSRLS; GRANT voice_app TO {name}"
            ))
            .await
            .expect("create the service login");
        Self { name }
    }

    async fn drop_role(self) {
        server_client()
            .await
            .batch_execute(&format!("DROP ROLE IF EXISTS {}", self.name))
            .await
            .expect("drop the service login");
    }
}

#[tokio::test]
async fn a_service_login_resolves_domains_and_keys_but_reads_no_tenant_directly() {
    let login = ServiceLogin::create().await;
    let user = login.name.clone();
    with_database(move |config| async move {
        let owner = Db::from_config(config.clone(), 2).await.expect("connect");
        owner.migrate().await.expect("migrate");
        let a = populate(&owner, "A.Example.com").await;
        let b = populate(&owner, "b.example.com").await;
        let hash = random_hash();
        let stored = hash.clone();
        owner
            .with_tenant(a.tenant, move |tx| {
                Box::pin(async move {
                    tx.execute(
                        "INSERT INTO api_keys (tenant_id, role, prefix, key_hash)
                         VALUES ($1, 'agent', 'vk_look', $2)",
                        &[&a.tenant, &stored],
                    )
                    .await?;
                    Ok::<_, DbError>(())
                })
            })
            .await
            .expect("a key of A");

        let mut service_config = config.clone();
        service_config.user(&user);
        let service = Db::from_config(service_config, 2)
            .await
            .expect("connect as the service login");
        let (found, key, direct) = service
            .admin(move |tx| {
                Box::pin(async move {
                    let found: Uuid = tx
                        .query_one("SELECT id FROM tenant_lookup('a.example.COM')", &[])
                        .await?
                        .try_get(0)?;
                    let key: Uuid = tx
                        .query_one("SELECT tenant_id FROM api_key_lookup($1)", &[&hash])
                        .await?
                        .try_get(0)?;
                    // The lookups' own role cannot be borrowed: the login is no member.
                    let borrowed = tx.batch_execute("SET LOCAL ROLE voice_lookup").await;
                    assert!(borrowed.is_err(), "the service login became voice_lookup");
                    Ok::<_, DbError>((found, key, ()))
                })
            })
            .await
            .expect("lookups as the service login");
        assert_eq!((found, key, direct), (a.tenant, a.tenant, ()));

        // Outside a tenant's transaction, no table of any tenant answers.
        for table in [
            "tenants",
            "agents",
            "provider_instances",
            "api_keys",
            "events",
        ] {
            let sql = format!("SELECT count(*) FROM {table}");
            let read = service
                .admin(move |tx| {
                    Box::pin(async move {
                        let row = tx.query_one(&sql, &[]).await?;
                        Ok::<i64, DbError>(row.try_get(0)?)
                    })
                })
                .await;
            assert!(
                matches!(read, Err(_) | Ok(0)),
                "{table} readable without a tenant: {read:?}"
            );
        }
        // In A's transaction: A's agent, never B's.
        let agents = service
            .with_tenant(a.tenant, |tx| {
                Box::pin(async move {
                    let rows = tx.query("SELECT id FROM agents", &[]).await?;
                    Ok::<_, DbError>(rows.iter().map(|r| r.get::<_, Uuid>(0)).collect::<Vec<_>>())
                })
            })
            .await
            .expect("A's agents");
        assert_eq!(agents, vec![a.agent]);
        assert_ne!(a.agent, b.agent);
        drop(service);
        drop(owner);
    })
    .await;
    login.drop_role().await;
}
