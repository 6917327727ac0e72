//! Byte formats of the fake event socket: reading client commands the way
//! `read_packet` does, and writing replies and events the way mod_event_socket does.

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::net::tcp::OwnedReadHalf;

use super::FakeEvent;

/// Longest command line or header the fake accepts (FreeSWITCH's buffer is ~1 MB).
const MAX_LINE: u64 = 64 * 1024;
const MAX_BODY: usize = 1024 * 1024;

/// A client command: its first line and the header lines after it (a body, if any, is
/// read and ignored).
pub(super) struct Command {
    pub line: String,
    headers: Vec<(String, String)>,
}

impl Command {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Reads one command the way `read_packet` does: lines up to a blank one (stray leading
/// newlines skipped), then `Content-Length` bytes of body. `None` on a clean EOF.
pub(super) async fn read_command(
    reader: &mut BufReader<OwnedReadHalf>,
) -> anyhow::Result<Option<Command>> {
    let mut lines: Vec<String> = Vec::new();
    loop {
        let mut raw = Vec::new();
        let n = (&mut *reader)
            .take(MAX_LINE)
            .read_until(b'\n', &mut raw)
            .await?;
        if n == 0 {
            return Ok(None);
        }
        if raw.last() != Some(&b'\n') {
            anyhow::ensure!(
                (n as u64) < MAX_LINE,
                "command line longer than {MAX_LINE} bytes"
            );
            return Ok(None);
        }
        let text = String::from_utf8_lossy(&raw)
            .trim_end_matches(['\r', '\n'])
            .to_string();
        if text.is_empty() {
            if lines.is_empty() {
                continue;
            }
            break;
        }
        lines.push(text);
    }
    let line = lines.remove(0);
    let headers: Vec<(String, String)> = lines
        .iter()
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim_start().to_string()))
        .collect();
    let command = Command { line, headers };
    if let Some(len) = command.header("Content-Length") {
        let len: usize = len
            .trim()
            .parse()
            .context("invalid Content-Length in a command")?;
        anyhow::ensure!(len <= MAX_BODY, "command body of {len} bytes is too large");
        let mut body = vec![0; len];
        reader.read_exact(&mut body).await?;
    }
    Ok(Some(command))
}

/// `Content-Type: <ct>\nContent-Length: N\n\n<body>`, as api responses and the disconnect
/// notice are framed.
pub(super) fn reply_bytes(content_type: &str, body: &str) -> Vec<u8> {
    format!(
        "Content-Type: {content_type}\nContent-Length: {}\n\n{body}",
        body.len()
    )
    .into_bytes()
}

/// What `switch_event_serialize(…, encode=TRUE)` plus mod_event_socket's framing produce.
pub(super) fn serialize_event(event: &FakeEvent, core_uuid: &str, sequence: u64) -> Vec<u8> {
    let micros = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros())
        .unwrap_or(0);
    let mut headers: Vec<(&str, String)> = Vec::new();
    if let Some(subclass) = &event.subclass {
        headers.push(("Event-Subclass", subclass.clone()));
    }
    headers.extend([
        ("Event-Name", event.name.clone()),
        ("Core-UUID", core_uuid.to_string()),
        ("FreeSWITCH-Hostname", "fake-freeswitch".to_string()),
        ("FreeSWITCH-Switchname", "fake-freeswitch".to_string()),
        ("FreeSWITCH-IPv4", "127.0.0.1".to_string()),
        ("Event-Date-Timestamp", micros.to_string()),
        ("Event-Calling-File", "fake_esl.rs".to_string()),
        ("Event-Calling-Function", "publish".to_string()),
        ("Event-Sequence", sequence.to_string()),
    ]);
    headers.extend(event.headers.iter().map(|(n, v)| (n.as_str(), v.clone())));

    let mut inner = String::new();
    for (name, value) in headers {
        inner.push_str(&format!("{name}: {}\n", url_encode(&value)));
    }
    match event.body.as_deref() {
        Some(body) if !body.is_empty() => {
            inner.push_str(&format!("Content-Length: {}\n\n{body}", body.len()))
        }
        _ => inner.push('\n'),
    }
    // mod_event_socket puts Content-Length first for events.
    format!(
        "Content-Length: {}\nContent-Type: text/event-plain\n\n{inner}",
        inner.len()
    )
    .into_bytes()
}

/// `switch_url_encode`: control bytes, non-ASCII bytes and ` "#%&+:;<=>?@[\]^`{|}` become `%XX`.
pub(super) fn url_encode(value: &str) -> String {
    const UNSAFE: &[u8] = b"\r\n \"#%&+:;<=>?@[\\]^`{|}";
    let mut out = String::with_capacity(value.len());
    for &byte in value.as_bytes() {
        if !(b' '..=b'~').contains(&byte) || UNSAFE.contains(&byte) {
            out.push_str(&format!("%{byte:02X}"));
        } else {
            out.push(char::from(byte));
        }
    }
    out
}

pub(super) fn new_uuid() -> String {
    let v: u128 = rand::random();
    let hex = format!("{v:032x}");
    format!(
        "{}-{}-4{}-a{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[13..16],
        &hex[17..20],
        &hex[20..32]
    )
}
