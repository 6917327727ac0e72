//! The file path of the community builds: a `streamAudio` (mod_audio_stream) or `playAudio`
//! (mod_audio_fork) message becomes a temp file plus a CUSTOM event naming it (§3.1, §7).
//!
//! Mirrors `AudioStreamer::processMessage` (amigniter `audio_streamer_glue.cpp`) and
//! `processIncomingMessage` (jambonz `lws_glue.cpp`): the audio field is detached from `data`,
//! decoded, written to `<temp_dir>/<uuid>_<n>.tmp<ext>`, and the event body is `data` printed
//! compactly, keys in the order received, with `"file"` appended.

use std::fmt;
use std::path::{Path, PathBuf};

use base64::Engine;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::Value;

/// Subclass of the event mod_audio_stream fires for a written file.
pub const AUDIO_STREAM_PLAY: &str = "mod_audio_stream::play";
/// Subclass of the event mod_audio_fork fires for a written file.
pub const AUDIO_FORK_PLAY: &str = "mod_audio_fork::play_audio";

/// A file the module wrote and the event it fires for it.
#[derive(Debug, Clone, PartialEq)]
pub struct WrittenFile {
    /// Where the audio went.
    pub path: PathBuf,
    /// Sample rate of a raw file (from its extension); `None` for `.wav`.
    pub raw_rate: Option<u32>,
    /// Bytes of audio written.
    pub bytes: usize,
    /// The event body: `data` without the audio field, plus `"file"`.
    pub event_body: String,
}

/// Why the module did not write a file. `fatal` marks input that would crash FreeSWITCH
/// (a missing type string reaches `strcmp(NULL, …)`).
#[derive(Debug, Clone, PartialEq)]
pub struct Rejected {
    /// What was wrong.
    pub reason: String,
    /// The real module would dereference NULL here.
    pub fatal: bool,
    /// mod_audio_fork still fires its event without `"file"`: this is that body.
    pub event_body: Option<String>,
}

fn rejected(reason: impl Into<String>) -> Rejected {
    Rejected {
        reason: reason.into(),
        fatal: false,
        event_body: None,
    }
}

/// mod_audio_stream: `{"type":"streamAudio","data":{"audioDataType":…,"audioData":…}}`.
/// `n` is the stream's own file counter (`m_playFile`), advanced only when a file is written.
pub fn stream_audio_file(
    message: &str,
    uuid: &str,
    dir: &Path,
    n: &mut u32,
) -> Result<WrittenFile, Rejected> {
    let mut data = data_object(message, "streamAudio")?;
    let audio = data.take("audioData");
    let kind = data.str("audioDataType").ok_or_else(|| Rejected {
        reason: "streamAudio without audioDataType (mod_audio_stream would crash on strcmp(NULL))"
            .into(),
        fatal: true,
        event_body: None,
    })?;
    let (ext, raw_rate) = match kind {
        "raw" => {
            let rate = data.int("sampleRate").unwrap_or(0);
            match raw_extension(rate) {
                Some(ext) => (ext, Some(rate as u32)),
                None => return Err(rejected(format!("raw sampleRate {rate} is not 8000…64000"))),
            }
        }
        "wav" => (".wav", None),
        "mp3" => (".mp3", None),
        "ogg" => (".ogg", None),
        other => return Err(rejected(format!("unsupported audioDataType {other:?}"))),
    };
    let Some(Value::String(b64)) = audio else {
        return Err(rejected("streamAudio without an audioData string"));
    };
    let bytes = decode_base64(&b64)?;
    let path = temp_path(dir, uuid, *n, ext);
    *n += 1;
    write(&path, &bytes)?;
    data.push("file", Value::String(path.display().to_string()));
    Ok(WrittenFile {
        path,
        raw_rate,
        bytes: bytes.len(),
        event_body: data.to_json(),
    })
}

/// mod_audio_fork: `{"type":"playAudio","data":{"audioContentType":…,"audioContent":…}}`.
/// `n` is the module-wide counter (`playCount` is static in `lws_glue.cpp`).
pub fn play_audio_file(
    message: &str,
    uuid: &str,
    dir: &Path,
    n: &mut u32,
) -> Result<WrittenFile, Rejected> {
    let mut data = data_object(message, "playAudio")?;
    let audio = data.take("audioContent");
    let kind = data.str("audioContentType").ok_or_else(|| Rejected {
        reason: "playAudio without audioContentType (mod_audio_fork would crash on strcmp(NULL))"
            .into(),
        fatal: true,
        event_body: None,
    })?;
    let (ext, raw_rate) = match kind {
        // An unknown raw rate still gets `.r16` in the fork.
        "raw" => match data.int("sampleRate").unwrap_or(0) {
            r @ (8000 | 16000 | 24000 | 32000 | 48000 | 64000) => {
                (raw_extension(r).unwrap_or(".r16"), Some(r as u32))
            }
            _ => (".r16", Some(16000)),
        },
        "wave" | "wav" => (".wav", None),
        other => {
            return Err(Rejected {
                reason: format!("unsupported audioContentType {other:?}"),
                fatal: false,
                event_body: Some(data.to_json()),
            })
        }
    };
    let Some(Value::String(b64)) = audio else {
        return Err(Rejected {
            reason: "playAudio without an audioContent string".into(),
            fatal: false,
            event_body: Some(data.to_json()),
        });
    };
    let bytes = decode_base64(&b64)?;
    let path = temp_path(dir, uuid, *n, ext);
    *n += 1;
    write(&path, &bytes)?;
    data.push("file", Value::String(path.display().to_string()));
    Ok(WrittenFile {
        path,
        raw_rate,
        bytes: bytes.len(),
        event_body: data.to_json(),
    })
}

/// `<dir>/<uuid>_<n>.tmp<ext>`, as both modules name their files.
pub fn temp_path(dir: &Path, uuid: &str, n: u32, ext: &str) -> PathBuf {
    dir.join(format!("{uuid}_{n}.tmp{ext}"))
}

/// The FreeSWITCH raw-file extension for a rate (`.r8` … `.r64`).
pub fn raw_extension(rate: i64) -> Option<&'static str> {
    Some(match rate {
        8000 => ".r8",
        16000 => ".r16",
        24000 => ".r24",
        32000 => ".r32",
        48000 => ".r48",
        64000 => ".r64",
        _ => return None,
    })
}

/// The rate of a raw file from its extension (`foo.tmp.r16` → 16000).
pub fn rate_of_raw_path(path: &Path) -> Option<u32> {
    let ext = path.extension()?.to_str()?;
    let khz: u32 = ext.strip_prefix('r')?.parse().ok()?;
    raw_extension(i64::from(khz) * 1000).map(|_| khz * 1000)
}

fn decode_base64(b64: &str) -> Result<Vec<u8>, Rejected> {
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|e| rejected(format!("bad base64 audio: {e}")))
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), Rejected> {
    std::fs::write(path, bytes).map_err(|e| rejected(format!("writing {}: {e}", path.display())))
}

fn data_object(message: &str, kind: &str) -> Result<OrderedObject, Rejected> {
    #[derive(Deserialize)]
    struct Envelope {
        #[serde(rename = "type")]
        kind: Option<String>,
        data: Option<Value>,
    }
    let envelope: Envelope =
        serde_json::from_str(message).map_err(|e| rejected(format!("not JSON: {e}")))?;
    if envelope.kind.as_deref() != Some(kind) {
        return Err(rejected(format!("type is not {kind}")));
    }
    if !matches!(envelope.data, Some(Value::Object(_))) {
        return Err(rejected(format!("{kind} without a data object")));
    }
    // Read `data` again, keeping its key order (serde_json's map sorts keys).
    #[derive(Deserialize)]
    struct Ordered {
        data: OrderedObject,
    }
    let ordered: Ordered =
        serde_json::from_str(message).map_err(|e| rejected(format!("not JSON: {e}")))?;
    Ok(ordered.data)
}

/// A JSON object that keeps its keys in the order received, like cJSON.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OrderedObject(pub Vec<(String, Value)>);

impl OrderedObject {
    fn get(&self, key: &str) -> Option<&Value> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    fn str(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(Value::as_str)
    }

    /// cJSON's `valueint`: numbers truncate to an integer; anything else is 0.
    fn int(&self, key: &str) -> Option<i64> {
        self.get(key)
            .and_then(|v| v.as_i64().or_else(|| v.as_f64().map(|f| f as i64)))
    }

    fn take(&mut self, key: &str) -> Option<Value> {
        let i = self.0.iter().position(|(k, _)| k == key)?;
        Some(self.0.remove(i).1)
    }

    fn push(&mut self, key: &str, value: Value) {
        self.0.push((key.to_string(), value));
    }

    /// `cJSON_PrintUnformatted`: compact, in order, integral numbers without a fraction.
    pub fn to_json(&self) -> String {
        let mut out = String::from("{");
        for (i, (k, v)) in self.0.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&Value::String(k.clone()).to_string());
            out.push(':');
            out.push_str(&cjson_value(v));
        }
        out.push('}');
        out
    }
}

fn cjson_value(v: &Value) -> String {
    match v {
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() && f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", f as i64),
            _ => n.to_string(),
        },
        other => other.to_string(),
    }
}

impl<'de> Deserialize<'de> for OrderedObject {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct OrderedVisitor;
        impl<'de> Visitor<'de> for OrderedVisitor {
            type Value = OrderedObject;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<OrderedObject, A::Error> {
                let mut entries = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, Value>()? {
                    entries.push((k, v));
                }
                Ok(OrderedObject(entries))
            }
        }
        deserializer.deserialize_map(OrderedVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "voice-sim-files-{}-{}",
            std::process::id(),
            rand_suffix()
        ));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn rand_suffix() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
    }

    fn b64(bytes: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    #[test]
    fn stream_audio_writes_the_file_and_the_event_body() {
        let d = dir();
        let msg = format!(
            r#"{{"type":"streamAudio","data":{{"seq":7,"audioDataType":"raw","sampleRate":16000.0,"audioData":"{}"}}}}"#,
            b64(&[1, 0, 2, 0])
        );
        let mut n = 0;
        let f = stream_audio_file(&msg, "abc", &d, &mut n).unwrap();
        assert_eq!(n, 1);
        assert_eq!(f.path, d.join("abc_0.tmp.r16"));
        assert_eq!(std::fs::read(&f.path).unwrap(), [1, 0, 2, 0]);
        assert_eq!(f.raw_rate, Some(16000));
        assert_eq!(
            f.event_body,
            format!(
                r#"{{"seq":7,"audioDataType":"raw","sampleRate":16000,"file":"{}"}}"#,
                f.path.display()
            )
        );
        let f2 = stream_audio_file(&msg, "abc", &d, &mut n).unwrap();
        assert!(f2.path.ends_with("abc_1.tmp.r16"));
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn stream_audio_rejections_match_the_module() {
        let d = dir();
        let mut n = 0;
        let bad_rate = r#"{"type":"streamAudio","data":{"audioDataType":"raw","sampleRate":44100,"audioData":"AAA="}}"#;
        assert!(stream_audio_file(bad_rate, "u", &d, &mut n).is_err());
        let string_rate = r#"{"type":"streamAudio","data":{"audioDataType":"raw","sampleRate":"16000","audioData":"AAA="}}"#;
        assert!(stream_audio_file(string_rate, "u", &d, &mut n).is_err());
        let no_type = r#"{"type":"streamAudio","data":{"sampleRate":16000,"audioData":"AAA="}}"#;
        assert!(
            stream_audio_file(no_type, "u", &d, &mut n)
                .unwrap_err()
                .fatal
        );
        let bad_b64 = r#"{"type":"streamAudio","data":{"audioDataType":"raw","sampleRate":8000,"audioData":"!!"}}"#;
        assert!(stream_audio_file(bad_b64, "u", &d, &mut n)
            .unwrap_err()
            .reason
            .contains("base64"));
        assert!(stream_audio_file(r#"{"type":"other"}"#, "u", &d, &mut n).is_err());
        assert_eq!(n, 0, "no file written, counter unchanged");
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn play_audio_names_files_like_the_fork() {
        let d = dir();
        let mut n = 41;
        let msg = format!(
            r#"{{"type":"playAudio","data":{{"audioContentType":"raw","sampleRate":8000,"audioContent":"{}","textContent":"olá"}}}}"#,
            b64(&[0; 8])
        );
        let f = play_audio_file(&msg, "xyz", &d, &mut n).unwrap();
        assert!(f.path.ends_with("xyz_41.tmp.r8"));
        assert_eq!(
            f.event_body,
            format!(
                r#"{{"audioContentType":"raw","sampleRate":8000,"textContent":"olá","file":"{}"}}"#,
                f.path.display()
            )
        );
        let odd_rate = format!(
            r#"{{"type":"playAudio","data":{{"audioContentType":"raw","sampleRate":11025,"audioContent":"{}"}}}}"#,
            b64(&[0; 2])
        );
        assert!(play_audio_file(&odd_rate, "xyz", &d, &mut n)
            .unwrap()
            .path
            .ends_with("xyz_42.tmp.r16"));
        let mp3 = r#"{"type":"playAudio","data":{"audioContentType":"mp3","audioContent":"AAA="}}"#;
        let r = play_audio_file(mp3, "xyz", &d, &mut n).unwrap_err();
        assert_eq!(
            r.event_body.as_deref(),
            Some(r#"{"audioContentType":"mp3"}"#)
        );
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn reads_rates_from_raw_extensions() {
        assert_eq!(rate_of_raw_path(Path::new("/tmp/a_0.tmp.r16")), Some(16000));
        assert_eq!(rate_of_raw_path(Path::new("/tmp/a_0.tmp.r64")), Some(64000));
        assert_eq!(rate_of_raw_path(Path::new("/tmp/a_0.tmp.r11")), None);
        assert_eq!(rate_of_raw_path(Path::new("/tmp/a_0.tmp.wav")), None);
    }
}
