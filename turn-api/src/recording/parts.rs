//! What each request leaves on the shared filesystem for the call's recording, since the
//! turns of one session may be answered by different instances: `{dir}/.parts/{session}/`
//! holds `session.json` (the call's facts) and, per exchange `n` (0 = the greeting),
//! `{n}.caller.wav`, `{n}.agent.wav` (either may be missing) and `{n}.json` (its facts),
//! written last, so an exchange counts only once all of it is there. Every file is written
//! to a temporary name and renamed, so a crash never leaves half a file.
//!
//! `.parts` starts with a dot, which a tenant folder never does (`safe_component`), so it
//! cannot collide with the recordings themselves.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};
use voice_core::audio::wav;
use voice_core::recording::paths::safe_component;

/// The call as the session was created.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionMeta {
    pub session_id: String,
    pub call_id: String,
    pub tenant: String,
    pub caller: Option<String>,
    pub callee: Option<String>,
    /// The recording's rate: the greeting's (the engine's IVR rate).
    pub rate: u32,
    pub started_at_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consent: Option<bool>,
}

/// One exchange's facts and when it was stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExchangeMeta {
    pub turn: u32,
    pub stored_at_ms: u64,
    /// Said at the start of the caller's audio (the caller's transcript).
    pub before: Vec<serde_json::Value>,
    /// Said when the answer starts (the turn, the agent's transcript, tool calls).
    pub after: Vec<serde_json::Value>,
}

/// One exchange read back.
pub struct Exchange {
    pub meta: ExchangeMeta,
    /// Mono samples and their rate.
    pub caller: Option<(Vec<i16>, u32)>,
    pub agent: Option<(Vec<i16>, u32)>,
}

/// The parts folder of one session (open: turns still come) under `root`.
pub fn open_dir(root: &Path, session_id: &str) -> PathBuf {
    root.join(".parts").join(safe_component(session_id))
}

/// Where a session's parts go once claimed for assembly: a name of this claim only, so a
/// folder left there by a process that died while assembling never blocks a claim.
fn closing_dir(root: &Path, session_id: &str) -> PathBuf {
    static CLAIMS: AtomicU64 = AtomicU64::new(0);
    root.join(".closing").join(format!(
        "{}-{}-{}",
        safe_component(session_id),
        std::process::id(),
        CLAIMS.fetch_add(1, Ordering::Relaxed)
    ))
}

fn write_whole(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let written = fs::write(&tmp, bytes).and_then(|_| fs::rename(&tmp, path));
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written
}

/// Creates the session's folder with its `session.json`.
pub fn create(root: &Path, meta: &SessionMeta) -> io::Result<()> {
    let dir = open_dir(root, &meta.session_id);
    fs::create_dir_all(&dir)?;
    write_whole(&dir.join("session.json"), &serde_json::to_vec(meta)?)
}

/// Stores one exchange. Only into an existing folder: a session already closed (or never
/// recorded) gets nothing.
pub fn store(
    root: &Path,
    session_id: &str,
    meta: &ExchangeMeta,
    caller: Option<(&[i16], u32)>,
    agent: Option<(&[i16], u32)>,
) -> io::Result<()> {
    let dir = open_dir(root, session_id);
    if !dir.join("session.json").is_file() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            "the session is not being recorded",
        ));
    }
    let n = meta.turn;
    for (side, audio) in [("caller", caller), ("agent", agent)] {
        if let Some((samples, rate)) = audio.filter(|(s, _)| !s.is_empty()) {
            let path = dir.join(format!("{n}.{side}.wav"));
            write_whole(&path, &wav::encode(rate, 1, samples))?;
        }
    }
    write_whole(&dir.join(format!("{n}.json")), &serde_json::to_vec(meta)?)
}

/// Takes the session's parts for assembly: one atomic rename, so of two instances (an end
/// and an expiry) only one gets them. `None` when they are gone or taken. (Two instances
/// could pick the same process id and count only on different hosts, where the folder's
/// disappearance already decides: the second rename finds no source.)
pub fn claim(root: &Path, session_id: &str) -> Option<PathBuf> {
    let to = closing_dir(root, session_id);
    fs::create_dir_all(to.parent()?).ok()?;
    fs::rename(open_dir(root, session_id), &to).ok()?;
    Some(to)
}

/// The claimed folder's session and exchanges, in order. Unreadable exchanges are skipped
/// (and counted), so one bad file does not lose the call.
pub fn read(dir: &Path) -> io::Result<(SessionMeta, Vec<Exchange>, u32)> {
    let meta: SessionMeta = serde_json::from_slice(&fs::read(dir.join("session.json"))?)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    let mut turns: Vec<u32> = fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.strip_suffix(".json")?.parse().ok()
        })
        .collect();
    turns.sort_unstable();
    let mut out = Vec::with_capacity(turns.len());
    let mut skipped = 0;
    for n in turns {
        let meta = fs::read(dir.join(format!("{n}.json")))
            .ok()
            .and_then(|b| serde_json::from_slice::<ExchangeMeta>(&b).ok());
        let Some(meta) = meta else {
            skipped += 1;
            continue;
        };
        out.push(Exchange {
            meta,
            caller: read_wav(&dir.join(format!("{n}.caller.wav"))),
            agent: read_wav(&dir.join(format!("{n}.agent.wav"))),
        });
    }
    Ok((meta, out, skipped))
}

/// A mono WAV (the first channel of any other), if there is a readable one.
pub fn read_wav(path: &Path) -> Option<(Vec<i16>, u32)> {
    let bytes = fs::read(path).ok()?;
    let parsed = wav::parse(&bytes).ok()?;
    Some((parsed.channel(0), parsed.rate))
}

/// Open sessions whose folder has not changed for `idle` (by the folder's modification
/// time, which every stored exchange updates).
pub fn idle_sessions(root: &Path, idle: std::time::Duration) -> Vec<String> {
    let Ok(entries) = fs::read_dir(root.join(".parts")) else {
        return Vec::new();
    };
    let now = std::time::SystemTime::now();
    entries
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| now.duration_since(t).ok())
                .is_some_and(|age| age >= idle)
        })
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}
