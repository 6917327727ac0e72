//! Summaries of many calls: latency percentiles and the one-line JSON the load tool prints.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::fake_openai::FakeStats;
use crate::freeswitch::{error_kinds, CallReport, ProviderDelays};
use crate::load::{BridgeTurns, CascadedDelays};

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

/// A figure for a human-readable line: whole ms, or "-" when there is none.
pub(crate) fn fmt_ms(x: Option<f64>) -> String {
    x.map_or_else(|| "-".into(), |v| format!("{v:.0}"))
}

/// Who decided when each caller turn ended, by what the fake provider saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TurnDetection {
    /// The provider's server VAD (sessions with `server_vad` or `semantic_vad`).
    Server,
    /// The bridge: sessions with `turn_detection: null`, turns committed by the client.
    Client,
    /// Sessions of both kinds.
    Mixed,
}

impl TurnDetection {
    /// From the sessions the fake saw; `None` when it saw no configured session.
    pub fn of(stats: &FakeStats) -> Option<Self> {
        match (
            stats.server_turn_sessions > 0,
            stats.client_turn_sessions > 0,
        ) {
            (true, false) => Some(Self::Server),
            (false, true) => Some(Self::Client),
            (true, true) => Some(Self::Mixed),
            (false, false) => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Server => "server",
            Self::Client => "client",
            Self::Mixed => "mixed",
        }
    }

    /// What to take out of each response time. With client turns the provider has no VAD
    /// silence window to wait out: only its think time is subtracted. Mixed runs keep the
    /// configured (server) delays, since a turn cannot be tied to its session's mode.
    pub fn delays(self, configured: ProviderDelays) -> ProviderDelays {
        match self {
            Self::Client => ProviderDelays {
                vad_silence_ms: 0,
                ..configured
            },
            Self::Server | Self::Mixed => configured,
        }
    }
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
    /// End of speech → first answer audio, minus `subtracted`. Server turn detection: minus
    /// the provider's VAD silence window and think time, leaving the bridge's and the
    /// transport's overhead. Client turn detection: minus the think time only, leaving the
    /// bridge's end-of-turn decision plus that overhead (the decision alone is
    /// `end_of_speech_to_turn_ms`).
    pub turn_latency_ms: LatencyStats,
    /// End of speech → first answer audio, raw.
    pub response_ms: LatencyStats,
    /// What was subtracted from each response time.
    pub subtracted_delay_ms: u32,
    /// Its parts (`vad_silence_ms` is 0 with client turn detection; a cascaded agent's
    /// three delays are `think_ms`).
    pub subtracted: ProviderDelays,
    /// With the cascaded fakes: their delays (STT final, LLM first token, TTS first byte),
    /// whose sum is `subtracted.think_ms`. `turn_latency_ms` is then the bridge's turn
    /// decision plus its overhead, less whatever of the delays ran before the decision (an
    /// STT final that came first).
    pub cascaded_delays: Option<CascadedDelays>,
    /// Who decided the end of each caller turn, from the fake provider's sessions: "server"
    /// (its server VAD), "client" (`turn_detection: null`: the bridge committed), "mixed";
    /// null when the provider was not started here (`--bridge`) or saw no session. With the
    /// cascaded fakes "client": their profile's local turns are checked at start.
    pub turn_detection: Option<TurnDetection>,
    /// Client turns: the caller's end of speech → the bridge's `input_audio_buffer.commit`.
    /// Measured by the fake as the audio after the caller's last audible sample at each
    /// commit; audio streams in real time, so this is the bridge's end-of-turn decision
    /// time plus a few ms of transit. Empty with server turn detection.
    pub end_of_speech_to_turn_ms: LatencyStats,
    /// Commits the bridge sent with turn detection off.
    pub client_commits: u64,
    /// Of those, commits with no speech in the audio (turns decided on noise or silence);
    /// not in `end_of_speech_to_turn_ms`.
    pub client_commits_without_speech: u64,
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
    /// What the fake provider saw (sessions, answers, protocol errors or rejections), when
    /// it was started here.
    pub fake_provider: Option<serde_json::Value>,
    /// The bridge's own per-turn figures, from the recording facts of this run's calls
    /// (null when the bridge was not started here or does not record).
    pub bridge_turns: Option<BridgeTurns>,
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

    /// The summary of a run: the call reports plus what the fake provider saw during it
    /// (`None` when the provider was not started here). Each turn's latency is first
    /// recomputed with the delays that fit the turn detection seen, so `reports` agree
    /// with the summary.
    pub fn of_run(
        reports: &mut [CallReport],
        configured: ProviderDelays,
        provider: Option<&FakeStats>,
    ) -> Self {
        let turn_detection = provider.and_then(TurnDetection::of);
        let delays = turn_detection.map_or(configured, |t| t.delays(configured));
        for report in reports.iter_mut() {
            report.resubtract(delays);
        }
        let mut summary = Self::from_reports(reports, delays);
        summary.turn_detection = turn_detection;
        if let Some(p) = provider {
            summary.end_of_speech_to_turn_ms =
                LatencyStats::of(p.commit_trailing_silence_ms.iter().map(|&ms| ms as f64));
            summary.client_commits = p.client_commits;
            summary.client_commits_without_speech = p.client_commits_without_speech;
        }
        summary
    }

    /// The turn figures in one human-readable line (for stderr).
    pub fn turns_line(&self) -> String {
        let mut line = format!(
            "turns: {}/{} answered; turn latency p50 {} p95 {} ms (response − {} ms",
            self.turns,
            self.turns_spoken,
            fmt_ms(self.turn_latency_ms.p50),
            fmt_ms(self.turn_latency_ms.p95),
            self.subtracted_delay_ms,
        );
        line += match self.turn_detection {
            _ if self.cascaded_delays.is_some() => " STT final + LLM first token + TTS first byte)",
            Some(TurnDetection::Client) => " think)",
            Some(TurnDetection::Server) => " VAD silence + think)",
            _ => " configured delays)",
        };
        if let Some(t) = self.turn_detection {
            line += &format!("; turn detection {}", t.name());
        }
        if self.client_commits > 0 {
            let e = &self.end_of_speech_to_turn_ms;
            line += &format!(
                "; end of speech → commit p50 {} p95 {} max {} ms over {} commits ({} without speech)",
                fmt_ms(e.p50),
                fmt_ms(e.p95),
                fmt_ms(e.max),
                self.client_commits,
                self.client_commits_without_speech
            );
        }
        line
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

    /// Two calls whose answers came 1100, 1300 and 1500 ms after the end of speech.
    fn answered_calls() -> Vec<CallReport> {
        let turn = |response: f64| TurnReport {
            first_audio_ms: Some(1.0),
            response_ms: Some(response),
            // As the caller computed it with the configured (server) delays.
            turn_latency_ms: Some(response - 800.0),
            ..TurnReport::default()
        };
        let call = |turns| CallReport {
            completed: true,
            turns,
            subtracted: configured(),
            ..CallReport::default()
        };
        vec![
            call(vec![turn(1100.0), turn(1300.0)]),
            call(vec![turn(1500.0)]),
        ]
    }

    fn configured() -> ProviderDelays {
        ProviderDelays {
            vad_silence_ms: 500,
            think_ms: 300,
        }
    }

    fn provider(server: u64, client: u64, trailing: &[u64]) -> FakeStats {
        FakeStats {
            server_turn_sessions: server,
            client_turn_sessions: client,
            client_commits: trailing.len() as u64 + 1,
            client_commits_without_speech: 1,
            commit_trailing_silence_ms: trailing.to_vec(),
            ..FakeStats::default()
        }
    }

    #[test]
    fn client_turns_subtract_only_the_think_time() {
        let mut reports = answered_calls();
        let p = provider(0, 2, &[640, 520, 700]);
        let s = LoadSummary::of_run(&mut reports, configured(), Some(&p));
        assert_eq!(s.turn_detection, Some(TurnDetection::Client));
        assert_eq!(
            s.subtracted,
            ProviderDelays {
                vad_silence_ms: 0,
                think_ms: 300
            }
        );
        assert_eq!(s.subtracted_delay_ms, 300);
        // Response − think: the bridge's decision plus its overhead.
        assert_eq!(
            (s.turn_latency_ms.min, s.turn_latency_ms.max),
            (Some(800.0), Some(1200.0))
        );
        assert_eq!(reports[1].turns[0].turn_latency_ms, Some(1200.0));
        assert_eq!(reports[0].subtracted.vad_silence_ms, 0);
        let e = &s.end_of_speech_to_turn_ms;
        assert_eq!(
            (e.count, e.p50, e.min, e.max),
            (3, Some(640.0), Some(520.0), Some(700.0))
        );
        assert_eq!((s.client_commits, s.client_commits_without_speech), (4, 1));
        let json: serde_json::Value = serde_json::from_str(&s.to_json_line()).unwrap();
        assert_eq!(json["turn_detection"], "client");
        assert_eq!(json["end_of_speech_to_turn_ms"]["p50"], 640.0);
        assert_eq!(json["subtracted"]["vad_silence_ms"], 0);
        let line = s.turns_line();
        assert!(line.contains("turn detection client"), "{line}");
        assert!(line.contains("end of speech → commit p50 640"), "{line}");
    }

    #[test]
    fn server_mixed_and_unknown_turns_keep_the_configured_delays() {
        for (p, mode) in [
            (Some(provider(3, 0, &[])), Some(TurnDetection::Server)),
            (Some(provider(3, 1, &[600])), Some(TurnDetection::Mixed)),
            (Some(FakeStats::default()), None),
            (None, None),
        ] {
            let mut reports = answered_calls();
            let s = LoadSummary::of_run(&mut reports, configured(), p.as_ref());
            assert_eq!(s.turn_detection, mode);
            assert_eq!(s.subtracted, configured());
            assert_eq!(
                (s.turn_latency_ms.min, s.turn_latency_ms.max),
                (Some(300.0), Some(700.0))
            );
            assert_eq!(reports[1].turns[0].turn_latency_ms, Some(700.0));
        }
        let mut reports = answered_calls();
        let s = LoadSummary::of_run(&mut reports, configured(), None);
        let json: serde_json::Value = serde_json::from_str(&s.to_json_line()).unwrap();
        assert!(json["turn_detection"].is_null());
        assert_eq!(json["end_of_speech_to_turn_ms"]["count"], 0);
        assert!(!s.turns_line().contains("commit"));
    }
}
