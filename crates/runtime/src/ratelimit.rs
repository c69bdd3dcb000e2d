//! A global rate limit on reconciles, and per-object exponential backoff.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::lock;

/// Spaces turns evenly at no more than `per_second`.
pub struct RateLimiter {
    interval: Duration,
    next: Mutex<Instant>,
}

impl RateLimiter {
    pub fn new(per_second: u32) -> RateLimiter {
        RateLimiter {
            interval: Duration::from_secs(1) / per_second.max(1),
            next: Mutex::new(Instant::now()),
        }
    }

    /// Takes a turn if one is free now (`None`), or says when the next one is.
    pub fn try_acquire(&self) -> Option<Instant> {
        let mut next = lock(&self.next);
        let now = Instant::now();
        if *next <= now {
            *next = now + self.interval;
            None
        } else {
            Some(*next)
        }
    }

    /// Waits for this caller's turn.
    pub async fn acquire(&self) {
        while let Some(at) = self.try_acquire() {
            tokio::time::sleep_until(at).await;
        }
    }
}

/// Doubling delays between retries of one object.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub first: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            first: Duration::from_secs(1),
            max: Duration::from_secs(60),
        }
    }
}

impl Backoff {
    /// The delay before retry number `failures` (1-based).
    pub fn delay(&self, failures: u32) -> Duration {
        let exp = failures.saturating_sub(1).min(16);
        self.first.saturating_mul(1 << exp).min(self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_its_cap() {
        let b = Backoff::default();
        assert_eq!(b.delay(1), Duration::from_secs(1));
        assert_eq!(b.delay(2), Duration::from_secs(2));
        assert_eq!(b.delay(6), Duration::from_secs(32));
        assert_eq!(b.delay(7), Duration::from_secs(60));
        assert_eq!(b.delay(100), Duration::from_secs(60));
    }

    #[tokio::test(start_paused = true)]
    async fn limiter_spaces_callers() {
        let limiter = RateLimiter::new(100);
        let start = Instant::now();
        for _ in 0..11 {
            limiter.acquire().await;
        }
        assert_eq!(start.elapsed(), Duration::from_millis(100));
    }
}
