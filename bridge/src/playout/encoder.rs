//! Turns a batch of call-rate samples into the message the FreeSWITCH build plays.

use axum::extract::ws::Message;
use base64::Engine as _;
use bytes::Bytes;
use voice_core::audio::pcm;

use super::PlayoutMode;

/// The one-off header the commercial mod_audio_stream expects before binary audio.
pub fn raw_audio_header(rate: u32) -> Message {
    Message::Text(format!(r#"{{"type":"rawAudio","data":{{"sampleRate":{rate}}}}}"#).into())
}

/// Encodes `samples` for `mode`. `generation` rides along in file-mode chunks: FreeSWITCH
/// copies extra `data` fields into its play event, so a chunk from before a barge-in can be
/// recognised and never played.
pub fn encode(mode: PlayoutMode, rate: u32, samples: &[i16], generation: u64) -> Message {
    let bytes = pcm::to_le_bytes(samples);
    match mode {
        PlayoutMode::Binary | PlayoutMode::RawAudio => Message::Binary(Bytes::from(bytes)),
        PlayoutMode::StreamAudio | PlayoutMode::File => {
            let b64 = base64::engine::general_purpose::STANDARD.encode(&bytes);
            Message::Text(
                format!(
                    r#"{{"type":"streamAudio","data":{{"audioDataType":"raw","sampleRate":{rate},"audioData":"{b64}","gen":{generation}}}}}"#
                )
                .into(),
            )
        }
        PlayoutMode::PlayAudio => {
            let b64 = base64::engine::general_purpose::STANDARD.encode(&bytes);
            Message::Text(
                format!(
                    r#"{{"type":"playAudio","data":{{"audioContentType":"raw","sampleRate":{rate},"audioContent":"{b64}","gen":{generation}}}}}"#
                )
                .into(),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(m: Message) -> serde_json::Value {
        match m {
            Message::Text(t) => serde_json::from_str(t.as_str()).unwrap(),
            other => panic!("expected text, got {other:?}"),
        }
    }

    #[test]
    fn formats_match_the_modules() {
        let s = [1i16, -2, 3];
        assert_eq!(
            encode(PlayoutMode::Binary, 8000, &s, 0),
            Message::Binary(Bytes::from(pcm::to_le_bytes(&s)))
        );
        let v = text(encode(PlayoutMode::StreamAudio, 16000, &s, 3));
        assert_eq!(v["type"], "streamAudio");
        assert_eq!(v["data"]["audioDataType"], "raw");
        assert_eq!(v["data"]["sampleRate"], 16000);
        assert_eq!(v["data"]["gen"], 3);
        let raw = base64::engine::general_purpose::STANDARD
            .decode(v["data"]["audioData"].as_str().unwrap())
            .unwrap();
        assert_eq!(pcm::from_le_bytes(&raw), s);
        let v = text(encode(PlayoutMode::PlayAudio, 8000, &s, 0));
        assert_eq!(v["type"], "playAudio");
        assert_eq!(v["data"]["audioContentType"], "raw");
        let v = text(raw_audio_header(16000));
        assert_eq!(
            v,
            serde_json::json!({"type":"rawAudio","data":{"sampleRate":16000}})
        );
    }
}
