//! The migration's throttle (issue 5, point 8): the copy slows down when live traffic gets slow.
//!
//! A [`LatencyWindow`] holds the latencies of live calls over the last seconds: inside `jembatan
//! serve` the API records every storefront request in it (`/v1` and `/social/v1`, not `/v1/ops`);
//! a `migrate run` started from the command line, with no requests of its own to watch, probes
//! the live read path (the shop's owner in the core, its change number in the legacy store)
//! after each batch. Before each batch the engine asks the [`Throttle`] to pace it: while the
//! window's p99 is above the target, the batch waits in proportion to how far above it is
//! (bounded), and the waits are counted (`jembatan_migration_throttle_ms_total`).
//! Operators pause and resume a wave for a hard stop.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Latencies of live calls over a sliding span of time.
#[derive(Debug)]
pub struct LatencyWindow {
    span: Duration,
    samples: Mutex<VecDeque<(Instant, Duration)>>,
}

/// Samples kept at most (the oldest go first).
const SAMPLES_MAX: usize = 10_000;
/// Fewer samples than this say nothing about a p99.
const SAMPLES_MIN: usize = 20;

impl LatencyWindow {
    pub fn new(span: Duration) -> LatencyWindow {
        LatencyWindow { span, samples: Mutex::new(VecDeque::new()) }
    }

    pub fn record(&self, latency: Duration) {
        let now = Instant::now();
        let mut samples = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        samples.push_back((now, latency));
        while samples.len() > SAMPLES_MAX || samples.front().is_some_and(|(at, _)| now - *at > self.span) {
            samples.pop_front();
        }
    }

    /// The p99 of the window, if it holds enough recent samples.
    pub fn p99(&self) -> Option<Duration> {
        let now = Instant::now();
        let samples = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        let mut recent: Vec<Duration> =
            samples.iter().filter(|(at, _)| now - *at <= self.span).map(|(_, l)| *l).collect();
        if recent.len() < SAMPLES_MIN {
            return None;
        }
        recent.sort_unstable();
        let index = ((recent.len() as f64 * 0.99).ceil() as usize).clamp(1, recent.len()) - 1;
        Some(recent[index])
    }
}

/// Paces the engine's batches by the live p99.
#[derive(Debug, Clone)]
pub struct Throttle {
    pub window: Arc<LatencyWindow>,
    /// Live p99 above this slows the copy.
    pub target_p99: Duration,
    /// Longest wait before one batch.
    pub max_wait: Duration,
    /// The engine probes the live path itself (no server feeds the window).
    pub probe: bool,
    /// Milliseconds waited so far.
    waited_ms: Arc<std::sync::atomic::AtomicU64>,
}

impl Throttle {
    pub fn new(window: Arc<LatencyWindow>, target_p99: Duration, probe: bool) -> Throttle {
        Throttle { window, target_p99, max_wait: Duration::from_secs(2), probe, waited_ms: Arc::default() }
    }

    /// How long a batch waits now: nothing while the p99 is at or under the target, else four
    /// times the excess, within [10 ms, `max_wait`].
    pub fn wait(&self) -> Duration {
        match self.window.p99() {
            Some(p99) if p99 > self.target_p99 => {
                ((p99 - self.target_p99) * 4).clamp(Duration::from_millis(10), self.max_wait)
            }
            _ => Duration::ZERO,
        }
    }

    /// Milliseconds the copy has waited so far.
    pub fn waited(&self) -> Duration {
        Duration::from_millis(self.waited_ms.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// Waits as long as [`Throttle::wait`] says; returns the wait.
    pub async fn pace(&self) -> Duration {
        let wait = self.wait();
        if !wait.is_zero() {
            metrics::counter!("jembatan_migration_throttle_ms_total").increment(wait.as_millis() as u64);
            self.waited_ms.fetch_add(wait.as_millis() as u64, std::sync::atomic::Ordering::Relaxed);
            tokio::time::sleep(wait).await;
        }
        wait
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_copy_waits_only_while_live_calls_are_slow() {
        let window = Arc::new(LatencyWindow::new(Duration::from_secs(10)));
        let throttle = Throttle::new(window.clone(), Duration::from_millis(50), false);
        assert_eq!(throttle.wait(), Duration::ZERO, "no samples: no opinion");
        for _ in 0..100 {
            window.record(Duration::from_millis(5));
        }
        assert_eq!(throttle.wait(), Duration::ZERO, "fast live calls: full speed");
        for _ in 0..10 {
            window.record(Duration::from_millis(150));
        }
        assert_eq!(window.p99(), Some(Duration::from_millis(150)));
        assert_eq!(throttle.wait(), Duration::from_millis(400), "100 ms over the target: wait 4 × 100 ms");
        for _ in 0..10 {
            window.record(Duration::from_secs(5));
        }
        assert_eq!(throttle.wait(), Duration::from_secs(2), "bounded");
    }

    #[test]
    fn old_samples_leave_the_window() {
        let window = LatencyWindow::new(Duration::from_millis(30));
        for _ in 0..50 {
            window.record(Duration::from_secs(1));
        }
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(window.p99(), None);
    }
}
