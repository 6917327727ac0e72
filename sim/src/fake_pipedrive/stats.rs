//! What the fake received, shared by all its requests: counters are atomics, the list of
//! requests sits behind a mutex held only to push or copy (and stops growing at a cap).

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde_json::Value;

use crate::fake_common::stats::{lock, push_capped, Counters};

/// Where a request carried its token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenIn {
    /// `x-api-token` header (the official client).
    Header,
    /// `?api_token=` (the classic way).
    Query,
    Missing,
}

/// One request as the fake received it; the token itself is never kept.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedRequest {
    pub method: String,
    /// Path without the query, e.g. `/api/v2/persons/search`.
    pub path: String,
    /// The query without `api_token`.
    pub query: BTreeMap<String, String>,
    pub token_in: TokenIn,
    /// The JSON body, when there was one that parsed.
    pub body: Option<Value>,
    /// The status the fake answered (0 for a request left hanging).
    pub status: u16,
}

/// A snapshot of what the fake has seen since it started.
#[derive(Debug, Clone, Default)]
pub struct FakePipedriveStats {
    pub searches: u64,
    pub notes_added: u64,
    pub activities_added: u64,
    /// Requests refused (auth, validation, injected status).
    pub refused: u64,
    /// Requests without the right token.
    pub auth_failures: u64,
    pub requests: Vec<ReceivedRequest>,
    /// Why each refused request was refused (capped).
    pub errors: Vec<String>,
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Count {
    Search,
    Note,
    Activity,
    Refused,
    AuthFailure,
}

impl Count {
    const ALL: usize = Count::AuthFailure as usize + 1;
}

#[derive(Default)]
pub(crate) struct StatsRecorder {
    counts: Counters<{ Count::ALL }>,
    rest: Mutex<Rest>,
}

#[derive(Default)]
struct Rest {
    requests: Vec<ReceivedRequest>,
    errors: Vec<String>,
}

impl StatsRecorder {
    pub fn add(&self, what: Count) {
        self.counts.add(what as usize);
    }

    pub fn request(&self, request: ReceivedRequest) {
        push_capped(&mut lock(&self.rest).requests, request);
    }

    pub fn refused(&self, why: String) {
        self.add(Count::Refused);
        push_capped(&mut lock(&self.rest).errors, why);
    }

    pub fn snapshot(&self) -> FakePipedriveStats {
        let get = |c: Count| self.counts.get(c as usize);
        let rest = lock(&self.rest);
        FakePipedriveStats {
            searches: get(Count::Search),
            notes_added: get(Count::Note),
            activities_added: get(Count::Activity),
            refused: get(Count::Refused),
            auth_failures: get(Count::AuthFailure),
            requests: rest.requests.clone(),
            errors: rest.errors.clone(),
        }
    }
}
