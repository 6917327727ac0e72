//! The task behind one answer: text pieces become requests (the next one may start while
//! the current one streams), and their audio goes out strictly in the pieces' order.
//! Dropping the audio receiver aborts every request of the answer.

use std::collections::VecDeque;
use std::sync::Arc;

use tokio::sync::mpsc;
use tracing::{debug, warn};

use super::request::{self, Chunk, InFlight, Target};
use crate::audio::pcm::SplitL16;
use crate::providers::tts::TtsEvent;
use crate::providers::ProviderError;

/// The longest `input` the endpoint takes (characters).
pub const MAX_INPUT_CHARS: usize = 4096;

pub async fn run(
    target: Arc<Target>,
    mut text: mpsc::Receiver<String>,
    audio: mpsc::Sender<TtsEvent>,
) {
    let in_flight_max = if target.cfg.pipelined { 2 } else { 1 };
    let mut queue: VecDeque<InFlight> = VecDeque::new();
    // Pieces too long for one request, waiting for a free slot.
    let mut waiting: VecDeque<String> = VecDeque::new();
    let mut text_open = true;
    let mut pcm = SplitL16::default();
    loop {
        while queue.len() < in_flight_max {
            let Some(next) = waiting.pop_front() else {
                break;
            };
            queue.push_back(request::start(target.clone(), next));
        }
        if !text_open && queue.is_empty() {
            let _ = audio.send(TtsEvent::Done).await;
            return;
        }
        let room = queue.len() < in_flight_max && waiting.is_empty();
        tokio::select! {
            _ = audio.closed() => {
                debug!("speech dropped (barge-in): aborting its requests");
                return;
            }
            piece = text.recv(), if text_open && room => match piece {
                Some(piece) => waiting.extend(split(&piece, MAX_INPUT_CHARS)),
                None => text_open = false,
            },
            chunk = next_chunk(&mut queue) => match chunk {
                Chunk::Audio(bytes) => {
                    let samples = pcm.decode(&bytes);
                    if !samples.is_empty() && audio.send(TtsEvent::Audio(samples)).await.is_err() {
                        debug!("speech dropped (barge-in): aborting its requests");
                        return;
                    }
                }
                Chunk::End => {
                    if pcm.reset() {
                        debug!("OpenAI speech body ended with half a sample; dropped");
                    }
                    queue.pop_front();
                }
                Chunk::Failed(e) => {
                    warn!(error = %e, "OpenAI speech failed");
                    let _ = audio.send(TtsEvent::Error(e)).await;
                    return;
                }
            },
        }
    }
}

/// The next report of the piece being played; pending while there is none.
async fn next_chunk(queue: &mut VecDeque<InFlight>) -> Chunk {
    match queue.front_mut() {
        Some(front) => front.chunks.recv().await.unwrap_or_else(|| {
            Chunk::Failed(ProviderError::Unavailable(
                "OpenAI speech request stopped unexpectedly".into(),
            ))
        }),
        None => std::future::pending().await,
    }
}

/// `text` in parts of at most `max` characters, cut after a space where there is one;
/// nothing for a piece with nothing to say.
pub fn split(text: &str, max: usize) -> Vec<String> {
    let mut parts = Vec::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        let Some((cut, _)) = rest.char_indices().nth(max) else {
            parts.push(rest.to_string());
            break;
        };
        let at = rest[..cut].rfind(' ').filter(|&i| i > 0).unwrap_or(cut);
        parts.push(rest[..at].trim_end().to_string());
        rest = rest[at..].trim_start();
    }
    parts
}

/// PCM16 LE out of body chunks that may end in the middle of a sample: the odd byte is
/// kept for the next chunk, never dropped (that would shift every later sample).
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn odd_chunks_carry_their_last_byte() {
        let samples: Vec<i16> = (0..40).map(|i| i * 797 - 16_000).collect();
        let bytes = crate::audio::pcm::to_le_bytes(&samples);
        for cuts in [vec![1, 2, 3], vec![3, 4, 9, 79], vec![0, 0, 41]] {
            let mut pcm = SplitL16::default();
            let mut out = Vec::new();
            let mut at = 0;
            for cut in cuts.into_iter().chain([bytes.len()]) {
                out.extend(pcm.decode(&bytes[at..cut]));
                at = cut;
            }
            assert_eq!(out, samples);
            assert!(!pcm.reset());
        }
        let mut pcm = SplitL16::default();
        assert_eq!(pcm.decode(&[1, 0, 7]), vec![1]);
        assert!(
            pcm.reset(),
            "a new body does not start with the old half sample"
        );
        assert_eq!(pcm.decode(&[2, 0]), vec![2]);
    }

    #[test]
    fn long_pieces_are_split_at_spaces() {
        assert_eq!(split("  Olá, tudo bem?  ", 100), vec!["Olá, tudo bem?"]);
        assert!(split(" \n ", 100).is_empty());
        assert_eq!(split("aaa bbb ccc", 8), vec!["aaa bbb", "ccc"]);
        assert_eq!(split("aaa bbb ccc", 6), vec!["aaa", "bbb", "ccc"]);
        assert_eq!(split("abcdefghij", 4), vec!["abcd", "efgh", "ij"]);
        assert_eq!(split("çççç ççç", 5), vec!["çççç", "ççç"]);
        let long = "palavra ".repeat(1000);
        let parts = split(&long, MAX_INPUT_CHARS);
        assert!(parts.iter().all(|p| p.chars().count() <= MAX_INPUT_CHARS));
        assert_eq!(parts.join(" "), long.trim());
    }
}
