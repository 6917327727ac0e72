//! Server-sent events (`text/event-stream`, the framing of both chat APIs), decoded from
//! body chunks however the network cut them: a line may be split anywhere (even inside a
//! UTF-8 character), lines end in `\n`, `\r\n` or `\r`, one chunk may hold many events,
//! and `:` lines are comments (keep-alives).

use crate::providers::ProviderError;

/// Longest event (or line) accepted: a server that never ends one cannot eat the memory.
pub(crate) const MAX_EVENT_BYTES: usize = 1 << 20;

/// One dispatched event: its `event:` name (empty when none) and its `data:` lines
/// joined with `\n`.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct SseEvent {
    pub event: String,
    pub data: String,
}

/// Turns body bytes into events; keeps what is not complete yet for the next chunk.
#[derive(Debug, Default)]
pub(crate) struct SseDecoder {
    /// The line so far (bytes: it may end inside a UTF-8 character).
    line: Vec<u8>,
    /// The last chunk ended on `\r`: a `\n` opening the next one belongs to it.
    after_cr: bool,
    /// A line was already read (a byte-order mark is only skipped on the first).
    started: bool,
    event: String,
    data: String,
    has_data: bool,
}

impl SseDecoder {
    /// Feeds the next body chunk; returns the events it completed.
    pub fn push(&mut self, mut bytes: &[u8]) -> Result<Vec<SseEvent>, ProviderError> {
        let mut out = Vec::new();
        if bytes.is_empty() {
            return Ok(out);
        }
        if std::mem::take(&mut self.after_cr) && bytes[0] == b'\n' {
            bytes = &bytes[1..];
        }
        while let Some(i) = bytes.iter().position(|&b| b == b'\n' || b == b'\r') {
            self.line.extend_from_slice(&bytes[..i]);
            let line = std::mem::take(&mut self.line);
            self.on_line(&line, &mut out)?;
            let mut next = i + 1;
            if bytes[i] == b'\r' {
                match bytes.get(next) {
                    Some(b'\n') => next += 1,
                    Some(_) => {}
                    None => self.after_cr = true,
                }
            }
            bytes = &bytes[next..];
        }
        self.line.extend_from_slice(bytes);
        if self.line.len() + self.data.len() > MAX_EVENT_BYTES {
            return Err(too_large());
        }
        Ok(out)
    }

    /// The body ended: a last line without its newline, and an event without its blank
    /// line, still count (some servers end that way).
    pub fn finish(&mut self) -> Result<Option<SseEvent>, ProviderError> {
        let mut out = Vec::new();
        if !self.line.is_empty() {
            let line = std::mem::take(&mut self.line);
            self.on_line(&line, &mut out)?;
        }
        self.on_line(b"", &mut out)?;
        Ok(out.pop())
    }

    fn on_line(&mut self, line: &[u8], out: &mut Vec<SseEvent>) -> Result<(), ProviderError> {
        let first = !std::mem::replace(&mut self.started, true);
        if line.is_empty() {
            // A blank line ends the event; one without data is not dispatched (spec).
            if std::mem::take(&mut self.has_data) {
                out.push(SseEvent {
                    event: std::mem::take(&mut self.event),
                    data: std::mem::take(&mut self.data),
                });
            }
            self.event.clear();
            return Ok(());
        }
        let mut line = std::str::from_utf8(line)
            .map_err(|_| ProviderError::Protocol("event stream is not UTF-8".into()))?;
        if first {
            line = line.strip_prefix('\u{feff}').unwrap_or(line);
        }
        if line.starts_with(':') {
            return Ok(());
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        match field {
            "event" => self.event = value.to_string(),
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
                if self.data.len() > MAX_EVENT_BYTES {
                    return Err(too_large());
                }
            }
            // `id` and `retry` only matter to browsers that reconnect.
            _ => {}
        }
        Ok(())
    }
}

fn too_large() -> ProviderError {
    ProviderError::Protocol(format!(
        "event stream line or event over {MAX_EVENT_BYTES} bytes"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(event: &str, data: &str) -> SseEvent {
        SseEvent {
            event: event.into(),
            data: data.into(),
        }
    }

    /// Every event of `stream` fed in pieces cut at `cuts`.
    fn decode_cut(stream: &[u8], cuts: &[usize]) -> Vec<SseEvent> {
        let mut d = SseDecoder::default();
        let mut out = Vec::new();
        let mut from = 0;
        for &cut in cuts.iter().chain([stream.len()].iter()) {
            out.extend(d.push(&stream[from..cut]).unwrap());
            from = cut;
        }
        out.extend(d.finish().unwrap());
        out
    }

    const STREAM: &str =
        "\u{feff}: keep-alive\r\n\r\nevent: message_start\r\ndata: {\"a\":\"olá\"}\r\n\r\n\
                          data: one\ndata:two\n\nevent: ping\rdata: {}\r\r\
                          id: 7\nretry: 10\ndata: [DONE]\n\n";

    fn expected() -> Vec<SseEvent> {
        vec![
            ev("message_start", "{\"a\":\"olá\"}"),
            ev("", "one\ntwo"),
            ev("ping", "{}"),
            ev("", "[DONE]"),
        ]
    }

    #[test]
    fn decodes_events_comments_and_every_line_ending() {
        assert_eq!(decode_cut(STREAM.as_bytes(), &[]), expected());
    }

    #[test]
    fn any_split_at_every_byte_boundary_gives_the_same_events() {
        let bytes = STREAM.as_bytes();
        for cut in 0..=bytes.len() {
            assert_eq!(decode_cut(bytes, &[cut]), expected(), "cut at {cut}");
        }
        for a in 0..=bytes.len() {
            for b in a..=bytes.len() {
                assert_eq!(decode_cut(bytes, &[a, b]), expected(), "cuts {a}, {b}");
            }
        }
        let every_byte: Vec<usize> = (1..bytes.len()).collect();
        assert_eq!(decode_cut(bytes, &every_byte), expected());
    }

    #[test]
    fn a_last_event_without_its_blank_line_still_counts() {
        assert_eq!(
            decode_cut(b"data: a\n\ndata: [DONE]", &[]),
            vec![ev("", "a"), ev("", "[DONE]")]
        );
        assert_eq!(decode_cut(b"event: x\n\n: only a comment", &[]), vec![]);
    }

    #[test]
    fn bad_utf8_and_endless_lines_are_protocol_errors() {
        let mut d = SseDecoder::default();
        let err = d.push(b"data: \xff\xfe\n\n").unwrap_err();
        assert!(matches!(err, ProviderError::Protocol(_)), "{err}");
        let mut d = SseDecoder::default();
        let chunk = vec![b'a'; 64 * 1024];
        let mut result = Ok(Vec::new());
        for _ in 0..20 {
            result = d.push(&chunk);
            if result.is_err() {
                break;
            }
        }
        assert!(matches!(result, Err(ProviderError::Protocol(_))));
        let mut d = SseDecoder::default();
        let line = format!("data: {}\n", "b".repeat(1000));
        let mut failed = false;
        for _ in 0..2000 {
            if d.push(line.as_bytes()).is_err() {
                failed = true;
                break;
            }
        }
        assert!(failed, "an event that never ends is refused");
    }
}
