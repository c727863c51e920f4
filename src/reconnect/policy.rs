//! [`ReconnectPolicy`]: when a [`Reconnecting`](crate::Reconnecting) handle tries to connect
//! again — exponential back-off with jitter, a cap, and a limit on attempts.
//!
//! It only computes delays and counts; it must never sleep, connect or read a clock itself.

use std::{
    hash::{BuildHasher, Hasher},
    time::Duration,
};

/// When a [`Reconnecting`](crate::Reconnecting) handle tries to connect again.
///
/// Before the `n`-th attempt of an outage (`n` counting from 1) it waits
/// `min(initial × 2ⁿ⁻¹, cap)`, shortened by a random part of up to `jitter` of it (so that
/// many clients of one restarted server do not all come back at the same instant). The first
/// connection is attempted at once; the wait applies before every later attempt, the first
/// reconnection attempt after a loss included. After `max_attempts` failed attempts in a row
/// the handle gives up ([`ConnectionEvent::GaveUp`](crate::ConnectionEvent::GaveUp)).
///
/// Each attempt is bounded by the connect timeout ([`Connect::timeout`](crate::Connect::timeout)).
///
/// ```
/// use std::time::Duration;
/// use netref::ReconnectPolicy;
///
/// // 50 ms, 100 ms, 200 ms … up to 2 s between attempts, each up to 20 % shorter, 10 attempts.
/// let policy = ReconnectPolicy::exponential(Duration::from_millis(50), Duration::from_secs(2))
///     .jitter(0.2)
///     .max_attempts(Some(10));
/// # let _ = policy;
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct ReconnectPolicy {
    initial: Duration,
    cap: Duration,
    jitter: f64,
    max_attempts: Option<u32>,
}

impl Default for ReconnectPolicy {
    /// 100 ms doubling up to 10 s, jitter 0.5 (each wait between half and all of its step),
    /// attempts without limit.
    fn default() -> Self {
        ReconnectPolicy {
            initial: Duration::from_millis(100),
            cap: Duration::from_secs(10),
            jitter: 0.5,
            max_attempts: None,
        }
    }
}

impl ReconnectPolicy {
    /// Waits `initial` before the first reconnection attempt, doubling each time up to `cap`
    /// (raised to `initial` if smaller); the default jitter (0.5) and no attempt limit.
    pub fn exponential(initial: Duration, cap: Duration) -> Self {
        ReconnectPolicy { initial, cap: cap.max(initial), ..ReconnectPolicy::default() }
    }

    /// Connects once and never reconnects: the first loss gives up at once (the handle's
    /// netrefs then fail as a plain [`Peer`](crate::Peer)'s would, and the events stream says
    /// so).
    pub fn never() -> Self {
        ReconnectPolicy { max_attempts: Some(0), ..ReconnectPolicy::default() }
    }

    /// The random part of each wait, as a fraction of it (clamped to `0.0..=1.0`): each wait
    /// is between `(1 − jitter)` and all of its step. `0.0` waits exactly the step.
    pub fn jitter(mut self, fraction: f64) -> Self {
        self.jitter = if fraction.is_nan() { 0.0 } else { fraction.clamp(0.0, 1.0) };
        self
    }

    /// How many attempts in a row may fail before the handle gives up; `None` (the default)
    /// tries for ever. The count starts again after every successful connection. `Some(0)`
    /// is [`never`](ReconnectPolicy::never): no reconnection at all (the first connection
    /// still gets its one attempt).
    pub fn max_attempts(mut self, attempts: Option<u32>) -> Self {
        self.max_attempts = attempts;
        self
    }

    /// The attempt limit (see [`max_attempts`](ReconnectPolicy::max_attempts)).
    pub fn attempt_limit(&self) -> Option<u32> {
        self.max_attempts
    }

    /// Whether another attempt may follow `failed` failed attempts in a row (the first
    /// connection always gets one attempt).
    pub(crate) fn may_retry(&self, failed: u32) -> bool {
        self.max_attempts.is_none_or(|max| failed < max)
    }

    /// The step before attempt `n` (from 1) of an outage, without jitter:
    /// `min(initial × 2ⁿ⁻¹, cap)`.
    pub(crate) fn step(&self, n: u32) -> Duration {
        let doublings = n.saturating_sub(1).min(32);
        self.initial.saturating_mul(1u32 << doublings.min(31)).min(self.cap)
    }

    /// The wait before attempt `n` (from 1) of an outage: the step shortened by a random part
    /// of up to `jitter` of it.
    pub(crate) fn delay(&self, n: u32) -> Duration {
        let step = self.step(n);
        step.mul_f64(1.0 - self.jitter * random_fraction())
    }
}

/// A fraction in `0.0..1.0`, random enough to spread clients' retries (not for cryptography):
/// std's per-process random hash keys over a counter, so no dependency is needed for it.
fn random_fraction() -> f64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_double_from_initial_up_to_the_cap() {
        let p = ReconnectPolicy::exponential(Duration::from_millis(100), Duration::from_millis(700));
        let steps: Vec<u128> = (1..=6).map(|n| p.step(n).as_millis()).collect();
        assert_eq!(steps, [100, 200, 400, 700, 700, 700]);
        assert_eq!(p.step(u32::MAX), Duration::from_millis(700), "no overflow for huge attempt numbers");
    }

    #[test]
    fn jitter_shortens_each_wait_by_at_most_its_fraction() {
        let p = ReconnectPolicy::exponential(Duration::from_millis(1000), Duration::from_secs(10)).jitter(0.25);
        let delays: Vec<Duration> = (0..200).map(|_| p.delay(1)).collect();
        assert!(delays.iter().all(|d| *d >= Duration::from_millis(750) && *d <= Duration::from_millis(1000)));
        assert!(delays.iter().any(|d| *d != delays[0]), "the waits vary");
        let exact = p.clone().jitter(0.0);
        assert_eq!(exact.delay(3), Duration::from_millis(4000));
        assert_eq!(p.clone().jitter(f64::NAN).delay(1), Duration::from_millis(1000));
        assert_eq!(p.jitter(7.0).jitter, 1.0);
    }

    #[test]
    fn attempts_are_limited_as_set() {
        let p = ReconnectPolicy::default().max_attempts(Some(3));
        assert!(p.may_retry(0) && p.may_retry(2));
        assert!(!p.may_retry(3));
        assert!(!ReconnectPolicy::never().may_retry(0));
        assert!(ReconnectPolicy::default().may_retry(u32::MAX - 1));
    }
}
