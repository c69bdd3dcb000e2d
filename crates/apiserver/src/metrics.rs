//! Prometheus metrics at `/metrics`, in kube-apiserver's spirit: requests
//! by verb, resource and code, and what reached the store, by resource,
//! subresource and verb (a write that changes nothing is a request but no
//! store write), and the store's objects and the memory their JSON takes.

use std::sync::Mutex;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
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

pub struct Metrics {
    registry: Mutex<Registry>,
    requests: Family<RequestLabels, Counter>,
    writes: Family<WriteLabels, Counter>,
    objects: Gauge,
    packed: Gauge,
    body_bytes: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        let writes = Family::<WriteLabels, Counter>::default();
        let (objects, packed, body_bytes) = (Gauge::default(), Gauge::default(), Gauge::default());
        registry.register(
            "apiserver_request",
            "Requests by verb, group, resource, subresource and HTTP code",
            requests.clone(),
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
            writes,
            objects,
            packed,
            body_bytes,
        }
    }
}

impl Metrics {
    pub fn request(&self, labels: RequestLabels) {
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
