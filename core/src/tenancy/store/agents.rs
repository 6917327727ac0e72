//! Agents: who answers a call, and how (tenant-scoped).

use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

use super::{
    check_array, check_len, check_name, check_object, conflict_on, unexpected, Assignments, Page,
    StoreError, Transaction,
};
use crate::tenancy::model::{AgentMode, AgentRecord};

const COLUMNS: &str = "id, tenant_id, name, mode, prompt, language, voice, greeting, vad, turn, \
                       barge_in, tools, handoff, playout, numbers, is_default, settings, \
                       enabled, created_at, updated_at";

const MAX_NAME: usize = 200;
const MAX_PROMPT: usize = 100_000;
const MAX_LANGUAGE: usize = 35;
const MAX_VOICE: usize = 200;
const MAX_GREETING: usize = 10_000;
/// The table's `cardinality(numbers) <= 100`.
const MAX_NUMBERS: usize = 100;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewAgent {
    pub name: String,
    pub mode: Option<AgentMode>,
    pub prompt: Option<String>,
    pub language: Option<String>,
    pub voice: Option<String>,
    pub greeting: Option<String>,
    pub vad: Option<Value>,
    pub turn: Option<Value>,
    pub barge_in: Option<Value>,
    pub handoff: Option<Value>,
    pub playout: Option<Value>,
    pub settings: Option<Value>,
    pub tools: Option<Value>,
    pub numbers: Option<Vec<String>>,
    pub is_default: Option<bool>,
    pub enabled: Option<bool>,
}

impl NewAgent {
    /// An agent with this name and every other field at the table's default.
    pub fn named(name: impl Into<String>) -> Self {
        NewAgent {
            name: name.into(),
            mode: None,
            prompt: None,
            language: None,
            voice: None,
            greeting: None,
            vad: None,
            turn: None,
            barge_in: None,
            handoff: None,
            playout: None,
            settings: None,
            tools: None,
            numbers: None,
            is_default: None,
            enabled: None,
        }
    }
}

/// Absent fields are kept.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentPatch {
    pub name: Option<String>,
    pub mode: Option<AgentMode>,
    pub prompt: Option<String>,
    pub language: Option<String>,
    pub voice: Option<String>,
    pub greeting: Option<String>,
    pub vad: Option<Value>,
    pub turn: Option<Value>,
    pub barge_in: Option<Value>,
    pub handoff: Option<Value>,
    pub playout: Option<Value>,
    pub settings: Option<Value>,
    pub tools: Option<Value>,
    pub numbers: Option<Vec<String>>,
    pub is_default: Option<bool>,
    pub enabled: Option<bool>,
}

/// The fields both shapes share, checked the same way.
struct Fields<'a> {
    name: Option<&'a str>,
    prompt: Option<&'a str>,
    language: Option<&'a str>,
    voice: Option<&'a str>,
    greeting: Option<&'a str>,
    objects: [(&'static str, Option<&'a Value>); 6],
    tools: Option<&'a Value>,
    numbers: Option<&'a [String]>,
}

impl Fields<'_> {
    fn check(&self) -> Result<(), StoreError> {
        if let Some(name) = self.name {
            check_name("name", name, MAX_NAME)?;
        }
        if let Some(prompt) = self.prompt {
            check_len("prompt", prompt, MAX_PROMPT)?;
        }
        if let Some(language) = self.language {
            check_name("language", language, MAX_LANGUAGE)?;
        }
        if let Some(voice) = self.voice {
            check_len("voice", voice, MAX_VOICE)?;
        }
        if let Some(greeting) = self.greeting {
            check_len("greeting", greeting, MAX_GREETING)?;
        }
        for (field, value) in &self.objects {
            if let Some(value) = value {
                check_object(field, value)?;
                check_known_shape(field, value)?;
            }
        }
        if let Some(tools) = self.tools {
            check_array("tools", tools)?;
        }
        if let Some(numbers) = self.numbers {
            check_numbers(numbers)?;
        }
        Ok(())
    }
}

/// The sections whose types live in voice-core are read here as a call will read them, so a
/// bad threshold or an unknown key is refused when written. (The bridge- and turn-api-only
/// sections are checked by the service that builds a call from the row.)
fn check_known_shape(field: &str, value: &Value) -> Result<(), StoreError> {
    let invalid = |e: String| StoreError::Invalid(format!("{field}: {e}"));
    match field {
        "vad" => serde_json::from_value::<crate::audio::vad::VadSettings>(value.clone())
            .map_err(|e| invalid(e.to_string()))?
            .validate()
            .map_err(|e| invalid(e.to_string())),
        "turn" => serde_json::from_value::<crate::audio::turn::TurnSettings>(value.clone())
            .map_err(|e| invalid(e.to_string()))?
            .validate()
            .map_err(|e| invalid(e.to_string())),
        _ => Ok(()),
    }
}

/// What SQL `valid_numbers()` accepts, plus no number twice.
fn check_numbers(numbers: &[String]) -> Result<(), StoreError> {
    if numbers.len() > MAX_NUMBERS {
        return Err(StoreError::Invalid(format!(
            "an agent has at most {MAX_NUMBERS} numbers"
        )));
    }
    for (i, number) in numbers.iter().enumerate() {
        let ok = (1..=64).contains(&number.len())
            && number
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"*#+_.-".contains(&b));
        if !ok {
            return Err(StoreError::Invalid(format!(
                "number {number:?} must be 1-64 of 0-9, A-Z, a-z and * # + _ . -"
            )));
        }
        if numbers[..i].contains(number) {
            return Err(StoreError::Invalid(format!(
                "number {number:?} is listed twice"
            )));
        }
    }
    Ok(())
}

/// A number reaches one agent of a tenant: refuses numbers another agent claims. The lock
/// (per tenant, until the transaction ends) keeps two writers from both passing the check.
async fn check_numbers_free(
    tx: &Transaction<'_>,
    agent: Uuid,
    numbers: &[String],
) -> Result<(), StoreError> {
    if numbers.is_empty() {
        return Ok(());
    }
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended('voice.agent_numbers.' \
         || current_tenant_id()::text, 0))",
        &[],
    )
    .await?;
    let taken = tx
        .query_opt(
            "SELECT a.name, n FROM agents a, unnest(a.numbers) AS n \
             WHERE a.id <> $1 AND n = ANY($2) ORDER BY a.name, n LIMIT 1",
            &[&agent, &numbers],
        )
        .await?;
    if let Some(row) = taken {
        let owner: String = row.try_get(0)?;
        let number: String = row.try_get(1)?;
        return Err(StoreError::Conflict(format!(
            "number {number:?} already reaches agent {owner:?}"
        )));
    }
    Ok(())
}

/// One default agent per tenant: making `agent` the default unsets the others.
async fn clear_other_defaults(tx: &Transaction<'_>, agent: Uuid) -> Result<(), StoreError> {
    tx.execute(
        "UPDATE agents SET is_default = false \
         WHERE is_default AND id <> $1 AND tenant_id = current_tenant_id()",
        &[&agent],
    )
    .await?;
    Ok(())
}

fn name_conflict(e: tokio_postgres::Error, name: Option<&str>) -> StoreError {
    conflict_on(e, "agents_tenant_id_name_key", || match name {
        Some(name) => format!("an agent named {name:?} already exists"),
        None => "an agent of this name already exists".into(),
    })
}

fn from_row(row: &tokio_postgres::Row) -> Result<AgentRecord, StoreError> {
    let mode: String = row.try_get("mode")?;
    Ok(AgentRecord {
        id: row.try_get("id")?,
        tenant_id: row.try_get("tenant_id")?,
        name: row.try_get("name")?,
        mode: AgentMode::parse(&mode).ok_or_else(|| unexpected("agent mode", &mode))?,
        prompt: row.try_get("prompt")?,
        language: row.try_get("language")?,
        voice: row.try_get("voice")?,
        greeting: row.try_get("greeting")?,
        vad: row.try_get("vad")?,
        turn: row.try_get("turn")?,
        barge_in: row.try_get("barge_in")?,
        tools: row.try_get("tools")?,
        handoff: row.try_get("handoff")?,
        playout: row.try_get("playout")?,
        numbers: row.try_get("numbers")?,
        is_default: row.try_get("is_default")?,
        settings: row.try_get("settings")?,
        enabled: row.try_get("enabled")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// The tenant's agents by name.
pub async fn list_agents(tx: &Transaction<'_>, page: Page) -> Result<Vec<AgentRecord>, StoreError> {
    page.check()?;
    let rows = tx
        .query(
            &format!("SELECT {COLUMNS} FROM agents ORDER BY name, id LIMIT $1 OFFSET $2"),
            &[&page.limit, &page.offset],
        )
        .await?;
    rows.iter().map(from_row).collect()
}

pub async fn get_agent(tx: &Transaction<'_>, id: Uuid) -> Result<AgentRecord, StoreError> {
    let row = tx
        .query_opt(
            &format!("SELECT {COLUMNS} FROM agents WHERE id = $1"),
            &[&id],
        )
        .await?
        .ok_or(StoreError::NotFound)?;
    from_row(&row)
}

pub async fn create_agent(
    tx: &Transaction<'_>,
    tenant: Uuid,
    new: NewAgent,
) -> Result<AgentRecord, StoreError> {
    Fields {
        name: Some(&new.name),
        prompt: new.prompt.as_deref(),
        language: new.language.as_deref(),
        voice: new.voice.as_deref(),
        greeting: new.greeting.as_deref(),
        objects: [
            ("vad", new.vad.as_ref()),
            ("turn", new.turn.as_ref()),
            ("barge_in", new.barge_in.as_ref()),
            ("handoff", new.handoff.as_ref()),
            ("playout", new.playout.as_ref()),
            ("settings", new.settings.as_ref()),
        ],
        tools: new.tools.as_ref(),
        numbers: new.numbers.as_deref(),
    }
    .check()?;
    let id = Uuid::new_v4();
    if let Some(numbers) = &new.numbers {
        check_numbers_free(tx, id, numbers).await?;
    }
    if new.is_default == Some(true) {
        clear_other_defaults(tx, id).await?;
    }
    let mode = new.mode.map(AgentMode::as_str);
    let row = tx
        .query_one(
            &format!(
                "INSERT INTO agents (id, tenant_id, name, mode, prompt, language, voice, \
                 greeting, vad, turn, barge_in, handoff, playout, settings, tools, numbers, \
                 is_default, enabled) \
                 VALUES ($1, $2, $3, coalesce($4::text, 'realtime'), coalesce($5::text, ''), \
                 coalesce($6::text, 'pt-BR'), coalesce($7::text, ''), coalesce($8::text, ''), \
                 coalesce($9::jsonb, '{{}}'), coalesce($10::jsonb, '{{}}'), \
                 coalesce($11::jsonb, '{{}}'), coalesce($12::jsonb, '{{}}'), \
                 coalesce($13::jsonb, '{{}}'), coalesce($14::jsonb, '{{}}'), \
                 coalesce($15::jsonb, '[]'), coalesce($16::text[], '{{}}'), \
                 coalesce($17::boolean, false), coalesce($18::boolean, true)) \
                 RETURNING {COLUMNS}"
            ),
            &[
                &id,
                &tenant,
                &new.name,
                &mode,
                &new.prompt,
                &new.language,
                &new.voice,
                &new.greeting,
                &new.vad,
                &new.turn,
                &new.barge_in,
                &new.handoff,
                &new.playout,
                &new.settings,
                &new.tools,
                &new.numbers,
                &new.is_default,
                &new.enabled,
            ],
        )
        .await
        .map_err(|e| name_conflict(e, Some(&new.name)))?;
    from_row(&row)
}

pub async fn update_agent(
    tx: &Transaction<'_>,
    id: Uuid,
    patch: AgentPatch,
) -> Result<AgentRecord, StoreError> {
    Fields {
        name: patch.name.as_deref(),
        prompt: patch.prompt.as_deref(),
        language: patch.language.as_deref(),
        voice: patch.voice.as_deref(),
        greeting: patch.greeting.as_deref(),
        objects: [
            ("vad", patch.vad.as_ref()),
            ("turn", patch.turn.as_ref()),
            ("barge_in", patch.barge_in.as_ref()),
            ("handoff", patch.handoff.as_ref()),
            ("playout", patch.playout.as_ref()),
            ("settings", patch.settings.as_ref()),
        ],
        tools: patch.tools.as_ref(),
        numbers: patch.numbers.as_deref(),
    }
    .check()?;
    // The row first, locked: the checks below must not run (nor unset another agent's
    // default) for an agent that is not there.
    tx.query_opt("SELECT 1 FROM agents WHERE id = $1 FOR UPDATE", &[&id])
        .await?
        .ok_or(StoreError::NotFound)?;
    if let Some(numbers) = &patch.numbers {
        check_numbers_free(tx, id, numbers).await?;
    }
    if patch.is_default == Some(true) {
        clear_other_defaults(tx, id).await?;
    }

    let name = patch.name.clone();
    let mut set = Assignments::default();
    if let Some(v) = patch.name {
        set.set("name", v);
    }
    if let Some(v) = patch.mode {
        set.set("mode", v.as_str().to_string());
    }
    let texts = [
        ("prompt", patch.prompt),
        ("language", patch.language),
        ("voice", patch.voice),
        ("greeting", patch.greeting),
    ];
    for (column, value) in texts {
        if let Some(v) = value {
            set.set(column, v);
        }
    }
    let json = [
        ("vad", patch.vad),
        ("turn", patch.turn),
        ("barge_in", patch.barge_in),
        ("handoff", patch.handoff),
        ("playout", patch.playout),
        ("settings", patch.settings),
        ("tools", patch.tools),
    ];
    for (column, value) in json {
        if let Some(v) = value {
            set.set(column, v);
        }
    }
    if let Some(v) = patch.numbers {
        set.set("numbers", v);
    }
    if let Some(v) = patch.is_default {
        set.set("is_default", v);
    }
    if let Some(v) = patch.enabled {
        set.set("enabled", v);
    }
    if set.is_empty() {
        return get_agent(tx, id).await;
    }
    let row = set
        .update_by_id(tx, "agents", id, COLUMNS)
        .await
        .map_err(|e| name_conflict(e, name.as_deref()))?
        .ok_or(StoreError::NotFound)?;
    from_row(&row)
}

/// Deletes the agent and its own knowledge documents (the tenant-wide ones stay).
pub async fn delete_agent(tx: &Transaction<'_>, id: Uuid) -> Result<(), StoreError> {
    let deleted = tx
        .execute("DELETE FROM agents WHERE id = $1", &[&id])
        .await?;
    if deleted == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}
