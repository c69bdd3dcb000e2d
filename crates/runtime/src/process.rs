//! What supervising a child process takes, shared by the provider host and
//! the function host: restart delays that double, and a stop that asks
//! first.

use std::time::{Duration, Instant};

use tokio::process::Child;

/// Restart delays that double from `first` to `max`, starting over once a
/// process ran for `stable_after` before it died.
#[derive(Debug, Clone)]
pub struct Backoff {
    first: Duration,
    max: Duration,
    stable_after: Duration,
    attempt: u32,
}

impl Backoff {
    pub fn new(first: Duration, max: Duration, stable_after: Duration) -> Backoff {
        Backoff {
            first,
            max,
            stable_after,
            attempt: 0,
        }
    }

    /// The delay before the next start of a process started at `started`.
    pub fn next(&mut self, started: Instant) -> Duration {
        if started.elapsed() > self.stable_after {
            self.attempt = 0;
        }
        let delay = self
            .first
            .saturating_mul(1u32 << self.attempt.min(16))
            .min(self.max);
        self.attempt += 1;
        delay
    }
}

/// Sends `signal` to the child, and to its whole process group when it
/// leads one (started with `process_group(0)`), so what a wrapper script
/// started goes with it.
fn signal(what: &str, child: &Child, signal: rustix::process::Signal) {
    let Some(pid) = child
        .id()
        .and_then(|id| i32::try_from(id).ok())
        .and_then(rustix::process::Pid::from_raw)
    else {
        return;
    };
    let leads_group = rustix::process::getpgid(Some(pid)).is_ok_and(|group| group == pid);
    let sent = if leads_group {
        rustix::process::kill_process_group(pid, signal)
    } else {
        rustix::process::kill_process(pid, signal)
    };
    if let Err(e) = sent {
        tracing::debug!(process = %what, error = %e, ?signal, "cannot signal the process");
    }
}

/// SIGTERM, so the process can clean up; SIGKILL if it has not exited
/// within `grace`. A child leading its own process group is stopped with
/// its group.
pub async fn terminate(what: &str, child: &mut Child, grace: Duration) {
    signal(what, child, rustix::process::Signal::TERM);
    if tokio::time::timeout(grace, child.wait()).await.is_err() {
        tracing::warn!(process = %what, "ignored SIGTERM; killing it");
        signal(what, child, rustix::process::Signal::KILL);
        let _ = child.kill().await;
    }
}

/// SIGKILL to the child and, when it leads one, its process group: for a
/// child that stopped answering.
pub fn kill(what: &str, child: &mut Child) {
    signal(what, child, rustix::process::Signal::KILL);
    let _ = child.start_kill();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_maximum_and_start_over_after_a_stable_run() {
        let mut b = Backoff::new(
            Duration::from_millis(100),
            Duration::from_millis(350),
            Duration::from_secs(60),
        );
        let now = Instant::now();
        let got: Vec<u128> = (0..4).map(|_| b.next(now).as_millis()).collect();
        assert_eq!(got, [100, 200, 350, 350], "doubling, capped");
        if let Some(long_ago) = Instant::now().checked_sub(Duration::from_secs(61)) {
            assert_eq!(
                b.next(long_ago),
                Duration::from_millis(100),
                "a stable run resets"
            );
        }
    }
}
