//! Start/stop hysteresis over per-window speech decisions.

use super::VadEvent;

/// Speech starts once windows have said "speech" without a break for `start_ms`, and
/// stops once they have said "silence" without a break for `stop_ms`. Events carry the
/// stream time where the confirmed run began, so a start is dated at the real onset.
#[derive(Debug, Clone)]
pub struct Gate {
    start_ms: u32,
    stop_ms: u32,
    speaking: bool,
    /// Where the current run of windows disagreeing with `speaking` began.
    run_from_ms: Option<u64>,
}

impl Gate {
    pub fn new(start_ms: u32, stop_ms: u32) -> Self {
        Self {
            start_ms,
            stop_ms,
            speaking: false,
            run_from_ms: None,
        }
    }

    pub fn start_ms(&self) -> u32 {
        self.start_ms
    }

    pub fn stop_ms(&self) -> u32 {
        self.stop_ms
    }

    pub fn is_speaking(&self) -> bool {
        self.speaking
    }

    /// One window `[from_ms, to_ms)` classified as `speech` or not.
    pub fn update(&mut self, speech: bool, from_ms: u64, to_ms: u64) -> Option<VadEvent> {
        if speech == self.speaking {
            self.run_from_ms = None;
            return None;
        }
        let from = *self.run_from_ms.get_or_insert(from_ms);
        let needed = if speech { self.start_ms } else { self.stop_ms };
        if to_ms.saturating_sub(from) < u64::from(needed) {
            return None;
        }
        self.speaking = speech;
        self.run_from_ms = None;
        Some(if speech {
            VadEvent::SpeechStart { at_ms: from }
        } else {
            VadEvent::SpeechEnd { at_ms: from }
        })
    }
}
