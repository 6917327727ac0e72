//! The whole call of each session, kept as the bridge keeps its calls (voice-core's
//! recorder: `{dir}/{tenant}/{date}/{call}.wav|.opus`, `.jsonl` facts, `.json` summary),
//! so the call-insights uploader treats bridge and turn-api calls alike.
//!
//! The turns of a session may be answered by different instances, so no recorder is held
//! across requests: each request stores its exchange as parts on the shared filesystem
//! ([`parts`]), and the instance that sees the session end assembles them ([`assemble`]):
//! on `POST …/end` or `DELETE` ("ended"), on the limits' goodbye ("limit"), or, for a
//! session nobody ended, once its parts are unchanged for the session TTL plus a minute
//! ("expired", checked every minute by [`Recording::expire_idle`]).
//!
//! Recording never fails a request: errors are logged and the call goes on unrecorded.

mod assemble;
pub mod parts;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tracing::{debug, info, warn};
use voice_core::recording::{Recorders, RecordingError, RecordingSettings};

use crate::sessions::{now_ms, Session};
pub use assemble::exchange_facts;
use parts::SessionMeta;

/// Parts unchanged this long past the session TTL belong to a session that expired.
const EXPIRY_GRACE: Duration = Duration::from_secs(60);

/// The recording service of one instance (cheap to clone; does nothing when disabled).
#[derive(Clone, Debug)]
pub struct Recording {
    inner: Option<Arc<Inner>>,
}

#[derive(Debug)]
struct Inner {
    recorders: Recorders,
    dir: PathBuf,
    /// How long parts may stay unchanged before their session counts as expired.
    idle: Duration,
}

/// Audio of one side: mono samples and their rate.
pub type Audio<'a> = (&'a [i16], u32);

impl Recording {
    /// Starts voice-core's recorder when `settings.enabled`; `session_ttl` is the store's.
    pub fn new(
        settings: &RecordingSettings,
        session_ttl: Duration,
    ) -> Result<Self, RecordingError> {
        let recorders = Recorders::new(settings.clone())?;
        if !recorders.is_enabled() {
            return Ok(Self { inner: None });
        }
        Ok(Self {
            inner: Some(Arc::new(Inner {
                recorders,
                dir: settings.dir.clone(),
                idle: session_ttl + EXPIRY_GRACE,
            })),
        })
    }

    pub fn is_enabled(&self) -> bool {
        self.inner.is_some()
    }

    /// A new session: its call facts and the greeting (exchange 0, `session.history[0]`).
    pub async fn greeting(
        &self,
        session: &Session,
        greeting: Audio<'_>,
        timings: &serde_json::Value,
    ) {
        let Some(inner) = self.inner.clone() else {
            return;
        };
        let Some(record) = session.history.last() else {
            return;
        };
        let meta = SessionMeta {
            session_id: session.id.clone(),
            call_id: session.call_id.clone(),
            tenant: session.tenant.clone(),
            caller: session.caller.clone(),
            callee: session.callee.clone(),
            rate: greeting.1,
            started_at_ms: session.created_at_ms,
            consent: session.consent,
        };
        let exchange = exchange_facts(0, record, timings, &session.conversation, now_ms());
        let agent = (greeting.0.to_vec(), greeting.1);
        let id = session.id.clone();
        blocking(&id.clone(), move || {
            parts::create(&inner.dir, &meta)?;
            parts::store(&inner.dir, &id, &exchange, None, Some((&agent.0, agent.1)))
        })
        .await;
    }

    /// A caller turn: what the caller said (the recording as posted) and the answer; the
    /// turn is `session.history`'s last record.
    pub async fn turn(
        &self,
        session: &Session,
        caller: Audio<'_>,
        answer: Audio<'_>,
        timings: &serde_json::Value,
    ) {
        let Some(inner) = self.inner.clone() else {
            return;
        };
        let Some(record) = session.history.last() else {
            return;
        };
        let exchange = exchange_facts(
            record.turn,
            record,
            timings,
            &session.conversation,
            now_ms(),
        );
        let (caller, answer) = ((caller.0.to_vec(), caller.1), (answer.0.to_vec(), answer.1));
        let id = session.id.clone();
        blocking(&id.clone(), move || {
            parts::store(
                &inner.dir,
                &id,
                &exchange,
                Some((&caller.0, caller.1)),
                Some((&answer.0, answer.1)),
            )
        })
        .await;
    }

    /// A limit ended the session with the goodbye (and its WAV, if any): stored, and the
    /// call assembled now.
    pub async fn goodbye(&self, session: &Session, goodbye_wav: &std::path::Path) {
        let Some(inner) = self.inner.clone() else {
            return;
        };
        let Some(record) = session.history.last() else {
            return;
        };
        let exchange = exchange_facts(
            record.turn,
            record,
            &serde_json::json!({}),
            &serde_json::Value::Null,
            now_ms(),
        );
        let wav = (!goodbye_wav.as_os_str().is_empty()).then(|| goodbye_wav.to_path_buf());
        let id = session.id.clone();
        blocking(&id.clone(), move || {
            let audio = wav.as_deref().and_then(parts::read_wav);
            let audio = audio.as_ref().map(|(s, r)| (s.as_slice(), *r));
            parts::store(&inner.dir, &id, &exchange, None, audio)
        })
        .await;
        self.close(&session.id, "limit", Some(now_ms())).await;
    }

    /// The session was ended (`POST …/end`, `DELETE`): its call is assembled.
    pub async fn end(&self, session: &Session) {
        self.close(&session.id, "ended", Some(now_ms())).await;
    }

    /// Assembles the call of `session_id`, unless another instance already took it.
    async fn close(&self, session_id: &str, reason: &'static str, ended_at_ms: Option<u64>) {
        let Some(inner) = self.inner.clone() else {
            return;
        };
        let id = session_id.to_string();
        blocking(session_id, move || {
            close_now(&inner, &id, reason, ended_at_ms).map(|_| ())
        })
        .await;
    }

    /// Assembles the calls of sessions whose parts have not changed for the session TTL
    /// plus a minute (nobody ended them); returns how many. Blocking: run it off the
    /// async threads.
    pub fn expire_idle(&self) -> usize {
        self.expire_idle_after(self.inner.as_ref().map(|i| i.idle).unwrap_or_default())
    }

    /// [`Recording::expire_idle`] with another idle time (tests).
    pub fn expire_idle_after(&self, idle: Duration) -> usize {
        let Some(inner) = self.inner.as_ref() else {
            return 0;
        };
        let mut closed = 0;
        for id in parts::idle_sessions(&inner.dir, idle) {
            match close_now(inner, &id, "expired", None) {
                Ok(true) => closed += 1,
                Ok(false) => {}
                Err(e) => warn!(session = %id, error = %e, "expired session not recorded"),
            }
        }
        closed
    }

    /// Every minute, [`Recording::expire_idle`] (until the task is aborted).
    pub async fn run_expiry(self) {
        if self.inner.is_none() {
            return;
        }
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        loop {
            tick.tick().await;
            let r = self.clone();
            let closed = tokio::task::spawn_blocking(move || r.expire_idle())
                .await
                .unwrap_or(0);
            if closed > 0 {
                info!(closed, "expired sessions' calls recorded");
            }
        }
    }
}

/// Claims and assembles the call of `session_id`; false when there was nothing to claim
/// (not recorded, or another instance took it).
fn close_now(
    inner: &Inner,
    session_id: &str,
    reason: &str,
    ended_at_ms: Option<u64>,
) -> std::io::Result<bool> {
    let Some(dir) = parts::claim(&inner.dir, session_id) else {
        debug!(session = %session_id, "no recording parts to assemble");
        return Ok(false);
    };
    let result = assemble::assemble(&inner.recorders, &dir, reason, ended_at_ms);
    // The parts go either way: a recording that cannot be assembled now never will be.
    let _ = std::fs::remove_dir_all(&dir);
    let paths = result?;
    info!(session = %session_id, reason, audio = %paths.audio.display(), "call recorded");
    Ok(true)
}

/// Runs `work` on a blocking thread; logs its failure.
async fn blocking(session_id: &str, work: impl FnOnce() -> std::io::Result<()> + Send + 'static) {
    match tokio::task::spawn_blocking(work).await {
        Ok(Ok(())) => {}
        // Not found: the session is not recorded (created while recording was off, or
        // already closed).
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => {
            debug!(session = %session_id, error = %e, "recording: nothing stored")
        }
        Ok(Err(e)) => warn!(session = %session_id, error = %e, "recording: cannot store"),
        Err(e) => warn!(session = %session_id, error = %e, "recording task failed"),
    }
}
