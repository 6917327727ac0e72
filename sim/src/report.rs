//! Summaries of many calls: latency percentiles and the one-line JSON the load tool prints.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::freeswitch::{error_kinds, CallReport, ProviderDelays};

/// Percentiles of a set of measurements (ms). `None` fields when there was nothing to measure.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LatencyStats {
    /// How many measurements.
    pub count: usize,
    /// Median.
    pub p50: Option<f64>,
    /// 95th percentile.
    pub p95: Option<f64>,
    /// 99th percentile.
    pub p99: Option<f64>,
    /// Largest.
    pub max: Option<f64>,
    /// Smallest.
    pub min: Option<f64>,
    /// Arithmetic mean.
    pub mean: Option<f64>,
}

impl LatencyStats {
    /// Computes the stats of `values` (NaNs are ignored).
    pub fn of(values: impl IntoIterator<Item = f64>) -> Self {
        let mut v: Vec<f64> = values.into_iter().filter(|x| !x.is_nan()).collect();
        v.sort_by(f64::total_cmp);
        let mean = (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64);
        LatencyStats {
            count: v.len(),
            p50: percentile(&v, 50.0),
            p95: percentile(&v, 95.0),
            p99: percentile(&v, 99.0),
            max: v.last().copied(),
            min: v.first().copied(),
            mean: mean.map(round1),
        }
    }
}

/// Nearest-rank percentile of an ascending slice: the smallest value with at least `p`% of
/// the values at or below it.
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// What the bridge process cost during the run.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct BridgeCost {
    /// CPU over the steady-state window, % of one core, divided by the calls up.
    pub cpu_pct_per_call: Option<f64>,
    /// CPU over the steady-state window, % of one core.
    pub cpu_pct: Option<f64>,
    /// Length of the steady-state window, seconds.
    pub window_secs: Option<f64>,
    /// VmRSS at the end, MiB.
    pub rss_mb: Option<f64>,
}

/// The load tool's result: printed as one JSON object on the last stdout line.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LoadSummary {
    /// Calls started.
    pub calls: usize,
    /// Calls that ran to their planned end.
    pub completed: usize,
    /// Errors over all calls.
    pub errors: u64,
    /// Calls with at least one error.
    pub calls_with_errors: usize,
    /// Error counts by kind.
    pub error_kinds: BTreeMap<String, u64>,
    /// Caller turns that got an answer.
    pub turns: usize,
    /// Caller turns spoken.
    pub turns_spoken: usize,
    /// End of speech → first answer audio, minus the provider's delays.
    pub turn_latency_ms: LatencyStats,
    /// End of speech → first answer audio, raw.
    pub response_ms: LatencyStats,
    /// What was subtracted from each response time.
    pub subtracted_delay_ms: u32,
    /// Its parts.
    pub subtracted: ProviderDelays,
    /// Times a player ran dry inside an answer.
    pub playout_gaps: u64,
    /// Arrivals with < 20 ms queued.
    pub late_frames: u64,
    /// Most audio queued ahead of any playhead.
    pub max_lead_ms: f64,
    /// Answer audio heard over all calls, seconds.
    pub answer_audio_s: f64,
    /// Barge-in → clear, over the turns that barged in.
    pub clear_after_barge_in_ms: LatencyStats,
    /// WebSocket connections opened (ixwebsocket reconnects add to it).
    pub connections: u64,
    /// Binary messages sent to the bridge.
    pub frames_sent: u64,
    /// Bridge CPU per call, % of one core (steady state).
    pub bridge_cpu_pct_per_call: Option<f64>,
    /// Bridge CPU, % of one core (steady state).
    pub bridge_cpu_pct: Option<f64>,
    /// Bridge VmRSS at the end, MiB.
    pub bridge_rss_mb: Option<f64>,
    /// The steady-state window the CPU figures cover, seconds.
    pub steady_window_s: Option<f64>,
    /// This simulator's own CPU over the run, % of one core.
    pub sim_cpu_pct: Option<f64>,
    /// The simulator's own scheduling: most any call's 20 ms tick ran late. If this nears
    /// the bridge's playout lead, gaps and late frames may be the simulator's.
    pub sim_max_tick_lag_ms: f64,
    /// Ticks that ran more than 20 ms late, over all calls.
    pub sim_late_ticks: u64,
    /// Wall time of the whole run, seconds.
    pub wall_s: f64,
    /// Call parameters, for the record.
    pub profile: String,
    /// Call rate.
    pub rate: u32,
    /// mono / mixed / stereo.
    pub mix: String,
    /// Playout mode.
    pub playout: String,
    /// Planned seconds per call.
    pub seconds: f64,
}

impl LoadSummary {
    /// Folds call reports into a summary (the cost fields are filled by the caller).
    pub fn from_reports(reports: &[CallReport], delays: ProviderDelays) -> Self {
        let first = reports.first();
        let turns = || reports.iter().flat_map(|r| r.turns.iter());
        LoadSummary {
            calls: reports.len(),
            completed: reports.iter().filter(|r| r.completed).count(),
            errors: reports.iter().map(|r| u64::from(r.error_total())).sum(),
            calls_with_errors: reports.iter().filter(|r| r.error_total() > 0).count(),
            error_kinds: error_kinds(reports),
            turns: turns().filter(|t| t.first_audio_ms.is_some()).count(),
            turns_spoken: turns().count(),
            turn_latency_ms: LatencyStats::of(turns().filter_map(|t| t.turn_latency_ms)),
            response_ms: LatencyStats::of(turns().filter_map(|t| t.response_ms)),
            subtracted_delay_ms: delays.total_ms(),
            subtracted: delays,
            playout_gaps: reports.iter().map(|r| u64::from(r.playout_gaps())).sum(),
            late_frames: reports.iter().map(|r| u64::from(r.late_frames())).sum(),
            max_lead_ms: round1(
                reports
                    .iter()
                    .map(CallReport::max_lead_ms)
                    .fold(0.0, f64::max),
            ),
            answer_audio_s: round1(turns().map(|t| t.answer_audio_ms).sum::<f64>() / 1000.0),
            clear_after_barge_in_ms: LatencyStats::of(
                turns().filter_map(|t| t.clear_after_barge_in_ms),
            ),
            connections: reports.iter().map(|r| u64::from(r.connections)).sum(),
            frames_sent: reports.iter().map(|r| r.frames_sent).sum(),
            sim_max_tick_lag_ms: round1(
                reports
                    .iter()
                    .map(|r| r.max_tick_lag_ms)
                    .fold(0.0, f64::max),
            ),
            sim_late_ticks: reports.iter().map(|r| u64::from(r.late_ticks)).sum(),
            profile: first.map(|r| r.profile.clone()).unwrap_or_default(),
            rate: first.map_or(0, |r| r.rate),
            mix: first.map(|r| r.mix.clone()).unwrap_or_default(),
            playout: first.map(|r| r.playout.clone()).unwrap_or_default(),
            ..LoadSummary::default()
        }
    }

    /// Adds what the bridge process cost.
    pub fn with_cost(mut self, cost: &BridgeCost) -> Self {
        self.bridge_cpu_pct_per_call = cost.cpu_pct_per_call.map(|x| (x * 1000.0).round() / 1000.0);
        self.bridge_cpu_pct = cost.cpu_pct.map(round1);
        self.bridge_rss_mb = cost.rss_mb.map(round1);
        self.steady_window_s = cost.window_secs.map(round1);
        self
    }

    /// The summary as one line of JSON.
    pub fn to_json_line(&self) -> String {
        serde_json::to_string(self)
            .unwrap_or_else(|e| format!(r#"{{"error":"serializing the summary: {e}"}}"#))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::freeswitch::{ErrorKind, TurnReport};

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), Some(50.0));
        assert_eq!(percentile(&v, 95.0), Some(95.0));
        assert_eq!(percentile(&v, 99.0), Some(99.0));
        assert_eq!(percentile(&v, 100.0), Some(100.0));
        assert_eq!(percentile(&v, 0.0), Some(1.0));
        assert_eq!(percentile(&[7.0], 99.0), Some(7.0));
        assert_eq!(percentile(&[], 50.0), None);
        let s = LatencyStats::of([30.0, 10.0, 20.0, f64::NAN]);
        assert_eq!(
            (s.count, s.p50, s.max, s.min, s.mean),
            (3, Some(20.0), Some(30.0), Some(10.0), Some(20.0))
        );
        assert_eq!(LatencyStats::of([]).p99, None);
    }

    #[test]
    fn summarizes_calls() {
        let turn = |latency: f64, gaps: u32| TurnReport {
            first_audio_ms: Some(1.0),
            response_ms: Some(latency + 500.0),
            turn_latency_ms: Some(latency),
            playout_gaps: gaps,
            max_lead_ms: 120.0,
            answer_audio_ms: 1500.0,
            ..TurnReport::default()
        };
        let mut a = CallReport {
            completed: true,
            turns: vec![turn(100.0, 0), turn(300.0, 1)],
            ..CallReport::default()
        };
        a.error(ErrorKind::NoAnswer, 0.0, "x");
        let b = CallReport {
            completed: true,
            turns: vec![turn(200.0, 0), TurnReport::default()],
            ..CallReport::default()
        };
        let s = LoadSummary::from_reports(&[a, b], ProviderDelays::default());
        assert_eq!(
            (s.calls, s.completed, s.errors, s.calls_with_errors),
            (2, 2, 1, 1)
        );
        assert_eq!((s.turns, s.turns_spoken, s.playout_gaps), (3, 4, 1));
        assert_eq!(s.turn_latency_ms.p50, Some(200.0));
        assert_eq!(s.turn_latency_ms.max, Some(300.0));
        assert_eq!(s.error_kinds.get("no_answer"), Some(&1));
        assert_eq!(s.subtracted_delay_ms, 500);
        let json: serde_json::Value = serde_json::from_str(&s.to_json_line()).unwrap();
        assert_eq!(json["turn_latency_ms"]["p99"], 300.0);
        assert!(json["bridge_cpu_pct_per_call"].is_null());
    }
}
