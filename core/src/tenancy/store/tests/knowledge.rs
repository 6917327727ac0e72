use super::*;
use crate::tenancy::store::knowledge::excerpt;

fn doc(agent: Option<Uuid>, title: &str, body: &str) -> NewDocument {
    NewDocument {
        agent_id: agent,
        title: Some(title.into()),
        body: body.into(),
        source: None,
    }
}

#[tokio::test]
async fn documents_round_trip() {
    let scratch = scratch().await;
    let db = &scratch.db;
    let t = tenant(db, "a.example").await.id;
    let agent = scoped!(db, t, |tx| create_agent(tx, t, NewAgent::named("Recepção"))
        .await)
    .await
    .expect("agent")
    .id;

    let created = scoped!(db, t, |tx| create_document(
        tx,
        t,
        NewDocument {
            agent_id: Some(agent),
            title: Some("Horário".into()),
            body: "Atendemos das 8h às 18h.".into(),
            source: Some("site".into()),
        }
    )
    .await)
    .await
    .expect("create");
    assert_eq!(created.agent_id, Some(agent));
    assert_eq!(created.source, "site");
    let id = created.id;
    assert_eq!(
        scoped!(db, t, |tx| get_document(tx, id).await)
            .await
            .expect("get"),
        created
    );
    let listed = scoped!(db, t, |tx| list_documents(tx, Page::default()).await)
        .await
        .expect("list");
    assert_eq!(listed, vec![created.clone()]);

    let patch: DocumentPatch =
        serde_json::from_str(r#"{"agent_id": null, "body": "Atendemos das 9h às 17h."}"#)
            .expect("patch");
    let updated = scoped!(db, t, |tx| update_document(tx, id, patch).await)
        .await
        .expect("update");
    assert_eq!(updated.agent_id, None, "null makes it tenant-wide");
    assert_eq!(updated.body, "Atendemos das 9h às 17h.");
    assert_eq!(updated.title, "Horário");
    assert_eq!(
        scoped!(db, t, |tx| update_document(
            tx,
            id,
            DocumentPatch::default()
        )
        .await)
        .await
        .expect("empty patch"),
        updated
    );

    assert_invalid(
        scoped!(db, t, |tx| create_document(tx, t, doc(None, "t", "   "))
            .await)
        .await,
        "body",
    );
    assert_invalid(
        scoped!(db, t, |tx| create_document(
            tx,
            t,
            doc(Some(Uuid::new_v4()), "t", "x")
        )
        .await)
        .await,
        "is not an agent of this tenant",
    );
    let bogus = Uuid::new_v4();
    assert_invalid(
        scoped!(db, t, |tx| update_document(
            tx,
            id,
            DocumentPatch {
                agent_id: Some(Some(bogus)),
                ..DocumentPatch::default()
            }
        )
        .await)
        .await,
        "is not an agent of this tenant",
    );

    // Deleting an agent takes its own documents with it.
    let own = scoped!(db, t, |tx| create_document(
        tx,
        t,
        doc(Some(agent), "x", "y")
    )
    .await)
    .await
    .expect("agent's document")
    .id;
    scoped!(db, t, |tx| delete_agent(tx, agent).await)
        .await
        .expect("delete agent");
    assert_not_found(scoped!(db, t, |tx| get_document(tx, own).await).await);

    scoped!(db, t, |tx| delete_document(tx, id).await)
        .await
        .expect("delete");
    assert_not_found(scoped!(db, t, |tx| get_document(tx, id).await).await);
    assert_not_found(scoped!(db, t, |tx| delete_document(tx, id).await).await);
    assert_not_found(
        scoped!(db, t, |tx| update_document(
            tx,
            id,
            DocumentPatch {
                title: Some("x".into()),
                ..DocumentPatch::default()
            }
        )
        .await)
        .await,
    );
}

#[tokio::test]
async fn search_finds_portuguese_with_or_without_accents() {
    let scratch = scratch().await;
    let db = &scratch.db;
    let t = tenant(db, "a.example").await.id;
    let (agent, other_agent) = scoped!(db, t, |tx| {
        let a = create_agent(tx, t, NewAgent::named("Recepção")).await?;
        let b = create_agent(tx, t, NewAgent::named("Vendas")).await?;
        Ok::<_, StoreError>((a.id, b.id))
    })
    .await
    .expect("agents");
    let long_body = format!(
        "Informações sobre convênios aceitos. {}",
        "Aceitamos vários planos de saúde da região. ".repeat(40)
    );
    let (hours, plans, private) = scoped!(db, t, |tx| {
        let hours = create_document(
            tx,
            t,
            doc(
                None,
                "Horário de atendimento",
                "Atendemos de segunda a sexta, das 8h às 18h.",
            ),
        )
        .await?;
        let plans = create_document(tx, t, doc(None, "Convênios", &long_body)).await?;
        let private = create_document(
            tx,
            t,
            doc(
                Some(agent),
                "Estacionamento",
                "Estacionamento gratuito para pacientes.",
            ),
        )
        .await?;
        Ok::<_, StoreError>((hours, plans, private))
    })
    .await
    .expect("documents");

    let search = |agent: Option<Uuid>, query: &'static str| {
        let db = db.clone();
        async move {
            scoped!(db, t, |tx| search_knowledge(tx, agent, query, 5).await)
                .await
                .expect("search")
        }
    };
    let hits = search(None, "horario").await;
    assert_eq!(hits.first().map(|h| h.id), Some(hours.id), "{hits:?}");
    assert_eq!(hits[0].title, "Horário de atendimento");
    assert!(hits[0].rank > 0.0);
    let hits = search(None, "informacoes").await;
    assert_eq!(hits.first().map(|h| h.id), Some(plans.id), "{hits:?}");
    let hits = search(None, "informação").await;
    assert_eq!(hits.first().map(|h| h.id), Some(plans.id), "{hits:?}");
    // The long body comes back trimmed at a word boundary.
    let text = &hits[0].text;
    assert!(text.chars().count() <= 601, "{}", text.chars().count());
    assert!(text.ends_with('…'), "{text}");
    assert!(text.starts_with("Informações sobre convênios"), "{text}");

    // An agent's own documents only for that agent; tenant-wide ones for all.
    assert!(search(None, "estacionamento").await.is_empty());
    assert!(search(Some(other_agent), "estacionamento").await.is_empty());
    let hits = search(Some(agent), "estacionamento").await;
    assert_eq!(
        hits.iter().map(|h| h.id).collect::<Vec<_>>(),
        vec![private.id]
    );
    assert_eq!(hits[0].text, "Estacionamento gratuito para pacientes.");
    assert_eq!(
        search(Some(agent), "horário").await.first().map(|h| h.id),
        Some(hours.id)
    );

    // Nothing to search for is no result, not an error.
    assert!(search(None, "").await.is_empty());
    assert!(search(None, "   ").await.is_empty());
    assert!(search(None, "de a o").await.is_empty(), "stop words only");
    assert!(search(None, "foguete").await.is_empty());
    assert!(
        search(None, "\"unbalanced (quote -").await.len() <= 3,
        "no syntax error"
    );
    assert_invalid(
        scoped!(db, t, |tx| search_knowledge(tx, None, "horario", 0).await).await,
        "limit",
    );
}

#[test]
fn excerpts_stop_at_a_word() {
    assert_eq!(excerpt("  curto  ", 600), "curto");
    assert_eq!(excerpt("uma frase longa demais", 12), "uma frase…");
    assert_eq!(excerpt("ééééé ééééé", 8), "ééééé…");
    // One long word is cut where it must be.
    assert_eq!(excerpt(&"a".repeat(20), 10), format!("{}…", "a".repeat(10)));
}
