//! What the caller hears: FreeSWITCH's playback side on a real-time playhead.
//!
//! Audio from the bridge (stream frames, or files queued by `uuid_broadcast`) is queued and
//! consumed at exactly the call rate. Time is counted in samples since the call started, so
//! the accounting is independent of when the call's 20 ms tick happens to fire.
//!
//! Per answer ("segment", from the end of the caller's utterance to the end of the next one):
//! - a *gap* is audio arriving after the playhead had consumed everything already queued
//!   (the caller heard silence inside the answer); the first audio of a segment, and the first
//!   after a clear, are not gaps;
//! - a *late* chunk arrived with less than one frame (20 ms, 1 ms of slack) still queued:
//!   a near miss;
//! - the *lead* is how much audio is queued ahead of the playhead right after an arrival.

use std::collections::VecDeque;

use serde::Serialize;

/// Where a chunk came from: the module's stream buffer, or a file played by `uuid_broadcast`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Binary / `streamAudio` / `rawAudio` audio in the module's write buffer.
    Stream,
    /// A file FreeSWITCH plays (`uuid_broadcast`); `uuid_break` stops these.
    File,
}

/// One piece of audio handed to the player.
#[derive(Debug, Clone)]
pub struct PlayChunk {
    /// Length in samples at the call rate.
    pub samples: usize,
    /// The audio itself, kept only when the uplink needs it (`mixed`/`stereo`).
    pub pcm: Option<Vec<i16>>,
    /// Stream buffer or file.
    pub source: Source,
}

/// Playback accounting for one answer. Times are sample counts since the call started.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SegmentStats {
    /// When the first audio of this answer arrived.
    pub first_audio_at: Option<u64>,
    /// Samples of audio received for this answer.
    pub audio_samples: u64,
    /// Chunks (frames, messages or files) received.
    pub chunks: u32,
    /// Times the player ran dry and more audio came later.
    pub gaps: u32,
    /// Total silence inside the answer caused by those gaps.
    pub gap_samples: u64,
    /// Arrivals with less than 20 ms still queued.
    pub late_chunks: u32,
    /// Most audio queued ahead of the playhead.
    pub max_lead_samples: u64,
    /// Clears (text clear, `killAudio`, `uuid_break`) received in this answer.
    pub clears: u32,
    /// When the first clear that stopped already-received audio arrived.
    pub cleared_at: Option<u64>,
    /// Samples thrown away by clears.
    pub cleared_samples: u64,
    /// Chunks received after such a clear (stale audio the bridge should have dropped).
    pub chunks_after_clear: u32,
    /// Samples the caller heard after such a clear.
    pub heard_after_clear_samples: u64,
}

struct Queued {
    chunk: PlayChunk,
    pos: usize,
}

/// The playback side of one simulated channel.
pub struct Player {
    frame: u64,
    keep_pcm: bool,
    queue: VecDeque<Queued>,
    queued: u64,
    clock: u64,
    dry_since: Option<u64>,
    /// The next arrival starts a run (segment start or after a clear): never a gap.
    fresh: bool,
    cleared_after_audio: bool,
    seg: SegmentStats,
    played: VecDeque<i16>,
}

impl Player {
    /// A player for 20 ms frames of `frame_samples`; `keep_pcm` keeps what is played for the
    /// `mixed`/`stereo` uplink.
    pub fn new(frame_samples: usize, keep_pcm: bool) -> Self {
        Player {
            frame: frame_samples as u64,
            keep_pcm,
            queue: VecDeque::new(),
            queued: 0,
            clock: 0,
            dry_since: None,
            fresh: true,
            cleared_after_audio: false,
            seg: SegmentStats::default(),
            played: VecDeque::new(),
        }
    }

    /// Moves the playhead to `now`, consuming queued audio.
    pub fn advance_to(&mut self, now: u64) {
        if now <= self.clock {
            return;
        }
        let mut left = now - self.clock;
        while left > 0 {
            let Some(front) = self.queue.front_mut() else {
                break;
            };
            let remaining = (front.chunk.samples - front.pos) as u64;
            let take = left.min(remaining);
            if self.keep_pcm {
                let start = front.pos;
                let end = start + take as usize;
                match front.chunk.pcm.as_deref().and_then(|p| p.get(start..end)) {
                    Some(pcm) => self.played.extend(pcm.iter().copied()),
                    None => self.played.extend(std::iter::repeat_n(0, take as usize)),
                }
            }
            front.pos += take as usize;
            left -= take;
            self.queued -= take;
            if self.cleared_after_audio {
                self.seg.heard_after_clear_samples += take;
            }
            if front.pos >= front.chunk.samples {
                self.queue.pop_front();
                if self.queue.is_empty() {
                    self.dry_since = Some(now - left);
                }
            }
        }
        if left > 0 && self.keep_pcm {
            self.played.extend(std::iter::repeat_n(0, left as usize));
        }
        self.clock = now;
    }

    /// Queues `chunk` arriving at `now` and accounts for it.
    pub fn push(&mut self, now: u64, chunk: PlayChunk) {
        self.advance_to(now);
        // A command stamped just before the last tick arrives a little late: it is "now".
        let now = now.max(self.clock);
        if chunk.samples == 0 {
            return;
        }
        let seg = &mut self.seg;
        if self.cleared_after_audio {
            seg.chunks_after_clear += 1;
        }
        if self.fresh {
            self.fresh = false;
            seg.first_audio_at.get_or_insert(now);
        } else if self.queued == 0 {
            let dry = self.dry_since.unwrap_or(now);
            if now > dry {
                seg.gaps += 1;
                seg.gap_samples += now - dry;
            } else {
                seg.late_chunks += 1;
            }
        } else if self.queued + self.frame / 20 < self.frame {
            // Under 20 ms left (with 1 ms of slack, so the frames of one burst that arrive
            // microseconds apart are not near misses).
            seg.late_chunks += 1;
        }
        seg.audio_samples += chunk.samples as u64;
        seg.chunks += 1;
        self.queued += chunk.samples as u64;
        seg.max_lead_samples = seg.max_lead_samples.max(self.queued);
        self.dry_since = None;
        self.queue.push_back(Queued { chunk, pos: 0 });
    }

    /// Empties the module's stream buffer (`clearAudio`, `stopAudio`, …).
    pub fn clear_stream(&mut self, now: u64) {
        self.advance_to(now);
        self.drop_where(now, |_, q| q.chunk.source == Source::Stream);
    }

    /// `uuid_break`: stops the file playing now; with `all`, also the queued ones.
    pub fn break_files(&mut self, now: u64, all: bool) {
        self.advance_to(now);
        let mut first_file_seen = false;
        self.drop_where(now, |_, q| {
            if q.chunk.source != Source::File {
                return false;
            }
            let drop = all || !first_file_seen;
            first_file_seen = true;
            drop
        });
    }

    fn drop_where(&mut self, now: u64, mut should_drop: impl FnMut(usize, &Queued) -> bool) {
        let mut dropped = 0u64;
        let mut index = 0;
        self.queue.retain(|q| {
            let drop = should_drop(index, q);
            index += 1;
            if drop {
                dropped += (q.chunk.samples - q.pos) as u64;
            }
            !drop
        });
        self.queued -= dropped;
        let seg = &mut self.seg;
        seg.clears += 1;
        seg.cleared_samples += dropped;
        if seg.first_audio_at.is_some() && !self.cleared_after_audio {
            self.cleared_after_audio = true;
            seg.cleared_at = Some(now);
        }
        if self.queue.is_empty() {
            self.fresh = true;
            self.dry_since = None;
        }
    }

    /// Starts the next answer (the caller just finished speaking); returns the last one's stats.
    pub fn start_segment(&mut self, now: u64) -> SegmentStats {
        self.advance_to(now);
        self.fresh = true;
        self.dry_since = None;
        self.cleared_after_audio = false;
        std::mem::take(&mut self.seg)
    }

    /// The current answer's stats so far.
    pub fn segment(&self) -> &SegmentStats {
        &self.seg
    }

    /// How long the current answer has been fully played out (`None` while audio is queued
    /// or before any arrived).
    pub fn idle_for(&mut self, now: u64) -> Option<u64> {
        self.advance_to(now);
        if self.seg.first_audio_at.is_none() || self.queued > 0 {
            return None;
        }
        Some(now.saturating_sub(self.dry_since.unwrap_or(now)))
    }

    /// Samples queued ahead of the playhead.
    pub fn queued_samples(&self) -> u64 {
        self.queued
    }

    /// Appends `n` played samples (silence when nothing played) to `out`, for the uplink mix.
    pub fn take_played(&mut self, n: usize, out: &mut Vec<i16>) {
        let available = n.min(self.played.len());
        out.extend(self.played.drain(..available));
        out.extend(std::iter::repeat_n(0, n - available));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const F: usize = 320; // 20 ms at 16 kHz

    fn ms(n: u64) -> u64 {
        n * 16
    }

    fn frame() -> PlayChunk {
        PlayChunk {
            samples: F,
            pcm: None,
            source: Source::Stream,
        }
    }

    fn file(samples: usize) -> PlayChunk {
        PlayChunk {
            samples,
            pcm: None,
            source: Source::File,
        }
    }

    #[test]
    fn paced_frames_with_lead_have_no_gaps() {
        let mut p = Player::new(F, false);
        // 3 frames up front (60 ms lead), then one every 20 ms, 3 ms of jitter.
        for _ in 0..3 {
            p.push(ms(100), frame());
        }
        for i in 1..50u64 {
            p.push(ms(100 + 20 * i + (i % 2) * 3), frame());
        }
        let s = p.segment();
        assert_eq!(s.first_audio_at, Some(ms(100)));
        assert_eq!((s.gaps, s.late_chunks), (0, 0));
        assert_eq!(s.max_lead_samples, ms(60));
        assert_eq!(s.audio_samples, 52 * F as u64);
    }

    #[test]
    fn audio_after_the_playhead_ran_dry_is_a_gap() {
        let mut p = Player::new(F, false);
        p.push(ms(0), frame());
        p.push(ms(20), frame()); // exactly on time: a near miss, not a gap
        p.push(ms(70), frame()); // dry since 40 ms: a 30 ms gap
        let s = p.segment();
        assert_eq!(s.gaps, 1);
        assert_eq!(s.gap_samples, ms(30));
        assert_eq!(s.late_chunks, 1);
    }

    #[test]
    fn little_buffered_is_a_near_miss() {
        let mut p = Player::new(F, false);
        p.push(ms(0), frame());
        p.push(ms(15), frame()); // 5 ms left
        p.push(ms(20), frame()); // 20 ms left: fine
        p.push(ms(20) + 2, frame()); // a burst, microseconds apart: fine
        let s = p.segment();
        assert_eq!((s.gaps, s.late_chunks), (0, 1));
    }

    #[test]
    fn a_new_answer_is_not_a_gap_and_stats_restart() {
        let mut p = Player::new(F, false);
        p.push(ms(0), frame());
        let first = p.start_segment(ms(500));
        assert_eq!(first.audio_samples, F as u64);
        assert_eq!(p.idle_for(ms(600)), None, "nothing yet in the new answer");
        p.push(ms(1000), frame());
        assert_eq!(p.segment().gaps, 0);
        assert_eq!(p.segment().first_audio_at, Some(ms(1000)));
        assert_eq!(p.idle_for(ms(1100)), Some(ms(80)));
    }

    #[test]
    fn clear_drops_the_buffer_and_flags_stale_audio() {
        let mut p = Player::new(F, false);
        for _ in 0..10 {
            p.push(ms(0), frame());
        }
        p.clear_stream(ms(50));
        assert_eq!(p.queued_samples(), 0);
        let s = p.segment();
        assert_eq!(s.cleared_samples, ms(150));
        assert_eq!(s.cleared_at, Some(ms(50)));
        p.push(ms(300), frame()); // after a clear: flagged, but not a gap
        let s = p.segment();
        assert_eq!((s.gaps, s.chunks_after_clear), (0, 1));
        p.advance_to(ms(400));
        assert_eq!(p.segment().heard_after_clear_samples, F as u64);
    }

    #[test]
    fn a_clear_before_any_audio_flags_nothing() {
        let mut p = Player::new(F, false);
        p.clear_stream(ms(10));
        p.push(ms(20), frame());
        assert_eq!(p.segment().chunks_after_clear, 0);
        assert_eq!(p.segment().clears, 1);
    }

    #[test]
    fn uuid_break_stops_the_current_file_or_all() {
        let mut p = Player::new(F, false);
        p.push(ms(0), file(ms(1000) as usize));
        p.push(ms(10), file(ms(1000) as usize));
        p.push(ms(20), file(ms(1000) as usize));
        p.break_files(ms(500), false);
        assert_eq!(
            p.queued_samples(),
            ms(2000),
            "the next two files still play"
        );
        p.break_files(ms(600), true);
        assert_eq!(p.queued_samples(), 0);
        assert_eq!(p.segment().clears, 2);
        // Stream audio is not a file: uuid_break leaves it alone.
        p.push(ms(700), frame());
        p.break_files(ms(705), true);
        assert_eq!(p.queued_samples(), ms(15));
    }

    #[test]
    fn keeps_what_is_played_for_the_mix() {
        let mut p = Player::new(4, true);
        p.push(
            0,
            PlayChunk {
                samples: 6,
                pcm: Some(vec![1, 2, 3, 4, 5, 6]),
                source: Source::Stream,
            },
        );
        p.advance_to(4);
        let mut out = Vec::new();
        p.take_played(4, &mut out);
        assert_eq!(out, [1, 2, 3, 4]);
        p.advance_to(8);
        out.clear();
        p.take_played(4, &mut out);
        assert_eq!(out, [5, 6, 0, 0]);
        out.clear();
        p.take_played(3, &mut out);
        assert_eq!(out, [0, 0, 0], "nothing played yet: silence");
    }
}
