//! Medians and percentiles of timings.

use std::time::Duration;

/// Summary of a set of timings.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
pub struct Summary {
    /// How many.
    pub n: usize,
    /// Median, microseconds.
    pub p50_us: f64,
    /// 90th percentile, microseconds.
    pub p90_us: f64,
    /// Smallest, microseconds.
    pub min_us: f64,
}

/// Nearest-rank percentile of sorted samples.
fn rank(sorted: &[Duration], p: f64) -> Duration {
    let i = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[i.clamp(1, sorted.len()) - 1]
}

impl Summary {
    /// Summarises samples (at least one).
    pub fn of(mut samples: Vec<Duration>) -> Self {
        assert!(!samples.is_empty(), "no samples");
        samples.sort();
        let us = |d: Duration| d.as_secs_f64() * 1e6;
        Self {
            n: samples.len(),
            p50_us: us(rank(&samples, 50.0)),
            p90_us: us(rank(&samples, 90.0)),
            min_us: us(samples[0]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let ms = |v: u64| Duration::from_millis(v);
        let s = Summary::of((1..=10).rev().map(ms).collect());
        assert_eq!((s.n, s.p50_us, s.p90_us, s.min_us), (10, 5000.0, 9000.0, 1000.0));
        assert_eq!(Summary::of(vec![ms(7)]).p90_us, 7000.0);
    }
}
