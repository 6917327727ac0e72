//! Per-turn figures from the bridge itself. With recording on, the bridge writes each
//! call's facts beside its recording, `{dir}/{tenant}/{day}/{call}.jsonl`, one JSON line
//! per fact; each answered turn is a `{"type": "turn", …}` line (bridge/src/call/timing.rs)
//! with `decision_ms` (the caller's last word → turn decided; local turns only),
//! `provider_ms` (decided → first provider audio) and `playout_ms` (→ first frame sent to
//! FreeSWITCH), stamped with `at_ms`, the caller audio received so far. After a run the
//! facts of its calls are read back, found by call id (the folder may hold other runs'
//! calls), and each answer the caller heard is paired with the bridge's turn that sent it.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use serde::Serialize;
use serde_json::Value;
use voice_core::recording::paths::safe_component;

use crate::freeswitch::CallReport;
use crate::report::{fmt_ms, LatencyStats};

/// A caller's first answer audio and the bridge's first frame of that answer are this close
/// on the call's clock (turns are seconds apart; the clocks differ by the connect time).
const PAIR_WINDOW_MS: f64 = 500.0;

/// The bridge's own view of a run's turns.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct BridgeTurns {
    /// Calls of the run whose facts were found.
    pub calls: usize,
    /// Turn facts read.
    pub turns: usize,
    /// The caller's last word → turn decided (local turn detection only).
    pub decision_ms: LatencyStats,
    /// Turn decided → first answer frame sent to FreeSWITCH (`provider_ms + playout_ms`).
    pub decided_to_first_frame_ms: LatencyStats,
    /// `decided_to_first_frame_ms` minus `subtracted_ms` (the fake provider's delays): what
    /// the bridge's pipeline adds. Negative when part of the delays was over before the
    /// decision (an STT final, or an answer started early on it, before Smart Turn decided).
    pub pipeline_overhead_ms: LatencyStats,
    /// Per answer the caller heard: its end of speech → first answer audio (as the
    /// simulated switch measured it) minus the bridge's decision for that turn and minus
    /// `subtracted_ms`. The answer came within decision + delays + this.
    pub response_beyond_decision_ms: LatencyStats,
    /// Answers heard that were paired with a bridge turn (the others are not in
    /// `response_beyond_decision_ms`).
    pub paired: usize,
    pub subtracted_ms: u64,
    /// Turns by what ended them (smart_turn, silence, max_silence, provider).
    pub ended_by: BTreeMap<String, u64>,
    /// Fact lines that were not JSON (a crash cuts the last one) and files not readable.
    pub unreadable: u64,
}

impl BridgeTurns {
    /// The figures in one human-readable line (for stderr).
    pub fn line(&self, dir: &Path) -> String {
        let (d, o, r) = (
            &self.decision_ms,
            &self.pipeline_overhead_ms,
            &self.response_beyond_decision_ms,
        );
        format!(
            "bridge facts ({}): {} turns of {} calls; turn decision p50 {} p99 {} ms; \
             decided → first frame − {} ms: p50 {} p99 {} max {} ms; response − decision − {} ms: \
             p50 {} p99 {} max {} ms ({} answers paired)",
            dir.display(),
            self.turns,
            self.calls,
            fmt_ms(d.p50),
            fmt_ms(d.p99),
            self.subtracted_ms,
            fmt_ms(o.p50),
            fmt_ms(o.p99),
            fmt_ms(o.max),
            self.subtracted_ms,
            fmt_ms(r.p50),
            fmt_ms(r.p99),
            fmt_ms(r.max),
            self.paired,
        )
    }
}

/// The turn facts of the calls of `reports` under the recordings folder `dir`, with the
/// overhead figured as decided → first frame minus `subtracted_ms`.
pub fn read_bridge_turns(dir: &Path, reports: &[CallReport], subtracted_ms: u64) -> BridgeTurns {
    let mut by_file: HashMap<String, &CallReport> = reports
        .iter()
        .map(|r| (format!("{}.jsonl", safe_component(&r.call_uuid)), r))
        .collect();
    let mut out = BridgeTurns {
        subtracted_ms,
        ..BridgeTurns::default()
    };
    let mut facts = Vec::new();
    let mut beyond = Vec::new();
    for day in subfolders(dir).iter().flat_map(|tenant| subfolders(tenant)) {
        let Ok(entries) = std::fs::read_dir(&day) else {
            continue;
        };
        for entry in entries.flatten() {
            let Some(report) = by_file.remove(entry.file_name().to_string_lossy().as_ref()) else {
                continue;
            };
            match std::fs::read_to_string(entry.path()) {
                Ok(text) => {
                    out.calls += 1;
                    let turns = turn_facts(&text, &mut out.unreadable);
                    beyond.extend(beyond_decision(report, &turns, subtracted_ms));
                    facts.extend(turns);
                }
                Err(_) => out.unreadable += 1,
            }
        }
    }
    out.turns = facts.len();
    out.paired = beyond.len();
    out.response_beyond_decision_ms = LatencyStats::of(beyond);
    out.decision_ms = LatencyStats::of(facts.iter().filter_map(|t| t["decision_ms"].as_f64()));
    out.decided_to_first_frame_ms =
        LatencyStats::of(facts.iter().filter_map(|t| first_frame(t).map(round1)));
    out.pipeline_overhead_ms = LatencyStats::of(
        facts
            .iter()
            .filter_map(|t| first_frame(t).map(|ms| round1(ms - subtracted_ms as f64))),
    );
    for t in &facts {
        let by = t["ended_by"].as_str().unwrap_or("unknown").to_string();
        *out.ended_by.entry(by).or_default() += 1;
    }
    out
}

/// Turn decided → first frame out.
fn first_frame(turn: &Value) -> Option<f64> {
    Some(turn["provider_ms"].as_f64()? + turn["playout_ms"].as_f64()?)
}

/// For each answer the caller heard, the bridge turn whose first frame is nearest in time
/// (within [`PAIR_WINDOW_MS`]): response − its decision − `subtracted_ms`.
fn beyond_decision(report: &CallReport, turns: &[Value], subtracted_ms: u64) -> Vec<f64> {
    report
        .turns
        .iter()
        .filter_map(|heard| {
            let (first_audio, response) = (heard.first_audio_ms?, heard.response_ms?);
            let nearest = turns
                .iter()
                .filter_map(|t| Some((t["at_ms"].as_f64()?, t["decision_ms"].as_f64()?)))
                .min_by(|a, b| {
                    (a.0 - first_audio)
                        .abs()
                        .total_cmp(&(b.0 - first_audio).abs())
                })
                .filter(|(at, _)| (at - first_audio).abs() <= PAIR_WINDOW_MS);
            nearest.map(|(_, decision)| round1(response - decision - subtracted_ms as f64))
        })
        .collect()
}

/// The `{"type": "turn"}` facts of one `.jsonl` file; bad lines are counted.
fn turn_facts(text: &str, unreadable: &mut u64) -> Vec<Value> {
    let mut turns = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        match serde_json::from_str::<Value>(line) {
            Ok(fact) if fact["type"] == "turn" => turns.push(fact),
            Ok(_) => {}
            Err(_) => *unreadable += 1,
        }
    }
    turns
}

fn subfolders(dir: &Path) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .collect()
}

/// Sums of 0.1 ms figures, back to 0.1 ms (no float noise in the summary).
fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

#[cfg(test)]
mod tests {
    use super::tempdir;
    use super::*;
    use crate::freeswitch::TurnReport;

    fn turn(at: u64, decision: f64, provider: f64, playout: f64, by: &str) -> String {
        format!(
            r#"{{"at_ms":{at},"type":"turn","turn":1,"decision_ms":{decision},"provider_ms":{provider},"playout_ms":{playout},"smart_turn":0.9,"ended_by":"{by}"}}"#
        )
    }

    /// A recordings folder with two calls of the run (one cut mid-line by a crash), one of
    /// another run and a summary file, as the bridge lays them out.
    fn fixture() -> tempdir::Dir {
        let dir = tempdir::Dir::new("bridge-facts");
        let day = dir.path().join("sim.example.com").join("2026-12-02");
        std::fs::create_dir_all(&day).unwrap();
        let head = r#"{"call_id":"a","tenant":"sim.example.com","caller":null,"callee":null,"rate":16000,"started_at":"2026-12-02T11:00:00.000Z"}"#;
        std::fs::write(
            day.join("call-a.jsonl"),
            [
                head,
                r#"{"at_ms":100,"type":"agent_connected"}"#,
                &turn(2800, 200.0, 575.3, 1.2, "smart_turn"),
                &turn(7300, 640.0, 580.0, 2.0, "silence"),
            ]
            .join("\n"),
        )
        .unwrap();
        std::fs::write(
            day.join("call-b.jsonl"),
            format!(
                "{head}\n{}\n{{\"at_ms\":9",
                turn(2900, 230.0, 590.0, 0.5, "smart_turn")
            ),
        )
        .unwrap();
        std::fs::write(day.join("call-b.json"), "{}").unwrap();
        let old = dir.path().join("sim.example.com").join("2026-12-01");
        std::fs::create_dir_all(&old).unwrap();
        std::fs::write(
            old.join("call-old.jsonl"),
            turn(1, 9999.0, 9999.0, 0.0, "x"),
        )
        .unwrap();
        dir
    }

    /// What the caller heard: (first answer audio at, end of speech → it).
    fn report(id: &str, heard: &[(f64, f64)]) -> CallReport {
        let mut turns: Vec<TurnReport> = heard
            .iter()
            .map(|&(at, response)| TurnReport {
                first_audio_ms: Some(at),
                response_ms: Some(response),
                ..TurnReport::default()
            })
            .collect();
        turns.push(TurnReport::default()); // spoken, not answered before the hang-up
        CallReport {
            call_uuid: id.into(),
            turns,
            ..CallReport::default()
        }
    }

    #[test]
    fn reads_the_run_s_turns_and_figures_the_overhead() {
        let dir = fixture();
        let reports = [
            // The second answer of call-a: its first frame is 2 s off, so not that turn's.
            report("call-a", &[(2810.0, 780.0), (9300.0, 700.0)]),
            report("call-b", &[(2905.0, 812.0)]),
            report("call-missing", &[(1000.0, 1.0)]),
        ];
        let t = read_bridge_turns(dir.path(), &reports, 570);
        assert_eq!((t.calls, t.turns, t.unreadable), (2, 3, 1));
        let d = &t.decision_ms;
        assert_eq!((d.count, d.p50, d.max), (3, Some(230.0), Some(640.0)));
        let f = &t.decided_to_first_frame_ms;
        assert_eq!(
            (f.min, f.p50, f.p99),
            (Some(576.5), Some(582.0), Some(590.5))
        );
        let o = &t.pipeline_overhead_ms;
        assert_eq!(
            (o.count, o.min, o.p50, o.p95, o.max),
            (3, Some(6.5), Some(12.0), Some(20.5), Some(20.5))
        );
        // 780 − 200 − 570 and 812 − 230 − 570.
        let r = &t.response_beyond_decision_ms;
        assert_eq!((t.paired, r.min, r.max), (2, Some(10.0), Some(12.0)));
        assert_eq!(t.ended_by.get("smart_turn"), Some(&2));
        assert_eq!(t.ended_by.get("silence"), Some(&1));
        let json = serde_json::to_value(&t).unwrap();
        assert_eq!(json["pipeline_overhead_ms"]["p99"], 20.5);
        assert_eq!(json["response_beyond_decision_ms"]["p99"], 12.0);
        assert_eq!(json["subtracted_ms"], 570);
    }

    #[test]
    fn provider_turns_have_no_decision_and_a_missing_folder_is_empty() {
        let dir = tempdir::Dir::new("bridge-facts-provider");
        let day = dir.path().join("t").join("d");
        std::fs::create_dir_all(&day).unwrap();
        std::fs::write(
            day.join("c.jsonl"),
            r#"{"at_ms":1,"type":"turn","turn":1,"decision_ms":null,"provider_ms":302.0,"playout_ms":1.0,"smart_turn":null,"ended_by":"provider"}"#,
        )
        .unwrap();
        let reports = [report("c", &[(1.0, 805.0)])];
        let t = read_bridge_turns(dir.path(), &reports, 300);
        assert_eq!((t.turns, t.decision_ms.count, t.paired), (1, 0, 0));
        assert_eq!(t.pipeline_overhead_ms.p50, Some(3.0));
        let none = read_bridge_turns(&dir.path().join("absent"), &reports, 0);
        assert_eq!((none.calls, none.turns), (0, 0));
    }
}

#[cfg(test)]
/// A temporary folder, removed when dropped.
pub(super) mod tempdir {
    use std::path::{Path, PathBuf};

    pub struct Dir(PathBuf);

    impl Dir {
        pub fn new(name: &str) -> Self {
            let path = std::env::temp_dir().join(format!(
                "voice-sim-{name}-{}",
                uuid::Uuid::new_v4().simple()
            ));
            std::fs::create_dir_all(&path).unwrap();
            Self(path)
        }

        pub fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}
