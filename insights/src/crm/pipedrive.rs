//! The Pipedrive client: find a person by phone (`GET /api/v2/persons/search`), add a note
//! (`POST /v1/notes`) and a call activity (`POST /api/v2/activities`). The token goes in
//! the `x-api-token` header, marked sensitive, and is scrubbed from any error text.

use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use super::settings::PipedriveSettings;
use super::store::PushedSteps;
use super::{content, CallForCrm, CrmEvent, ACTIVITY, NOTE, PERSON_LOOKUP};

pub(super) const PROVIDER: &str = "pipedrive";
/// Largest answer read; Pipedrive's are a few kB.
const MAX_ANSWER_BYTES: usize = 1024 * 1024;
/// Fewest digits worth a phone search (shorter numbers are extensions).
const MIN_PHONE_DIGITS: usize = 8;

/// Why a request to Pipedrive failed. Never carries the token.
#[derive(Debug, Clone, PartialEq)]
pub struct CrmError {
    pub message: String,
    /// Pipedrive's HTTP status, when it answered.
    pub status: Option<u16>,
    /// A later try may work (timeout, network, 429, 5xx).
    pub retryable: bool,
}

impl std::fmt::Display for CrmError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CrmError {}

impl CrmError {
    fn setup(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            status: None,
            retryable: false,
        }
    }
}

#[derive(Clone)]
pub struct Pipedrive {
    http: reqwest::Client,
    base: String,
    owner_id: Option<u64>,
    /// Kept only to scrub it from error text.
    token: String,
}

impl std::fmt::Debug for Pipedrive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipedrive")
            .field("base", &self.base)
            .finish()
    }
}

impl Pipedrive {
    pub fn from_settings(s: &PipedriveSettings) -> Result<Self, CrmError> {
        let token = s.api_token.expose().trim();
        if token.is_empty() {
            return Err(CrmError::setup(
                "no API token (set PIPEDRIVE_API_TOKEN or [crm.pipedrive] api_token)",
            ));
        }
        let base = s.url.trim().trim_end_matches('/');
        if reqwest::Url::parse(base).map_or(true, |u| !matches!(u.scheme(), "http" | "https")) {
            return Err(CrmError::setup(format!(
                "url must be http(s), not {base:?}"
            )));
        }
        let mut auth = HeaderValue::from_str(token)
            .map_err(|_| CrmError::setup("the API token has characters a header cannot carry"))?;
        auth.set_sensitive(true);
        let mut headers = HeaderMap::new();
        headers.insert("x-api-token", auth);
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .timeout(Duration::from_secs(s.timeout_secs.clamp(1, 300)))
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| CrmError::setup(format!("HTTP client: {e}")))?;
        Ok(Self {
            http,
            base: base.to_string(),
            owner_id: s.user_id,
            token: token.to_string(),
        })
    }

    /// Pushes `call`, skipping the steps `done` already records: the person is looked up
    /// (or taken from an earlier push), then the note and the activity are added. Returns
    /// one event per step tried.
    pub async fn push(&self, call: &CallForCrm, done: &PushedSteps) -> Vec<CrmEvent> {
        let mut events = Vec::new();
        let person = match done.person_id {
            Some(id) => id,
            None => match self.lookup(call).await {
                Ok(Some(id)) => {
                    events.push(CrmEvent::ok(PERSON_LOOKUP, Some(id.to_string()), json!({})));
                    id
                }
                Ok(None) => {
                    let reason = if call.phones_hashed {
                        "phone numbers are hashed: nobody can be looked up"
                    } else if digits(&call.from) < MIN_PHONE_DIGITS {
                        "no caller number to look up"
                    } else {
                        "nobody in the CRM has the caller's number"
                    };
                    events.push(CrmEvent::skipped(PERSON_LOOKUP, reason));
                    return events;
                }
                Err(e) => {
                    events.push(CrmEvent::failed(PERSON_LOOKUP, e));
                    return events;
                }
            },
        };
        if !done.note {
            let body = self.note_body(call, person);
            events.push(match self.create("/v1/notes", body).await {
                Ok(id) => CrmEvent::ok(NOTE, id, json!({ "person_id": person })),
                Err(e) => CrmEvent::failed(NOTE, e),
            });
        }
        if !done.activity {
            let body = content::activity(call, person, self.owner_id);
            events.push(match self.create("/api/v2/activities", body).await {
                Ok(id) => CrmEvent::ok(ACTIVITY, id, json!({ "person_id": person })),
                Err(e) => CrmEvent::failed(ACTIVITY, e),
            });
        }
        events
    }

    /// The person whose phone is the caller's; `None` when there is no number to search
    /// (hashed, missing, an extension) or nobody matches.
    async fn lookup(&self, call: &CallForCrm) -> Result<Option<u64>, CrmError> {
        if call.phones_hashed || digits(&call.from) < MIN_PHONE_DIGITS {
            return Ok(None);
        }
        let url = format!("{}/api/v2/persons/search", self.base);
        let request = self.http.get(url).query(&[
            ("term", call.from.trim()),
            ("fields", "phone"),
            ("exact_match", "true"),
            ("limit", "1"),
        ]);
        let answer = self.send(Method::GET, request).await?;
        Ok(answer["data"]["items"]
            .as_array()
            .and_then(|items| items.first())
            .and_then(|first| first["item"]["id"].as_u64()))
    }

    fn note_body(&self, call: &CallForCrm, person: u64) -> Value {
        let mut body = json!({
            "content": content::note_html(call),
            "person_id": person,
            "pinned_to_person_flag": 1,
        });
        if let (Some(owner), Some(fields)) = (self.owner_id, body.as_object_mut()) {
            fields.insert("user_id".into(), json!(owner));
        }
        body
    }

    /// POSTs `body` to `path`; the id of what was made.
    async fn create(&self, path: &str, body: Value) -> Result<Option<String>, CrmError> {
        let request = self.http.post(format!("{}{path}", self.base)).json(&body);
        let answer = self.send(Method::POST, request).await?;
        Ok(answer["data"]["id"].as_u64().map(|id| id.to_string()))
    }

    /// Sends, reads at most [`MAX_ANSWER_BYTES`] and checks Pipedrive's envelope.
    async fn send(
        &self,
        method: Method,
        request: reqwest::RequestBuilder,
    ) -> Result<Value, CrmError> {
        let what = format!("Pipedrive {method}");
        let mut response = request.send().await.map_err(|e| CrmError {
            message: if e.is_timeout() {
                format!("{what}: no answer in time")
            } else {
                self.scrub(&format!("{what}: {}", e.without_url()))
            },
            status: None,
            retryable: true,
        })?;
        let status = response.status();
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| CrmError {
            message: self.scrub(&format!("{what}: answer cut off: {}", e.without_url())),
            status: Some(status.as_u16()),
            retryable: true,
        })? {
            if body.len() + chunk.len() > MAX_ANSWER_BYTES {
                return Err(CrmError {
                    message: format!("{what}: answer over 1 MB"),
                    status: Some(status.as_u16()),
                    retryable: false,
                });
            }
            body.extend_from_slice(&chunk);
        }
        let answer: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        if !status.is_success() || answer["success"] == json!(false) {
            let said = answer["error"]
                .as_str()
                .unwrap_or("")
                .chars()
                .take(200)
                .collect::<String>();
            let message = match said.is_empty() {
                true => format!("{what}: HTTP {status}"),
                false => format!("{what}: HTTP {status}: {said}"),
            };
            return Err(CrmError {
                message: self.scrub(&message),
                status: Some(status.as_u16()),
                retryable: status == StatusCode::TOO_MANY_REQUESTS
                    || status == StatusCode::REQUEST_TIMEOUT
                    || status.is_server_error(),
            });
        }
        if !answer.is_object() {
            return Err(CrmError {
                message: format!("{what}: the answer is not JSON"),
                status: Some(status.as_u16()),
                retryable: false,
            });
        }
        Ok(answer)
    }

    fn scrub(&self, text: &str) -> String {
        text.replace(&self.token, "***")
    }
}

fn digits(s: &str) -> usize {
    s.chars().filter(char::is_ascii_digit).count()
}
