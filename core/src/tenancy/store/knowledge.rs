//! Knowledge documents and their Portuguese full-text search (tenant-scoped).

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{check_len, check_name, double_option, Assignments, Page, StoreError, Transaction};
use crate::tenancy::model::KnowledgeDocument;

const COLUMNS: &str = "id, tenant_id, agent_id, title, body, source, created_at, updated_at";

const MAX_TITLE: usize = 500;
const MAX_BODY: usize = 200_000;
const MAX_SOURCE: usize = 2_000;
/// Search text beyond this is cut (a tool's query, not a document).
const MAX_QUERY: usize = 500;
/// Characters of a hit's body handed back (what a prompt can take per hit).
const EXCERPT: usize = 600;
const MAX_HITS: i64 = 50;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewDocument {
    /// `None`: every agent of the tenant may use it.
    pub agent_id: Option<Uuid>,
    pub title: Option<String>,
    pub body: String,
    pub source: Option<String>,
}

/// Absent fields are kept; `"agent_id": null` makes the document tenant-wide.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DocumentPatch {
    #[serde(default, deserialize_with = "double_option")]
    pub agent_id: Option<Option<Uuid>>,
    pub title: Option<String>,
    pub body: Option<String>,
    pub source: Option<String>,
}

/// One search result: the document's title and the start of its body.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KnowledgeHit {
    pub id: Uuid,
    pub title: String,
    pub text: String,
    pub rank: f32,
}

fn check_fields(
    title: Option<&str>,
    body: Option<&str>,
    source: Option<&str>,
) -> Result<(), StoreError> {
    if let Some(title) = title {
        check_len("title", title, MAX_TITLE)?;
    }
    if let Some(body) = body {
        check_name("body", body, MAX_BODY)?;
    }
    if let Some(source) = source {
        check_len("source", source, MAX_SOURCE)?;
    }
    Ok(())
}

/// The composite foreign key refuses an agent of another tenant (or none at all).
fn agent_error(e: tokio_postgres::Error, agent: Option<Uuid>) -> StoreError {
    let is_fk = e
        .as_db_error()
        .is_some_and(|d| *d.code() == tokio_postgres::error::SqlState::FOREIGN_KEY_VIOLATION);
    match (is_fk, agent) {
        (true, Some(agent)) => {
            StoreError::Invalid(format!("agent {agent} is not an agent of this tenant"))
        }
        _ => StoreError::from(e),
    }
}

fn from_row(row: &tokio_postgres::Row) -> Result<KnowledgeDocument, StoreError> {
    Ok(KnowledgeDocument {
        id: row.try_get("id")?,
        tenant_id: row.try_get("tenant_id")?,
        agent_id: row.try_get("agent_id")?,
        title: row.try_get("title")?,
        body: row.try_get("body")?,
        source: row.try_get("source")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// The tenant's documents, newest first.
pub async fn list_documents(
    tx: &Transaction<'_>,
    page: Page,
) -> Result<Vec<KnowledgeDocument>, StoreError> {
    page.check()?;
    let rows = tx
        .query(
            &format!(
                "SELECT {COLUMNS} FROM knowledge_documents ORDER BY created_at DESC, id \
                 LIMIT $1 OFFSET $2"
            ),
            &[&page.limit, &page.offset],
        )
        .await?;
    rows.iter().map(from_row).collect()
}

pub async fn get_document(tx: &Transaction<'_>, id: Uuid) -> Result<KnowledgeDocument, StoreError> {
    let row = tx
        .query_opt(
            &format!("SELECT {COLUMNS} FROM knowledge_documents WHERE id = $1"),
            &[&id],
        )
        .await?
        .ok_or(StoreError::NotFound)?;
    from_row(&row)
}

pub async fn create_document(
    tx: &Transaction<'_>,
    tenant: Uuid,
    new: NewDocument,
) -> Result<KnowledgeDocument, StoreError> {
    check_fields(new.title.as_deref(), Some(&new.body), new.source.as_deref())?;
    let row = tx
        .query_one(
            &format!(
                "INSERT INTO knowledge_documents (tenant_id, agent_id, title, body, source) \
                 VALUES ($1, $2, coalesce($3::text, ''), $4, coalesce($5::text, '')) \
                 RETURNING {COLUMNS}"
            ),
            &[&tenant, &new.agent_id, &new.title, &new.body, &new.source],
        )
        .await
        .map_err(|e| agent_error(e, new.agent_id))?;
    from_row(&row)
}

pub async fn update_document(
    tx: &Transaction<'_>,
    id: Uuid,
    patch: DocumentPatch,
) -> Result<KnowledgeDocument, StoreError> {
    check_fields(
        patch.title.as_deref(),
        patch.body.as_deref(),
        patch.source.as_deref(),
    )?;
    let agent = patch.agent_id.flatten();
    let mut set = Assignments::default();
    if let Some(v) = patch.agent_id {
        set.set("agent_id", v);
    }
    if let Some(v) = patch.title {
        set.set("title", v);
    }
    if let Some(v) = patch.body {
        set.set("body", v);
    }
    if let Some(v) = patch.source {
        set.set("source", v);
    }
    if set.is_empty() {
        return get_document(tx, id).await;
    }
    let row = set
        .update_by_id(tx, "knowledge_documents", id, COLUMNS)
        .await
        .map_err(|e| agent_error(e, agent))?
        .ok_or(StoreError::NotFound)?;
    from_row(&row)
}

pub async fn delete_document(tx: &Transaction<'_>, id: Uuid) -> Result<(), StoreError> {
    let deleted = tx
        .execute("DELETE FROM knowledge_documents WHERE id = $1", &[&id])
        .await?;
    if deleted == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

/// pt-BR full-text search over `agent`'s own documents and the tenant-wide ones (only the
/// tenant-wide ones when `agent` is `None`), best first. Accents optional both ways
/// ("horario" finds "Horário"); websearch syntax ("phrases", OR, -word). A blank query finds
/// nothing (it is not an error: a tool may send one).
pub async fn search_knowledge(
    tx: &Transaction<'_>,
    agent: Option<Uuid>,
    query: &str,
    limit: i64,
) -> Result<Vec<KnowledgeHit>, StoreError> {
    if !(1..=MAX_HITS).contains(&limit) {
        return Err(StoreError::Invalid(format!(
            "limit must be between 1 and {MAX_HITS}"
        )));
    }
    let query: String = query
        .chars()
        .filter(|c| *c != '\0')
        .take(MAX_QUERY)
        .collect();
    if query.trim().is_empty() {
        return Ok(Vec::new());
    }
    let rows = tx
        .query(
            "SELECT id, title, body, ts_rank(search, pt_search_query($1)) AS rank \
             FROM knowledge_documents \
             WHERE search @@ pt_search_query($1) AND (agent_id IS NULL OR agent_id = $2) \
             ORDER BY rank DESC, id LIMIT $3",
            &[&query, &agent, &limit],
        )
        .await?;
    rows.iter()
        .map(|row| {
            let body: String = row.try_get("body")?;
            Ok(KnowledgeHit {
                id: row.try_get("id")?,
                title: row.try_get("title")?,
                text: excerpt(&body, EXCERPT),
                rank: row.try_get("rank")?,
            })
        })
        .collect()
}

/// `text` cut to about `max` characters at a word boundary, with "…" when cut.
pub(super) fn excerpt(text: &str, max: usize) -> String {
    let text = text.trim();
    let Some((cut, _)) = text.char_indices().nth(max) else {
        return text.to_string();
    };
    let head = &text[..cut];
    // Back to the last whitespace, unless that would drop most of it (one huge "word").
    let head = match head.rfind(char::is_whitespace) {
        Some(space) if space >= cut / 2 => &head[..space],
        _ => head,
    };
    format!("{}…", head.trim_end())
}
