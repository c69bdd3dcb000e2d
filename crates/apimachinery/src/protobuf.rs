//! Reading request bodies in the Kubernetes protobuf encoding.
//!
//! kubectl sends built-in kinds (`kubectl create namespace`, `configmap`,
//! `secret`, `serviceaccount`) as `application/vnd.kubernetes.protobuf`: the
//! magic bytes `k8s\0` and a `runtime.Unknown` envelope whose `raw` field holds
//! the object. The server keeps every object as JSON, so this module turns the
//! kinds it serves into the JSON the same request would have carried.
//!
//! The messages are declared here with prost's derive rather than generated
//! from the upstream `.proto` files, since only a handful of messages are
//! needed and a build-time protoc step is not worth it for them. Tags and
//! types follow k8s.io/api and k8s.io/apimachinery `generated.proto`.

use std::collections::BTreeMap;

use base64::Engine;
use prost::Message;
use serde_json::{json, Map, Value};

/// The media type kubectl sends protobuf bodies as.
pub const MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf";

/// Every protobuf body starts with these bytes.
const MAGIC: &[u8] = b"k8s\0";

/// A protobuf body that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ProtobufError {
    #[error("the body does not start with the Kubernetes protobuf magic bytes \"k8s\\0\"; send application/json")]
    MissingMagic,
    #[error("the body is not a valid protobuf {message}: {source}; send application/json")]
    Malformed {
        message: &'static str,
        #[source]
        source: prost::DecodeError,
    },
    #[error("protobuf bodies are accepted for v1 Namespace, ConfigMap, Secret, ServiceAccount, Event, coordination.k8s.io/v1 Lease, the rbac.authorization.k8s.io/v1 kinds, TokenRequest and the reviews, not {api_version} {kind}; send application/json")]
    Unsupported { api_version: String, kind: String },
}

impl ProtobufError {
    /// Whether the body was well formed but of a kind this server only reads as JSON.
    pub fn is_unsupported(&self) -> bool {
        matches!(self, ProtobufError::Unsupported { .. })
    }
}

/// Decodes a protobuf request body into its JSON form.
pub fn decode(body: &[u8]) -> Result<Value, ProtobufError> {
    let raw = body
        .strip_prefix(MAGIC)
        .ok_or(ProtobufError::MissingMagic)?;
    let unknown = Unknown::decode(raw).map_err(malformed("runtime.Unknown"))?;
    let type_meta = unknown.type_meta.unwrap_or_default();
    let api_version = type_meta.api_version.unwrap_or_default();
    let kind = type_meta.kind.unwrap_or_default();
    let object = unknown.raw.unwrap_or_default();
    let mut out = Map::new();
    out.insert("apiVersion".into(), json!(api_version));
    out.insert("kind".into(), json!(kind));
    match (api_version.as_str(), kind.as_str()) {
        ("v1", "Namespace") => {
            let ns = Namespace::decode(object.as_slice()).map_err(malformed("v1 Namespace"))?;
            put_meta(&mut out, ns.metadata);
            if let Some(spec) = ns.spec {
                let mut s = Map::new();
                put_list(&mut s, "finalizers", spec.finalizers);
                put_map(&mut out, "spec", s);
            }
            if let Some(status) = ns.status {
                let mut s = Map::new();
                put_str(&mut s, "phase", status.phase);
                put_map(&mut out, "status", s);
            }
        }
        ("v1", "ConfigMap") => {
            let cm = ConfigMap::decode(object.as_slice()).map_err(malformed("v1 ConfigMap"))?;
            put_meta(&mut out, cm.metadata);
            put_strings(&mut out, "data", cm.data);
            put_bytes(&mut out, "binaryData", cm.binary_data);
            put_opt(&mut out, "immutable", cm.immutable);
        }
        ("v1", "Secret") => {
            let secret = Secret::decode(object.as_slice()).map_err(malformed("v1 Secret"))?;
            put_meta(&mut out, secret.metadata);
            put_bytes(&mut out, "data", secret.data);
            put_strings(&mut out, "stringData", secret.string_data);
            put_str(&mut out, "type", secret.type_);
            put_opt(&mut out, "immutable", secret.immutable);
        }
        ("v1", "ServiceAccount") => {
            let sa = ServiceAccount::decode(object.as_slice())
                .map_err(malformed("v1 ServiceAccount"))?;
            put_meta(&mut out, sa.metadata);
            put_values(
                &mut out,
                "secrets",
                sa.secrets.into_iter().map(object_reference).collect(),
            );
            put_values(
                &mut out,
                "imagePullSecrets",
                sa.image_pull_secrets
                    .into_iter()
                    .map(|r| {
                        let mut m = Map::new();
                        put_str(&mut m, "name", r.name);
                        Value::Object(m)
                    })
                    .collect(),
            );
            put_opt(
                &mut out,
                "automountServiceAccountToken",
                sa.automount_service_account_token,
            );
        }
        ("v1", "Event") => {
            let event = Event::decode(object.as_slice()).map_err(malformed("v1 Event"))?;
            put_meta(&mut out, event.metadata);
            if let Some(r) = event.involved_object {
                out.insert("involvedObject".into(), object_reference(r));
            }
            put_str(&mut out, "reason", event.reason);
            put_str(&mut out, "message", event.message);
            if let Some(source) = event.source {
                let mut s = Map::new();
                put_str(&mut s, "component", source.component);
                put_str(&mut s, "host", source.host);
                put_map(&mut out, "source", s);
            }
            put_time(&mut out, "firstTimestamp", event.first_timestamp);
            put_time(&mut out, "lastTimestamp", event.last_timestamp);
            put_nonzero(&mut out, "count", event.count);
            put_str(&mut out, "type", event.type_);
            put_micro_time(&mut out, "eventTime", event.event_time);
            if let Some(series) = event.series {
                let mut s = Map::new();
                put_nonzero(&mut s, "count", series.count);
                put_micro_time(&mut s, "lastObservedTime", series.last_observed_time);
                put_map(&mut out, "series", s);
            }
            put_str(&mut out, "action", event.action);
            if let Some(r) = event.related {
                out.insert("related".into(), object_reference(r));
            }
            put_str(&mut out, "reportingComponent", event.reporting_component);
            put_str(&mut out, "reportingInstance", event.reporting_instance);
        }
        ("coordination.k8s.io/v1", "Lease") => {
            let lease = Lease::decode(object.as_slice())
                .map_err(malformed("coordination.k8s.io/v1 Lease"))?;
            put_meta(&mut out, lease.metadata);
            if let Some(spec) = lease.spec {
                let mut s = Map::new();
                put_str(&mut s, "holderIdentity", spec.holder_identity);
                put_opt(&mut s, "leaseDurationSeconds", spec.lease_duration_seconds);
                put_micro_time(&mut s, "acquireTime", spec.acquire_time);
                put_micro_time(&mut s, "renewTime", spec.renew_time);
                put_opt(&mut s, "leaseTransitions", spec.lease_transitions);
                put_str(&mut s, "strategy", spec.strategy);
                put_str(&mut s, "preferredHolder", spec.preferred_holder);
                out.insert("spec".into(), Value::Object(s));
            }
        }
        ("rbac.authorization.k8s.io/v1", "Role") => {
            let role = Role::decode(object.as_slice()).map_err(malformed("rbac Role"))?;
            put_meta(&mut out, role.metadata);
            out.insert("rules".into(), rules(role.rules));
        }
        ("rbac.authorization.k8s.io/v1", "ClusterRole") => {
            let role =
                ClusterRole::decode(object.as_slice()).map_err(malformed("rbac ClusterRole"))?;
            put_meta(&mut out, role.metadata);
            out.insert("rules".into(), rules(role.rules));
            if let Some(aggregation) = role.aggregation_rule {
                let selectors: Vec<Value> = aggregation
                    .cluster_role_selectors
                    .into_iter()
                    .map(label_selector)
                    .collect();
                out.insert(
                    "aggregationRule".into(),
                    json!({"clusterRoleSelectors": selectors}),
                );
            }
        }
        ("rbac.authorization.k8s.io/v1", "RoleBinding" | "ClusterRoleBinding") => {
            let binding =
                RoleBinding::decode(object.as_slice()).map_err(malformed("rbac binding"))?;
            put_meta(&mut out, binding.metadata);
            let subjects: Vec<Value> = binding
                .subjects
                .into_iter()
                .map(|s| {
                    let mut m = Map::new();
                    put_str(&mut m, "kind", s.kind);
                    put_str(&mut m, "apiGroup", s.api_group);
                    put_str(&mut m, "name", s.name);
                    put_str(&mut m, "namespace", s.namespace);
                    Value::Object(m)
                })
                .collect();
            put_values(&mut out, "subjects", subjects);
            if let Some(r) = binding.role_ref {
                let mut m = Map::new();
                put_str(&mut m, "apiGroup", r.api_group);
                put_str(&mut m, "kind", r.kind);
                put_str(&mut m, "name", r.name);
                out.insert("roleRef".into(), Value::Object(m));
            }
        }
        ("authentication.k8s.io/v1", "TokenRequest") => {
            let request =
                TokenRequest::decode(object.as_slice()).map_err(malformed("TokenRequest"))?;
            put_meta(&mut out, request.metadata);
            let mut spec = Map::new();
            if let Some(s) = request.spec {
                put_list(&mut spec, "audiences", s.audiences);
                put_opt(&mut spec, "expirationSeconds", s.expiration_seconds);
                if let Some(r) = s.bound_object_ref {
                    let mut m = Map::new();
                    put_str(&mut m, "kind", r.kind);
                    put_str(&mut m, "apiVersion", r.api_version);
                    put_str(&mut m, "name", r.name);
                    put_str(&mut m, "uid", r.uid);
                    put_map(&mut spec, "boundObjectRef", m);
                }
            }
            out.insert("spec".into(), Value::Object(spec));
        }
        // Its request carries nothing but metadata: the answer is the caller.
        ("authentication.k8s.io/v1", "SelfSubjectReview") => {}
        ("authorization.k8s.io/v1", "SelfSubjectAccessReview") => {
            let review = SelfSubjectAccessReview::decode(object.as_slice())
                .map_err(malformed("SelfSubjectAccessReview"))?;
            put_meta(&mut out, review.metadata);
            let mut spec = Map::new();
            if let Some(s) = review.spec {
                access_attributes(&mut spec, s.resource_attributes, s.non_resource_attributes);
            }
            out.insert("spec".into(), Value::Object(spec));
        }
        ("authorization.k8s.io/v1", "SubjectAccessReview" | "LocalSubjectAccessReview") => {
            let review = SubjectAccessReview::decode(object.as_slice())
                .map_err(malformed("SubjectAccessReview"))?;
            put_meta(&mut out, review.metadata);
            let mut spec = Map::new();
            if let Some(s) = review.spec {
                access_attributes(&mut spec, s.resource_attributes, s.non_resource_attributes);
                put_str(&mut spec, "user", s.user);
                put_list(&mut spec, "groups", s.groups);
                put_str(&mut spec, "uid", s.uid);
                let extra: Map<String, Value> = s
                    .extra
                    .into_iter()
                    .map(|(k, v)| (k, json!(v.items)))
                    .collect();
                put_map(&mut spec, "extra", extra);
            }
            out.insert("spec".into(), Value::Object(spec));
        }
        ("authorization.k8s.io/v1", "SelfSubjectRulesReview") => {
            let review = SelfSubjectRulesReview::decode(object.as_slice())
                .map_err(malformed("SelfSubjectRulesReview"))?;
            put_meta(&mut out, review.metadata);
            let mut spec = Map::new();
            if let Some(s) = review.spec {
                put_str(&mut spec, "namespace", s.namespace);
            }
            out.insert("spec".into(), Value::Object(spec));
        }
        _ => return Err(ProtobufError::Unsupported { api_version, kind }),
    }
    Ok(Value::Object(out))
}

fn rules(rules: Vec<PolicyRule>) -> Value {
    Value::Array(
        rules
            .into_iter()
            .map(|r| {
                let mut m = Map::new();
                put_list(&mut m, "verbs", r.verbs);
                put_list(&mut m, "apiGroups", r.api_groups);
                put_list(&mut m, "resources", r.resources);
                put_list(&mut m, "resourceNames", r.resource_names);
                put_list(&mut m, "nonResourceURLs", r.non_resource_urls);
                Value::Object(m)
            })
            .collect(),
    )
}

fn label_selector(selector: LabelSelector) -> Value {
    let mut m = Map::new();
    put_strings(&mut m, "matchLabels", selector.match_labels);
    let expressions: Vec<Value> = selector
        .match_expressions
        .into_iter()
        .map(|e| {
            let mut r = Map::new();
            put_str(&mut r, "key", e.key);
            put_str(&mut r, "operator", e.operator);
            put_list(&mut r, "values", e.values);
            Value::Object(r)
        })
        .collect();
    put_values(&mut m, "matchExpressions", expressions);
    Value::Object(m)
}

fn access_attributes(
    spec: &mut Map<String, Value>,
    resource: Option<ResourceAttributes>,
    non_resource: Option<NonResourceAttributes>,
) {
    if let Some(r) = resource {
        let mut m = Map::new();
        put_str(&mut m, "namespace", r.namespace);
        put_str(&mut m, "verb", r.verb);
        put_str(&mut m, "group", r.group);
        put_str(&mut m, "version", r.version);
        put_str(&mut m, "resource", r.resource);
        put_str(&mut m, "subresource", r.subresource);
        put_str(&mut m, "name", r.name);
        spec.insert("resourceAttributes".into(), Value::Object(m));
    }
    if let Some(n) = non_resource {
        let mut m = Map::new();
        put_str(&mut m, "path", n.path);
        put_str(&mut m, "verb", n.verb);
        spec.insert("nonResourceAttributes".into(), Value::Object(m));
    }
}

fn malformed(message: &'static str) -> impl Fn(prost::DecodeError) -> ProtobufError {
    move |source| ProtobufError::Malformed { message, source }
}

// Go's generated marshallers write every non-pointer field, empty or not, so
// an empty string or a zero number means "unset" here, as it does in JSON
// with `omitempty`.

fn put_str(out: &mut Map<String, Value>, key: &str, value: Option<String>) {
    if let Some(v) = value.filter(|v| !v.is_empty()) {
        out.insert(key.into(), json!(v));
    }
}

fn put_opt<T: Into<Value>>(out: &mut Map<String, Value>, key: &str, value: Option<T>) {
    if let Some(v) = value {
        out.insert(key.into(), v.into());
    }
}

fn put_nonzero<T: Into<Value> + Default + PartialEq>(
    out: &mut Map<String, Value>,
    key: &str,
    value: Option<T>,
) {
    if let Some(v) = value.filter(|v| *v != T::default()) {
        out.insert(key.into(), v.into());
    }
}

fn put_list(out: &mut Map<String, Value>, key: &str, values: Vec<String>) {
    if !values.is_empty() {
        out.insert(key.into(), json!(values));
    }
}

fn put_values(out: &mut Map<String, Value>, key: &str, values: Vec<Value>) {
    if !values.is_empty() {
        out.insert(key.into(), Value::Array(values));
    }
}

fn put_map(out: &mut Map<String, Value>, key: &str, map: Map<String, Value>) {
    if !map.is_empty() {
        out.insert(key.into(), Value::Object(map));
    }
}

fn put_strings(out: &mut Map<String, Value>, key: &str, map: BTreeMap<String, String>) {
    if !map.is_empty() {
        out.insert(key.into(), json!(map));
    }
}

fn put_bytes(out: &mut Map<String, Value>, key: &str, map: BTreeMap<String, Vec<u8>>) {
    if !map.is_empty() {
        let encoded: Map<String, Value> = map
            .into_iter()
            .map(|(k, v)| {
                (
                    k,
                    json!(base64::engine::general_purpose::STANDARD.encode(v)),
                )
            })
            .collect();
        out.insert(key.into(), Value::Object(encoded));
    }
}

fn put_time(out: &mut Map<String, Value>, key: &str, time: Option<Time>) {
    if let Some(text) = time.and_then(|t| format_time(t, false)) {
        out.insert(key.into(), json!(text));
    }
}

fn put_micro_time(out: &mut Map<String, Value>, key: &str, time: Option<Time>) {
    if let Some(text) = time.and_then(|t| format_time(t, true)) {
        out.insert(key.into(), json!(text));
    }
}

/// RFC 3339 in UTC, as `metav1.Time` (seconds) and `metav1.MicroTime`
/// (microseconds) marshal to JSON. The zero time is "unset".
fn format_time(time: Time, micro: bool) -> Option<String> {
    let seconds = time.seconds.unwrap_or(0);
    let nanos = time.nanos.unwrap_or(0);
    if seconds == 0 && nanos == 0 {
        return None;
    }
    let ts = jiff::Timestamp::from_second(seconds).ok()?;
    let base = ts.strftime("%Y-%m-%dT%H:%M:%S");
    Some(if micro {
        format!("{base}.{:06}Z", nanos.clamp(0, 999_999_999) / 1000)
    } else {
        format!("{base}Z")
    })
}

fn put_meta(out: &mut Map<String, Value>, meta: Option<ObjectMeta>) {
    let meta = meta.unwrap_or_default();
    let mut m = Map::new();
    put_str(&mut m, "name", meta.name);
    put_str(&mut m, "generateName", meta.generate_name);
    put_str(&mut m, "namespace", meta.namespace);
    put_str(&mut m, "selfLink", meta.self_link);
    put_str(&mut m, "uid", meta.uid);
    put_str(&mut m, "resourceVersion", meta.resource_version);
    put_nonzero(&mut m, "generation", meta.generation);
    put_time(&mut m, "creationTimestamp", meta.creation_timestamp);
    put_time(&mut m, "deletionTimestamp", meta.deletion_timestamp);
    put_opt(
        &mut m,
        "deletionGracePeriodSeconds",
        meta.deletion_grace_period_seconds,
    );
    put_strings(&mut m, "labels", meta.labels);
    put_strings(&mut m, "annotations", meta.annotations);
    put_values(
        &mut m,
        "ownerReferences",
        meta.owner_references
            .into_iter()
            .map(|r| {
                let mut o = Map::new();
                put_str(&mut o, "apiVersion", r.api_version);
                put_str(&mut o, "kind", r.kind);
                put_str(&mut o, "name", r.name);
                put_str(&mut o, "uid", r.uid);
                put_opt(&mut o, "controller", r.controller);
                put_opt(&mut o, "blockOwnerDeletion", r.block_owner_deletion);
                Value::Object(o)
            })
            .collect(),
    );
    put_list(&mut m, "finalizers", meta.finalizers);
    put_values(
        &mut m,
        "managedFields",
        meta.managed_fields
            .into_iter()
            .map(|e| {
                let mut o = Map::new();
                put_str(&mut o, "manager", e.manager);
                put_str(&mut o, "operation", e.operation);
                put_str(&mut o, "apiVersion", e.api_version);
                put_time(&mut o, "time", e.time);
                put_str(&mut o, "fieldsType", e.fields_type);
                if let Some(raw) = e.fields_v1.and_then(|f| f.raw) {
                    if let Ok(tree) = serde_json::from_slice::<Value>(&raw) {
                        o.insert("fieldsV1".into(), tree);
                    }
                }
                put_str(&mut o, "subresource", e.subresource);
                Value::Object(o)
            })
            .collect(),
    );
    out.insert("metadata".into(), Value::Object(m));
}

fn object_reference(r: ObjectReference) -> Value {
    let mut o = Map::new();
    put_str(&mut o, "kind", r.kind);
    put_str(&mut o, "namespace", r.namespace);
    put_str(&mut o, "name", r.name);
    put_str(&mut o, "uid", r.uid);
    put_str(&mut o, "apiVersion", r.api_version);
    put_str(&mut o, "resourceVersion", r.resource_version);
    put_str(&mut o, "fieldPath", r.field_path);
    Value::Object(o)
}

/// `k8s.io.apimachinery.pkg.runtime.Unknown`.
#[derive(Clone, PartialEq, Message)]
struct Unknown {
    #[prost(message, optional, tag = "1")]
    type_meta: Option<TypeMeta>,
    #[prost(bytes = "vec", optional, tag = "2")]
    raw: Option<Vec<u8>>,
    #[prost(string, optional, tag = "3")]
    content_encoding: Option<String>,
    #[prost(string, optional, tag = "4")]
    content_type: Option<String>,
}

#[derive(Clone, PartialEq, Message)]
struct TypeMeta {
    #[prost(string, optional, tag = "1")]
    api_version: Option<String>,
    #[prost(string, optional, tag = "2")]
    kind: Option<String>,
}

/// `metav1.Time` and `metav1.MicroTime` share this shape.
#[derive(Clone, PartialEq, Message)]
struct Time {
    #[prost(int64, optional, tag = "1")]
    seconds: Option<i64>,
    #[prost(int32, optional, tag = "2")]
    nanos: Option<i32>,
}

#[derive(Clone, PartialEq, Message)]
struct ObjectMeta {
    #[prost(string, optional, tag = "1")]
    name: Option<String>,
    #[prost(string, optional, tag = "2")]
    generate_name: Option<String>,
    #[prost(string, optional, tag = "3")]
    namespace: Option<String>,
    #[prost(string, optional, tag = "4")]
    self_link: Option<String>,
    #[prost(string, optional, tag = "5")]
    uid: Option<String>,
    #[prost(string, optional, tag = "6")]
    resource_version: Option<String>,
    #[prost(int64, optional, tag = "7")]
    generation: Option<i64>,
    #[prost(message, optional, tag = "8")]
    creation_timestamp: Option<Time>,
    #[prost(message, optional, tag = "9")]
    deletion_timestamp: Option<Time>,
    #[prost(int64, optional, tag = "10")]
    deletion_grace_period_seconds: Option<i64>,
    #[prost(btree_map = "string, string", tag = "11")]
    labels: BTreeMap<String, String>,
    #[prost(btree_map = "string, string", tag = "12")]
    annotations: BTreeMap<String, String>,
    #[prost(message, repeated, tag = "13")]
    owner_references: Vec<OwnerReference>,
    #[prost(string, repeated, tag = "14")]
    finalizers: Vec<String>,
    #[prost(message, repeated, tag = "17")]
    managed_fields: Vec<ManagedFieldsEntry>,
}

#[derive(Clone, PartialEq, Message)]
struct OwnerReference {
    #[prost(string, optional, tag = "1")]
    kind: Option<String>,
    #[prost(string, optional, tag = "3")]
    name: Option<String>,
    #[prost(string, optional, tag = "4")]
    uid: Option<String>,
    #[prost(string, optional, tag = "5")]
    api_version: Option<String>,
    #[prost(bool, optional, tag = "6")]
    controller: Option<bool>,
    #[prost(bool, optional, tag = "7")]
    block_owner_deletion: Option<bool>,
}

#[derive(Clone, PartialEq, Message)]
struct ManagedFieldsEntry {
    #[prost(string, optional, tag = "1")]
    manager: Option<String>,
    #[prost(string, optional, tag = "2")]
    operation: Option<String>,
    #[prost(string, optional, tag = "3")]
    api_version: Option<String>,
    #[prost(message, optional, tag = "4")]
    time: Option<Time>,
    #[prost(string, optional, tag = "6")]
    fields_type: Option<String>,
    #[prost(message, optional, tag = "7")]
    fields_v1: Option<FieldsV1>,
    #[prost(string, optional, tag = "8")]
    subresource: Option<String>,
}

#[derive(Clone, PartialEq, Message)]
struct FieldsV1 {
    #[prost(bytes = "vec", optional, tag = "1")]
    raw: Option<Vec<u8>>,
}

#[derive(Clone, PartialEq, Message)]
struct ObjectReference {
    #[prost(string, optional, tag = "1")]
    kind: Option<String>,
    #[prost(string, optional, tag = "2")]
    namespace: Option<String>,
    #[prost(string, optional, tag = "3")]
    name: Option<String>,
    #[prost(string, optional, tag = "4")]
    uid: Option<String>,
    #[prost(string, optional, tag = "5")]
    api_version: Option<String>,
    #[prost(string, optional, tag = "6")]
    resource_version: Option<String>,
    #[prost(string, optional, tag = "7")]
    field_path: Option<String>,
}

#[derive(Clone, PartialEq, Message)]
struct LocalObjectReference {
    #[prost(string, optional, tag = "1")]
    name: Option<String>,
}

#[derive(Clone, PartialEq, Message)]
struct Namespace {
    #[prost(message, optional, tag = "1")]
    metadata: Option<ObjectMeta>,
    #[prost(message, optional, tag = "2")]
    spec: Option<NamespaceSpec>,
    #[prost(message, optional, tag = "3")]
    status: Option<NamespaceStatus>,
}

#[derive(Clone, PartialEq, Message)]
struct NamespaceSpec {
    #[prost(string, repeated, tag = "1")]
    finalizers: Vec<String>,
}

#[derive(Clone, PartialEq, Message)]
struct NamespaceStatus {
    #[prost(string, optional, tag = "1")]
    phase: Option<String>,
}

#[derive(Clone, PartialEq, Message)]
struct ConfigMap {
    #[prost(message, optional, tag = "1")]
    metadata: Option<ObjectMeta>,
    #[prost(btree_map = "string, string", tag = "2")]
    data: BTreeMap<String, String>,
    #[prost(btree_map = "string, bytes", tag = "3")]
    binary_data: BTreeMap<String, Vec<u8>>,
    #[prost(bool, optional, tag = "4")]
    immutable: Option<bool>,
}

#[derive(Clone, PartialEq, Message)]
struct Secret {
    #[prost(message, optional, tag = "1")]
    metadata: Option<ObjectMeta>,
    #[prost(btree_map = "string, bytes", tag = "2")]
    data: BTreeMap<String, Vec<u8>>,
    #[prost(string, optional, tag = "3")]
    type_: Option<String>,
    #[prost(btree_map = "string, string", tag = "4")]
    string_data: BTreeMap<String, String>,
    #[prost(bool, optional, tag = "5")]
    immutable: Option<bool>,
}

// === rbac.authorization.k8s.io/v1 (field numbers of k8s.io/api's generated.proto) ===

#[derive(Clone, PartialEq, Message)]
struct PolicyRule {
    #[prost(string, repeated, tag = "1")]
    verbs: Vec<String>,
    #[prost(string, repeated, tag = "2")]
    api_groups: Vec<String>,
    #[prost(string, repeated, tag = "3")]
    resources: Vec<String>,
    #[prost(string, repeated, tag = "4")]
    resource_names: Vec<String>,
    #[prost(string, repeated, tag = "5")]
    non_resource_urls: Vec<String>,
}

#[derive(Clone, PartialEq, Message)]
struct Role {
    #[prost(message, optional, tag = "1")]
    metadata: Option<ObjectMeta>,
    #[prost(message, repeated, tag = "2")]
    rules: Vec<PolicyRule>,
}

#[derive(Clone, PartialEq, Message)]
struct LabelSelectorRequirement {
    #[prost(string, optional, tag = "1")]
    key: Option<String>,
    #[prost(string, optional, tag = "2")]
    operator: Option<String>,
    #[prost(string, repeated, tag = "3")]
    values: Vec<String>,
}

#[derive(Clone, PartialEq, Message)]
struct LabelSelector {
    #[prost(btree_map = "string, string", tag = "1")]
    match_labels: BTreeMap<String, String>,
    #[prost(message, repeated, tag = "2")]
    match_expressions: Vec<LabelSelectorRequirement>,
}

#[derive(Clone, PartialEq, Message)]
struct AggregationRule {
    #[prost(message, repeated, tag = "1")]
    cluster_role_selectors: Vec<LabelSelector>,
}

#[derive(Clone, PartialEq, Message)]
struct ClusterRole {
    #[prost(message, optional, tag = "1")]
    metadata: Option<ObjectMeta>,
    #[prost(message, repeated, tag = "2")]
    rules: Vec<PolicyRule>,
    #[prost(message, optional, tag = "3")]
    aggregation_rule: Option<AggregationRule>,
}

#[derive(Clone, PartialEq, Message)]
struct Subject {
    #[prost(string, optional, tag = "1")]
    kind: Option<String>,
    #[prost(string, optional, tag = "2")]
    api_group: Option<String>,
    #[prost(string, optional, tag = "3")]
    name: Option<String>,
    #[prost(string, optional, tag = "4")]
    namespace: Option<String>,
}

#[derive(Clone, PartialEq, Message)]
struct RoleRef {
    #[prost(string, optional, tag = "1")]
    api_group: Option<String>,
    #[prost(string, optional, tag = "2")]
    kind: Option<String>,
    #[prost(string, optional, tag = "3")]
    name: Option<String>,
}

/// RoleBinding and ClusterRoleBinding share their field numbers.
#[derive(Clone, PartialEq, Message)]
struct RoleBinding {
    #[prost(message, optional, tag = "1")]
    metadata: Option<ObjectMeta>,
    #[prost(message, repeated, tag = "2")]
    subjects: Vec<Subject>,
    #[prost(message, optional, tag = "3")]
    role_ref: Option<RoleRef>,
}

// === authentication.k8s.io/v1 and authorization.k8s.io/v1 ===

#[derive(Clone, PartialEq, Message)]
struct BoundObjectReference {
    #[prost(string, optional, tag = "1")]
    kind: Option<String>,
    #[prost(string, optional, tag = "2")]
    api_version: Option<String>,
    #[prost(string, optional, tag = "3")]
    name: Option<String>,
    #[prost(string, optional, tag = "4")]
    uid: Option<String>,
}

#[derive(Clone, PartialEq, Message)]
struct TokenRequestSpec {
    #[prost(string, repeated, tag = "1")]
    audiences: Vec<String>,
    #[prost(message, optional, tag = "3")]
    bound_object_ref: Option<BoundObjectReference>,
    #[prost(int64, optional, tag = "4")]
    expiration_seconds: Option<i64>,
}

#[derive(Clone, PartialEq, Message)]
struct TokenRequest {
    #[prost(message, optional, tag = "1")]
    metadata: Option<ObjectMeta>,
    #[prost(message, optional, tag = "2")]
    spec: Option<TokenRequestSpec>,
}

#[derive(Clone, PartialEq, Message)]
struct ResourceAttributes {
    #[prost(string, optional, tag = "1")]
    namespace: Option<String>,
    #[prost(string, optional, tag = "2")]
    verb: Option<String>,
    #[prost(string, optional, tag = "3")]
    group: Option<String>,
    #[prost(string, optional, tag = "4")]
    version: Option<String>,
    #[prost(string, optional, tag = "5")]
    resource: Option<String>,
    #[prost(string, optional, tag = "6")]
    subresource: Option<String>,
    #[prost(string, optional, tag = "7")]
    name: Option<String>,
}

#[derive(Clone, PartialEq, Message)]
struct NonResourceAttributes {
    #[prost(string, optional, tag = "1")]
    path: Option<String>,
    #[prost(string, optional, tag = "2")]
    verb: Option<String>,
}

#[derive(Clone, PartialEq, Message)]
struct SelfSubjectAccessReviewSpec {
    #[prost(message, optional, tag = "1")]
    resource_attributes: Option<ResourceAttributes>,
    #[prost(message, optional, tag = "2")]
    non_resource_attributes: Option<NonResourceAttributes>,
}

#[derive(Clone, PartialEq, Message)]
struct SelfSubjectAccessReview {
    #[prost(message, optional, tag = "1")]
    metadata: Option<ObjectMeta>,
    #[prost(message, optional, tag = "2")]
    spec: Option<SelfSubjectAccessReviewSpec>,
}

#[derive(Clone, PartialEq, Message)]
struct ExtraValue {
    #[prost(string, repeated, tag = "1")]
    items: Vec<String>,
}

#[derive(Clone, PartialEq, Message)]
struct SubjectAccessReviewSpec {
    #[prost(message, optional, tag = "1")]
    resource_attributes: Option<ResourceAttributes>,
    #[prost(message, optional, tag = "2")]
    non_resource_attributes: Option<NonResourceAttributes>,
    #[prost(string, optional, tag = "3")]
    user: Option<String>,
    #[prost(string, repeated, tag = "4")]
    groups: Vec<String>,
    #[prost(btree_map = "string, message", tag = "5")]
    extra: BTreeMap<String, ExtraValue>,
    #[prost(string, optional, tag = "6")]
    uid: Option<String>,
}

/// SubjectAccessReview and LocalSubjectAccessReview share their field numbers.
#[derive(Clone, PartialEq, Message)]
struct SubjectAccessReview {
    #[prost(message, optional, tag = "1")]
    metadata: Option<ObjectMeta>,
    #[prost(message, optional, tag = "2")]
    spec: Option<SubjectAccessReviewSpec>,
}

#[derive(Clone, PartialEq, Message)]
struct SelfSubjectRulesReviewSpec {
    #[prost(string, optional, tag = "1")]
    namespace: Option<String>,
}

#[derive(Clone, PartialEq, Message)]
struct SelfSubjectRulesReview {
    #[prost(message, optional, tag = "1")]
    metadata: Option<ObjectMeta>,
    #[prost(message, optional, tag = "2")]
    spec: Option<SelfSubjectRulesReviewSpec>,
}

#[derive(Clone, PartialEq, Message)]
struct ServiceAccount {
    #[prost(message, optional, tag = "1")]
    metadata: Option<ObjectMeta>,
    #[prost(message, repeated, tag = "2")]
    secrets: Vec<ObjectReference>,
    #[prost(message, repeated, tag = "3")]
    image_pull_secrets: Vec<LocalObjectReference>,
    #[prost(bool, optional, tag = "4")]
    automount_service_account_token: Option<bool>,
}

#[derive(Clone, PartialEq, Message)]
struct EventSource {
    #[prost(string, optional, tag = "1")]
    component: Option<String>,
    #[prost(string, optional, tag = "2")]
    host: Option<String>,
}

#[derive(Clone, PartialEq, Message)]
struct EventSeries {
    #[prost(int32, optional, tag = "1")]
    count: Option<i32>,
    #[prost(message, optional, tag = "2")]
    last_observed_time: Option<Time>,
}

#[derive(Clone, PartialEq, Message)]
struct Event {
    #[prost(message, optional, tag = "1")]
    metadata: Option<ObjectMeta>,
    #[prost(message, optional, tag = "2")]
    involved_object: Option<ObjectReference>,
    #[prost(string, optional, tag = "3")]
    reason: Option<String>,
    #[prost(string, optional, tag = "4")]
    message: Option<String>,
    #[prost(message, optional, tag = "5")]
    source: Option<EventSource>,
    #[prost(message, optional, tag = "6")]
    first_timestamp: Option<Time>,
    #[prost(message, optional, tag = "7")]
    last_timestamp: Option<Time>,
    #[prost(int32, optional, tag = "8")]
    count: Option<i32>,
    #[prost(string, optional, tag = "9")]
    type_: Option<String>,
    #[prost(message, optional, tag = "10")]
    event_time: Option<Time>,
    #[prost(message, optional, tag = "11")]
    series: Option<EventSeries>,
    #[prost(string, optional, tag = "12")]
    action: Option<String>,
    #[prost(message, optional, tag = "13")]
    related: Option<ObjectReference>,
    #[prost(string, optional, tag = "14")]
    reporting_component: Option<String>,
    #[prost(string, optional, tag = "15")]
    reporting_instance: Option<String>,
}

#[derive(Clone, PartialEq, Message)]
struct Lease {
    #[prost(message, optional, tag = "1")]
    metadata: Option<ObjectMeta>,
    #[prost(message, optional, tag = "2")]
    spec: Option<LeaseSpec>,
}

#[derive(Clone, PartialEq, Message)]
struct LeaseSpec {
    #[prost(string, optional, tag = "1")]
    holder_identity: Option<String>,
    #[prost(int32, optional, tag = "2")]
    lease_duration_seconds: Option<i32>,
    #[prost(message, optional, tag = "3")]
    acquire_time: Option<Time>,
    #[prost(message, optional, tag = "4")]
    renew_time: Option<Time>,
    #[prost(int32, optional, tag = "5")]
    lease_transitions: Option<i32>,
    #[prost(string, optional, tag = "6")]
    strategy: Option<String>,
    #[prost(string, optional, tag = "7")]
    preferred_holder: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// `kubectl create namespace team-y`, as kubectl 1.32 sent it.
    const KUBECTL_NAMESPACE: &str = "6b3873000a0f0a02763112094e616d657370616365121e0a160a067465616d2d7912001a0022002a0032003800420012001a020a001a002200";

    /// `kubectl create configmap cm1 --from-literal=a=1 --from-literal=b=two`.
    const KUBECTL_CONFIGMAP: &str = "6b3873000a0f0a0276311209436f6e6669674d617012270a130a03636d3112001a0022002a0032003800420012060a016112013112080a0162120374776f1a002200";

    #[test]
    fn decodes_kubectl_namespace() {
        let v = decode(&unhex(KUBECTL_NAMESPACE)).unwrap();
        assert_eq!(
            v,
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-y"}})
        );
    }

    #[test]
    fn decodes_kubectl_configmap() {
        let v = decode(&unhex(KUBECTL_CONFIGMAP)).unwrap();
        assert_eq!(
            v,
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm1"}, "data": {"a": "1", "b": "two"}})
        );
    }

    fn envelope(api_version: &str, kind: &str, raw: Vec<u8>) -> Vec<u8> {
        let unknown = Unknown {
            type_meta: Some(TypeMeta {
                api_version: Some(api_version.into()),
                kind: Some(kind.into()),
            }),
            raw: Some(raw),
            content_encoding: Some(String::new()),
            content_type: Some(String::new()),
        };
        let mut body = MAGIC.to_vec();
        body.extend(unknown.encode_to_vec());
        body
    }

    fn meta(name: &str) -> Option<ObjectMeta> {
        Some(ObjectMeta {
            name: Some(name.into()),
            namespace: Some("default".into()),
            labels: [("app".to_string(), "web".to_string())].into(),
            owner_references: vec![OwnerReference {
                kind: Some("X".into()),
                name: Some("x".into()),
                uid: Some("u1".into()),
                api_version: Some("v1".into()),
                controller: Some(true),
                block_owner_deletion: None,
            }],
            creation_timestamp: Some(Time {
                seconds: Some(1_700_000_000),
                nanos: Some(0),
            }),
            ..Default::default()
        })
    }

    #[test]
    fn decodes_secret_with_bytes_as_base64() {
        let secret = Secret {
            metadata: meta("s"),
            data: [("password".to_string(), b"s3cret".to_vec())].into(),
            type_: Some("Opaque".into()),
            immutable: Some(true),
            ..Default::default()
        };
        let v = decode(&envelope("v1", "Secret", secret.encode_to_vec())).unwrap();
        assert_eq!(v["data"]["password"], "czNjcmV0");
        assert_eq!(v["type"], "Opaque");
        assert_eq!(v["immutable"], true);
        assert_eq!(v["metadata"]["labels"]["app"], "web");
        assert_eq!(v["metadata"]["creationTimestamp"], "2023-11-14T22:13:20Z");
        assert_eq!(v["metadata"]["ownerReferences"][0]["controller"], true);
    }

    #[test]
    fn decodes_service_account_event_and_lease() {
        let sa = ServiceAccount {
            metadata: meta("sa"),
            secrets: vec![ObjectReference {
                name: Some("tok".into()),
                ..Default::default()
            }],
            automount_service_account_token: Some(false),
            ..Default::default()
        };
        let v = decode(&envelope("v1", "ServiceAccount", sa.encode_to_vec())).unwrap();
        assert_eq!(v["secrets"], json!([{"name": "tok"}]));
        assert_eq!(v["automountServiceAccountToken"], false);

        let event = Event {
            metadata: meta("e"),
            involved_object: Some(ObjectReference {
                kind: Some("Pod".into()),
                name: Some("p".into()),
                ..Default::default()
            }),
            reason: Some("Started".into()),
            count: Some(2),
            event_time: Some(Time {
                seconds: Some(1_700_000_000),
                nanos: Some(123_456_000),
            }),
            ..Default::default()
        };
        let v = decode(&envelope("v1", "Event", event.encode_to_vec())).unwrap();
        assert_eq!(v["involvedObject"], json!({"kind": "Pod", "name": "p"}));
        assert_eq!(v["count"], 2);
        assert_eq!(v["eventTime"], "2023-11-14T22:13:20.123456Z");

        let lease = Lease {
            metadata: meta("l"),
            spec: Some(LeaseSpec {
                holder_identity: Some("me".into()),
                lease_duration_seconds: Some(15),
                ..Default::default()
            }),
        };
        let v = decode(&envelope(
            "coordination.k8s.io/v1",
            "Lease",
            lease.encode_to_vec(),
        ))
        .unwrap();
        assert_eq!(
            v["spec"],
            json!({"holderIdentity": "me", "leaseDurationSeconds": 15})
        );
    }

    #[test]
    fn refuses_what_it_cannot_read() {
        assert!(matches!(decode(b"{}"), Err(ProtobufError::MissingMagic)));
        assert!(matches!(
            decode(b"k8s\0\xff\xff\xff"),
            Err(ProtobufError::Malformed { .. })
        ));
        let err = decode(&envelope("apps/v1", "Deployment", Vec::new())).unwrap_err();
        assert!(err.is_unsupported());
        assert!(err.to_string().contains("apps/v1 Deployment"));
        assert!(decode(&envelope("v1", "ConfigMap", vec![0xff, 0xff])).is_err());
    }
}
