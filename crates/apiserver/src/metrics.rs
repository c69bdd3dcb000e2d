//! Prometheus metrics at `/metrics`, in kube-apiserver's spirit: requests
//! by verb, resource and code, and what reached the store, by resource,
//! subresource and verb (a write that changes nothing is a request but no
//! store write), and the store's objects and the memory their JSON takes.

use std::sync::Mutex;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::lifecycle::Part;
use crate::resource::Resource;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub verb: String,
    pub group: String,
    pub resource: String,
    pub subresource: String,
    pub code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WriteLabels {
    pub verb: String,
    pub group: String,
    pub resource: String,
    pub subresource: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LatencyLabels {
    pub verb: String,
    pub group: String,
    pub resource: String,
    pub subresource: String,
}

fn request_seconds() -> Histogram {
    // 0.1 ms to about 3 s.
    Histogram::new(exponential_buckets(0.0001, 2.0, 16))
}

pub struct Metrics {
    registry: Mutex<Registry>,
    requests: Family<RequestLabels, Counter>,
    latency: Family<LatencyLabels, Histogram, fn() -> Histogram>,
    writes: Family<WriteLabels, Counter>,
    objects: Gauge,
    packed: Gauge,
    body_bytes: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        let latency: Family<LatencyLabels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(request_seconds);
        let writes = Family::<WriteLabels, Counter>::default();
        let (objects, packed, body_bytes) = (Gauge::default(), Gauge::default(), Gauge::default());
        registry.register(
            "apiserver_request",
            "Requests by verb, group, resource, subresource and HTTP code",
            requests.clone(),
        );
        registry.register(
            "apiserver_request_duration_seconds",
            "Time to answer a request, by verb, group, resource and subresource (watches excluded, as in kube-apiserver)",
            latency.clone(),
        );
        registry.register(
            "plinth_store_writes",
            "Writes that reached the store, by verb, group, resource and subresource",
            writes.clone(),
        );
        registry.register(
            "plinth_store_objects",
            "Objects in the store",
            objects.clone(),
        );
        registry.register(
            "plinth_store_objects_packed",
            "Objects held compressed in memory",
            packed.clone(),
        );
        registry.register(
            "plinth_store_body_bytes",
            "Bytes of object JSON held in memory, compressed or not",
            body_bytes.clone(),
        );
        Metrics {
            registry: Mutex::new(registry),
            requests,
            latency,
            writes,
            objects,
            packed,
            body_bytes,
        }
    }
}

impl Metrics {
    /// One answered request, and how long the answer took.
    pub fn request(&self, labels: RequestLabels, took: std::time::Duration) {
        if labels.verb != "watch" {
            self.latency
                .get_or_create(&LatencyLabels {
                    verb: labels.verb.clone(),
                    group: labels.group.clone(),
                    resource: labels.resource.clone(),
                    subresource: labels.subresource.clone(),
                })
                .observe(took.as_secs_f64());
        }
        self.requests.get_or_create(&labels).inc();
    }

    /// A write reached the store.
    pub fn stored(&self, res: &Resource, part: Part, verb: &str) {
        self.writes
            .get_or_create(&WriteLabels {
                verb: verb.to_string(),
                group: res.group.clone(),
                resource: res.plural.clone(),
                subresource: match part {
                    Part::Main => String::new(),
                    Part::Status => "status".into(),
                },
            })
            .inc();
    }

    /// Lets the embedding process add metrics of its own to `/metrics`.
    pub fn register(&self, register: impl FnOnce(&mut Registry)) {
        register(&mut self.registry.lock().unwrap_or_else(|e| e.into_inner()));
    }

    /// The text exposition of every metric, the store's footprint read now.
    pub fn encode(&self, footprint: store::Footprint) -> Result<String, std::fmt::Error> {
        self.objects.set(footprint.objects as i64);
        self.packed.set(footprint.packed as i64);
        self.body_bytes.set(footprint.body_bytes as i64);
        let mut out = String::new();
        prometheus_client::encoding::text::encode(
            &mut out,
            &self.registry.lock().unwrap_or_else(|e| e.into_inner()),
        )?;
        Ok(out)
    }
}
