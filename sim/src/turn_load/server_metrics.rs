//! The turn-api's own view of its overhead: the `turn_api_overhead_seconds` histogram of
//! `/metrics` (a turn's time outside the engine: HTTP, session store, WAV read and write).

use serde::Serialize;

use super::stats::round1;

const NAME: &str = "turn_api_overhead_seconds";

/// The histogram's totals and the share of turns at or under some bucket bounds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServerOverhead {
    pub turns: u64,
    pub mean_ms: f64,
    /// Percent of turns whose overhead was ≤ 1, 5, 10 and 25 ms.
    pub le_1ms_pct: f64,
    pub le_5ms_pct: f64,
    pub le_10ms_pct: f64,
    pub le_25ms_pct: f64,
}

/// Reads the histogram from a Prometheus text exposition; `None` without it.
pub fn parse(text: &str) -> Option<ServerOverhead> {
    let mut buckets = Vec::new();
    let (mut sum, mut count) = (None, None);
    for line in text.lines() {
        let Some(rest) = line.strip_prefix(NAME) else {
            continue;
        };
        let value = rest.rsplit(' ').next()?.parse::<f64>().ok();
        if let Some(labels) = rest.strip_prefix("_bucket{le=\"") {
            let le = labels.split('"').next()?;
            if let (Ok(le), Some(v)) = (le.parse::<f64>(), value) {
                buckets.push((le, v));
            }
        } else if rest.starts_with("_sum ") {
            sum = value;
        } else if rest.starts_with("_count ") {
            count = value;
        }
    }
    let count = count?;
    let share = |bound: f64| {
        let at = buckets
            .iter()
            .filter(|(le, _)| *le <= bound + 1e-12)
            .map(|(_, v)| *v)
            .fold(0.0, f64::max);
        if count > 0.0 {
            round1(at * 100.0 / count)
        } else {
            0.0
        }
    };
    Some(ServerOverhead {
        turns: count as u64,
        mean_ms: if count > 0.0 {
            round1(sum.unwrap_or(0.0) * 1000.0 / count)
        } else {
            0.0
        },
        le_1ms_pct: share(0.001),
        le_5ms_pct: share(0.005),
        le_10ms_pct: share(0.01),
        le_25ms_pct: share(0.025),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_overhead_histogram_is_read_from_the_exposition() {
        let text = "# HELP turn_api_overhead_seconds x\n\
            turn_api_turn_seconds_bucket{le=\"0.001\"} 9\n\
            turn_api_overhead_seconds_bucket{le=\"0.001\"} 10\n\
            turn_api_overhead_seconds_bucket{le=\"0.005\"} 150\n\
            turn_api_overhead_seconds_bucket{le=\"0.01\"} 198\n\
            turn_api_overhead_seconds_bucket{le=\"0.025\"} 200\n\
            turn_api_overhead_seconds_bucket{le=\"+Inf\"} 200\n\
            turn_api_overhead_seconds_sum 0.6\n\
            turn_api_overhead_seconds_count 200\n";
        let o = parse(text).unwrap();
        assert_eq!(o.turns, 200);
        assert_eq!(o.mean_ms, 3.0);
        assert_eq!((o.le_1ms_pct, o.le_5ms_pct), (5.0, 75.0));
        assert_eq!((o.le_10ms_pct, o.le_25ms_pct), (99.0, 100.0));
        assert!(parse("turn_api_requests_total 3\n").is_none());
    }
}
