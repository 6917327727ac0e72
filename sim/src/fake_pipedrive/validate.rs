//! Field checks the write endpoints share: only known fields, ids that are positive
//! integers naming something that exists, and Pipedrive's date and time formats. The
//! real API is laxer in places (it coerces some strings); the fake refuses, so a client
//! sends exactly the documented types.

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use serde_json::{Map, Value};

use super::http_api::ApiError;
use super::Crm;

pub(crate) type Object = Map<String, Value>;

/// The body as an object (the router already refused anything else).
pub(crate) fn object(body: &Value) -> Result<&Object, ApiError> {
    body.as_object()
        .ok_or_else(|| ApiError::bad("the body must be a JSON object"))
}

pub(crate) fn only_known(obj: &Object, known: &[&str]) -> Result<(), ApiError> {
    match obj.keys().find(|k| !known.contains(&k.as_str())) {
        Some(unknown) => Err(ApiError::bad(format!("unknown field {unknown:?}"))),
        None => Ok(()),
    }
}

/// A positive integer id; `null` counts as absent.
pub(crate) fn id(obj: &Object, name: &str) -> Result<Option<u64>, ApiError> {
    match obj.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match v.as_u64() {
            Some(n) if n > 0 => Ok(Some(n)),
            _ => Err(ApiError::bad(format!("{name} must be a positive integer"))),
        },
    }
}

pub(crate) fn string<'a>(obj: &'a Object, name: &str) -> Result<Option<&'a str>, ApiError> {
    match obj.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(ApiError::bad(format!("{name} must be a string"))),
    }
}

pub(crate) fn boolean(obj: &Object, name: &str) -> Result<Option<bool>, ApiError> {
    match obj.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(ApiError::bad(format!("{name} must be a boolean"))),
    }
}

/// A v1 flag: `0` or `1` (booleans are accepted too).
pub(crate) fn flag(obj: &Object, name: &str) -> Result<Option<bool>, ApiError> {
    match obj.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(v) if v.as_u64() == Some(0) => Ok(Some(false)),
        Some(v) if v.as_u64() == Some(1) => Ok(Some(true)),
        Some(_) => Err(ApiError::bad(format!("{name} must be 0 or 1"))),
    }
}

/// `YYYY-MM-DD`.
pub(crate) fn date(obj: &Object, name: &str) -> Result<Option<String>, ApiError> {
    formatted(obj, name, "YYYY-MM-DD", |s| {
        s.len() == 10 && NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok()
    })
}

/// `HH:MM` (UTC), a time of day.
pub(crate) fn time_of_day(obj: &Object, name: &str) -> Result<Option<String>, ApiError> {
    formatted(obj, name, "HH:MM", |s| {
        s.len() == 5 && NaiveTime::parse_from_str(s, "%H:%M").is_ok()
    })
}

/// `HH:MM`, a length of time (minutes below 60).
pub(crate) fn duration(obj: &Object, name: &str) -> Result<Option<String>, ApiError> {
    formatted(obj, name, "HH:MM", |s| {
        let two_digits = |part: &str| part.len() == 2 && part.bytes().all(|b| b.is_ascii_digit());
        s.split_once(':').is_some_and(|(hours, minutes)| {
            two_digits(hours) && two_digits(minutes) && minutes < "60"
        })
    })
}

/// `YYYY-MM-DD HH:MM:SS`.
pub(crate) fn date_time(obj: &Object, name: &str) -> Result<Option<String>, ApiError> {
    formatted(obj, name, "YYYY-MM-DD HH:MM:SS", |s| {
        s.len() == 19 && NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").is_ok()
    })
}

fn formatted(
    obj: &Object,
    name: &str,
    shape: &str,
    ok: impl Fn(&str) -> bool,
) -> Result<Option<String>, ApiError> {
    match string(obj, name)? {
        None => Ok(None),
        Some(s) if ok(s) => Ok(Some(s.to_string())),
        Some(s) => Err(ApiError::bad(format!("{name} must be {shape}, not {s:?}"))),
    }
}

/// A lead id: a UUID string.
pub(crate) fn lead_id(obj: &Object) -> Result<Option<String>, ApiError> {
    match string(obj, "lead_id")? {
        None => Ok(None),
        Some(s) if uuid::Uuid::parse_str(s).is_ok() => Ok(Some(s.to_string())),
        Some(_) => Err(ApiError::bad("lead_id must be a UUID")),
    }
}

/// The entities a note or an activity is linked to, each checked to exist.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Links {
    pub person_id: Option<u64>,
    pub deal_id: Option<u64>,
    pub org_id: Option<u64>,
    pub lead_id: Option<String>,
    pub project_id: Option<u64>,
}

impl Links {
    pub fn read(obj: &Object, crm: &Crm, deal_ids: &[u64]) -> Result<Self, ApiError> {
        let links = Self {
            person_id: id(obj, "person_id")?,
            deal_id: id(obj, "deal_id")?,
            org_id: id(obj, "org_id")?,
            lead_id: lead_id(obj)?,
            project_id: id(obj, "project_id")?,
        };
        if let Some(p) = links.person_id.filter(|p| crm.person(*p).is_none()) {
            return Err(ApiError::not_found(format!("Person {p} not found")));
        }
        if let Some(d) = links.deal_id.filter(|d| !deal_ids.contains(d)) {
            return Err(ApiError::not_found(format!("Deal {d} not found")));
        }
        if let Some(o) = links.org_id.filter(|o| !crm.has_org(*o)) {
            return Err(ApiError::not_found(format!("Organization {o} not found")));
        }
        Ok(links)
    }

    pub fn is_empty(&self) -> bool {
        self.person_id.is_none()
            && self.deal_id.is_none()
            && self.org_id.is_none()
            && self.lead_id.is_none()
            && self.project_id.is_none()
    }
}

/// Now in Pipedrive's `YYYY-MM-DD HH:MM:SS` (UTC).
pub(crate) fn now() -> String {
    chrono::Utc::now().format("%Y-%m-%d %H:%M:%S").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Object {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn formats() {
        let o = obj(json!({"d": "2026-08-21", "t": "14:30", "l": "01:07",
            "dt": "2026-08-21 14:30:00", "bad_d": "21/08/2026", "bad_t": "25:00",
            "bad_l": "00:75", "bad_dt": "2026-08-21T14:30:00Z", "n": 7}));
        assert_eq!(date(&o, "d").unwrap().as_deref(), Some("2026-08-21"));
        assert_eq!(time_of_day(&o, "t").unwrap().as_deref(), Some("14:30"));
        assert_eq!(duration(&o, "l").unwrap().as_deref(), Some("01:07"));
        assert!(date_time(&o, "dt").unwrap().is_some());
        assert!(date(&o, "bad_d").is_err());
        assert!(time_of_day(&o, "bad_t").is_err());
        assert!(duration(&o, "bad_l").is_err());
        assert!(date_time(&o, "bad_dt").is_err());
        assert!(date(&o, "n").is_err());
        assert_eq!(date(&o, "absent").unwrap(), None);
    }

    #[test]
    fn ids_and_flags() {
        let o = obj(json!({"a": 3, "z": 0, "s": "3", "f0": 0, "f1": true, "f2": 2, "b": 1}));
        assert_eq!(id(&o, "a").unwrap(), Some(3));
        assert!(id(&o, "z").is_err());
        assert!(id(&o, "s").is_err());
        assert_eq!(flag(&o, "f0").unwrap(), Some(false));
        assert_eq!(flag(&o, "f1").unwrap(), Some(true));
        assert!(flag(&o, "f2").is_err());
        assert!(boolean(&o, "b").is_err(), "v2 booleans are not 0/1");
        assert!(only_known(&o, &["a"]).is_err());
    }
}
