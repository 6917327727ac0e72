//! One answer's stream: text pieces in, one audio event per sentence out.

use std::sync::Arc;

use tokio::sync::mpsc;

use super::synth::Engine;
use crate::providers::tts::TtsEvent;
use crate::providers::ProviderError;

/// Renders pieces in arrival order until `text` closes (then `Done`) or the audio
/// receiver is dropped (barge-in: stop after the sentence in hand).
pub async fn speak(
    engine: Arc<Engine>,
    mut text: mpsc::Receiver<String>,
    audio: mpsc::Sender<TtsEvent>,
) {
    loop {
        let piece = tokio::select! {
            piece = text.recv() => piece,
            () = audio.closed() => return,
        };
        let Some(piece) = piece else {
            let _ = audio.send(TtsEvent::Done).await;
            return;
        };
        let worker = engine.clone();
        let sentences = match blocking(move || worker.sentence_ids(&piece)).await {
            Ok(sentences) => sentences,
            Err(e) => {
                let _ = audio.send(TtsEvent::Error(e)).await;
                return;
            }
        };
        for ids in sentences {
            if audio.is_closed() {
                return;
            }
            let worker = engine.clone();
            match blocking(move || worker.render(&ids)).await {
                Ok(pcm) => {
                    if audio.send(TtsEvent::Audio(pcm)).await.is_err() {
                        return;
                    }
                }
                Err(e) => {
                    let _ = audio.send(TtsEvent::Error(e)).await;
                    return;
                }
            }
        }
    }
}

/// Runs `work` on tokio's blocking pool (espeak-ng and ONNX Runtime block for up to
/// hundreds of ms; the async workers carry every call's audio).
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ProviderError> + Send + 'static,
) -> Result<T, ProviderError> {
    tokio::task::spawn_blocking(work).await.unwrap_or_else(|_| {
        Err(ProviderError::Unavailable(
            "Piper synthesis panicked".into(),
        ))
    })
}
