//! Percentiles of a run's figures, in milliseconds.

use serde::Serialize;

/// p50/p95/p99/max of some milliseconds (nearest rank), rounded to 0.1 ms.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Spread {
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
}

impl Spread {
    /// `None` without values.
    pub fn of(values: &[f64]) -> Option<Self> {
        if values.is_empty() {
            return None;
        }
        let mut v = values.to_vec();
        v.sort_by(f64::total_cmp);
        let rank = |q: f64| {
            let i = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1;
            round1(v[i])
        };
        Some(Self {
            p50: rank(0.50),
            p95: rank(0.95),
            p99: rank(0.99),
            max: round1(v[v.len() - 1]),
        })
    }
}

pub fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        let s = Spread::of(&v).unwrap();
        assert_eq!((s.p50, s.p95, s.p99, s.max), (50.0, 95.0, 99.0, 100.0));
        let s = Spread::of(&[7.25]).unwrap();
        assert_eq!((s.p50, s.p99, s.max), (7.3, 7.3, 7.3));
        assert!(Spread::of(&[]).is_none());
    }
}
