//! The load tool: N concurrent real-time calls against a bridge, ramped up, each running the
//! caller script for a fixed time; then one summary with latency percentiles, playout
//! quality, errors, what the bridge cost (CPU over the steady-state window, RSS) and, when
//! the fake provider is ours, who decided the turns and how fast; and, from the bridge's
//! recording facts, its own per-turn figures.

mod bridge_facts;
mod cascaded;
#[cfg(test)]
mod cascaded_run_tests;
mod profile;
mod provider;
mod stack;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use bridge_facts::{read_bridge_turns, BridgeTurns};
pub use cascaded::{CascadedDelays, CascadedFakes, CascadedOptions};
pub use profile::BridgeProfile;
pub use provider::{ProviderChoice, RunningFake};
pub use stack::{Stack, StackOptions};

use crate::bridge_process::{cpu_percent, cpu_ticks, own_cpu_ticks, rss_kib};
use crate::fake_openai::{FakeStats, FakeStatsHandle};
use crate::freeswitch::script::render_script;
use crate::freeswitch::{run_call, CallReport, CallSpec, ErrorKind};
use crate::report::{fmt_ms, BridgeCost, LatencyStats, LoadSummary, TurnDetection};

/// Extra time a call gets beyond its planned length before it is abandoned.
const CALL_GRACE: Duration = Duration::from_secs(30);
/// Settling time after the last call started before the CPU window opens.
const SETTLE: Duration = Duration::from_secs(1);
/// How often progress goes to stderr.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// What to run.
#[derive(Clone)]
pub struct LoadSpec {
    /// Concurrent calls.
    pub calls: usize,
    /// How long each call lasts.
    pub call_duration: Duration,
    /// Calls start evenly over this time.
    pub ramp: Duration,
    /// The call to repeat; each copy gets its own UUID and seed, and `max_duration` =
    /// `call_duration` (the template's `max_turns` is kept).
    pub template: CallSpec,
    /// The bridge's PID, to measure its CPU and RSS.
    pub bridge_pid: Option<u32>,
    /// The fake provider the bridge talks to, when it is ours: what it sees during the run
    /// (turn detection mode, client commits) goes into the summary.
    pub provider: Option<FakeStatsHandle>,
    /// The bridge runs a cascaded agent with local turns (checked when its stack started)
    /// against fakes with these delays: the summary says so, with turn detection "client".
    pub cascaded: Option<CascadedDelays>,
    /// Print progress to stderr.
    pub progress: bool,
}

/// The summary and every call's report.
pub struct LoadResult {
    /// The summary (print with [`LoadSummary::to_json_line`]).
    pub summary: LoadSummary,
    /// One report per call, in start order.
    pub reports: Vec<CallReport>,
}

/// Runs the load and returns when every call has ended (each is bounded by its duration
/// plus a grace period, so this always returns).
pub async fn run_load(spec: LoadSpec) -> LoadResult {
    let started = Instant::now();
    let own_start = own_cpu_ticks().ok();
    let provider = spec.provider.clone().map(ProviderWatch::new);
    // Render the caller's speech once, before any call starts.
    if let Err(e) = render_script(&spec.template.script, spec.template.rate).await {
        let mut report = CallReport::default();
        report.error(ErrorKind::Internal, 0.0, format!("{e:#}"));
        return finish(
            &spec,
            vec![report],
            BridgeCost::default(),
            started,
            own_start,
            provider.as_ref(),
        );
    }
    let active = Arc::new(AtomicUsize::new(0));
    let finished = Arc::new(AtomicUsize::new(0));
    let calls = spec.calls.max(1);
    let mut handles = Vec::with_capacity(calls);
    for i in 0..calls {
        let mut call = spec.template.clone();
        call.call_uuid = uuid::Uuid::new_v4().to_string();
        call.seed = spec.template.seed.wrapping_add(i as u64);
        call.max_duration = spec.call_duration;
        let start_at =
            tokio::time::Instant::from_std(started) + spec.ramp.mul_f64(i as f64 / calls as f64);
        let (active, finished) = (active.clone(), finished.clone());
        let limit = spec.call_duration + CALL_GRACE;
        handles.push(tokio::spawn(async move {
            tokio::time::sleep_until(start_at).await;
            active.fetch_add(1, Ordering::Relaxed);
            let uuid = call.call_uuid.clone();
            let report = match tokio::time::timeout(limit, run_call(call)).await {
                Ok(report) => report,
                Err(_) => abandoned(uuid, limit),
            };
            active.fetch_sub(1, Ordering::Relaxed);
            finished.fetch_add(1, Ordering::Relaxed);
            report
        }));
    }
    let cost_task = tokio::spawn(measure_bridge(
        spec.bridge_pid,
        started,
        spec.ramp,
        spec.call_duration,
    ));
    let progress_task = spec.progress.then(|| {
        let (active, finished) = (active.clone(), finished.clone());
        let provider = provider.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(PROGRESS_EVERY).await;
                let turns = provider
                    .as_ref()
                    .map(|p| turn_progress(&p.since_start()))
                    .unwrap_or_default();
                eprintln!(
                    "[{:>5.1} s] calls up: {}, finished: {}/{calls}{turns}",
                    started.elapsed().as_secs_f64(),
                    active.load(Ordering::Relaxed),
                    finished.load(Ordering::Relaxed)
                );
            }
        })
    });
    let mut reports = Vec::with_capacity(calls);
    for handle in handles {
        reports.push(
            handle
                .await
                .unwrap_or_else(|e| abandoned(format!("task failed: {e}"), Duration::ZERO)),
        );
    }
    if let Some(task) = progress_task {
        task.abort();
    }
    let mut cost = cost_task.await.unwrap_or_default();
    cost.cpu_pct_per_call = cost.cpu_pct.map(|pct| pct / calls as f64);
    if let Some(pid) = spec.bridge_pid {
        cost.rss_mb = rss_kib(pid).ok().map(|kib| kib as f64 / 1024.0);
    }
    finish(&spec, reports, cost, started, own_start, provider.as_ref())
}

/// The fake provider's stats since the run started.
#[derive(Clone)]
struct ProviderWatch {
    handle: FakeStatsHandle,
    at_start: Arc<FakeStats>,
}

impl ProviderWatch {
    fn new(handle: FakeStatsHandle) -> Self {
        let at_start = Arc::new(handle.snapshot());
        Self { handle, at_start }
    }

    fn since_start(&self) -> FakeStats {
        self.handle.snapshot().since(&self.at_start)
    }
}

/// The turn detection part of a progress line ("" before any session is set up).
fn turn_progress(stats: &FakeStats) -> String {
    let Some(mode) = TurnDetection::of(stats) else {
        return String::new();
    };
    let mut line = format!(", turn detection: {}", mode.name());
    if stats.client_commits > 0 {
        let decision =
            LatencyStats::of(stats.commit_trailing_silence_ms.iter().map(|&ms| ms as f64));
        line += &format!(
            ", end of speech → commit p50 {} p95 {} ms ({} commits)",
            fmt_ms(decision.p50),
            fmt_ms(decision.p95),
            stats.client_commits
        );
    }
    line
}

fn finish(
    spec: &LoadSpec,
    mut reports: Vec<CallReport>,
    cost: BridgeCost,
    started: Instant,
    own_start: Option<u64>,
    provider: Option<&ProviderWatch>,
) -> LoadResult {
    let wall = started.elapsed();
    let seen = provider.map(ProviderWatch::since_start);
    let mut summary =
        LoadSummary::of_run(&mut reports, spec.template.delays, seen.as_ref()).with_cost(&cost);
    summary.calls = spec.calls;
    summary.wall_s = (wall.as_secs_f64() * 10.0).round() / 10.0;
    summary.seconds = spec.call_duration.as_secs_f64();
    summary.profile = spec.template.profile.name().into();
    summary.rate = spec.template.rate;
    summary.mix = spec.template.mix.name().into();
    summary.playout = spec.template.playout.name().into();
    if let Some(delays) = spec.cascaded {
        summary.turn_detection.get_or_insert(TurnDetection::Client);
        summary.cascaded_delays = Some(delays);
    }
    summary.sim_cpu_pct = match (own_start, own_cpu_ticks().ok()) {
        (Some(a), Some(b)) => Some((cpu_percent(b.saturating_sub(a), wall) * 10.0).round() / 10.0),
        _ => None,
    };
    if spec.progress {
        eprintln!("{}", summary.turns_line());
    }
    LoadResult { summary, reports }
}

fn abandoned(uuid: String, limit: Duration) -> CallReport {
    let mut report = CallReport {
        call_uuid: uuid,
        ..CallReport::default()
    };
    report.error(
        ErrorKind::Internal,
        limit.as_secs_f64() * 1000.0,
        format!("call still running after {limit:?}: abandoned"),
    );
    report
}

/// CPU of the bridge between the moment every call is up (plus a settle time) and the moment
/// the first call ends: the steady state with all calls running.
async fn measure_bridge(
    pid: Option<u32>,
    started: Instant,
    ramp: Duration,
    call: Duration,
) -> BridgeCost {
    let Some(pid) = pid else {
        return BridgeCost::default();
    };
    let from = started + ramp + SETTLE;
    let to = started + call;
    if to <= from + Duration::from_secs(1) {
        eprintln!("note: calls end before all are up (+1 s): no steady-state CPU window; use --seconds > ramp + 2");
        return BridgeCost::default();
    }
    tokio::time::sleep_until(tokio::time::Instant::from_std(from)).await;
    let Ok(a) = cpu_ticks(pid) else {
        return BridgeCost::default();
    };
    let t0 = Instant::now();
    tokio::time::sleep_until(tokio::time::Instant::from_std(to)).await;
    let Ok(b) = cpu_ticks(pid) else {
        return BridgeCost::default();
    };
    let wall = t0.elapsed();
    BridgeCost {
        cpu_pct: Some(cpu_percent(b.saturating_sub(a), wall)),
        window_secs: Some(wall.as_secs_f64()),
        ..BridgeCost::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_tells_the_turn_detection_and_commit_times() {
        assert_eq!(turn_progress(&FakeStats::default()), "");
        let server = FakeStats {
            server_turn_sessions: 4,
            ..FakeStats::default()
        };
        assert_eq!(turn_progress(&server), ", turn detection: server");
        let client = FakeStats {
            client_turn_sessions: 2,
            client_commits: 3,
            commit_trailing_silence_ms: vec![610, 480, 700],
            ..FakeStats::default()
        };
        assert_eq!(
            turn_progress(&client),
            ", turn detection: client, end of speech → commit p50 610 p95 700 ms (3 commits)"
        );
    }
}
