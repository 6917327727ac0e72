//! ESL message framing: `Name: value` header lines, a blank line, then `Content-Length`
//! bytes of body. Used for the outer messages FreeSWITCH sends and for the inner header
//! block of a `text/event-plain` event, which has the same shape.
//!
//! [`FrameDecoder`] takes bytes as they arrive (one at a time or many messages at once) and
//! hands out whole [`Frame`]s. Sizes are capped so a broken peer cannot make us buffer
//! without bound. After an error the stream is out of sync: drop the connection.

use bytes::{Buf, BytesMut};

/// Largest header block of an outer message. FreeSWITCH's are a few hundred bytes.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Largest body. An event with every channel variable is tens of KiB; `api show channels`
/// on a busy switch can reach a few hundred KiB.
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// Content types whose body FreeSWITCH always announces with `Content-Length`. Without it
/// the body would be read as the next message's headers, so its absence is an error.
const TYPES_WITH_BODY: [&str; 5] = [
    "api/response",
    "text/event-plain",
    "text/event-json",
    "text/event-xml",
    "log/data",
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("header block exceeds {limit} bytes")]
    HeadTooLarge { limit: usize },
    #[error("header line without a colon: {0:?}")]
    MalformedHeader(String),
    #[error("invalid Content-Length {0:?}")]
    InvalidContentLength(String),
    #[error("body of {len} bytes exceeds the {limit}-byte limit")]
    BodyTooLarge { len: usize, limit: usize },
    #[error("{0} message without Content-Length")]
    MissingContentLength(String),
    #[error("message truncated: {0}")]
    Truncated(&'static str),
}

/// One message: headers in arrival order (values as sent, not URL-decoded) and the body
/// (empty when there is no `Content-Length`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Frame {
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Frame {
    /// First header with this name, compared case-insensitively as FreeSWITCH does.
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }

    pub fn content_type(&self) -> Option<&str> {
        self.header("Content-Type")
    }

    /// `Reply-Text` of a `command/reply` (e.g. `+OK accepted`, `-ERR invalid`).
    pub fn reply_text(&self) -> Option<&str> {
        self.header("Reply-Text")
    }

    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

pub(crate) fn find_header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// A parsed header block still waiting for its body bytes.
#[derive(Debug)]
struct PendingHead {
    headers: Vec<(String, String)>,
    head_len: usize,
    body_len: usize,
}

/// Incremental decoder; see the module docs.
#[derive(Debug)]
pub struct FrameDecoder {
    buf: BytesMut,
    /// How far the search for the blank line has got, so byte-at-a-time input stays linear.
    scanned: usize,
    pending: Option<PendingHead>,
    max_head: usize,
    max_body: usize,
    /// Enforce `Content-Length` on [`TYPES_WITH_BODY`]; off for event blocks, whose own
    /// `Content-Type` header (if any) says nothing about framing.
    strict_types: bool,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl FrameDecoder {
    /// Decoder for the outer messages of a connection, with the default limits.
    pub fn new() -> Self {
        Self::with_limits(MAX_HEAD_BYTES, MAX_BODY_BYTES)
    }

    pub fn with_limits(max_head: usize, max_body: usize) -> Self {
        Self {
            buf: BytesMut::new(),
            scanned: 0,
            pending: None,
            max_head,
            max_body,
            strict_types: true,
        }
    }

    /// Decoder for the inner block of one event, already bounded by the outer body.
    pub(crate) fn for_event_block(len: usize) -> Self {
        Self {
            strict_types: false,
            ..Self::with_limits(len, len)
        }
    }

    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes received but not yet returned as a frame.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next complete frame, `Ok(None)` if more bytes are needed.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, FrameError> {
        if self.pending.is_none() {
            match self.read_head()? {
                Some(head) => self.pending = Some(head),
                None => return Ok(None),
            }
        }
        let Some(head) = self.pending.as_ref() else {
            return Ok(None);
        };
        if self.buf.len() < head.head_len + head.body_len {
            return Ok(None);
        }
        let Some(head) = self.pending.take() else {
            return Ok(None);
        };
        self.buf.advance(head.head_len);
        let body = self.buf.split_to(head.body_len).to_vec();
        Ok(Some(Frame {
            headers: head.headers,
            body,
        }))
    }

    fn read_head(&mut self) -> Result<Option<PendingHead>, FrameError> {
        // FreeSWITCH itself skips stray newlines between messages.
        let leading = self
            .buf
            .iter()
            .take_while(|b| matches!(b, b'\r' | b'\n'))
            .count();
        if leading > 0 {
            self.buf.advance(leading);
            self.scanned = self.scanned.saturating_sub(leading);
        }
        let Some(head_len) = self.find_head_end() else {
            if self.buf.len() > self.max_head {
                return Err(FrameError::HeadTooLarge {
                    limit: self.max_head,
                });
            }
            return Ok(None);
        };
        if head_len > self.max_head {
            return Err(FrameError::HeadTooLarge {
                limit: self.max_head,
            });
        }
        self.scanned = 0;
        let headers = parse_headers(&self.buf[..head_len])?;
        let body_len = self.body_len(&headers)?;
        Ok(Some(PendingHead {
            headers,
            head_len,
            body_len,
        }))
    }

    /// Length of the header block including its terminating blank line, once present.
    fn find_head_end(&mut self) -> Option<usize> {
        for i in self.scanned..self.buf.len() {
            if self.buf[i] != b'\n' || i == 0 {
                continue;
            }
            let prev = self.buf[i - 1];
            if prev == b'\n' || (prev == b'\r' && i >= 2 && self.buf[i - 2] == b'\n') {
                return Some(i + 1);
            }
        }
        self.scanned = self.buf.len();
        None
    }

    fn body_len(&self, headers: &[(String, String)]) -> Result<usize, FrameError> {
        let Some(raw) = find_header(headers, "Content-Length") else {
            return match find_header(headers, "Content-Type") {
                Some(ct)
                    if self.strict_types
                        && TYPES_WITH_BODY.iter().any(|t| ct.eq_ignore_ascii_case(t)) =>
                {
                    Err(FrameError::MissingContentLength(ct.to_string()))
                }
                _ => Ok(0),
            };
        };
        let len: usize = raw
            .trim()
            .parse()
            .map_err(|_| FrameError::InvalidContentLength(raw.to_string()))?;
        if len > self.max_body {
            return Err(FrameError::BodyTooLarge {
                len,
                limit: self.max_body,
            });
        }
        Ok(len)
    }
}

/// Splits `Name: value` lines; FreeSWITCH strips the spaces after the colon.
fn parse_headers(block: &[u8]) -> Result<Vec<(String, String)>, FrameError> {
    let text = String::from_utf8_lossy(block);
    let mut headers = Vec::new();
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| FrameError::MalformedHeader(line.to_string()))?;
        headers.push((
            name.trim().to_string(),
            value.trim_start_matches(' ').to_string(),
        ));
    }
    Ok(headers)
}

/// `line` as a command on the wire (`line\n\n`), refusing anything that would inject a
/// second command or be empty.
pub fn encode_command(line: &str) -> Result<Vec<u8>, super::EslError> {
    if line.trim().is_empty() {
        return Err(super::EslError::Invalid("empty command".into()));
    }
    if line.contains(['\r', '\n']) {
        return Err(super::EslError::Invalid(
            "command contains a line break".into(),
        ));
    }
    let mut bytes = Vec::with_capacity(line.len() + 2);
    bytes.extend_from_slice(line.as_bytes());
    bytes.extend_from_slice(b"\n\n");
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(decoder: &mut FrameDecoder) -> Vec<Frame> {
        let mut out = Vec::new();
        while let Some(frame) = decoder.next_frame().unwrap() {
            out.push(frame);
        }
        out
    }

    /// A stream with every message kind FreeSWITCH sends, including binary and UTF-8 bodies.
    fn sample_stream() -> (Vec<u8>, usize) {
        let mut s = Vec::new();
        s.extend_from_slice(b"Content-Type: auth/request\n\n");
        s.extend_from_slice(b"Content-Type: command/reply\nReply-Text: +OK accepted\n\n");
        s.extend_from_slice(b"Content-Type: api/response\nContent-Length: 4\n\n+OK\n");
        let utf8 = "olá, você\n".as_bytes();
        s.extend_from_slice(
            format!(
                "Content-Type: api/response\nContent-Length: {}\n\n",
                utf8.len()
            )
            .as_bytes(),
        );
        s.extend_from_slice(utf8);
        let binary = [0u8, 255, b'\n', b'\n', 13, 10, 0x80];
        s.extend_from_slice(
            format!(
                "Content-Length: {}\nContent-Type: log/data\n\n",
                binary.len()
            )
            .as_bytes(),
        );
        s.extend_from_slice(&binary);
        s.extend_from_slice(b"Content-Type: text/disconnect-notice\nContent-Length: 3\n\nbye");
        (s, 6)
    }

    #[test]
    fn decodes_several_messages_from_one_read() {
        let (stream, count) = sample_stream();
        let mut d = FrameDecoder::new();
        d.push(&stream);
        let frames = decode_all(&mut d);
        assert_eq!(frames.len(), count);
        assert_eq!(frames[0].content_type(), Some("auth/request"));
        assert_eq!(frames[1].reply_text(), Some("+OK accepted"));
        assert_eq!(frames[2].body, b"+OK\n");
        assert_eq!(frames[3].body_text(), "olá, você\n");
        assert_eq!(frames[4].body, [0u8, 255, b'\n', b'\n', 13, 10, 0x80]);
        assert_eq!(frames[5].body_text(), "bye");
        assert_eq!(d.buffered(), 0);
    }

    #[test]
    fn decodes_byte_at_a_time() {
        let (stream, count) = sample_stream();
        let mut d = FrameDecoder::new();
        let mut frames = Vec::new();
        for byte in &stream {
            d.push(std::slice::from_ref(byte));
            frames.extend(decode_all(&mut d));
        }
        let mut whole = FrameDecoder::new();
        whole.push(&stream);
        assert_eq!(frames.len(), count);
        assert_eq!(frames, decode_all(&mut whole));
    }

    #[test]
    fn random_split_points_give_the_same_frames() {
        let (stream, _) = sample_stream();
        let mut reference = FrameDecoder::new();
        reference.push(&stream);
        let expected = decode_all(&mut reference);
        // xorshift: deterministic, no dependency.
        let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..500 {
            let mut d = FrameDecoder::new();
            let mut frames = Vec::new();
            let mut at = 0;
            while at < stream.len() {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let step = 1 + (seed % 40) as usize;
                let end = (at + step).min(stream.len());
                d.push(&stream[at..end]);
                frames.extend(decode_all(&mut d));
                at = end;
            }
            assert_eq!(frames, expected);
        }
    }

    #[test]
    fn waits_for_the_whole_body() {
        let mut d = FrameDecoder::new();
        d.push(b"Content-Type: api/response\nContent-Length: 10\n\n01234");
        assert_eq!(d.next_frame().unwrap(), None);
        d.push(b"56789Content-Type: command/reply\n");
        assert_eq!(d.next_frame().unwrap().unwrap().body, b"0123456789");
        assert_eq!(d.next_frame().unwrap(), None);
        d.push(b"Reply-Text: +OK\n\n");
        assert_eq!(d.next_frame().unwrap().unwrap().reply_text(), Some("+OK"));
    }

    #[test]
    fn tolerates_crlf_and_stray_newlines() {
        let mut d = FrameDecoder::new();
        d.push(b"\n\r\nContent-Type: command/reply\r\nReply-Text:   +OK x\r\n\r\n");
        let f = d.next_frame().unwrap().unwrap();
        assert_eq!(f.reply_text(), Some("+OK x"));
        assert_eq!(f.header("content-type"), Some("command/reply"));
    }

    #[test]
    fn rejects_invalid_content_length() {
        for bad in ["abc", "-1", "", "1e3", "99999999999999999999999"] {
            let mut d = FrameDecoder::new();
            d.push(format!("Content-Type: api/response\nContent-Length: {bad}\n\n").as_bytes());
            assert!(
                matches!(d.next_frame(), Err(FrameError::InvalidContentLength(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn rejects_missing_content_length_where_a_body_is_required() {
        let mut d = FrameDecoder::new();
        d.push(b"Content-Type: api/response\n\n+OK\n");
        assert_eq!(
            d.next_frame(),
            Err(FrameError::MissingContentLength("api/response".into()))
        );
        let mut d = FrameDecoder::new();
        d.push(b"Content-Type: text/event-plain\n\n");
        assert!(matches!(
            d.next_frame(),
            Err(FrameError::MissingContentLength(_))
        ));
    }

    #[test]
    fn caps_header_and_body_sizes() {
        let mut d = FrameDecoder::with_limits(64, 16);
        d.push(format!("X-Filler: {}\n", "a".repeat(100)).as_bytes());
        assert_eq!(d.next_frame(), Err(FrameError::HeadTooLarge { limit: 64 }));

        let mut d = FrameDecoder::with_limits(64, 16);
        d.push(b"Content-Type: api/response\nContent-Length: 17\n\n");
        assert_eq!(
            d.next_frame(),
            Err(FrameError::BodyTooLarge { len: 17, limit: 16 })
        );

        // The default cap is 1 MiB-class, not unbounded.
        let mut d = FrameDecoder::new();
        d.push(
            format!(
                "Content-Type: api/response\nContent-Length: {}\n\n",
                MAX_BODY_BYTES + 1
            )
            .as_bytes(),
        );
        assert!(matches!(
            d.next_frame(),
            Err(FrameError::BodyTooLarge { .. })
        ));
    }

    #[test]
    fn rejects_header_lines_without_colon() {
        let mut d = FrameDecoder::new();
        d.push(b"Content-Type: command/reply\ngarbage\n\n");
        assert!(matches!(
            d.next_frame(),
            Err(FrameError::MalformedHeader(_))
        ));
    }

    #[test]
    fn encode_command_refuses_injection() {
        assert_eq!(encode_command("api status").unwrap(), b"api status\n\n");
        assert!(encode_command("api status\n\napi shutdown").is_err());
        assert!(encode_command("api x\r").is_err());
        assert!(encode_command("  ").is_err());
    }
}
