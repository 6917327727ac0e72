//! Fetching a call's recording from the URL its sender gave: with a time budget, a size
//! cap (counted while streaming, whatever Content-Length claims) and a check that what came
//! is audio (by its first bytes, since senders label files carelessly).

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use reqwest::StatusCode;
use serde::Deserialize;

use super::stage::StageError;

/// `[worker.download]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DownloadSettings {
    /// The whole download, headers to last byte.
    pub timeout_secs: u64,
    /// Connecting to the sender's server.
    pub connect_timeout_secs: u64,
    /// Largest recording accepted.
    pub max_bytes: u64,
}

impl Default for DownloadSettings {
    fn default() -> Self {
        Self {
            timeout_secs: 120,
            connect_timeout_secs: 10,
            max_bytes: 200 * 1024 * 1024,
        }
    }
}

/// What the first bytes of an audio file say about it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AudioKind {
    /// `wav`, `mp3`, `ogg`, `flac`, `webm`, `m4a`.
    pub format: &'static str,
    pub content_type: &'static str,
    /// From a WAV header; `None` for compressed formats.
    pub channels: Option<u16>,
    pub sample_rate: Option<u32>,
    pub duration_sec: Option<f64>,
}

/// An audio file, as downloaded.
#[derive(Debug, Clone, PartialEq)]
pub struct AudioFile {
    pub bytes: Bytes,
    pub kind: AudioKind,
}

/// Recognises an audio file by its first bytes (`head`, a few KiB) and whole size; `None`:
/// not a format we transcribe.
pub fn sniff_header(head: &[u8], size: u64) -> Option<AudioKind> {
    let (format, content_type) =
        if head.len() >= 12 && &head[..4] == b"RIFF" && &head[8..12] == b"WAVE" {
            ("wav", "audio/wav")
        } else if head.starts_with(b"OggS") {
            ("ogg", "audio/ogg")
        } else if head.starts_with(b"fLaC") {
            ("flac", "audio/flac")
        } else if head.starts_with(b"ID3")
            || (head.len() >= 2 && head[0] == 0xFF && head[1] & 0xE0 == 0xE0)
        {
            ("mp3", "audio/mpeg")
        } else if head.starts_with(&[0x1A, 0x45, 0xDF, 0xA3]) {
            ("webm", "audio/webm")
        } else if head.len() >= 8 && &head[4..8] == b"ftyp" {
            ("m4a", "audio/mp4")
        } else {
            return None;
        };
    let mut kind = AudioKind {
        format,
        content_type,
        channels: None,
        sample_rate: None,
        duration_sec: None,
    };
    if format == "wav" {
        if let Some((channels, rate, bits, data_at)) = wav_format(head) {
            kind.channels = Some(channels);
            kind.sample_rate = Some(rate);
            let bytes_per_sec = f64::from(rate) * f64::from(channels) * f64::from(bits) / 8.0;
            if bytes_per_sec > 0.0 {
                kind.duration_sec = Some(size.saturating_sub(data_at) as f64 / bytes_per_sec);
            }
        }
    }
    Some(kind)
}

/// Channels, rate, bits per sample and where the samples start, from the chunks in `head`
/// (`None` when the fmt chunk is not there or makes no sense).
fn wav_format(head: &[u8]) -> Option<(u16, u32, u16, u64)> {
    let u16_at = |i: usize| Some(u16::from_le_bytes([*head.get(i)?, *head.get(i + 1)?]));
    let u32_at = |i: usize| {
        Some(u32::from_le_bytes([
            *head.get(i)?,
            *head.get(i + 1)?,
            *head.get(i + 2)?,
            *head.get(i + 3)?,
        ]))
    };
    let mut pos = 12usize;
    let mut format = None;
    while pos + 8 <= head.len() {
        let len = u32_at(pos + 4)? as usize;
        match &head[pos..pos + 4] {
            b"fmt " => {
                let channels = u16_at(pos + 10)?;
                let rate = u32_at(pos + 12)?;
                let bits = u16_at(pos + 22)?;
                if channels == 0 || rate == 0 || bits == 0 {
                    return None;
                }
                format = Some((channels, rate, bits));
            }
            b"data" => {
                let (c, r, b) = format?;
                return Some((c, r, b, (pos + 8) as u64));
            }
            _ => {}
        }
        pos = pos.checked_add(8 + len + (len & 1))?;
    }
    None
}

/// Recognises a whole file (see [`sniff_header`]).
pub fn sniff(bytes: Bytes) -> Option<AudioFile> {
    let kind = sniff_header(&bytes[..bytes.len().min(4096)], bytes.len() as u64)?;
    Some(AudioFile { bytes, kind })
}

/// One client for every download (connection pool, TLS roots), with these settings.
pub fn client(settings: &DownloadSettings) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(settings.connect_timeout_secs.max(1)))
        .timeout(Duration::from_secs(settings.timeout_secs.max(1)))
        // A recording URL that redirects (signed CDN links do) is followed a few times.
        .redirect(reqwest::redirect::Policy::limited(5))
        .build()
        .map_err(|e| format!("cannot build the download client: {e}"))
}

/// Downloads `url`. Transient failures (network, timeout, 5xx, 429) are retryable; a
/// missing or refused file, one over the cap or one that is not audio is permanent.
pub async fn fetch(
    http: &reqwest::Client,
    settings: &DownloadSettings,
    url: &str,
) -> Result<AudioFile, StageError> {
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        return Err(StageError::Permanent("recording_url is not http(s)".into()));
    }
    // The URL may carry a token in its query: errors name the host only.
    let host = reqwest::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_else(|| "?".into());
    let response = http.get(url).send().await.map_err(|e| {
        let what = if e.is_timeout() {
            "timed out"
        } else {
            "failed"
        };
        StageError::Retryable(format!("download from {host} {what}"))
    })?;
    let status = response.status();
    if !status.is_success() {
        let message = format!("download from {host}: HTTP {}", status.as_u16());
        return Err(
            if status.is_server_error()
                || status == StatusCode::TOO_MANY_REQUESTS
                || status == StatusCode::REQUEST_TIMEOUT
            {
                StageError::Retryable(message)
            } else {
                StageError::Permanent(message)
            },
        );
    }
    let max = settings.max_bytes;
    if response.content_length().is_some_and(|n| n > max) {
        return Err(StageError::Permanent(format!(
            "recording larger than {max} bytes"
        )));
    }
    let mut body = BytesMut::new();
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            let what = if e.is_timeout() {
                "timed out"
            } else {
                "broke off"
            };
            StageError::Retryable(format!("download from {host} {what}"))
        })?;
        if body.len() as u64 + chunk.len() as u64 > max {
            return Err(StageError::Permanent(format!(
                "recording larger than {max} bytes"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    if body.is_empty() {
        return Err(StageError::Permanent(format!(
            "download from {host}: empty file"
        )));
    }
    sniff(body.freeze()).ok_or_else(|| {
        StageError::Permanent(format!(
            "download from {host}: not an audio file we can read"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audio_is_recognised_by_its_first_bytes() {
        let wav = voice_core::audio::wav::encode(8000, 2, &[0i16; 1600]);
        let f = sniff(Bytes::from(wav)).unwrap().kind;
        assert_eq!(
            (f.format, f.channels, f.sample_rate),
            ("wav", Some(2), Some(8000))
        );
        assert!((f.duration_sec.unwrap() - 0.1).abs() < 1e-9);
        let ogg = sniff(Bytes::from_static(b"OggS\0\x02rest")).unwrap();
        assert_eq!(ogg.kind.format, "ogg");
        let mp3 = sniff(Bytes::from_static(b"ID3\x04rest")).unwrap();
        assert_eq!(mp3.kind.format, "mp3");
        // A truncated header is still audio, just without its facts.
        let cut = sniff_header(b"RIFF\0\0\0\0WAVEfmt ", 100).unwrap();
        assert_eq!((cut.format, cut.channels), ("wav", None));
        assert!(sniff(Bytes::from_static(b"<html>not found</html>")).is_none());
        assert!(sniff(Bytes::new()).is_none());
    }
}
