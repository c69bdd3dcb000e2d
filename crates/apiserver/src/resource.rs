//! Resource types the server serves, and the registry that holds them.
//!
//! A [`Resource`] is one served group/version/plural: its names, scope,
//! subresources, schema and printer columns. Built-in kinds are registered at
//! start-up; each CustomResourceDefinition adds one `Resource` per served
//! version while it exists. Every version of a kind shares one storage key
//! space, so an object written through `v1beta1` is read through `v1`.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use apimachinery::printer::{JsonPath, PrinterColumn};
use apimachinery::schema::StructuralSchema;
use serde_json::Value;

use crate::builtin::Builtin;

/// How one Table column's cell is computed.
#[derive(Clone)]
pub enum ColumnSource {
    /// A CRD `additionalPrinterColumns` entry.
    Path(PrinterColumn, Arc<JsonPath>),
    /// A built-in column computed from the whole object.
    Computed(fn(&Value, jiff::Timestamp) -> Value),
}

/// One Table column.
#[derive(Clone)]
pub struct Column {
    pub name: String,
    pub type_: String,
    pub format: String,
    pub description: String,
    pub priority: i64,
    pub source: ColumnSource,
}

/// One served resource type at one version.
pub struct Resource {
    pub group: String,
    pub version: String,
    /// The version objects are stored at; reads through other versions only
    /// relabel `apiVersion` (the CRD `None` conversion strategy).
    pub storage_version: String,
    pub kind: String,
    pub list_kind: String,
    pub plural: String,
    pub singular: String,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    pub namespaced: bool,
    pub status_subresource: bool,
    /// Set for the kinds compiled into the server.
    pub builtin: Option<Builtin>,
    /// Structural schema of a custom resource version.
    pub schema: Option<Arc<StructuralSchema>>,
    /// Schema published through OpenAPI for `kubectl explain`.
    pub openapi_schema: Value,
    /// Table columns after NAME (and before nothing: CRDs list AGE themselves).
    pub columns: Vec<Column>,
    /// The CRD that defines this type, if any.
    pub crd_name: Option<String>,
}

impl Resource {
    /// `stable.example.com/v1`, or `v1` for the core group.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The storage prefix of every object of this type, optionally in one namespace.
    pub fn key_prefix(&self, namespace: Option<&str>) -> String {
        let group = if self.group.is_empty() {
            "core"
        } else {
            &self.group
        };
        match namespace {
            Some(ns) if self.namespaced => format!("/{group}/{}/{ns}/", self.plural),
            _ => format!("/{group}/{}/", self.plural),
        }
    }

    /// The storage key of one object.
    pub fn key(&self, namespace: Option<&str>, name: &str) -> String {
        format!("{}{name}", self.key_prefix(namespace))
    }

    /// The verbs discovery advertises.
    pub fn verbs(&self) -> Vec<&'static str> {
        if self.builtin.is_some_and(Builtin::is_review) {
            return vec!["create"];
        }
        vec![
            "create",
            "delete",
            "deletecollection",
            "get",
            "list",
            "patch",
            "update",
            "watch",
        ]
    }

    /// True when `metadata.generation` counts changes of the desired state:
    /// custom resources and CRDs. Upstream's strategies for the built-in kinds
    /// served here (ConfigMap, Secret, Namespace, ServiceAccount, Event, Lease)
    /// never set it.
    pub fn has_generation(&self) -> bool {
        matches!(self.builtin, None | Some(Builtin::CustomResourceDefinition))
    }

    /// True when strategic merge patch is allowed (built-in kinds only, as upstream).
    pub fn supports_strategic_merge(&self) -> bool {
        self.builtin.is_some()
    }
}

/// Group metadata for discovery.
#[derive(Debug, Clone)]
pub struct GroupVersions {
    pub group: String,
    /// Served versions, preferred first.
    pub versions: Vec<String>,
}

/// Every served resource, by group, version and plural.
#[derive(Default)]
pub struct Registry {
    inner: RwLock<Inner>,
}

#[derive(Default)]
struct Inner {
    resources: BTreeMap<(String, String, String), Arc<Resource>>,
    /// Bumped on every change so OpenAPI and discovery clients can cache.
    generation: u64,
}

impl Registry {
    pub fn new() -> Registry {
        Registry::default()
    }

    pub fn insert(&self, resource: Resource) {
        let mut inner = self.inner.write().unwrap_or_else(|p| p.into_inner());
        let key = (
            resource.group.clone(),
            resource.version.clone(),
            resource.plural.clone(),
        );
        inner.resources.insert(key, Arc::new(resource));
        inner.generation += 1;
    }

    /// Replaces every resource defined by the CRD `crd_name` with `resources`.
    pub fn replace_crd(&self, crd_name: &str, resources: Vec<Resource>) {
        let mut inner = self.inner.write().unwrap_or_else(|p| p.into_inner());
        inner
            .resources
            .retain(|_, r| r.crd_name.as_deref() != Some(crd_name));
        for resource in resources {
            let key = (
                resource.group.clone(),
                resource.version.clone(),
                resource.plural.clone(),
            );
            inner.resources.insert(key, Arc::new(resource));
        }
        inner.generation += 1;
    }

    pub fn remove_crd(&self, crd_name: &str) {
        self.replace_crd(crd_name, Vec::new());
    }

    pub fn get(&self, group: &str, version: &str, plural: &str) -> Option<Arc<Resource>> {
        let inner = self.inner.read().unwrap_or_else(|p| p.into_inner());
        inner
            .resources
            .get(&(group.to_string(), version.to_string(), plural.to_string()))
            .cloned()
    }

    /// The storage-version resource for a group and plural (used by the
    /// garbage collector, which works below any one served version).
    pub fn storage(&self, group: &str, plural: &str) -> Option<Arc<Resource>> {
        let inner = self.inner.read().unwrap_or_else(|p| p.into_inner());
        inner
            .resources
            .values()
            .find(|r| r.group == group && r.plural == plural && r.version == r.storage_version)
            .cloned()
    }

    /// Every resource, in group/version/plural order.
    pub fn all(&self) -> Vec<Arc<Resource>> {
        let inner = self.inner.read().unwrap_or_else(|p| p.into_inner());
        inner.resources.values().cloned().collect()
    }

    pub fn in_group_version(&self, group: &str, version: &str) -> Vec<Arc<Resource>> {
        self.all()
            .into_iter()
            .filter(|r| r.group == group && r.version == version)
            .collect()
    }

    pub fn generation(&self) -> u64 {
        self.inner
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .generation
    }

    /// Groups and their versions, core first, then built-in groups, then the rest by name.
    pub fn groups(&self) -> Vec<GroupVersions> {
        let mut groups: BTreeMap<String, Vec<(String, bool)>> = BTreeMap::new();
        for r in self.all() {
            let versions = groups.entry(r.group.clone()).or_default();
            if !versions.iter().any(|(v, _)| v == &r.version) {
                versions.push((r.version.clone(), r.version == r.storage_version));
            }
        }
        let mut out: Vec<GroupVersions> = groups
            .into_iter()
            .map(|(group, mut versions)| {
                versions.sort_by_key(|(v, _)| std::cmp::Reverse(version_priority(v)));
                GroupVersions {
                    group,
                    versions: versions.into_iter().map(|(v, _)| v).collect(),
                }
            })
            .collect();
        out.sort_by_key(|g| (group_rank(&g.group), g.group.clone()));
        out
    }
}

fn group_rank(group: &str) -> u8 {
    match group {
        "" => 0,
        g if g.ends_with(".k8s.io") => 1,
        _ => 2,
    }
}

/// Kubernetes version ordering: GA > beta > alpha, higher numbers first.
pub fn version_priority(version: &str) -> (u8, u64, u64) {
    let Some(rest) = version.strip_prefix('v') else {
        return (0, 0, 0);
    };
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    let major = digits.parse().unwrap_or(0);
    let tail = &rest[digits.len()..];
    if tail.is_empty() {
        (3, major, 0)
    } else if let Some(n) = tail.strip_prefix("beta") {
        (2, major, n.parse().unwrap_or(0))
    } else if let Some(n) = tail.strip_prefix("alpha") {
        (1, major, n.parse().unwrap_or(0))
    } else {
        (0, 0, 0)
    }
}
