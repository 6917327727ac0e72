//! Every store function run as tenant A with tenant B's ids: nothing found, nothing changed.

use super::*;
use crate::tenancy::crypto::CredentialKey;
use crate::tenancy::model::{AgentRecord, ApiKeyRecord, KnowledgeDocument, ProviderInstance, Role};

/// One tenant's rows, made through the store.
#[derive(Debug, Clone, PartialEq)]
struct Populated {
    tenant: Uuid,
    agent: AgentRecord,
    provider: ProviderInstance,
    document: KnowledgeDocument,
    key: ApiKeyRecord,
}

async fn populate(db: &Db, key: &CredentialKey, domain: &str, secret: &str) -> Populated {
    let t = tenant(db, domain).await.id;
    let (key, secret) = (key.clone(), secret.to_string());
    scoped!(db, t, |tx| {
        let mut agent = NewAgent::named("Recepção");
        agent.numbers = Some(vec!["1000".into()]);
        agent.is_default = Some(true);
        let agent = create_agent(tx, t, agent).await?;
        let provider = create_provider(
            tx,
            Some(&key),
            t,
            NewProvider {
                kind: "openai".into(),
                name: "principal".into(),
                settings: None,
                credentials: Some(secrets(&secret)),
                priority: Some(10),
                enabled: None,
            },
        )
        .await?;
        let document = create_document(
            tx,
            t,
            NewDocument {
                agent_id: None,
                title: Some("Horário de atendimento".into()),
                body: "Atendemos das 8h às 18h.".into(),
                source: None,
            },
        )
        .await?;
        let (key, _) = create_key(
            tx,
            t,
            NewApiKey {
                name: None,
                role: Role::Admin,
                expires_at: None,
            },
        )
        .await?;
        Ok::<_, StoreError>(Populated {
            tenant: t,
            agent,
            provider,
            document,
            key,
        })
    })
    .await
    .expect("populate")
}

/// B's rows as B sees them (and its opened credentials).
async fn read_back(db: &Db, key: &CredentialKey, b: &Populated) -> (Populated, String) {
    let (key, b) = (key.clone(), b.clone());
    scoped!(db, b.tenant, |tx| {
        let chain = provider_chain(tx, Some(&key)).await?;
        let secret = chain
            .first()
            .and_then(|(_, c)| c.as_ref())
            .and_then(|c| c.get("api_key"))
            .map(|s| s.expose().to_string())
            .unwrap_or_default();
        Ok::<_, StoreError>((
            Populated {
                tenant: b.tenant,
                agent: get_agent(tx, b.agent.id).await?,
                provider: get_provider(tx, b.provider.id).await?,
                document: get_document(tx, b.document.id).await?,
                key: get_key(tx, b.key.id).await?,
            },
            secret,
        ))
    })
    .await
    .expect("read B back")
}

#[tokio::test]
async fn tenant_a_cannot_reach_tenant_b() {
    let scratch = scratch().await;
    let db = &scratch.db;
    let key = key_of(7);
    let a = populate(db, &key, "a.example", "sk-a-secret").await;
    let b = populate(db, &key, "b.example", "sk-b-secret").await;
    let before = read_back(db, &key, &b).await;
    assert_eq!(before.0, b);
    assert_eq!(before.1, "sk-b-secret");

    let (k, a2, b2) = (key.clone(), a.clone(), b.clone());
    scoped!(db, a.tenant, |tx| {
        let (a, b, key) = (a2, b2, k);
        // Reads.
        assert_not_found(get_agent(tx, b.agent.id).await);
        assert_not_found(get_provider(tx, b.provider.id).await);
        assert_not_found(get_document(tx, b.document.id).await);
        assert_not_found(get_key(tx, b.key.id).await);
        let agents = list_agents(tx, Page::default()).await?;
        assert_eq!(
            agents.iter().map(|x| x.id).collect::<Vec<_>>(),
            vec![a.agent.id]
        );
        let providers = list_providers(tx, Page::default()).await?;
        assert_eq!(
            providers.iter().map(|x| x.id).collect::<Vec<_>>(),
            vec![a.provider.id]
        );
        let documents = list_documents(tx, Page::default()).await?;
        assert_eq!(
            documents.iter().map(|x| x.id).collect::<Vec<_>>(),
            vec![a.document.id]
        );
        let keys = list_keys(tx, Page::default()).await?;
        assert_eq!(
            keys.iter().map(|x| x.id).collect::<Vec<_>>(),
            vec![a.key.id]
        );
        let chain = provider_chain(tx, Some(&key)).await?;
        assert_eq!(chain.len(), 1);
        assert_eq!(chain[0].0.id, a.provider.id);
        let opened = chain[0].1.as_ref().and_then(|c| c.get("api_key"));
        assert_eq!(opened.map(|s| s.expose()), Some("sk-a-secret"));
        let hits = search_knowledge(tx, None, "horario", 10).await?;
        assert_eq!(
            hits.iter().map(|h| h.id).collect::<Vec<_>>(),
            vec![a.document.id]
        );
        let hits = search_knowledge(tx, Some(b.agent.id), "horario", 10).await?;
        assert_eq!(
            hits.iter().map(|h| h.id).collect::<Vec<_>>(),
            vec![a.document.id]
        );

        // Writes to B's ids.
        let rename = || AgentPatch {
            name: Some("Invasor".into()),
            is_default: Some(true),
            numbers: Some(vec!["1000".into()]),
            ..AgentPatch::default()
        };
        assert_not_found(update_agent(tx, b.agent.id, rename()).await);
        assert_not_found(
            update_provider(
                tx,
                Some(&key),
                b.provider.id,
                ProviderPatch {
                    credentials: Some(Some(secrets("sk-stolen"))),
                    priority: Some(0),
                    ..ProviderPatch::default()
                },
            )
            .await,
        );
        assert_not_found(
            update_provider(
                tx,
                None,
                b.provider.id,
                ProviderPatch {
                    credentials: Some(None),
                    ..ProviderPatch::default()
                },
            )
            .await,
        );
        assert_not_found(
            update_document(
                tx,
                b.document.id,
                DocumentPatch {
                    body: Some("trocado".into()),
                    ..DocumentPatch::default()
                },
            )
            .await,
        );
        assert_not_found(revoke_key(tx, b.key.id).await);
        // Pointing A's document at B's agent is refused.
        assert_invalid(
            update_document(
                tx,
                a.document.id,
                DocumentPatch {
                    agent_id: Some(Some(b.agent.id)),
                    ..DocumentPatch::default()
                },
            )
            .await,
            "is not an agent of this tenant",
        );
        Ok::<_, StoreError>(())
    })
    .await
    .expect("as tenant A");

    // Inserting a row for B from A's transaction is refused (and rolled back).
    let b_tenant = b.tenant;
    assert_invalid(
        scoped!(db, a.tenant, |tx| create_agent(
            tx,
            b_tenant,
            NewAgent::named("x")
        )
        .await)
        .await,
        "another tenant",
    );
    let b_agent = b.agent.id;
    assert_invalid(
        scoped!(db, a.tenant, |tx| create_document(
            tx,
            a.tenant,
            NewDocument {
                agent_id: Some(b_agent),
                title: None,
                body: "x".into(),
                source: None,
            }
        )
        .await)
        .await,
        "is not an agent of this tenant",
    );
    // Deletes last, each in its own transaction (an error would roll the others back).
    let ids = (b.agent.id, b.provider.id, b.document.id);
    assert_not_found(scoped!(db, a.tenant, |tx| delete_agent(tx, ids.0).await).await);
    assert_not_found(scoped!(db, a.tenant, |tx| delete_provider(tx, ids.1).await).await);
    assert_not_found(scoped!(db, a.tenant, |tx| delete_document(tx, ids.2).await).await);

    // A's own default and numbers are A's business: claiming "1000" or the default in A
    // leaves B's agent alone.
    let a_agent = a.agent.id;
    scoped!(db, a.tenant, |tx| update_agent(
        tx,
        a_agent,
        AgentPatch {
            is_default: Some(true),
            numbers: Some(vec!["1000".into()]),
            ..AgentPatch::default()
        }
    )
    .await)
    .await
    .expect("A updates its own agent");

    let after = read_back(db, &key, &b).await;
    assert_eq!(after, before, "B's rows are unchanged");
    let identity = lookup_key(db, "vk_00000000_00000000000000000000000000000000")
        .await
        .expect("lookup");
    assert_eq!(identity, None);
}
