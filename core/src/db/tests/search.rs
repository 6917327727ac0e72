//! Portuguese full-text search over the knowledge base.

use super::fixtures::populate;
use super::*;

#[tokio::test]
async fn portuguese_search_folds_accents_and_inflections() {
    with_migrated(2, |db| async move {
        let a = populate(&db, "a.example").await;
        let b = populate(&db, "b.example").await;
        let docs = db
            .with_tenant(a.tenant, move |tx| {
                Box::pin(async move {
                    let mut ids = Vec::new();
                    for (title, body) in [
                        (
                            "Atendimento",
                            "Nosso horário de atendimento é de segunda a sexta, das 8h às 18h.",
                        ),
                        ("Pagamento", "Aceitamos boleto, Pix e cartão de crédito."),
                        (
                            "Pedidos",
                            "Informações sobre o seu pedido chegam por e-mail.",
                        ),
                    ] {
                        let row = tx
                            .query_one(
                                "INSERT INTO knowledge_documents (tenant_id, title, body)
                                 VALUES (current_tenant_id(), $1, $2) RETURNING id",
                                &[&title, &body],
                            )
                            .await?;
                        ids.push(row.try_get::<_, Uuid>(0)?);
                    }
                    Ok::<_, DbError>(ids)
                })
            })
            .await
            .expect("insert documents");
        let search = |tenant: Uuid, query: &'static str| {
            let db = db.clone();
            async move {
                db.with_tenant(tenant, move |tx| {
                    Box::pin(async move {
                        let rows = tx
                            .query(
                                "SELECT id FROM knowledge_documents
                                 WHERE search @@ pt_search_query($1)
                                 ORDER BY ts_rank(search, pt_search_query($1)) DESC",
                                &[&query],
                            )
                            .await?;
                        rows.iter()
                            .map(|r| r.try_get::<_, Uuid>(0))
                            .collect::<Result<Vec<_>, _>>()
                            .map_err(DbError::from)
                    })
                })
                .await
                .expect(query)
            }
        };
        for query in [
            "horario",
            "horários",
            "HORÁRIO",
            "horario de atendimento",
            "\"horário de atendimento\"",
            "atendimentos",
            "você tem horário?",
        ] {
            let found = search(a.tenant, query).await;
            // The tenant's other "Horário" document (from populate) may come too.
            let only_hours =
                found.contains(&docs[0]) && !found.contains(&docs[1]) && !found.contains(&docs[2]);
            assert!(only_hours, "{query}: {found:?}");
        }
        for query in ["cartao", "cartão de credito", "pix"] {
            assert_eq!(search(a.tenant, query).await, vec![docs[1]], "{query}");
        }
        // Stemmed before folding, "informação" meets "informações"; folded before stemming,
        // "informacoes" meets it too.
        for query in ["informação", "informacoes", "informações do pedido"] {
            assert_eq!(search(a.tenant, query).await, vec![docs[2]], "{query}");
        }
        assert!(search(a.tenant, "horario -atendimento")
            .await
            .iter()
            .all(|id| *id != docs[0]));
        assert!(search(a.tenant, "feriado").await.is_empty());
        // populate() gave both tenants a document "Horário": each finds only its own.
        assert!(search(a.tenant, "horario").await.contains(&a.document));
        assert_eq!(search(b.tenant, "horario").await, vec![b.document]);

        // Why the custom configuration: the built-in one keeps accents.
        let plain = count(
            &db,
            "SELECT (to_tsvector('portuguese', 'horário')
                     @@ plainto_tsquery('portuguese', 'horario'))::int::bigint",
        )
        .await;
        assert_eq!(
            plain, 0,
            "the built-in portuguese config does not fold accents"
        );
    })
    .await;
}
