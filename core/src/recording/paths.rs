//! Where a call's files go: `{dir}/{tenant}/{YYYY-MM-DD}/{call_id}.{wav|opus,jsonl,json}`.
//!
//! Tenant and call id come from outside (FreeSWITCH channel variables), so each becomes a
//! single safe path component: only `[A-Za-z0-9._-]`, never `.`/`..`, never empty, and
//! never a hidden file. Anything else is replaced by `_`.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::clock::UtcTime;
use super::RecordingFormat;

/// Longest component kept: with an extension it stays well under the usual 255-byte limit.
const MAX_COMPONENT: usize = 128;

/// The files of one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordingPaths {
    /// The stereo recording (`.wav` or `.opus`).
    pub audio: PathBuf,
    /// One JSON line per fact, written as the call goes (`.jsonl`).
    pub facts: PathBuf,
    /// The summary written when the call ends (`.json`).
    pub summary: PathBuf,
}

impl RecordingPaths {
    pub(crate) fn new(
        dir: &Path,
        tenant: &str,
        call_id: &str,
        started_at: SystemTime,
        format: RecordingFormat,
    ) -> Self {
        let folder = dir
            .join(safe_component(tenant))
            .join(UtcTime::from_system(started_at).date());
        let base = safe_component(call_id);
        Self {
            audio: folder.join(format!("{base}.{}", format.extension())),
            facts: folder.join(format!("{base}.jsonl")),
            summary: folder.join(format!("{base}.json")),
        }
    }

    /// The folder holding the call's files.
    pub fn folder(&self) -> &Path {
        self.audio.parent().unwrap_or(Path::new("."))
    }
}

/// `raw` as one path component made of `[A-Za-z0-9._-]` only: other characters become
/// `_`, and so does a leading dot or a dot after a dot (no `.`, `..` or hidden files).
pub fn safe_component(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len().min(MAX_COMPONENT));
    let mut prev_dot = true; // a dot at the start is replaced too
    for c in raw.chars().take(MAX_COMPONENT) {
        let keep = c.is_ascii_alphanumeric() || c == '-' || c == '_' || (c == '.' && !prev_dot);
        prev_dot = c == '.';
        out.push(if keep { c } else { '_' });
    }
    if out.is_empty() {
        out.push('_');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Component;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn hostile_names_stay_one_component_under_dir() {
        let dir = Path::new("/srv/rec");
        let day = UNIX_EPOCH + Duration::from_secs(1_700_000_000); // 2023-11-14
        let hostile = [
            "../../etc/passwd",
            "..",
            ".",
            "",
            "/abs/path",
            "a/../../b",
            "..\\..\\win",
            ".hidden",
            "nul\0byte",
            "ünïcødé",
            "a..b",
            "x...",
        ];
        for raw in hostile {
            let name = safe_component(raw);
            assert!(!name.is_empty(), "{raw:?}");
            assert!(!name.contains(".."), "{raw:?} -> {name}");
            assert!(!name.starts_with('.'), "{raw:?} -> {name}");
            assert!(name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)));
            let p = RecordingPaths::new(dir, raw, raw, day, RecordingFormat::Wav);
            for file in [&p.audio, &p.facts, &p.summary] {
                assert!(file.starts_with(dir), "{file:?}");
                let rest = file.strip_prefix(dir).expect("under dir");
                assert_eq!(rest.components().count(), 3, "{file:?}");
                assert!(rest.components().all(|c| matches!(c, Component::Normal(_))));
            }
        }
        assert_eq!(safe_component("../../etc/passwd"), "___.__etc_passwd");
        assert_eq!(safe_component("a..b"), "a._b");
        assert_eq!(safe_component(&"x".repeat(1000)).len(), MAX_COMPONENT);
    }

    #[test]
    fn layout_is_tenant_day_call() {
        let day = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let p = RecordingPaths::new(
            Path::new("rec"),
            "acme",
            "6f1c-uuid.1",
            day,
            RecordingFormat::Opus,
        );
        assert_eq!(p.audio, Path::new("rec/acme/2023-11-14/6f1c-uuid.1.opus"));
        assert_eq!(p.facts, Path::new("rec/acme/2023-11-14/6f1c-uuid.1.jsonl"));
        assert_eq!(p.summary, Path::new("rec/acme/2023-11-14/6f1c-uuid.1.json"));
        assert_eq!(p.folder(), Path::new("rec/acme/2023-11-14"));
    }
}
