//! The `/v1/listen` query (providers.md §4.1, §4.2), checked the way the fake insists on:
//! raw audio must say `encoding=linear16` and `sample_rate`, a WAV upload must say
//! neither, and every request must name its `language` (the real service would quietly
//! fall back to English; a client that forgets it is a bug we want to see).

use std::collections::BTreeMap;

/// Deepgram's `endpointing` default when the client does not set it.
const DEFAULT_ENDPOINTING_MS: u64 = 10;

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ListenParams {
    pub language: String,
    /// Rate of the raw audio (live); 0 for a WAV upload (its header says).
    pub sample_rate: u32,
    pub interim_results: bool,
    /// `None`: `endpointing=false`.
    pub endpointing_ms: Option<u64>,
    pub utterance_end_ms: Option<u64>,
    pub vad_events: bool,
    /// `smart_format` or `punctuate`: transcripts keep capitals and punctuation.
    pub formatted: bool,
    pub utterances: bool,
}

/// What a live stream asks for.
pub(crate) fn live(query: &BTreeMap<String, String>) -> Result<ListenParams, String> {
    match query.get("encoding").map(String::as_str) {
        Some("linear16") => {}
        Some(other) => return Err(format!("this fake only decodes linear16, not {other:?}")),
        None => return Err("raw audio needs encoding and sample_rate".into()),
    }
    let sample_rate = match query.get("sample_rate").map(|r| r.parse::<u32>()) {
        Some(Ok(rate)) if (8_000..=48_000).contains(&rate) => rate,
        Some(_) => return Err("sample_rate must be a rate between 8000 and 48000".into()),
        None => return Err("encoding=linear16 needs sample_rate".into()),
    };
    if let Some(channels) = query.get("channels") {
        if channels != "1" {
            return Err(format!(
                "this fake only takes mono audio, not channels={channels}"
            ));
        }
    }
    common(query, sample_rate)
}

/// What a pre-recorded WAV request asks for.
pub(crate) fn prerecorded(query: &BTreeMap<String, String>) -> Result<ListenParams, String> {
    if query.contains_key("encoding") || query.contains_key("sample_rate") {
        return Err("containerized audio (WAV) must not set encoding or sample_rate".into());
    }
    common(query, 0)
}

fn common(query: &BTreeMap<String, String>, sample_rate: u32) -> Result<ListenParams, String> {
    let language = match query.get("language") {
        Some(l) if !l.is_empty() => l.clone(),
        _ => return Err("language is required by this fake".into()),
    };
    if query.get("model").is_some_and(String::is_empty) {
        return Err("model must not be empty".into());
    }
    let interim_results = flag(query, "interim_results")?;
    let endpointing_ms = match query.get("endpointing").map(String::as_str) {
        None | Some("true") => Some(DEFAULT_ENDPOINTING_MS),
        Some("false") => None,
        Some(ms) => Some(number(ms, "endpointing")?),
    };
    let utterance_end_ms = match query.get("utterance_end_ms") {
        None => None,
        Some(ms) => Some(number(ms, "utterance_end_ms")?),
    };
    // The docs say UtteranceEnd needs interim results; refusing is the fake's reading.
    if utterance_end_ms.is_some() && !interim_results {
        return Err("utterance_end_ms needs interim_results=true".into());
    }
    Ok(ListenParams {
        language,
        sample_rate,
        interim_results,
        endpointing_ms,
        utterance_end_ms,
        vad_events: flag(query, "vad_events")?,
        formatted: flag(query, "smart_format")? || flag(query, "punctuate")?,
        utterances: flag(query, "utterances")?,
    })
}

/// `true`/`false`; absent is false.
pub(crate) fn flag(query: &BTreeMap<String, String>, name: &str) -> Result<bool, String> {
    match query.get(name).map(String::as_str) {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(other) => Err(format!("{name} must be true or false, not {other:?}")),
    }
}

fn number(value: &str, name: &str) -> Result<u64, String> {
    value
        .parse()
        .map_err(|_| format!("{name} must be a number of ms, not {value:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(q: &str) -> BTreeMap<String, String> {
        q.split('&')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_full_live_query() {
        let p = live(&query(
            "model=nova-3&language=pt-BR&encoding=linear16&sample_rate=8000&channels=1\
             &interim_results=true&endpointing=300&utterance_end_ms=1000&vad_events=true\
             &smart_format=true",
        ))
        .unwrap();
        assert_eq!(p.sample_rate, 8000);
        assert_eq!(
            (p.endpointing_ms, p.utterance_end_ms),
            (Some(300), Some(1000))
        );
        assert!(p.interim_results && p.vad_events && p.formatted && !p.utterances);
        let p = live(&query(
            "language=pt&encoding=linear16&sample_rate=16000&endpointing=false",
        ))
        .unwrap();
        assert_eq!(p.endpointing_ms, None);
        assert!(!p.formatted && !p.interim_results);
        let p = live(&query("language=pt&encoding=linear16&sample_rate=16000")).unwrap();
        assert_eq!(p.endpointing_ms, Some(DEFAULT_ENDPOINTING_MS));
    }

    #[test]
    fn what_the_fake_refuses() {
        let bad = [
            "language=pt&sample_rate=16000",
            "language=pt&encoding=mulaw&sample_rate=8000",
            "language=pt&encoding=linear16",
            "language=pt&encoding=linear16&sample_rate=x",
            "language=pt&encoding=linear16&sample_rate=16000&channels=2",
            "encoding=linear16&sample_rate=16000",
            "language=&encoding=linear16&sample_rate=16000",
            "language=pt&encoding=linear16&sample_rate=16000&utterance_end_ms=1000",
            "language=pt&encoding=linear16&sample_rate=16000&vad_events=yes",
            "language=pt&encoding=linear16&sample_rate=16000&endpointing=soon",
        ];
        for q in bad {
            assert!(live(&query(q)).is_err(), "{q}");
        }
        assert!(
            prerecorded(&query("language=pt&utterances=true"))
                .unwrap()
                .utterances
        );
        assert!(prerecorded(&query("language=pt&encoding=linear16")).is_err());
        assert!(prerecorded(&query("utterances=true")).is_err());
    }
}
