//! `GET /api/v2/persons/search` and `GET /v1/persons/search` [SDK
//! `v2/api/persons-api.ts` L523-540]: `term` (at least 2 characters, 1 with
//! `exact_match`), `fields` ⊆ `custom_fields,email,notes,phone,name`, `exact_match`,
//! `organization_id`, `include_fields`, and paging (`limit` + `cursor` in v2, `start` +
//! `limit` in v1).
//!
//! Matching is the fake's reading [UNCONFIRMED]: phones compare by their digits (so
//! `+55 11 99999-0000` is found by `+5511999990000`, but not by `11999990000`), names and
//! emails ignore case; `exact_match` means equal, otherwise "contains".

use std::collections::BTreeMap;

use axum::http::StatusCode;
use serde_json::{json, Value};

use super::http_api::{Answer, ApiError, ApiRequest};
use super::stats::Count;
use super::{Person, Shared};
use crate::fake_common::stats::lock;

const SEARCHABLE: &[&str] = &["custom_fields", "email", "notes", "phone", "name"];
const V2_PARAMS: &[&str] = &[
    "term",
    "fields",
    "exact_match",
    "organization_id",
    "include_fields",
    "limit",
    "cursor",
];
const V1_PARAMS: &[&str] = &[
    "term",
    "fields",
    "exact_match",
    "organization_id",
    "include_fields",
    "start",
    "limit",
];
const MAX_LIMIT: usize = 500;
const DEFAULT_LIMIT: usize = 100;

/// What a search asks for.
#[derive(Debug, Clone, PartialEq)]
struct Search {
    term: String,
    fields: Vec<String>,
    exact: bool,
    organization_id: Option<u64>,
    offset: usize,
    limit: usize,
}

pub(crate) fn search_v2(shared: &Shared, request: &ApiRequest) -> Result<Answer, ApiError> {
    let q = &request.query;
    known(q, V2_PARAMS)?;
    let offset = match q.get("cursor") {
        None => 0,
        // The fake's cursors are offsets it handed out itself.
        Some(c) => c
            .parse()
            .map_err(|_| ApiError::bad("cursor is not a cursor this API returned"))?,
    };
    let search = parse(q, offset)?;
    let (items, more) = run(shared, &search);
    let next_cursor = more.then(|| (search.offset + search.limit).to_string());
    Ok(Answer {
        status: StatusCode::OK,
        data: json!({ "items": items }),
        additional_data: Some(json!({ "next_cursor": next_cursor })),
    })
}

pub(crate) fn search_v1(shared: &Shared, request: &ApiRequest) -> Result<Answer, ApiError> {
    let q = &request.query;
    known(q, V1_PARAMS)?;
    let offset = match q.get("start") {
        None => 0,
        Some(s) => s
            .parse()
            .map_err(|_| ApiError::bad("start must be a non-negative integer"))?,
    };
    let search = parse(q, offset)?;
    let (items, more) = run(shared, &search);
    let mut pagination = json!({"start": search.offset, "limit": search.limit,
        "more_items_in_collection": more});
    if let (true, Some(obj)) = (more, pagination.as_object_mut()) {
        obj.insert("next_start".into(), json!(search.offset + search.limit));
    }
    Ok(Answer {
        status: StatusCode::OK,
        data: json!({ "items": items }),
        additional_data: Some(json!({ "pagination": pagination })),
    })
}

fn known(q: &BTreeMap<String, String>, allowed: &[&str]) -> Result<(), ApiError> {
    match q.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(unknown) => Err(ApiError::bad(format!("unknown parameter {unknown:?}"))),
        None => Ok(()),
    }
}

fn parse(q: &BTreeMap<String, String>, offset: usize) -> Result<Search, ApiError> {
    let exact = match q.get("exact_match").map(String::as_str) {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            return Err(ApiError::bad(format!(
                "exact_match must be true or false, not {other:?}"
            )))
        }
    };
    let term = q
        .get("term")
        .map(|t| t.trim().to_string())
        .unwrap_or_default();
    let shortest = if exact { 1 } else { 2 };
    if term.chars().count() < shortest {
        return Err(ApiError::bad(format!(
            "term must be at least {shortest} characters long"
        )));
    }
    let fields: Vec<String> = match q.get("fields") {
        None => SEARCHABLE.iter().map(|f| f.to_string()).collect(),
        Some(list) => list.split(',').map(|f| f.trim().to_string()).collect(),
    };
    if let Some(bad) = fields.iter().find(|f| !SEARCHABLE.contains(&f.as_str())) {
        return Err(ApiError::bad(format!(
            "fields must be among {}, not {bad:?}",
            SEARCHABLE.join(",")
        )));
    }
    let organization_id = match q.get("organization_id") {
        None => None,
        Some(o) => Some(
            o.parse::<u64>()
                .ok()
                .filter(|o| *o > 0)
                .ok_or_else(|| ApiError::bad("organization_id must be a positive integer"))?,
        ),
    };
    let limit = match q.get("limit") {
        None => DEFAULT_LIMIT,
        Some(l) => l
            .parse::<usize>()
            .ok()
            .filter(|l| (1..=MAX_LIMIT).contains(l))
            .ok_or_else(|| ApiError::bad(format!("limit must be between 1 and {MAX_LIMIT}")))?,
    };
    Ok(Search {
        term,
        fields,
        exact,
        organization_id,
        offset,
        limit,
    })
}

/// The page of matches and whether more follow.
fn run(shared: &Shared, search: &Search) -> (Vec<Value>, bool) {
    shared.stats.add(Count::Search);
    let crm = lock(&shared.crm);
    let matches: Vec<(f64, &Person)> = crm
        .persons
        .iter()
        .filter(|p| {
            search
                .organization_id
                .is_none_or(|o| p.organization.as_ref().is_some_and(|(id, _)| *id == o))
        })
        .filter_map(|p| score(p, search).map(|s| (s, p)))
        .collect();
    let more = matches.len() > search.offset + search.limit;
    let page = matches
        .iter()
        .skip(search.offset)
        .take(search.limit)
        .map(|(score, p)| json!({"result_score": score, "item": item(p)}))
        .collect();
    (page, more)
}

fn digits(s: &str) -> String {
    s.chars().filter(char::is_ascii_digit).collect()
}

/// How well `p` matches, or `None`.
fn score(p: &Person, search: &Search) -> Option<f64> {
    let term = search.term.to_lowercase();
    let text = |value: &str| {
        let value = value.to_lowercase();
        if search.exact {
            value == term
        } else {
            value.contains(&term)
        }
    };
    let term_digits = digits(&search.term);
    let phone = |value: &str| {
        let value = digits(value);
        !term_digits.is_empty()
            && if search.exact {
                value == term_digits
            } else {
                value.contains(&term_digits)
            }
    };
    let wants = |f: &str| search.fields.iter().any(|w| w == f);
    let found = (wants("name") && text(&p.name))
        || (wants("email") && p.emails.iter().any(|e| text(e)))
        || (wants("phone") && p.phones.iter().any(|n| phone(n)));
    found.then_some(if search.exact { 1.0 } else { 0.5 })
}

/// A person as search results show it.
fn item(p: &Person) -> Value {
    let organization = p
        .organization
        .as_ref()
        .map(|(id, name)| json!({"id": id, "name": name, "address": null}));
    json!({
        "id": p.id,
        "type": "person",
        "name": p.name,
        "phones": p.phones,
        "emails": p.emails,
        "visible_to": 3,
        "owner": {"id": p.owner_id},
        "organization": organization,
        "custom_fields": [],
        "notes": [],
        "update_time": "2026-01-01 00:00:00",
    })
}
