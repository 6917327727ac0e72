//! A strict fake of the slice of Pipedrive's REST API a call-insights push uses, for
//! tests and the offline demo. Wire facts: /work/shared/reference/providers.md §8.
//!
//! - `GET /api/v2/persons/search` and `GET /v1/persons/search`: find people by phone
//!   (or name, email) among scripted [`Person`]s (`persons.rs`).
//! - `POST /v1/notes`: an HTML note on a person, deal or organisation (`notes.rs`).
//! - `POST /api/v2/activities`: a call activity (`activities.rs`).
//!
//! Every request needs the API token in the `x-api-token` header (what the official client
//! sends) or the classic `?api_token=` query; refusals use Pipedrive's envelope
//! `{"success": false, "error", "error_info", "errorCode"}` and never echo the token.
//! Answers carry `{"success": true, "data": …}` and the rate-limit headers. Bodies are
//! checked field by field (unknown fields, types, formats, ids that must exist), so a
//! client mistake fails the test instead of reaching a real CRM.
//!
//! Scripting from a test: the persons and deals that exist, [`Fault`]s per request (a
//! status, 429 with `Retry-After`, a delay, a hang), and what the fake received and
//! created ([`FakePipedrive::requests`], [`FakePipedrive::notes`],
//! [`FakePipedrive::activities`]).

mod activities;
mod http_api;
mod notes;
mod persons;
mod stats;
#[cfg(test)]
mod tests;
mod validate;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::bail;
use serde_json::Value;
use tokio::sync::watch;

use crate::fake_common::server::{self, FaultPlan, ServerTask};
use crate::fake_common::stats::lock;

pub use stats::{FakePipedriveStats, ReceivedRequest, TokenIn};

/// A failure to inject, for the requests made after it is set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Fault {
    #[default]
    None,
    /// Answer with this status and Pipedrive's error body (429 comes with
    /// `Retry-After: 2`).
    Refuse(u16),
    /// 429 with `Retry-After` and `x-ratelimit-reset` set to this many seconds.
    RateLimited { retry_after_s: u64 },
    /// Answer this many ms late, then as usual.
    Delay(u64),
    /// Never answer.
    Hang,
}

/// A person in the fake CRM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    pub id: u64,
    pub name: String,
    /// As entered in the CRM (any formatting).
    pub phones: Vec<String>,
    pub emails: Vec<String>,
    /// The organisation (id, name) the person belongs to.
    pub organization: Option<(u64, String)>,
    pub owner_id: u64,
}

impl Person {
    /// A person with one phone, no email, no organisation, owned by user 1.
    pub fn new(id: u64, name: &str, phone: &str) -> Self {
        Self {
            id,
            name: name.to_string(),
            phones: vec![phone.to_string()],
            emails: Vec::new(),
            organization: None,
            owner_id: 1,
        }
    }
}

#[derive(Debug, Clone)]
pub struct FakePipedriveConfig {
    /// The token clients must send as `x-api-token` (or `?api_token=`).
    pub api_token: String,
    pub persons: Vec<Person>,
    /// Deals that exist (notes and activities may name only these).
    pub deal_ids: Vec<u64>,
    /// Users that may own an activity or write a note.
    pub user_ids: Vec<u64>,
    /// Activity type keys the account has (`call`, `meeting`, …).
    pub activity_types: Vec<String>,
    /// Every answer is held back this long.
    pub response_delay_ms: u64,
    pub fault: Fault,
}

impl Default for FakePipedriveConfig {
    fn default() -> Self {
        Self {
            api_token: "pd-fake-token".into(),
            persons: vec![Person {
                id: 101,
                name: "Ana Souza".into(),
                phones: vec!["+55 11 99999-0000".into()],
                emails: vec!["ana@example.com".into()],
                organization: Some((7, "Acme Ltda".into())),
                owner_id: 1,
            }],
            deal_ids: vec![456],
            user_ids: vec![1],
            activity_types: ["call", "meeting", "task", "deadline", "email", "lunch"]
                .map(String::from)
                .to_vec(),
            response_delay_ms: 0,
            fault: Fault::None,
        }
    }
}

/// What the fake CRM holds now.
#[derive(Default)]
pub(crate) struct Crm {
    pub persons: Vec<Person>,
    pub notes: Vec<Value>,
    pub activities: Vec<Value>,
}

impl Crm {
    pub fn person(&self, id: u64) -> Option<&Person> {
        self.persons.iter().find(|p| p.id == id)
    }

    pub fn has_org(&self, id: u64) -> bool {
        self.persons
            .iter()
            .any(|p| p.organization.as_ref().is_some_and(|(org, _)| *org == id))
    }
}

/// What every request of one fake shares.
pub(crate) struct Shared {
    pub cfg: FakePipedriveConfig,
    pub crm: Mutex<Crm>,
    pub stats: stats::StatsRecorder,
    pub shutdown: watch::Receiver<bool>,
    faults: FaultPlan<Fault>,
    next_id: AtomicU64,
}

impl Shared {
    /// A fresh id for a created note or activity.
    pub fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }
}

/// A running fake server; it stops when dropped.
pub struct FakePipedrive {
    shared: Arc<Shared>,
    addr: SocketAddr,
    _server: ServerTask,
}

impl FakePipedrive {
    /// Listens on 127.0.0.1 with a free port.
    pub async fn start(cfg: FakePipedriveConfig) -> anyhow::Result<FakePipedrive> {
        Self::start_on(cfg, server::local_any_port()).await
    }

    pub async fn start_on(cfg: FakePipedriveConfig, addr: SocketAddr) -> anyhow::Result<Self> {
        if cfg.api_token.is_empty() || cfg.activity_types.is_empty() {
            bail!("the fake needs an api_token and activity types");
        }
        check_persons(&cfg.persons)?;
        let (listener, addr) = server::bind(addr).await?;
        let (shutdown, shutdown_rx) = watch::channel(false);
        let shared = Arc::new(Shared {
            faults: FaultPlan::new(cfg.fault.clone()),
            crm: Mutex::new(Crm {
                persons: cfg.persons.clone(),
                ..Crm::default()
            }),
            cfg,
            stats: Default::default(),
            shutdown: shutdown_rx,
            next_id: AtomicU64::new(1),
        });
        let app = http_api::router(shared.clone());
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::warn!(error = %e, "fake Pipedrive server stopped");
            }
        });
        Ok(FakePipedrive {
            shared,
            addr,
            _server: ServerTask::new(shutdown, task),
        })
    }

    /// `http://127.0.0.1:PORT`: the API host (`https://api.pipedrive.com` in production);
    /// clients add `/v1/…` or `/api/v2/…`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `…/v1`: the v1 base URL.
    pub fn v1_url(&self) -> String {
        format!("{}/v1", self.url())
    }

    /// `…/api/v2`: the v2 base URL.
    pub fn v2_url(&self) -> String {
        format!("{}/api/v2", self.url())
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn api_token(&self) -> String {
        self.shared.cfg.api_token.clone()
    }

    pub fn stats(&self) -> FakePipedriveStats {
        self.shared.stats.snapshot()
    }

    /// Every request that reached the fake, in order (the token left out).
    pub fn requests(&self) -> Vec<ReceivedRequest> {
        self.shared.stats.snapshot().requests
    }

    /// The notes created so far, as the API returned them.
    pub fn notes(&self) -> Vec<Value> {
        lock(&self.shared.crm).notes.clone()
    }

    /// The activities created so far, as the API returned them.
    pub fn activities(&self) -> Vec<Value> {
        lock(&self.shared.crm).activities.clone()
    }

    /// Replaces the persons the CRM holds.
    pub fn set_persons(&self, persons: Vec<Person>) -> anyhow::Result<()> {
        check_persons(&persons)?;
        lock(&self.shared.crm).persons = persons;
        Ok(())
    }

    /// The fault for requests from now on.
    pub fn set_fault(&self, fault: Fault) {
        self.shared.faults.set(fault);
    }

    /// One fault per new request, in order, then `after`.
    pub fn set_faults(&self, next: Vec<Fault>, after: Fault) {
        self.shared.faults.set_sequence(next, after);
    }
}

fn check_persons(persons: &[Person]) -> anyhow::Result<()> {
    for (i, p) in persons.iter().enumerate() {
        if p.id == 0 || p.name.trim().is_empty() {
            bail!("person {i} needs a non-zero id and a name");
        }
        if persons[..i].iter().any(|q| q.id == p.id) {
            bail!("person id {} appears twice", p.id);
        }
    }
    Ok(())
}
