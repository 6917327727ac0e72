//! The pipeline's stages, what a failure means for the job, and how a stage's progress is
//! written on the call row (`calls.stage_status`).

use std::fmt;

use serde_json::{json, Value as Json};

/// One step of `process_call`, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stage {
    /// Fetch the recording from its URL and keep it in storage.
    Download,
    /// Speech to text, by speaker.
    Transcribe,
    /// Segments and insights from the LLM.
    Analyze,
    /// The scorecard against the tenant's template.
    Score,
    /// The push to the CRM (when enabled).
    Crm,
}

impl Stage {
    pub const ALL: [Stage; 5] = [
        Stage::Download,
        Stage::Transcribe,
        Stage::Analyze,
        Stage::Score,
        Stage::Crm,
    ];

    /// Its key in `stage_status`.
    pub fn key(self) -> &'static str {
        match self {
            Stage::Download => "download",
            Stage::Transcribe => "transcribe",
            Stage::Analyze => "analyze",
            Stage::Score => "score",
            Stage::Crm => "crm",
        }
    }

    /// The call's `status` while this stage runs (the CRM push happens after `processed`).
    pub fn call_status(self) -> &'static str {
        match self {
            Stage::Download => "downloading",
            Stage::Transcribe => "transcribing",
            Stage::Analyze => "analyzing",
            Stage::Score => "scoring",
            Stage::Crm => "processed",
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

/// Why a stage failed, which decides what happens to the job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StageError {
    /// Might work later (a provider or the storage down, a timeout, a 5xx, the database):
    /// the job is retried with backoff, and dead-lettered when out of attempts.
    Retryable(String),
    /// Will never work (the recording is gone, not audio, too big): the call is marked
    /// failed and the job dead-lettered now.
    Permanent(String),
}

impl StageError {
    pub fn message(&self) -> &str {
        match self {
            StageError::Retryable(m) | StageError::Permanent(m) => m,
        }
    }
}

impl fmt::Display for StageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl From<voice_core::db::DbError> for StageError {
    fn from(e: voice_core::db::DbError) -> Self {
        StageError::Retryable(format!("database: {e}"))
    }
}

/// A stage's entry in `stage_status`.
#[derive(Debug, Clone, PartialEq)]
pub enum StageState {
    Running {
        attempt: u32,
    },
    Done {
        attempt: u32,
        ms: u64,
        detail: Json,
    },
    /// Its output was already there (a re-run after a crash or a duplicate delivery).
    Skipped {
        reason: &'static str,
    },
    Failed {
        attempt: u32,
        error: String,
        will_retry: bool,
    },
}

impl StageState {
    pub fn to_json(&self) -> Json {
        match self {
            StageState::Running { attempt } => json!({"status": "running", "attempts": attempt}),
            StageState::Done {
                attempt,
                ms,
                detail,
            } => {
                let mut v = json!({"status": "done", "attempts": attempt, "ms": ms});
                if let (Some(map), Json::Object(extra)) = (v.as_object_mut(), detail) {
                    for (k, x) in extra {
                        map.insert(k.clone(), x.clone());
                    }
                }
                v
            }
            StageState::Skipped { reason } => json!({"status": "skipped", "reason": reason}),
            StageState::Failed {
                attempt,
                error,
                will_retry,
            } => json!({
                "status": if *will_retry { "retrying" } else { "failed" },
                "attempts": attempt,
                "error": error,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn done_keeps_its_detail_beside_the_timing() {
        let v = StageState::Done {
            attempt: 2,
            ms: 40,
            detail: json!({"provider": "deepgram"}),
        }
        .to_json();
        assert_eq!(v["status"], "done");
        assert_eq!(v["attempts"], 2);
        assert_eq!(v["ms"], 40);
        assert_eq!(v["provider"], "deepgram");
        let failed = StageState::Failed {
            attempt: 1,
            error: "x".into(),
            will_retry: true,
        }
        .to_json();
        assert_eq!(failed["status"], "retrying");
    }

    #[test]
    fn every_stage_has_a_distinct_key() {
        let keys: std::collections::HashSet<_> = Stage::ALL.iter().map(|s| s.key()).collect();
        assert_eq!(keys.len(), Stage::ALL.len());
    }
}
