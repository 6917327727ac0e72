//! `POST /api/v2/activities` [SDK `v2/models/add-activity-request.ts`,
//! `add-activity-request-participants-inner.ts`, `activity-item.ts`]: the fields the SDK
//! lists, with v2 types (`done`/`busy` booleans, not 0/1; `owner_id`, not `user_id`;
//! participants `{person_id, primary}`). The fake also insists on a `subject`, on a
//! `type` the account has, and on a `due_date` when there is a `due_time` [fake's
//! reading]. Answered 200 with the activity.

use axum::http::StatusCode;
use serde_json::{json, Value};

use super::http_api::{Answer, ApiError, ApiRequest};
use super::stats::Count;
use super::validate::{self, Links, Object};
use super::{Crm, Shared};
use crate::fake_common::stats::lock;

const FIELDS: &[&str] = &[
    "subject",
    "type",
    "owner_id",
    "deal_id",
    "lead_id",
    "person_id",
    "org_id",
    "project_id",
    "due_date",
    "due_time",
    "duration",
    "busy",
    "done",
    "location",
    "participants",
    "attendees",
    "public_description",
    "priority",
    "note",
];

pub(crate) fn add(shared: &Shared, request: &ApiRequest) -> Result<Answer, ApiError> {
    let obj = validate::object(&request.body)?;
    validate::only_known(obj, FIELDS)?;
    let subject = match validate::string(obj, "subject")? {
        Some(s) if !s.trim().is_empty() => s.to_string(),
        _ => return Err(ApiError::bad("subject is required")),
    };
    let kind = validate::string(obj, "type")?.unwrap_or("call").to_string();
    if !shared.cfg.activity_types.contains(&kind) {
        return Err(ApiError::bad(format!(
            "type {kind:?} is not an activity type"
        )));
    }
    let owner_id = validate::id(obj, "owner_id")?;
    if let Some(u) = owner_id.filter(|u| !shared.cfg.user_ids.contains(u)) {
        return Err(ApiError::bad(format!("User {u} not found")));
    }
    let due_date = validate::date(obj, "due_date")?;
    let due_time = validate::time_of_day(obj, "due_time")?;
    if due_time.is_some() && due_date.is_none() {
        return Err(ApiError::bad("due_time needs a due_date"));
    }
    let duration = validate::duration(obj, "duration")?;
    let done = validate::boolean(obj, "done")?.unwrap_or(false);
    let busy = validate::boolean(obj, "busy")?;
    let note = validate::string(obj, "note")?.map(str::to_string);
    let public_description = validate::string(obj, "public_description")?.map(str::to_string);
    let priority = match obj.get("priority") {
        None | Some(Value::Null) => None,
        Some(p) => Some(
            p.as_i64()
                .ok_or_else(|| ApiError::bad("priority must be an integer"))?,
        ),
    };
    let location = match obj.get("location") {
        None | Some(Value::Null) => Value::Null,
        Some(l @ Value::Object(_)) => l.clone(),
        Some(_) => return Err(ApiError::bad("location must be an object")),
    };
    let attendees = objects(obj, "attendees")?;
    let mut crm = lock(&shared.crm);
    let links = Links::read(obj, &crm, &shared.cfg.deal_ids)?;
    let participants = participants(obj, &crm)?;
    let now = validate::now();
    let owner = owner_id.or(shared.cfg.user_ids.first().copied());
    let activity = json!({
        "id": shared.next_id(),
        "subject": subject,
        "type": kind,
        "owner_id": owner,
        "creator_user_id": owner,
        "is_deleted": false,
        "add_time": now,
        "update_time": now,
        "deal_id": links.deal_id,
        "lead_id": links.lead_id,
        "person_id": links.person_id,
        "org_id": links.org_id,
        "project_id": links.project_id,
        "due_date": due_date,
        "due_time": due_time,
        "duration": duration,
        "busy": busy.unwrap_or(false),
        "done": done,
        "marked_as_done_time": if done { Value::from(now.clone()) } else { Value::Null },
        "location": location,
        "participants": participants,
        "attendees": attendees,
        "public_description": public_description,
        "priority": priority,
        "note": note,
    });
    crm.activities.push(activity.clone());
    shared.stats.add(Count::Activity);
    Ok(Answer {
        status: StatusCode::OK,
        data: activity,
        additional_data: None,
    })
}

/// An array of objects, or nothing.
fn objects(obj: &Object, name: &str) -> Result<Vec<Value>, ApiError> {
    match obj.get(name) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(list)) if list.iter().all(Value::is_object) => Ok(list.clone()),
        Some(_) => Err(ApiError::bad(format!("{name} must be an array of objects"))),
    }
}

/// `[{person_id, primary}]`: persons that exist, at most one primary.
fn participants(obj: &Object, crm: &Crm) -> Result<Vec<Value>, ApiError> {
    let list = objects(obj, "participants")?;
    let mut primaries = 0;
    for entry in &list {
        let Some(p) = entry.as_object() else {
            return Err(ApiError::bad("participants must be an array of objects"));
        };
        validate::only_known(p, &["person_id", "primary"])?;
        let Some(id) = validate::id(p, "person_id")? else {
            return Err(ApiError::bad("every participant needs a person_id"));
        };
        if crm.person(id).is_none() {
            return Err(ApiError::not_found(format!("Person {id} not found")));
        }
        if validate::boolean(p, "primary")?.unwrap_or(false) {
            primaries += 1;
        }
    }
    if primaries > 1 {
        return Err(ApiError::bad("only one participant can be primary"));
    }
    Ok(list)
}
