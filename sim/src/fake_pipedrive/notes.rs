//! `POST /v1/notes` [SDK `v1/models/add-note-request-all-of*.ts`]: `content` (HTML)
//! required with at least one of `deal_id`, `person_id`, `org_id`, `lead_id`,
//! `project_id`; optional `user_id`, `add_time` (`YYYY-MM-DD HH:MM:SS`) and the
//! `pinned_to_*_flag`s (0/1), a pin only where the note is linked. Answered 201 with the
//! note [status UNCONFIRMED: clients should accept any 2xx].

use axum::http::StatusCode;
use serde_json::{json, Value};

use super::http_api::{Answer, ApiError, ApiRequest};
use super::stats::Count;
use super::validate::{self, Links};
use super::Shared;
use crate::fake_common::stats::lock;

const FIELDS: &[&str] = &[
    "content",
    "deal_id",
    "person_id",
    "org_id",
    "lead_id",
    "project_id",
    "user_id",
    "add_time",
    "pinned_to_deal_flag",
    "pinned_to_person_flag",
    "pinned_to_organization_flag",
    "pinned_to_lead_flag",
    "pinned_to_project_flag",
];

pub(crate) fn add(shared: &Shared, request: &ApiRequest) -> Result<Answer, ApiError> {
    let obj = validate::object(&request.body)?;
    validate::only_known(obj, FIELDS)?;
    let content = match validate::string(obj, "content")? {
        Some(c) if !c.trim().is_empty() => c.to_string(),
        _ => return Err(ApiError::bad("Content is required")),
    };
    let user_id = validate::id(obj, "user_id")?;
    if let Some(u) = user_id.filter(|u| !shared.cfg.user_ids.contains(u)) {
        return Err(ApiError::bad(format!("User {u} not found")));
    }
    let add_time = validate::date_time(obj, "add_time")?;
    let mut crm = lock(&shared.crm);
    let links = Links::read(obj, &crm, &shared.cfg.deal_ids)?;
    if links.is_empty() {
        return Err(ApiError::bad(
            "A note must be linked to a deal, person, organization, lead or project",
        ));
    }
    let pins = [
        ("pinned_to_deal_flag", links.deal_id.is_some()),
        ("pinned_to_person_flag", links.person_id.is_some()),
        ("pinned_to_organization_flag", links.org_id.is_some()),
        ("pinned_to_lead_flag", links.lead_id.is_some()),
        ("pinned_to_project_flag", links.project_id.is_some()),
    ];
    let mut pinned = serde_json::Map::new();
    for (flag, linked) in pins {
        let value = validate::flag(obj, flag)?.unwrap_or(false);
        if value && !linked {
            return Err(ApiError::bad(format!(
                "{flag} needs the note to be linked there"
            )));
        }
        pinned.insert(flag.into(), json!(value));
    }
    let now = validate::now();
    let person = links
        .person_id
        .and_then(|id| crm.person(id))
        .map(|p| json!({"name": p.name}));
    let mut note = json!({
        "id": shared.next_id(),
        "user_id": user_id.or(shared.cfg.user_ids.first().copied()),
        "content": content,
        "deal_id": links.deal_id,
        "person_id": links.person_id,
        "org_id": links.org_id,
        "lead_id": links.lead_id,
        "project_id": links.project_id,
        "add_time": add_time.unwrap_or_else(|| now.clone()),
        "update_time": now,
        "active_flag": true,
        "person": person,
        "deal": links.deal_id.map(|d| json!({"title": format!("Deal {d}")})),
        "organization": Value::Null,
    });
    if let Some(obj) = note.as_object_mut() {
        obj.extend(pinned);
    }
    crm.notes.push(note.clone());
    shared.stats.add(Count::Note);
    Ok(Answer {
        status: StatusCode::CREATED,
        data: note,
        additional_data: None,
    })
}
