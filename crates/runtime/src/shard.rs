//! Sharding across replicas, as KubeVela spreads one installation's work:
//! objects are divided among N shards by a stable hash of their UID; each
//! shard has a Lease; every replica competes for every shard's Lease and
//! holds at most ⌈N / live replicas⌉ of them, so the work spreads out and
//! moves to the survivors when a replica dies. A replica reconciles only
//! the objects of the shards it holds.

use std::collections::BTreeSet;
use std::sync::{Arc, RwLock};

use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{ListParams, ObjectMeta, PostParams};
use kube::{Api, Client};
use tokio::sync::watch;

use crate::lease::{Elector, Timing};

/// The shard of an object: FNV-1a of its UID, modulo the shard count. A
/// hash of our own because it must never change between versions or
/// builds (std's hasher is randomly keyed).
pub fn shard_of(uid: &str, shards: u32) -> u32 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in uid.as_bytes() {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (hash % u64::from(shards.max(1))) as u32
}

/// Which shards this process holds; controllers ask it per object.
#[derive(Debug)]
pub struct Ownership {
    shards: u32,
    held: RwLock<BTreeSet<u32>>,
    changed: watch::Sender<u64>,
}

impl Ownership {
    /// Everything: one shard, always held (no sharding).
    pub fn all() -> Arc<Ownership> {
        let o = Ownership::new(1);
        o.set([0].into());
        o
    }

    pub fn new(shards: u32) -> Arc<Ownership> {
        Arc::new(Ownership {
            shards: shards.max(1),
            held: RwLock::default(),
            changed: watch::channel(0).0,
        })
    }

    pub fn shards(&self) -> u32 {
        self.shards
    }

    pub fn owns(&self, uid: &str) -> bool {
        let shard = shard_of(uid, self.shards);
        self.held
            .read()
            .map(|h| h.contains(&shard))
            .unwrap_or(false)
    }

    pub fn held(&self) -> BTreeSet<u32> {
        self.held.read().map(|h| h.clone()).unwrap_or_default()
    }

    fn set(&self, held: BTreeSet<u32>) {
        let changed = match self.held.write() {
            Ok(mut h) if *h != held => {
                *h = held;
                true
            }
            _ => false,
        };
        if changed {
            self.changed.send_modify(|n| *n += 1);
        }
    }

    /// Told each time the held shards change.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }
}

/// `live` replicas share `shards`: the most one may hold.
pub fn fair_share(shards: u32, live: u32) -> u32 {
    shards.div_ceil(live.max(1))
}

/// Keeps this replica's shard Leases: renews those it holds, takes free or
/// expired ones up to its fair share, and gives back what is beyond it.
pub struct Manager {
    client: Client,
    namespace: String,
    name: String,
    identity: String,
    timing: Timing,
    ownership: Arc<Ownership>,
}

/// The label on every replica's membership Lease, naming the installation.
const MEMBER_LABEL: &str = "plinth.dev/shard-member-of";

impl Manager {
    pub fn new(
        client: Client,
        namespace: &str,
        name: &str,
        identity: &str,
        timing: Timing,
        ownership: Arc<Ownership>,
    ) -> Manager {
        Manager {
            client,
            namespace: namespace.to_string(),
            name: name.to_string(),
            identity: identity.to_string(),
            timing,
            ownership,
        }
    }

    fn shard_lease(&self, shard: u32) -> String {
        format!("{}-shard-{shard}", self.name)
    }

    /// This replica's membership Lease, renewed as a heartbeat so the
    /// others can count the live replicas.
    async fn heartbeat(&self, member: &Api<Lease>) -> Result<(), kube::Error> {
        let name = format!("{}-member-{}", self.name, self.identity);
        let spec = k8s_openapi::api::coordination::v1::LeaseSpec {
            holder_identity: Some(self.identity.clone()),
            lease_duration_seconds: i32::try_from(self.timing.lease_duration.as_secs()).ok(),
            renew_time: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime(
                jiff::Timestamp::now(),
            )),
            ..Default::default()
        };
        match member.get_opt(&name).await? {
            Some(mut lease) => {
                lease.spec = Some(spec);
                member
                    .replace(&name, &PostParams::default(), &lease)
                    .await?;
            }
            None => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(name.clone()),
                        labels: Some([(MEMBER_LABEL.to_string(), self.name.clone())].into()),
                        ..Default::default()
                    },
                    spec: Some(spec),
                };
                member.create(&PostParams::default(), &lease).await?;
            }
        }
        Ok(())
    }

    /// Runs until the task is aborted.
    pub async fn run(self) {
        let shards = self.ownership.shards();
        let leases: Api<Lease> = Api::namespaced(self.client.clone(), &self.namespace);
        let electors: Vec<Elector> = (0..shards)
            .map(|i| {
                Elector::new(
                    self.client.clone(),
                    &self.namespace,
                    &self.shard_lease(i),
                    &self.identity,
                    self.timing,
                )
            })
            .collect();
        // Each member Lease's record as last seen, and when it changed.
        let mut members: std::collections::HashMap<String, (Option<String>, std::time::Instant)> =
            Default::default();
        let mut held: BTreeSet<u32> = BTreeSet::new();
        let mut renewed: std::collections::HashMap<u32, std::time::Instant> = Default::default();
        loop {
            if let Err(e) = self.heartbeat(&leases).await {
                tracing::warn!(error = %e, "cannot renew this replica's membership Lease");
            }
            let live = match leases
                .list(&ListParams::default().labels(&format!("{MEMBER_LABEL}={}", self.name)))
                .await
            {
                Ok(list) => {
                    let now = std::time::Instant::now();
                    let mut live = 0;
                    for lease in list.items {
                        let name = lease.metadata.name.clone().unwrap_or_default();
                        let record = lease
                            .spec
                            .as_ref()
                            .and_then(|s| s.renew_time.as_ref())
                            .map(|t| t.0.to_string());
                        let entry = members.entry(name).or_insert((record.clone(), now));
                        if entry.0 != record {
                            *entry = (record, now);
                        }
                        if now.duration_since(entry.1) < self.timing.lease_duration {
                            live += 1;
                        }
                    }
                    live.max(1)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot list the replicas' membership Leases");
                    1
                }
            };
            let share = fair_share(shards, live) as usize;
            for shard in held.clone() {
                let i = shard as usize;
                match electors[i].try_once().await {
                    Ok(true) => {
                        renewed.insert(shard, std::time::Instant::now());
                    }
                    Ok(false) => {
                        tracing::warn!(shard, "another replica holds this shard now");
                        held.remove(&shard);
                    }
                    Err(e) => {
                        tracing::warn!(shard, error = %e, "cannot renew the shard's Lease");
                        let last = renewed.get(&shard).copied();
                        if last.is_none_or(|t| t.elapsed() >= self.timing.renew_deadline) {
                            // Stop reconciling before anyone else may take it.
                            held.remove(&shard);
                        }
                    }
                }
            }
            for shard in 0..shards {
                if held.contains(&shard) {
                    continue;
                }
                let elector = &electors[shard as usize];
                if held.len() >= share {
                    // Timed all along, so a dead replica's shards are free
                    // as soon as it is seen to be gone, not a Lease later.
                    let _ = elector.observe().await;
                    continue;
                }
                if let Ok(true) = elector.try_once().await {
                    renewed.insert(shard, std::time::Instant::now());
                    held.insert(shard);
                }
            }
            // More replicas came: what is beyond the fair share goes back.
            while held.len() > share {
                let Some(shard) = held.iter().next_back().copied() else {
                    break;
                };
                held.remove(&shard);
                electors[shard as usize].release().await;
            }
            if held != self.ownership.held() {
                tracing::info!(identity = %self.identity, shards = ?held, live, "holding shards");
            }
            self.ownership.set(held.clone());
            tokio::time::sleep(self.timing.retry_period / 2).await;
        }
    }
}

/// Every process's ownership: all objects unless `plinth controller
/// --shards` set one.
static OWNERSHIP: std::sync::OnceLock<Arc<Ownership>> = std::sync::OnceLock::new();

/// Sets this process's ownership, once, before the controllers start.
pub fn set_ownership(ownership: Arc<Ownership>) {
    let _ = OWNERSHIP.set(ownership);
}

/// This process's ownership: what `set_ownership` set, else everything.
pub fn ownership() -> Option<Arc<Ownership>> {
    OWNERSHIP.get().cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_are_stable_and_spread() {
        assert_eq!(
            shard_of("0c1f5e7a-1d2b-4c3d-9e8f-0a1b2c3d4e5f", 4),
            shard_of("0c1f5e7a-1d2b-4c3d-9e8f-0a1b2c3d4e5f", 4)
        );
        let mut counts = [0u32; 4];
        for i in 0..4000 {
            counts[shard_of(&format!("uid-{i}"), 4) as usize] += 1;
        }
        for c in counts {
            assert!((800..1200).contains(&c), "an even spread: {counts:?}");
        }
        assert_eq!(shard_of("anything", 1), 0, "one shard holds everything");
    }

    #[test]
    fn each_replica_holds_at_most_its_fair_share() {
        let cases = [
            ("four shards, two replicas: two each", 4, 2, 2),
            ("four shards, three replicas: at most two", 4, 3, 2),
            ("one replica holds them all", 4, 1, 4),
            ("no replica seen yet counts as one", 4, 0, 4),
            ("more replicas than shards: one each", 2, 5, 1),
        ];
        for (reason, shards, live, want) in cases {
            assert_eq!(fair_share(shards, live), want, "{reason}");
        }
    }

    #[test]
    fn ownership_answers_by_uid() {
        let o = Ownership::new(4);
        let uid = "some-uid";
        assert!(!o.owns(uid), "nothing held, nothing owned");
        o.set([shard_of(uid, 4)].into());
        assert!(o.owns(uid));
        assert!(Ownership::all().owns(uid), "unsharded owns everything");
    }
}
