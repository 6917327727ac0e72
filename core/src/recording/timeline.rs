//! Lines agent audio up against the caller's: the caller channel is the time base (caller
//! sample n is at position n) and agent audio is placed at the position the bridge gives.
//!
//! Agent audio usually arrives ahead of the caller audio it plays against, so it waits in
//! a buffer that starts at the caller's position; each caller sample that arrives takes
//! the agent sample at the same position (or silence) to make one stereo frame.

use std::collections::VecDeque;

/// The stereo frames of one call as they become known: left caller, right agent.
pub(crate) struct Timeline {
    /// Caller samples emitted so far: the position of the next frame.
    position: u64,
    /// Agent audio for positions `position..position + agent.len()`; silence where none was
    /// placed.
    agent: VecDeque<i16>,
    /// How far ahead of the caller agent audio may be placed (bounds memory per call).
    max_ahead: usize,
}

impl Timeline {
    pub fn new(max_ahead: usize) -> Self {
        Self {
            position: 0,
            agent: VecDeque::new(),
            max_ahead,
        }
    }

    /// Stereo frames emitted so far.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// Places agent audio at `at`; returns how many samples were discarded because they
    /// were late (their position was already written) or too far ahead.
    pub fn agent(&mut self, at: u64, samples: &[i16]) -> usize {
        let late = usize::try_from(self.position.saturating_sub(at))
            .unwrap_or(usize::MAX)
            .min(samples.len());
        let samples = &samples[late..];
        let offset = at.saturating_sub(self.position);
        if samples.is_empty() || offset >= self.max_ahead as u64 {
            return late + samples.len();
        }
        let offset = offset as usize;
        let kept = samples.len().min(self.max_ahead - offset);
        if self.agent.len() < offset + kept {
            self.agent.resize(offset + kept, 0);
        }
        for (slot, &s) in self.agent.range_mut(offset..offset + kept).zip(samples) {
            *slot = s;
        }
        late + samples.len() - kept
    }

    /// Barge-in: agent audio at or after `at` was never played.
    pub fn cut(&mut self, at: u64) {
        let keep = at.saturating_sub(self.position);
        if keep < self.agent.len() as u64 {
            self.agent.truncate(keep as usize);
        }
    }

    /// Caller audio starting at position `at`, appended to `out` as interleaved stereo
    /// frames. A gap before `at` (caller audio dropped on the way) becomes caller silence;
    /// samples before the current position (never expected) are skipped.
    pub fn caller(&mut self, at: u64, samples: &[i16], out: &mut Vec<i16>) {
        if at > self.position {
            let gap = at - self.position;
            out.reserve(2 * gap as usize);
            for _ in 0..gap {
                out.push(0);
                out.push(self.agent.pop_front().unwrap_or(0));
            }
            self.position = at;
        }
        let skip = usize::try_from(self.position - at)
            .unwrap_or(usize::MAX)
            .min(samples.len());
        let samples = &samples[skip..];
        out.reserve(2 * samples.len());
        for &s in samples {
            out.push(s);
            out.push(self.agent.pop_front().unwrap_or(0));
        }
        self.position += samples.len() as u64;
    }

    /// End of call: the agent audio still waiting, against caller silence.
    pub fn drain_agent(&mut self, out: &mut Vec<i16>) {
        let waiting = self.agent.len();
        out.reserve(2 * waiting);
        for s in self.agent.drain(..) {
            out.push(0);
            out.push(s);
        }
        self.position += waiting as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(stereo: &[i16]) -> (Vec<i16>, Vec<i16>) {
        let left = stereo.iter().step_by(2).copied().collect();
        let right = stereo.iter().skip(1).step_by(2).copied().collect();
        (left, right)
    }

    #[test]
    fn agent_ahead_waits_for_the_caller() {
        let mut t = Timeline::new(1000);
        let mut out = Vec::new();
        assert_eq!(t.agent(5, &[1, 2, 3]), 0);
        t.caller(0, &[10, 11, 12, 13], &mut out);
        t.caller(4, &[14, 15, 16, 17, 18, 19], &mut out);
        let (l, r) = split(&out);
        assert_eq!(l, [10, 11, 12, 13, 14, 15, 16, 17, 18, 19]);
        assert_eq!(r, [0, 0, 0, 0, 0, 1, 2, 3, 0, 0]);
        assert_eq!(t.position(), 10);
    }

    #[test]
    fn late_and_too_far_agent_audio_is_discarded_and_counted() {
        let mut t = Timeline::new(8);
        let mut out = Vec::new();
        t.caller(0, &[1; 4], &mut out);
        // positions 2..6: 2 and 3 are already written.
        assert_eq!(t.agent(2, &[7, 7, 8, 8]), 2);
        // positions 10..14: only 10 and 11 fit in the 8 samples ahead of position 4.
        assert_eq!(t.agent(10, &[9, 9, 9, 9]), 2);
        assert_eq!(t.agent(100, &[9; 3]), 3);
        out.clear();
        t.caller(4, &[1; 8], &mut out);
        assert_eq!(split(&out).1, [8, 8, 0, 0, 0, 0, 9, 9]);
    }

    #[test]
    fn cut_drops_agent_audio_from_that_position_on() {
        let mut t = Timeline::new(1000);
        let mut out = Vec::new();
        t.agent(2, &[5; 6]); // positions 2..8
        t.cut(4);
        t.caller(0, &[1; 10], &mut out);
        assert_eq!(split(&out).1, [0, 0, 5, 5, 0, 0, 0, 0, 0, 0]);
        // a cut behind the caller drops everything still waiting
        t.agent(12, &[5; 4]);
        t.cut(3);
        out.clear();
        t.caller(10, &[1; 8], &mut out);
        assert!(split(&out).1.iter().all(|&s| s == 0));
    }

    #[test]
    fn caller_gap_is_silence_and_agent_tail_is_drained() {
        let mut t = Timeline::new(1000);
        let mut out = Vec::new();
        t.agent(0, &[3; 6]);
        t.caller(0, &[1, 1], &mut out);
        t.caller(4, &[2, 2], &mut out); // 2..4 were dropped on the way
        t.drain_agent(&mut out);
        let (l, r) = split(&out);
        assert_eq!(l, [1, 1, 0, 0, 2, 2]);
        assert_eq!(r, [3; 6]);
        t.agent(6, &[4, 4]);
        out.clear();
        t.drain_agent(&mut out);
        assert_eq!(split(&out), (vec![0, 0], vec![4, 4]));
        assert_eq!(t.position(), 8);
    }
}
