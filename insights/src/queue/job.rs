//! A job and its encoding as stream fields (flat strings, readable with `redis-cli XRANGE`).

use std::fmt;

use serde_json::Value as Json;
use uuid::Uuid;

/// Version of the field layout below; an entry with another version is poison to this build.
const ENCODING_VERSION: &str = "1";

/// One unit of work, e.g. "process call X of tenant Y".
///
/// Delivery is at least once: the same `id` may be handled twice (a worker that stalls past
/// the visibility timeout and then finishes, a crash between the work and the ack). Workers
/// make their effects idempotent on `id` (or on `call_id` + stage).
#[derive(Clone, PartialEq)]
pub struct Job {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub call_id: Uuid,
    /// What to do, e.g. `process_call`.
    pub kind: String,
    /// 1 for the first run, incremented by every retry.
    pub attempt: u32,
    pub payload: Json,
}

impl Job {
    pub fn new(tenant_id: Uuid, call_id: Uuid, kind: impl Into<String>, payload: Json) -> Self {
        Self {
            id: Uuid::new_v4(),
            tenant_id,
            call_id,
            kind: kind.into(),
            attempt: 1,
            payload,
        }
    }

    /// The stream fields, in a fixed order.
    pub(crate) fn to_fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("v", ENCODING_VERSION.to_string()),
            ("id", self.id.to_string()),
            ("tenant_id", self.tenant_id.to_string()),
            ("call_id", self.call_id.to_string()),
            ("kind", self.kind.clone()),
            ("attempt", self.attempt.max(1).to_string()),
            ("payload", self.payload.to_string()),
        ]
    }

    /// Reads a job back from raw stream fields. Anything malformed is an error naming the
    /// problem, never a panic: such an entry is poison and goes to the dead-letter stream.
    pub(crate) fn from_fields(fields: &[(Vec<u8>, Vec<u8>)]) -> Result<Self, String> {
        let get = |name: &str| -> Result<&str, String> {
            let raw = fields
                .iter()
                .find(|(k, _)| k.as_slice() == name.as_bytes())
                .map(|(_, v)| v.as_slice())
                .ok_or_else(|| format!("missing field `{name}`"))?;
            std::str::from_utf8(raw).map_err(|_| format!("field `{name}` is not UTF-8"))
        };
        let uuid = |name: &str| -> Result<Uuid, String> {
            Uuid::parse_str(get(name)?).map_err(|_| format!("field `{name}` is not a UUID"))
        };
        // Entries written before the version field existed would be v1; there are none yet,
        // but a missing field costs nothing to accept.
        let version = get("v").unwrap_or(ENCODING_VERSION);
        if version != ENCODING_VERSION {
            return Err(format!("unsupported encoding version `{version}`"));
        }
        let kind = get("kind")?;
        if kind.is_empty() {
            return Err("field `kind` is empty".into());
        }
        let attempt = get("attempt")?
            .parse::<u32>()
            .ok()
            .filter(|a| *a >= 1)
            .ok_or("field `attempt` is not a positive integer")?;
        let payload = serde_json::from_str(get("payload")?)
            .map_err(|e| format!("field `payload` is not JSON: {e}"))?;
        Ok(Self {
            id: uuid("id")?,
            tenant_id: uuid("tenant_id")?,
            call_id: uuid("call_id")?,
            kind: kind.to_string(),
            attempt,
            payload,
        })
    }
}

/// The payload may hold signed URLs or personal data: Debug shows only its size.
impl fmt::Debug for Job {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Job")
            .field("id", &self.id)
            .field("tenant_id", &self.tenant_id)
            .field("call_id", &self.call_id)
            .field("kind", &self.kind)
            .field("attempt", &self.attempt)
            .field("payload_bytes", &self.payload.to_string().len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(job: &Job) -> Vec<(Vec<u8>, Vec<u8>)> {
        job.to_fields()
            .into_iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v.into_bytes()))
            .collect()
    }

    #[test]
    fn queue_job_fields_round_trip() {
        let job = Job::new(
            Uuid::new_v4(),
            Uuid::new_v4(),
            "process_call",
            serde_json::json!({"url": "https://x/é", "n": 1.5}),
        );
        assert_eq!(Job::from_fields(&raw(&job)), Ok(job));
    }

    #[test]
    fn queue_job_malformed_fields_are_errors() {
        let job = Job::new(Uuid::new_v4(), Uuid::new_v4(), "k", serde_json::json!(null));
        let mut fields = raw(&job);
        fields[1].1 = b"not-a-uuid".to_vec();
        assert_eq!(
            Job::from_fields(&fields),
            Err("field `id` is not a UUID".into())
        );

        let mut fields = raw(&job);
        fields[5].1 = b"0".to_vec();
        assert!(Job::from_fields(&fields).is_err());

        let mut fields = raw(&job);
        fields[6].1 = vec![0xff, 0xfe];
        assert_eq!(
            Job::from_fields(&fields),
            Err("field `payload` is not UTF-8".into())
        );

        let mut fields = raw(&job);
        fields.retain(|(k, _)| k.as_slice() != b"call_id");
        assert_eq!(
            Job::from_fields(&fields),
            Err("missing field `call_id`".into())
        );
    }

    #[test]
    fn queue_job_debug_hides_the_payload() {
        let job = Job::new(
            Uuid::new_v4(),
            Uuid::new_v4(),
            "k",
            serde_json::json!({"url": "https://s3/x?X-Amz-Signature=secret"}),
        );
        assert!(!format!("{job:?}").contains("secret"));
    }
}
