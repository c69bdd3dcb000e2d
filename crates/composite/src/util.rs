//! What the composition reconcilers share: API resources, discovery of
//! composed kinds, the memory of what was last applied, and small status
//! helpers.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kube::api::{ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::{Api, Client, ResourceExt};
use runtime::conditions::{self, Condition};
use runtime::Writes;
use serde_json::{json, Value};

use crate::names;

/// What this process last applied to each object, so that an apply whose
/// content has not changed, and is still in place, is skipped. Composites
/// and claims are woken by every write to what they compose; without this
/// each wake-up re-applied everything, and server-side apply is the most
/// expensive request there is.
#[derive(Default)]
pub struct Applied {
    /// By a hash of the object's key rather than the key itself: one entry
    /// per composed resource, 16 bytes each instead of a string. A
    /// collision could at worst skip one apply that `contains` would not
    /// catch, which the next drift poll makes good.
    hashes: Mutex<HashMap<u64, u64>>,
}

impl Applied {
    /// Whether `desired` must be applied to the object `key`: it differs
    /// from what was last applied there, or `live` (the object as it is now;
    /// `Null` when it does not exist) no longer holds all of it.
    pub fn needed(&self, key: &str, desired: &Value, live: Option<&Value>) -> bool {
        let unchanged = self
            .hashes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key_hash(key))
            == Some(&digest(desired));
        !unchanged || live.is_some_and(|live| !contains(live, desired))
    }

    /// Records that `desired` was applied to `key`.
    pub fn record(&self, key: &str, desired: &Value) {
        self.hashes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key_hash(key), digest(desired));
    }
}

/// Definitions (XRDs, Compositions, revisions) as parsed values, kept while
/// their resourceVersion stays the same: every cycle of every composite and
/// claim reads them, they are few, and they change rarely, where parsing
/// them from the cache each time was a fifth of the CPU at 10,000 claims.
#[derive(Default)]
pub struct Parsed {
    objects: Mutex<HashMap<runtime::Key, ParsedAt>>,
}

/// One definition as parsed, and the resourceVersion it was parsed at.
struct ParsedAt {
    resource_version: Box<str>,
    value: Arc<Value>,
}

impl Parsed {
    fn parse(&self, cached: &runtime::Cached) -> Result<Arc<Value>, runtime::Error> {
        let mut objects = self.objects.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(parsed) = objects.get(&cached.key) {
            if parsed.resource_version == cached.resource_version {
                return Ok(parsed.value.clone());
            }
        }
        let value = Arc::new(cached.value()?);
        objects.insert(
            cached.key.clone(),
            ParsedAt {
                resource_version: cached.resource_version.clone(),
                value: value.clone(),
            },
        );
        Ok(value)
    }

    /// Every object of `cache`'s kind, once its first list is in.
    pub async fn all(&self, cache: &runtime::Cache) -> Result<Vec<Arc<Value>>, runtime::Error> {
        cache.synced().await;
        let listed = cache.list();
        let values = listed
            .iter()
            .map(|c| self.parse(c))
            .collect::<Result<Vec<_>, _>>()?;
        // What is gone from the cache goes from here too.
        let mut objects = self.objects.lock().unwrap_or_else(|e| e.into_inner());
        if objects.len() > listed.len() {
            let keys: std::collections::HashSet<&runtime::Key> =
                listed.iter().map(|c| &c.key).collect();
            objects.retain(|k, _| keys.contains(k));
        }
        Ok(values)
    }

    /// One object of `cache`'s kind.
    pub async fn get(
        &self,
        cache: &runtime::Cache,
        key: &runtime::Key,
    ) -> Result<Option<Arc<Value>>, runtime::Error> {
        cache.synced().await;
        cache.get(key).map(|c| self.parse(&c)).transpose()
    }
}

fn key_hash(key: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut hasher);
    hasher.finish()
}

fn digest(value: &Value) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    value.to_string().hash(&mut hasher);
    hasher.finish()
}

pub fn xrd_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(names::GROUP, names::VERSION, names::XRD_KIND),
        names::XRD_PLURAL,
    )
}

pub fn composition_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(names::GROUP, names::VERSION, names::COMPOSITION_KIND),
        names::COMPOSITION_PLURAL,
    )
}

pub fn revision_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(names::GROUP, names::VERSION, names::REVISION_KIND),
        names::REVISION_PLURAL,
    )
}

/// Waits (bounded) until a kind is served.
pub async fn wait_served(client: &Client, ar: &ApiResource) {
    let api: Api<DynamicObject> = Api::all_with(client.clone(), ar);
    for _ in 0..100 {
        if api
            .list(&kube::api::ListParams::default().limit(1))
            .await
            .is_ok()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tracing::warn!(kind = %ar.kind, "kind not served after 10 s");
}

/// How often a composite or claim on its way up reports progress that
/// changes no condition's status: its Ready message names the resources
/// still coming up, and under load that message changes many times a
/// second, a status write (and a wake-up of the claim) each time.
pub const PROGRESS_INTERVAL: Duration = Duration::from_secs(1);

/// When each object's status was last written, for [`PROGRESS_INTERVAL`].
#[derive(Default)]
pub struct Progress {
    written: Mutex<HashMap<String, Instant>>,
}

impl Progress {
    /// How long to hold back a status that only refines what `current`
    /// says: every condition keeps its status (only reasons and messages
    /// change) and no other status field changes. `None` to write now.
    fn hold(&self, key: &str, current: Option<&Value>, next: &Value) -> Option<Duration> {
        let current = current?;
        let same_statuses = next
            .get("conditions")
            .and_then(Value::as_array)
            .is_some_and(|conditions| {
                conditions.iter().all(|c| {
                    let type_ = c.get("type");
                    current
                        .get("conditions")
                        .and_then(Value::as_array)
                        .and_then(|old| old.iter().find(|o| o.get("type") == type_))
                        .is_some_and(|o| o.get("status") == c.get("status"))
                })
            });
        let mut fields = next.clone();
        if let Some(map) = fields.as_object_mut() {
            map.remove("conditions");
        }
        if !same_statuses || !contains(current, &fields) {
            return None;
        }
        let written = self.written.lock().unwrap_or_else(|e| e.into_inner());
        let since = written.get(key)?.elapsed();
        (since < PROGRESS_INTERVAL).then(|| PROGRESS_INTERVAL - since)
    }

    fn wrote(&self, key: String) {
        let mut written = self.written.lock().unwrap_or_else(|e| e.into_inner());
        // Only recent writes matter; the rest go, so the map stays small.
        if written.len() > 4_096 {
            written.retain(|_, at| at.elapsed() < PROGRESS_INTERVAL);
        }
        written.insert(key, Instant::now());
    }
}

/// Sets conditions (and other status fields) with a merge patch on the
/// status subresource of `current`, the object as the caller has it (from
/// the cache, or as its own last write returned it), and records the write.
/// Nothing is sent when the status already says it all. With `progress`,
/// a status that only refines the last one written less than
/// [`PROGRESS_INTERVAL`] ago is held back: the answer is how long, for the
/// caller to look again then.
pub async fn set_status_on(
    api: &Api<DynamicObject>,
    writes: &Writes,
    resource: &ApiResource,
    current: &DynamicObject,
    updates: &[Condition<'_>],
    extra: Value,
    progress: Option<&Progress>,
) -> Option<Duration> {
    let name = current.name_any();
    let mut status = if extra.is_object() { extra } else { json!({}) };
    status["conditions"] = conditions::merged(
        current.data.pointer("/status/conditions"),
        updates,
        current.metadata.generation,
    );
    // Nothing new: no request at all (the server would find it a no-op
    // too, but only after the work of a write).
    if current
        .data
        .get("status")
        .is_some_and(|now| contains(now, &status))
    {
        return None;
    }
    let key = format!(
        "{}/{name}",
        current.metadata.namespace.as_deref().unwrap_or_default()
    );
    if let Some(progress) = progress {
        if let Some(wait) = progress.hold(&key, current.data.get("status"), &status) {
            return Some(wait);
        }
    }
    match api
        .patch_status(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": status})),
        )
        .await
    {
        Ok(written) => {
            writes.record(resource, &written);
            if let Some(progress) = progress {
                progress.wrote(key);
            }
        }
        Err(e) => tracing::debug!(name = %name, error = %error_message(&e), "status not written"),
    }
    None
}

/// Whether a label selector's `matchLabels` all match.
pub fn labels_match(selector: &Value, labels: &std::collections::BTreeMap<String, String>) -> bool {
    selector
        .get("matchLabels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter().all(|(k, v)| {
                v.as_str()
                    .is_some_and(|v| labels.get(k).map(String::as_str) == Some(v))
            })
        })
        .unwrap_or(true)
}

/// The status of one condition type of an object.
pub fn condition<'a>(obj: &'a Value, type_: &str) -> Option<&'a Value> {
    obj.pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(type_))
}

/// An error as a person should read it: the API server's own message for
/// API errors (`namespaces "x" not found`), not kube's Debug dump of the
/// whole Status.
pub fn error_message(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(status) if !status.message.is_empty() => status.message.clone(),
        other => other.to_string(),
    }
}

pub use runtime::contains;

/// `base` spread by ±10 % by the object's UID, so objects made together do
/// not keep waking together; stable per object.
pub fn spread(base: std::time::Duration, uid: Option<&str>) -> std::time::Duration {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    uid.unwrap_or_default().hash(&mut hasher);
    let fraction = (hasher.finish() % 1000) as f64 / 1000.0;
    base.mul_f64(0.9 + 0.2 * fraction)
}
