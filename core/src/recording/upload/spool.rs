//! The recordings folder is the upload queue: a call is due once its summary
//! (`{dir}/{tenant}/{date}/{call}.json`, written last and renamed into place) exists and
//! neither marker does: `{call}.uploaded` (call-insights has it) or `{call}.upload-failed`
//! (refused for good; the file holds the reason). Markers are written to a temporary name
//! and renamed, so they are whole or absent.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

pub const UPLOADED: &str = "uploaded";
pub const FAILED: &str = "upload-failed";

/// Summaries of finished calls not uploaded nor set aside yet, oldest folders first.
pub fn due(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for tenant in sorted_dirs(dir) {
        for day in sorted_dirs(&tenant) {
            let Ok(entries) = fs::read_dir(&day) else {
                continue;
            };
            let mut found: Vec<PathBuf> = entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "json"))
                .filter(|p| !marker(p, UPLOADED).exists() && !marker(p, FAILED).exists())
                .collect();
            found.sort();
            out.extend(found);
        }
    }
    out
}

/// Sub-folders, without hidden ones (turn-api keeps its `.parts` and `.closing` there).
fn sorted_dirs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut dirs: Vec<PathBuf> = entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .map(|e| e.path())
        .collect();
    dirs.sort();
    dirs
}

/// `{call}.{kind}` beside the summary `{call}.json` (call ids may hold dots: only the
/// last extension is replaced).
pub fn marker(summary: &Path, kind: &str) -> PathBuf {
    summary.with_extension(kind)
}

/// Writes a marker whole: to a temporary name, then renamed.
pub fn mark(summary: &Path, kind: &str, text: &str) -> io::Result<()> {
    let path = marker(summary, kind);
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let written = (|| {
        let mut file = fs::File::create(&tmp)?;
        file.write_all(text.as_bytes())?;
        file.write_all(b"\n")?;
        fs::rename(&tmp, &path)
    })();
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written
}

/// Removes an uploaded call's files: the summary after the audio and facts, and the marker
/// last, so a crash half-way never makes the call look due again.
pub fn remove_call(summary: &Path, audio: &Path) -> io::Result<()> {
    for path in [
        audio.to_path_buf(),
        summary.with_extension("jsonl"),
        summary.to_path_buf(),
        marker(summary, UPLOADED),
    ] {
        match fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    Ok(())
}
