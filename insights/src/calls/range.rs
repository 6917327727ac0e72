//! `Range: bytes=…` for the recording endpoint (RFC 9110 §14): one range, in the three forms
//! an HTML5 `<audio>` player sends (`a-b`, `a-`, `-n`).

use std::ops::Range;

/// What to serve of a `size`-byte file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ByteRange {
    /// No usable Range header (absent, not `bytes=`, malformed, or several ranges): 200 with
    /// the whole file, as RFC 9110 lets a server ignore a Range it does not serve.
    Whole,
    /// 206 with these bytes (end exclusive).
    Part(Range<u64>),
    /// 416: the range starts past the end.
    Unsatisfiable,
}

/// Interprets the `Range` header for a file of `size` bytes.
pub fn parse_range(header: Option<&str>, size: u64) -> ByteRange {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return ByteRange::Whole;
    };
    // Several ranges would need multipart/byteranges; the whole file serves them all.
    if spec.contains(',') {
        return ByteRange::Whole;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return ByteRange::Whole;
    };
    let (first, last) = (first.trim(), last.trim());
    if first.is_empty() {
        // Suffix: the last n bytes.
        return match last.parse::<u64>() {
            Ok(0) => ByteRange::Unsatisfiable,
            Ok(_) if size == 0 => ByteRange::Unsatisfiable,
            Ok(n) => ByteRange::Part(size.saturating_sub(n)..size),
            Err(_) => ByteRange::Whole,
        };
    }
    let Ok(start) = first.parse::<u64>() else {
        return ByteRange::Whole;
    };
    let end = if last.is_empty() {
        size
    } else {
        match last.parse::<u64>() {
            Ok(l) if l >= start => l.saturating_add(1).min(size),
            _ => return ByteRange::Whole,
        }
    };
    if start >= size {
        return ByteRange::Unsatisfiable;
    }
    ByteRange::Part(start..end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_forms_a_player_sends() {
        assert_eq!(parse_range(None, 10), ByteRange::Whole);
        assert_eq!(parse_range(Some("bytes=0-"), 10), ByteRange::Part(0..10));
        assert_eq!(parse_range(Some("bytes=2-4"), 10), ByteRange::Part(2..5));
        assert_eq!(parse_range(Some("bytes=2-400"), 10), ByteRange::Part(2..10));
        assert_eq!(parse_range(Some("bytes=-3"), 10), ByteRange::Part(7..10));
        assert_eq!(parse_range(Some("bytes=-30"), 10), ByteRange::Part(0..10));
        assert_eq!(parse_range(Some("bytes=10-"), 10), ByteRange::Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=-0"), 10), ByteRange::Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=0-1,4-5"), 10), ByteRange::Whole);
        assert_eq!(parse_range(Some("bytes=5-2"), 10), ByteRange::Whole);
        assert_eq!(parse_range(Some("items=0-1"), 10), ByteRange::Whole);
        assert_eq!(parse_range(Some("bytes=x-"), 10), ByteRange::Whole);
    }
}
