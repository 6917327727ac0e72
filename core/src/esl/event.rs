//! Events from `text/event-plain` messages.
//!
//! The body of such a message is itself a header block: `Name: value` lines whose values are
//! URL-encoded (`Event-Subclass: mod_audio_stream%3A%3Aplay`), a blank line, and, when the
//! block has its own `Content-Length`, the event body, which is not encoded.

use super::protocol::{find_header, FrameDecoder, FrameError};

/// One FreeSWITCH event with decoded header values.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EslEvent {
    headers: Vec<(String, String)>,
    body: Option<String>,
}

impl EslEvent {
    /// An event from already-decoded parts (tests, simulators).
    pub fn new(headers: Vec<(String, String)>, body: Option<String>) -> Self {
        Self { headers, body }
    }

    /// Parses the body of a `text/event-plain` message.
    pub fn parse_plain(block: &[u8]) -> Result<Self, FrameError> {
        let mut decoder = FrameDecoder::for_event_block(block.len());
        decoder.push(block);
        let frame = decoder
            .next_frame()?
            .ok_or(FrameError::Truncated("event block shorter than announced"))?;
        let headers = frame
            .headers
            .into_iter()
            .map(|(name, value)| (name, url_decode(&value)))
            .collect::<Vec<_>>();
        let has_body = find_header(&headers, "Content-Length").is_some();
        let body = has_body.then(|| String::from_utf8_lossy(&frame.body).into_owned());
        Ok(Self { headers, body })
    }

    /// First header with this name (case-insensitive, as FreeSWITCH compares them).
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }

    /// All headers in the order FreeSWITCH sent them.
    pub fn headers(&self) -> &[(String, String)] {
        &self.headers
    }

    /// `Event-Name`, e.g. `CUSTOM`, `DTMF`, `CHANNEL_HANGUP`, `BACKGROUND_JOB`.
    pub fn name(&self) -> Option<&str> {
        self.header("Event-Name")
    }

    /// `Event-Subclass` of a CUSTOM event, e.g. `mod_audio_stream::play`.
    pub fn subclass(&self) -> Option<&str> {
        self.header("Event-Subclass")
    }

    /// The channel UUID the event is about.
    pub fn unique_id(&self) -> Option<&str> {
        self.header("Unique-ID")
    }

    /// `Job-UUID` of a `BACKGROUND_JOB` event.
    pub fn job_uuid(&self) -> Option<&str> {
        self.header("Job-UUID")
    }

    /// Channel variable `name` (sent as header `variable_<name>`).
    pub fn variable(&self, name: &str) -> Option<&str> {
        self.header(&format!("variable_{name}"))
    }

    pub fn body(&self) -> Option<&str> {
        self.body.as_deref()
    }
}

/// Reverses FreeSWITCH's `switch_url_encode`: `%XX` becomes that byte. `+` stays `+`
/// (FreeSWITCH encodes it as `%2B`), and a malformed `%` sequence is kept as is.
fn url_decode(value: &str) -> String {
    if !value.contains('%') {
        return value.to_string();
    }
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let decoded = match (bytes.get(i), bytes.get(i + 1), bytes.get(i + 2)) {
            (Some(b'%'), Some(&hi), Some(&lo)) => {
                hex_value(hi).zip(hex_value(lo)).map(|(h, l)| h << 4 | l)
            }
            _ => None,
        };
        match decoded {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.extend(bytes.get(i).copied());
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_value(c: u8) -> Option<u8> {
    char::from(c)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_headers_and_keeps_the_body_verbatim() {
        let body = "{\"audioDataType\":\"raw\",\"file\":\"/tmp/a b.wav\"}\n%41 stays";
        let block = format!(
            "Event-Subclass: mod_audio_stream%3A%3Aplay\nEvent-Name: CUSTOM\nUnique-ID: 0b5c\n\
             variable_caller_id_name: Jo%C3%A3o%20da%20Silva\nEvent-Date-Local: 2025-01-02%2003%3A04%3A05\n\
             Content-Length: {}\n\n{body}",
            body.len()
        );
        let event = EslEvent::parse_plain(block.as_bytes()).unwrap();
        assert_eq!(event.name(), Some("CUSTOM"));
        assert_eq!(event.subclass(), Some("mod_audio_stream::play"));
        assert_eq!(event.unique_id(), Some("0b5c"));
        assert_eq!(event.variable("caller_id_name"), Some("João da Silva"));
        assert_eq!(
            event.header("event-date-local"),
            Some("2025-01-02 03:04:05")
        );
        assert_eq!(event.body(), Some(body));
    }

    #[test]
    fn event_without_body_has_none() {
        let event = EslEvent::parse_plain(b"Event-Name: DTMF\nDTMF-Digit: %23\n\n").unwrap();
        assert_eq!(event.name(), Some("DTMF"));
        assert_eq!(event.header("DTMF-Digit"), Some("#"));
        assert_eq!(event.body(), None);
    }

    #[test]
    fn truncated_or_oversized_blocks_are_errors() {
        assert!(EslEvent::parse_plain(b"Event-Name: DTMF\n").is_err());
        assert!(EslEvent::parse_plain(b"Event-Name: X\nContent-Length: 50\n\nshort").is_err());
        assert!(EslEvent::parse_plain(b"Event-Name: X\nContent-Length: zz\n\n").is_err());
    }

    #[test]
    fn url_decode_handles_odd_input() {
        assert_eq!(url_decode("a%2Bb+c"), "a+b+c");
        assert_eq!(url_decode("100%"), "100%");
        assert_eq!(url_decode("%zz%4"), "%zz%4");
        assert_eq!(url_decode("%e2%82%ac"), "€");
        assert_eq!(url_decode("%FF"), "\u{FFFD}");
    }
}
