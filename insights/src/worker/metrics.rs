//! Prometheus metrics of the pipeline: jobs by outcome and each stage's duration.

use voice_core::telemetry::metrics::{Counter, Exposition, Histogram};

use super::stage::Stage;

/// Stage durations in seconds: downloads and LLM calls take seconds to minutes.
const STAGE_BUCKETS: &[f64] = &[
    0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];

pub struct PipelineMetrics {
    /// Jobs finished (the call processed, or nothing left to do).
    pub jobs_processed: Counter,
    /// Attempts that failed and were scheduled again.
    pub jobs_retried: Counter,
    /// Jobs given up (dead-lettered): the call is marked failed.
    pub jobs_failed: Counter,
    /// Calls not processed for want of consent.
    pub skipped_no_consent: Counter,
    stages: [Histogram; 5],
}

impl Default for PipelineMetrics {
    fn default() -> Self {
        Self {
            jobs_processed: Counter::default(),
            jobs_retried: Counter::default(),
            jobs_failed: Counter::default(),
            skipped_no_consent: Counter::default(),
            stages: std::array::from_fn(|_| Histogram::new(STAGE_BUCKETS)),
        }
    }
}

impl PipelineMetrics {
    pub fn observe(&self, stage: Stage, seconds: f64) {
        self.stage(stage).observe(seconds);
    }

    pub fn stage(&self, stage: Stage) -> &Histogram {
        let i = Stage::ALL.iter().position(|s| *s == stage).unwrap_or(0);
        &self.stages[i]
    }

    pub fn render(&self) -> String {
        let mut e = Exposition::default();
        e.counter(
            "insights_jobs_processed_total",
            "Pipeline jobs finished",
            &self.jobs_processed,
        );
        e.counter(
            "insights_jobs_retried_total",
            "Pipeline attempts that failed and were scheduled again",
            &self.jobs_retried,
        );
        e.counter(
            "insights_jobs_failed_total",
            "Pipeline jobs given up (dead-lettered)",
            &self.jobs_failed,
        );
        e.counter(
            "insights_calls_skipped_no_consent_total",
            "Calls not processed for want of consent",
            &self.skipped_no_consent,
        );
        for stage in Stage::ALL {
            e.histogram(
                &format!("insights_stage_{}_seconds", stage.key()),
                &format!("Duration of the {} stage", stage.key()),
                self.stage(stage),
            );
        }
        e.finish()
    }
}
