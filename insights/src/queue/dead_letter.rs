//! The dead-letter stream: jobs that will not be retried, with why. Operators read it (and
//! may re-enqueue a fixed job); it is capped so it cannot fill Redis.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, TimeZone, Utc};

use super::job::Job;
use super::reply::RawEntry;

/// Why a job was given up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeadLetterReason {
    /// It failed `max_attempts` times.
    MaxAttempts,
    /// Its fields could not be decoded; retrying cannot help.
    Poison,
    /// It was delivered `max_deliveries` times without an ack or retry: it probably kills
    /// or hangs the workers that take it.
    TooManyDeliveries,
    /// The worker said it must not be retried (e.g. no consent, an invalid recording).
    Rejected,
}

impl DeadLetterReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MaxAttempts => "max_attempts",
            Self::Poison => "poison",
            Self::TooManyDeliveries => "too_many_deliveries",
            Self::Rejected => "rejected",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        [
            Self::MaxAttempts,
            Self::Poison,
            Self::TooManyDeliveries,
            Self::Rejected,
        ]
        .into_iter()
        .find(|r| r.as_str() == text)
    }
}

impl fmt::Display for DeadLetterReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One dead-letter entry as read back.
#[derive(Clone)]
pub struct DeadLetter {
    /// Id in the dead-letter stream.
    pub id: String,
    /// `None` if the stream holds a reason this build does not know.
    pub reason: Option<DeadLetterReason>,
    pub error: String,
    /// Attempts made (0 when the job could not be decoded).
    pub attempts: u32,
    /// Redis time when it was dead-lettered.
    pub failed_at: Option<DateTime<Utc>>,
    /// The job's id in the job stream when it was given up.
    pub source_id: String,
    /// The job, when its fields decode.
    pub job: Option<Job>,
    /// The job's fields as they were (lossy UTF-8), for poison that does not decode.
    pub raw_job: BTreeMap<String, String>,
}

/// `raw_job` holds the payload (signed URLs, personal data): Debug lists its field names only.
impl fmt::Debug for DeadLetter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeadLetter")
            .field("id", &self.id)
            .field("reason", &self.reason)
            .field("error", &self.error)
            .field("attempts", &self.attempts)
            .field("failed_at", &self.failed_at)
            .field("source_id", &self.source_id)
            .field("job", &self.job)
            .field("raw_job_fields", &self.raw_job.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// Dead-letter fields (before the script stamps `failed_at_ms`). The job's own fields are
/// kept as one JSON object under `job`, so a fixed job can be re-enqueued from it.
pub(crate) fn fields(
    reason: DeadLetterReason,
    error: &str,
    attempts: u32,
    source_id: &str,
    raw_job: &[(Vec<u8>, Vec<u8>)],
    max_error_len: usize,
) -> Vec<String> {
    let job: BTreeMap<String, String> = raw_job
        .iter()
        .map(|(k, v)| {
            (
                String::from_utf8_lossy(k).into_owned(),
                String::from_utf8_lossy(v).into_owned(),
            )
        })
        .collect();
    let job = serde_json::to_string(&job).unwrap_or_else(|_| "{}".into());
    vec![
        "reason".into(),
        reason.as_str().into(),
        "error".into(),
        truncate(error, max_error_len),
        "attempts".into(),
        attempts.to_string(),
        "source_id".into(),
        source_id.into(),
        "job".into(),
        job,
    ]
}

/// Cuts at a character boundary so the text stays valid UTF-8.
fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

pub(crate) fn decode(entry: RawEntry) -> DeadLetter {
    let field = |name: &str| -> String {
        entry
            .fields
            .iter()
            .find(|(k, _)| k.as_slice() == name.as_bytes())
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
            .unwrap_or_default()
    };
    let raw_job: BTreeMap<String, String> = serde_json::from_str(&field("job")).unwrap_or_default();
    let pairs: Vec<(Vec<u8>, Vec<u8>)> = raw_job
        .iter()
        .map(|(k, v)| (k.clone().into_bytes(), v.clone().into_bytes()))
        .collect();
    DeadLetter {
        reason: DeadLetterReason::parse(&field("reason")),
        error: field("error"),
        attempts: field("attempts").parse().unwrap_or(0),
        failed_at: field("failed_at_ms")
            .parse::<i64>()
            .ok()
            .and_then(|ms| Utc.timestamp_millis_opt(ms).single()),
        source_id: field("source_id"),
        job: Job::from_fields(&pairs).ok(),
        raw_job,
        id: entry.id,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_dead_letter_error_is_truncated_on_a_char_boundary() {
        assert_eq!(truncate("ação", 2), "a…");
        assert_eq!(truncate("abc", 3), "abc");
    }

    #[test]
    fn queue_dead_letter_fields_decode_back() {
        let job = Job::new(
            uuid::Uuid::new_v4(),
            uuid::Uuid::new_v4(),
            "k",
            serde_json::json!({"a": 1}),
        );
        let raw: Vec<(Vec<u8>, Vec<u8>)> = job
            .to_fields()
            .into_iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v.into_bytes()))
            .collect();
        let mut flat = fields(DeadLetterReason::MaxAttempts, "boom", 3, "1-0", &raw, 100);
        flat.extend(["failed_at_ms".into(), "1700000000000".into()]);
        let pairs = flat
            .chunks(2)
            .map(|p| (p[0].clone().into_bytes(), p[1].clone().into_bytes()))
            .collect();
        let dl = decode(RawEntry {
            id: "9-0".into(),
            fields: pairs,
        });
        assert_eq!(dl.reason, Some(DeadLetterReason::MaxAttempts));
        assert_eq!(dl.error, "boom");
        assert_eq!(dl.attempts, 3);
        assert_eq!(dl.source_id, "1-0");
        assert_eq!(dl.job, Some(job));
        assert_eq!(dl.failed_at.map(|t| t.timestamp()), Some(1_700_000_000));
    }
}
