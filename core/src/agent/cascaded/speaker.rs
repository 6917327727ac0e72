//! The TTS side of one answer: text pieces in, audio out at the session's rate, through
//! the agent's TTS providers in order. A provider that cannot open, stays silent past the
//! first-audio timeout, or breaks mid-answer is replaced by the next one, which gets the
//! pieces the first did not finish (estimated from the audio it produced).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::warn;

use super::answer::AnswerEvent;
use crate::audio::Resampler;
use crate::providers::tts::{TextToSpeech, TtsEvent, TtsStream};
use crate::providers::ProviderError;

/// Characters a second of speech, to guess how many pieces a failed provider finished.
const CHARS_PER_SECOND: u64 = 15;

pub(super) struct Speaker {
    pub tts: Vec<Arc<dyn TextToSpeech>>,
    pub output_rate: u32,
    pub first_audio_timeout: Duration,
}

/// How one provider's attempt ended.
enum Attempt {
    /// Everything was spoken.
    Done,
    /// It failed after producing `audio_ms` of audio.
    Failed { error: ProviderError, audio_ms: u64 },
    /// The answer was cancelled (nobody listens any more).
    Cancelled,
}

impl Speaker {
    /// Speaks every piece received on `pieces` until it closes; audio goes to `out`.
    pub async fn run(
        self,
        mut pieces: mpsc::Receiver<String>,
        out: mpsc::Sender<AnswerEvent>,
    ) -> Result<(), ProviderError> {
        let mut state = Pieces::default();
        let mut last_error = ProviderError::Config("no TTS provider configured".into());
        for tts in &self.tts {
            match self
                .attempt(tts.as_ref(), &mut state, &mut pieces, &out)
                .await
            {
                Attempt::Done | Attempt::Cancelled => return Ok(()),
                Attempt::Failed { error, audio_ms } => {
                    warn!(provider = tts.name(), %error, audio_ms, "TTS failed; trying the next");
                    state.skip_spoken(audio_ms);
                    last_error = error;
                }
            }
        }
        Err(last_error)
    }

    async fn attempt(
        &self,
        tts: &dyn TextToSpeech,
        state: &mut Pieces,
        pieces: &mut mpsc::Receiver<String>,
        out: &mpsc::Sender<AnswerEvent>,
    ) -> Attempt {
        let failed = |error, audio_ms| Attempt::Failed { error, audio_ms };
        let TtsStream { text, mut audio } =
            match tokio::time::timeout(self.first_audio_timeout, tts.open()).await {
                Ok(Ok(stream)) => stream,
                Ok(Err(e)) => return failed(e, 0),
                Err(_) => return failed(ProviderError::Timeout, 0),
            };
        let mut resampler = match tts.sample_rate() {
            rate if rate == self.output_rate => None,
            rate => match Resampler::new(rate, self.output_rate) {
                Ok(r) => Some(r),
                Err(e) => return failed(ProviderError::Config(e.to_string()), 0),
            },
        };
        let mut text = Some(text);
        let mut waiting_since = None;
        for piece in state.unspoken() {
            if let Some(tx) = &text {
                if tx.send(piece).await.is_err() {
                    return failed(ProviderError::Unavailable("TTS stream closed".into()), 0);
                }
                waiting_since.get_or_insert_with(Instant::now);
            }
        }
        if state.closed {
            text = None; // end of text: the provider finishes and says Done
        }
        let mut audio_samples: u64 = 0;
        let audio_ms = |samples: u64| samples * 1000 / u64::from(tts.sample_rate().max(1));
        loop {
            let deadline = match (audio_samples, waiting_since) {
                (0, Some(since)) => Some(since + self.first_audio_timeout),
                _ => None,
            };
            tokio::select! {
                piece = pieces.recv(), if !state.closed => match piece {
                    Some(piece) => {
                        state.all.push(piece.clone());
                        if let Some(tx) = &text {
                            if tx.send(piece).await.is_err() {
                                return failed(ProviderError::Unavailable("TTS stream closed".into()), audio_ms(audio_samples));
                            }
                        }
                        waiting_since.get_or_insert_with(Instant::now);
                    }
                    None => {
                        state.closed = true;
                        text = None;
                        if state.all.is_empty() {
                            return Attempt::Done; // nothing to say (a tool-only answer)
                        }
                    }
                },
                event = audio.recv() => match event {
                    Some(TtsEvent::Audio(samples)) => {
                        audio_samples += samples.len() as u64;
                        let samples = match resampler.as_mut() {
                            Some(r) => {
                                let mut o = Vec::with_capacity(samples.len() * 2);
                                r.process(&samples, &mut o);
                                o
                            }
                            None => samples,
                        };
                        if !samples.is_empty() && out.send(AnswerEvent::Audio(samples)).await.is_err() {
                            return Attempt::Cancelled;
                        }
                    }
                    Some(TtsEvent::Done) if state.closed => {
                        if let Some(r) = resampler.as_mut() {
                            let mut tail = Vec::new();
                            r.flush(&mut tail);
                            if !tail.is_empty() && out.send(AnswerEvent::Audio(tail)).await.is_err() {
                                return Attempt::Cancelled;
                            }
                        }
                        return Attempt::Done;
                    }
                    Some(TtsEvent::Done) => {
                        return failed(ProviderError::Protocol("TTS ended before the text did".into()), audio_ms(audio_samples));
                    }
                    Some(TtsEvent::Error(e)) => return failed(e, audio_ms(audio_samples)),
                    None => return failed(ProviderError::Unavailable("TTS stream closed".into()), audio_ms(audio_samples)),
                },
                _ = sleep_until(deadline) => return failed(ProviderError::Timeout, 0),
            }
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The answer's pieces so far, and how many a failed provider already spoke.
#[derive(Default)]
struct Pieces {
    all: Vec<String>,
    spoken: usize,
    closed: bool,
}

impl Pieces {
    fn unspoken(&self) -> Vec<String> {
        self.all[self.spoken..].to_vec()
    }

    /// A provider produced `audio_ms` of the unspoken pieces before failing: skip the
    /// pieces that audio covered whole (a piece cut in the middle is said again).
    fn skip_spoken(&mut self, audio_ms: u64) {
        let mut chars = audio_ms * CHARS_PER_SECOND / 1000;
        while let Some(piece) = self.all.get(self.spoken) {
            let len = piece.chars().count() as u64;
            if len > chars {
                break;
            }
            chars -= len;
            self.spoken += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Pieces;

    #[test]
    fn a_failed_provider_s_audio_skips_only_whole_pieces() {
        let mut p = Pieces {
            all: vec![
                "Olá, bom dia.".into(),
                "Como posso ajudar você hoje?".into(),
            ],
            ..Default::default()
        };
        p.skip_spoken(500); // 7 characters: not even the first piece
        assert_eq!(p.unspoken().len(), 2);
        p.skip_spoken(1000); // 15 characters: the first (13), not the second
        assert_eq!(
            p.unspoken(),
            vec!["Como posso ajudar você hoje?".to_string()]
        );
    }
}
