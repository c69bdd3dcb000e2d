//! Leader election on a `coordination.k8s.io/v1` Lease, as client-go's
//! leaderelection package does it: the holder renews every retry period; a
//! candidate takes the Lease once it has seen no renewal for a whole lease
//! duration, timed by its own clock (never by comparing clocks across
//! machines); and a holder that could not renew within its renew deadline
//! stops leading, which is before anyone else may take over (the deadline
//! is shorter than the duration).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client};

use crate::lock;

/// controller-runtime's defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    pub lease_duration: Duration,
    pub renew_deadline: Duration,
    pub retry_period: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

/// What one attempt does with the Lease as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// No Lease yet: create it, held by us.
    Create,
    /// Ours: renew it.
    Renew,
    /// Someone else's and still fresh: wait.
    Wait { holder: String },
    /// Someone else's and expired (or released): take it over.
    Take,
}

/// Decides from the Lease and how long ago its record last changed, as
/// this process saw it.
pub fn decide(
    lease: Option<&LeaseSpec>,
    me: &str,
    unchanged_for: Duration,
    default_duration: Duration,
) -> Decision {
    let Some(spec) = lease else {
        return Decision::Create;
    };
    let holder = spec.holder_identity.as_deref().unwrap_or_default();
    if holder == me {
        return Decision::Renew;
    }
    let duration = spec
        .lease_duration_seconds
        .and_then(|s| u64::try_from(s).ok())
        .map_or(default_duration, Duration::from_secs);
    if holder.is_empty() || unchanged_for >= duration {
        Decision::Take
    } else {
        Decision::Wait {
            holder: holder.to_string(),
        }
    }
}

/// The record last seen (holder and renew time) and when it was first seen so.
struct Seen {
    record: (Option<String>, Option<MicroTime>),
    since: Instant,
}

pub struct Elector {
    api: Api<Lease>,
    name: String,
    identity: String,
    timing: Timing,
    seen: Mutex<Option<Seen>>,
}

fn now() -> MicroTime {
    MicroTime(jiff::Timestamp::now())
}

fn conflict(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 409 || s.code == 404)
}

impl Elector {
    pub fn new(
        client: Client,
        namespace: &str,
        name: &str,
        identity: &str,
        timing: Timing,
    ) -> Elector {
        Elector {
            api: Api::namespaced(client, namespace),
            name: name.to_string(),
            identity: identity.to_string(),
            timing,
            seen: Mutex::default(),
        }
    }

    pub fn identity(&self) -> &str {
        &self.identity
    }

    fn spec(&self, transitions: i32, acquired: Option<MicroTime>) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(self.identity.clone()),
            lease_duration_seconds: i32::try_from(self.timing.lease_duration.as_secs()).ok(),
            acquire_time: acquired.or_else(|| Some(now())),
            renew_time: Some(now()),
            lease_transitions: Some(transitions),
            ..Default::default()
        }
    }

    /// How long the Lease's record has looked as it does now.
    fn unchanged_for(&self, lease: &Lease) -> Duration {
        let spec = lease.spec.clone().unwrap_or_default();
        let record = (spec.holder_identity, spec.renew_time);
        let mut seen = lock(&self.seen);
        match seen.as_ref() {
            Some(s) if s.record == record => s.since.elapsed(),
            _ => {
                *seen = Some(Seen {
                    record,
                    since: Instant::now(),
                });
                Duration::ZERO
            }
        }
    }

    /// Looks at the Lease without acting, so that when this process does
    /// try for it, its holder's silence has been timed from now on.
    pub async fn observe(&self) -> Result<(), kube::Error> {
        if let Some(lease) = self.api.get_opt(&self.name).await? {
            self.unchanged_for(&lease);
        }
        Ok(())
    }

    /// One attempt to hold the Lease: whether this process holds it now.
    pub async fn try_once(&self) -> Result<bool, kube::Error> {
        let current = self.api.get_opt(&self.name).await?;
        let unchanged_for = current
            .as_ref()
            .map_or(Duration::ZERO, |l| self.unchanged_for(l));
        let decision = decide(
            current.as_ref().and_then(|l| l.spec.as_ref()),
            &self.identity,
            unchanged_for,
            self.timing.lease_duration,
        );
        let result = match (decision, current) {
            (Decision::Create, _) => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(self.name.clone()),
                        ..Default::default()
                    },
                    spec: Some(self.spec(0, None)),
                };
                self.api.create(&PostParams::default(), &lease).await
            }
            (Decision::Wait { .. }, _) => return Ok(false),
            (Decision::Renew, Some(mut lease)) => {
                let old = lease.spec.clone().unwrap_or_default();
                lease.spec = Some(self.spec(old.lease_transitions.unwrap_or(0), old.acquire_time));
                // The resourceVersion it was read at: a write in between
                // (someone else's takeover) makes this a conflict.
                self.api
                    .replace(&self.name, &PostParams::default(), &lease)
                    .await
            }
            (Decision::Take, Some(mut lease)) => {
                let old = lease.spec.clone().unwrap_or_default();
                lease.spec = Some(self.spec(old.lease_transitions.unwrap_or(0) + 1, None));
                self.api
                    .replace(&self.name, &PostParams::default(), &lease)
                    .await
            }
            (Decision::Renew | Decision::Take, None) => return Ok(false),
        };
        match result {
            Ok(_) => Ok(true),
            Err(e) if conflict(&e) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Returns once this process holds the Lease. A candidate looks four
    /// times per retry period: it times the Lease from when it saw the
    /// last renewal, so looking more often brings a takeover closer to one
    /// lease duration after the leader's last renewal.
    pub async fn acquire(&self) {
        let every = (self.timing.retry_period / 4).max(Duration::from_millis(100));
        loop {
            match self.try_once().await {
                Ok(true) => return,
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(lease = %self.name, error = %e, "cannot read or write the leader Lease")
                }
            }
            tokio::time::sleep(every).await;
        }
    }

    /// Renews the Lease every retry period; returns when it could not be
    /// renewed within the renew deadline, or someone else holds it.
    pub async fn keep(&self) {
        let mut renewed = Instant::now();
        loop {
            tokio::time::sleep(self.timing.retry_period).await;
            let attempt = tokio::time::timeout(self.timing.retry_period, self.try_once()).await;
            match attempt {
                Ok(Ok(true)) => renewed = Instant::now(),
                Ok(Ok(false)) => {
                    tracing::warn!(lease = %self.name, "the leader Lease is held by someone else now");
                    return;
                }
                Ok(Err(e)) => {
                    tracing::warn!(lease = %self.name, error = %e, "cannot renew the leader Lease")
                }
                Err(_) => tracing::warn!(lease = %self.name, "renewing the leader Lease timed out"),
            }
            if renewed.elapsed() >= self.timing.renew_deadline {
                tracing::error!(lease = %self.name, deadline = ?self.timing.renew_deadline, "the leader Lease was not renewed within its deadline");
                return;
            }
        }
    }

    /// Gives the Lease up, so another can take it at once rather than
    /// after a lease duration.
    pub async fn release(&self) {
        if let Ok(Some(mut lease)) = self.api.get_opt(&self.name).await {
            let mine = lease
                .spec
                .as_ref()
                .and_then(|s| s.holder_identity.as_deref())
                == Some(self.identity.as_str());
            if mine {
                if let Some(spec) = lease.spec.as_mut() {
                    spec.holder_identity = None;
                    spec.renew_time = Some(now());
                }
                let _ = self
                    .api
                    .replace(&self.name, &PostParams::default(), &lease)
                    .await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held_by(holder: &str, seconds: Option<i32>) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(holder.into()),
            lease_duration_seconds: seconds,
            ..Default::default()
        }
    }

    #[test]
    fn deciding_what_to_do_with_the_lease() {
        let d = Duration::from_secs(15);
        let cases = [
            (
                "no Lease: create it",
                None,
                Duration::ZERO,
                Decision::Create,
            ),
            (
                "ours: renew it",
                Some(held_by("me", Some(15))),
                Duration::from_secs(60),
                Decision::Renew,
            ),
            (
                "someone else's, renewed lately: wait",
                Some(held_by("other", Some(15))),
                Duration::from_secs(3),
                Decision::Wait {
                    holder: "other".into(),
                },
            ),
            (
                "someone else's, unchanged for its whole duration: take it",
                Some(held_by("other", Some(15))),
                Duration::from_secs(15),
                Decision::Take,
            ),
            (
                "the Lease's own duration counts, not ours",
                Some(held_by("other", Some(60))),
                Duration::from_secs(20),
                Decision::Wait {
                    holder: "other".into(),
                },
            ),
            (
                "a Lease without a duration uses ours",
                Some(held_by("other", None)),
                Duration::from_secs(16),
                Decision::Take,
            ),
            (
                "released (no holder): take it at once",
                Some(LeaseSpec::default()),
                Duration::ZERO,
                Decision::Take,
            ),
        ];
        for (reason, lease, unchanged, want) in cases {
            assert_eq!(decide(lease.as_ref(), "me", unchanged, d), want, "{reason}");
        }
    }

    #[test]
    fn the_renew_deadline_comes_before_the_lease_runs_out() {
        let t = Timing::default();
        assert!(t.renew_deadline < t.lease_duration);
        assert!(t.retry_period < t.renew_deadline);
    }
}
