//! The playout queue: agent audio cut into 20 ms frames and released on a clock.
//!
//! FreeSWITCH plays what we send in real time from a small buffer. We keep that buffer at
//! most `ahead` ms full: enough to ride out jitter, little enough that a barge-in clear
//! loses nothing the caller would have wanted and nothing stale plays after it. Send times
//! are computed from the start of a *run* (continuous playback), never by adding up ticks,
//! so the schedule cannot drift. A generation counter, bumped by every clear, marks which
//! audio is current.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use voice_core::audio::{frame_samples, FRAME_MS};

const FRAME: u64 = FRAME_MS as u64;

pub struct PlayoutQueue {
    frame_len: usize,
    frames: VecDeque<Vec<i16>>,
    partial: Vec<i16>,
    generation: u64,
    run: Option<Run>,
    /// Audio played in runs that are over.
    played_before_ms: u64,
    /// Everything sent to FreeSWITCH that was (or is being) played.
    sent_ms: u64,
    underruns: u64,
}

/// A stretch of continuous playback: FreeSWITCH started playing at `start`.
#[derive(Debug, Clone, Copy)]
struct Run {
    start: Instant,
    sent_ms: u64,
}

/// Audio ready to send.
#[derive(Debug, PartialEq)]
pub struct Batch {
    pub samples: Vec<i16>,
    pub generation: u64,
    /// First batch after silence: FreeSWITCH starts playing now.
    pub starts_run: bool,
    /// When FreeSWITCH starts playing it (after what it already holds).
    pub plays_at: Instant,
}

impl Run {
    fn elapsed_ms(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.start).as_millis() as u64
    }
    /// What FreeSWITCH holds and has not played yet.
    fn buffered_ms(&self, now: Instant) -> u64 {
        self.sent_ms.saturating_sub(self.elapsed_ms(now))
    }
}

impl PlayoutQueue {
    pub fn new(rate: u32) -> Self {
        Self {
            frame_len: frame_samples(rate).max(1),
            frames: VecDeque::new(),
            partial: Vec::new(),
            generation: 0,
            run: None,
            played_before_ms: 0,
            sent_ms: 0,
            underruns: 0,
        }
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Appends agent audio (at the call rate).
    pub fn push(&mut self, samples: &[i16]) {
        let mut rest = samples;
        if !self.partial.is_empty() {
            let take = (self.frame_len - self.partial.len()).min(rest.len());
            self.partial.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if self.partial.len() == self.frame_len {
                let frame =
                    std::mem::replace(&mut self.partial, Vec::with_capacity(self.frame_len));
                self.frames.push_back(frame);
            }
        }
        let mut chunks = rest.chunks_exact(self.frame_len);
        for frame in &mut chunks {
            self.frames.push_back(frame.to_vec());
        }
        self.partial.extend_from_slice(chunks.remainder());
    }

    /// The answer is complete: the last partial frame is padded with silence and queued.
    pub fn end_of_answer(&mut self) {
        if !self.partial.is_empty() {
            let mut frame = std::mem::take(&mut self.partial);
            frame.resize(self.frame_len, 0);
            self.frames.push_back(frame);
        }
    }

    /// Drops everything not yet played (barge-in). Returns the new generation.
    pub fn clear(&mut self, now: Instant) -> u64 {
        self.frames.clear();
        self.partial.clear();
        if let Some(run) = self.run.take() {
            // FreeSWITCH throws away what it buffered: only the played part counts.
            self.played_before_ms += run.sent_ms.min(run.elapsed_ms(now));
        }
        self.sent_ms = self.played_before_ms;
        self.generation += 1;
        self.generation
    }

    /// Audio queued here, not yet sent (ms).
    pub fn queued_ms(&self) -> u64 {
        self.frames.len() as u64 * FRAME
    }

    /// Audio sent and not yet played by FreeSWITCH (ms).
    pub fn buffered_ms(&self, now: Instant) -> u64 {
        self.run.map_or(0, |r| r.buffered_ms(now))
    }

    /// Whether the caller is hearing (or about to hear) agent audio.
    pub fn is_playing(&self, now: Instant) -> bool {
        !self.frames.is_empty() || !self.partial.is_empty() || self.buffered_ms(now) > 0
    }

    /// Position in the call's agent-audio timeline the caller has heard up to (ms).
    pub fn played_ms(&self, now: Instant) -> u64 {
        self.played_before_ms + self.run.map_or(0, |r| r.sent_ms.min(r.elapsed_ms(now)))
    }

    /// Timeline position where audio pushed next will start playing (ms).
    pub fn end_position_ms(&self) -> u64 {
        self.sent_ms
            + self.queued_ms()
            + (self.partial.len() as u64 * FRAME / self.frame_len as u64)
    }

    /// Times playback ran dry while audio was still coming.
    pub fn underruns(&self) -> u64 {
        self.underruns
    }

    /// When the next batch of `batch_frames` is due, keeping at most `ahead_ms` buffered in
    /// FreeSWITCH. `None` when there is nothing to send. A short batch is sent only when
    /// `flush` is set (the answer is complete) or playback is about to run dry.
    pub fn next_due(
        &self,
        now: Instant,
        batch_frames: usize,
        ahead_ms: u64,
        flush: bool,
    ) -> Option<Instant> {
        let have = self.frames.len();
        if have == 0 {
            return None;
        }
        let Some(run) = self.run.filter(|r| r.buffered_ms(now) > 0) else {
            return (have >= batch_frames || flush).then_some(now);
        };
        let n = have.min(batch_frames) as u64;
        let ahead = ahead_ms.max(n * FRAME);
        // Due when buffered + n*FRAME <= ahead, i.e. elapsed >= sent + n*FRAME - ahead.
        let full_at = (run.sent_ms + n * FRAME).saturating_sub(ahead);
        let at_ms = if have >= batch_frames || flush {
            full_at
        } else {
            // Not enough for a whole batch: wait until playback is about to run dry.
            run.sent_ms.saturating_sub(FRAME).max(full_at)
        };
        Some(run.start + Duration::from_millis(at_ms))
    }

    /// Takes the next batch if it is due (see [`Self::next_due`]).
    pub fn pop_due(
        &mut self,
        now: Instant,
        batch_frames: usize,
        ahead_ms: u64,
        flush: bool,
    ) -> Option<Batch> {
        let due = self.next_due(now, batch_frames, ahead_ms, flush)?;
        if due > now {
            return None;
        }
        let n = self.frames.len().min(batch_frames.max(1));
        let mut samples = Vec::with_capacity(n * self.frame_len);
        for frame in self.frames.drain(..n) {
            samples.extend_from_slice(&frame);
        }
        let ms = n as u64 * FRAME;
        let mut plays_at = now;
        let starts_run = match self.run {
            Some(run) if run.buffered_ms(now) > 0 => {
                plays_at = run.start + Duration::from_millis(run.sent_ms);
                self.run = Some(Run {
                    sent_ms: run.sent_ms + ms,
                    ..run
                });
                false
            }
            previous => {
                if let Some(run) = previous {
                    self.played_before_ms += run.sent_ms;
                }
                self.run = Some(Run {
                    start: now,
                    sent_ms: ms,
                });
                true
            }
        };
        self.sent_ms += ms;
        Some(Batch {
            samples,
            generation: self.generation,
            starts_run,
            plays_at,
        })
    }

    /// Records that playback ran dry in the middle of an answer (the provider was slower
    /// than real time). Called by the owner, which knows whether the answer was complete.
    pub fn note_underrun(&mut self) {
        self.underruns += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RATE: u32 = 8000; // 160 samples per frame

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Drives the queue with a simulated clock, returning (send time ms, batch) pairs.
    fn drain(
        q: &mut PlayoutQueue,
        t0: Instant,
        batch: usize,
        ahead: u64,
        flush: bool,
        until_ms: u64,
    ) -> Vec<(u64, Batch)> {
        let mut out = Vec::new();
        let mut t = 0;
        while t <= until_ms {
            while let Some(b) = q.pop_due(t0 + ms(t), batch, ahead, flush) {
                out.push((t, b));
            }
            t += 1;
        }
        out
    }

    #[test]
    fn cuts_audio_into_frames_and_pads_the_last() {
        let mut q = PlayoutQueue::new(RATE);
        q.push(&[1; 100]);
        q.push(&[2; 300]);
        assert_eq!(q.queued_ms(), 40);
        q.end_of_answer();
        assert_eq!(q.queued_ms(), 60);
        let t0 = Instant::now();
        let sent = drain(&mut q, t0, 1, 200, true, 0);
        let all: Vec<i16> = sent.iter().flat_map(|(_, b)| b.samples.clone()).collect();
        assert_eq!(all.len(), 480);
        assert_eq!(&all[..100], &[1; 100]);
        assert_eq!(&all[100..400], &[2; 300]);
        assert!(all[400..].iter().all(|&s| s == 0));
    }

    #[test]
    fn never_more_than_ahead_and_no_gap() {
        let mut q = PlayoutQueue::new(RATE);
        q.push(&vec![7; 160 * 100]); // 2 s arrives at once, as providers send it
        let t0 = Instant::now();
        let sent = drain(&mut q, t0, 1, 60, false, 3000);
        assert_eq!(sent.len(), 100);
        // The first three frames go at once (60 ms lead), then one every 20 ms exactly.
        assert!(sent[..3].iter().all(|(t, _)| *t == 0));
        for (i, (t, _)) in sent.iter().enumerate().skip(3) {
            assert_eq!(*t, (i as u64 - 2) * 20, "frame {i}");
        }
        assert!(sent[0].1.starts_run && sent[1..].iter().all(|(_, b)| !b.starts_run));
        // Buffered audio never exceeds the lead.
        let mut q = PlayoutQueue::new(RATE);
        q.push(&vec![7; 160 * 50]);
        for t in 0..1200 {
            while q.pop_due(t0 + ms(t), 1, 60, false).is_some() {}
            assert!(q.buffered_ms(t0 + ms(t)) <= 60);
        }
    }

    #[test]
    fn clear_drops_the_rest_and_bumps_generation() {
        let mut q = PlayoutQueue::new(RATE);
        q.push(&vec![1; 160 * 50]);
        let t0 = Instant::now();
        let before = drain(&mut q, t0, 1, 60, false, 100);
        assert!(before.iter().all(|(_, b)| b.generation == 0));
        let g = q.clear(t0 + ms(101));
        assert_eq!(g, 1);
        assert!(!q.is_playing(t0 + ms(101)));
        assert_eq!(q.pop_due(t0 + ms(200), 1, 60, true), None);
        // Heard position counts only what played, not what FreeSWITCH had buffered.
        assert_eq!(q.played_ms(t0 + ms(101)), 101);
        q.push(&[5; 160]);
        let b = q.pop_due(t0 + ms(300), 1, 60, false).unwrap();
        assert_eq!((b.generation, b.starts_run), (1, true));
    }

    #[test]
    fn file_batches_wait_for_a_whole_chunk_unless_flushed() {
        let mut q = PlayoutQueue::new(RATE);
        q.push(&vec![1; 160 * 30]); // 600 ms
        let t0 = Instant::now();
        // 1 s chunks: not enough audio yet, and nothing playing: wait.
        assert_eq!(q.pop_due(t0, 50, 1300, false), None);
        let b = q.pop_due(t0, 50, 1300, true).unwrap();
        assert_eq!(b.samples.len(), 160 * 30);
    }

    #[test]
    fn a_late_provider_starts_a_new_run() {
        let mut q = PlayoutQueue::new(RATE);
        q.push(&vec![1; 160 * 2]);
        let t0 = Instant::now();
        assert_eq!(drain(&mut q, t0, 1, 60, false, 0).len(), 2);
        // 40 ms sent; nothing more until 100 ms: FreeSWITCH ran dry at 40 ms.
        q.push(&vec![1; 160]);
        let b = q.pop_due(t0 + ms(100), 1, 60, false).unwrap();
        assert!(b.starts_run);
        assert_eq!(q.played_ms(t0 + ms(110)), 40 + 10);
    }
}
