//! What kube-apiserver's registry strategies and `ValidateX` functions do to
//! built-in kinds once their shape has passed the structural schema:
//! server-side normalization (timestamps, `stringData`, the namespace name
//! label) and the semantic checks (config keys, Secret types, sizes,
//! immutability, Lease and Event rules), with upstream's paths and messages.

use std::collections::BTreeSet;

use apimachinery::{CauseType, FieldError};
use base64::Engine;
use serde_json::{json, Map, Value};

use super::Builtin;

/// Label every namespace carries with its own name, so namespace selectors can pick one by name.
pub const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// `corev1.MaxSecretSize`, which upstream applies to ConfigMaps as well.
pub const MAX_DATA_BYTES: usize = 1024 * 1024;

/// `corev1.SecretTypeOpaque`, the default type.
const SECRET_TYPE_OPAQUE: &str = "Opaque";

/// Secret types with required keys (`k8s.io/api/core/v1` constants).
mod secret_type {
    pub const SERVICE_ACCOUNT_TOKEN: &str = "kubernetes.io/service-account-token";
    pub const DOCKERCFG: &str = "kubernetes.io/dockercfg";
    pub const DOCKER_CONFIG_JSON: &str = "kubernetes.io/dockerconfigjson";
    pub const BASIC_AUTH: &str = "kubernetes.io/basic-auth";
    pub const SSH_AUTH: &str = "kubernetes.io/ssh-auth";
    pub const TLS: &str = "kubernetes.io/tls";
}

/// The annotation a service-account-token Secret names its account with.
const SERVICE_ACCOUNT_NAME_ANNOTATION: &str = "kubernetes.io/service-account.name";

/// Upstream's limits on new-style Events (`validation.go`).
const EVENT_REPORTING_INSTANCE_LIMIT: usize = 128;
const EVENT_ACTION_LIMIT: usize = 128;
const EVENT_REASON_LIMIT: usize = 128;
const EVENT_NOTE_LIMIT: usize = 1024;

const IMMUTABLE_WHEN_SET: &str = "Forbidden: field is immutable when `immutable` is set";

/// Drops `null`s, as decoding into Go structs does: a `null` field is an unset field.
pub fn drop_nulls(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            for v in map.values_mut() {
                drop_nulls(v);
            }
        }
        Value::Array(items) => {
            for item in items {
                drop_nulls(item);
            }
        }
        _ => {}
    }
}

/// What the registry strategy does before validation: fold `stringData` into
/// `data`, default the Secret type, label namespaces with their name, and
/// write timestamps the way Go marshals `metav1.Time` and `metav1.MicroTime`.
pub fn normalize(kind: Builtin, obj: &mut Value) {
    match kind {
        Builtin::Secret => {
            let string_data = obj.as_object_mut().and_then(|m| m.remove("stringData"));
            if let Some(Value::Object(string_data)) = string_data {
                let mut data = obj
                    .get("data")
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default();
                for (k, v) in string_data {
                    if let Value::String(text) = v {
                        data.insert(
                            k,
                            json!(base64::engine::general_purpose::STANDARD.encode(text)),
                        );
                    }
                }
                obj["data"] = Value::Object(data);
            }
            if obj
                .get("type")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
            {
                obj["type"] = json!(SECRET_TYPE_OPAQUE);
            }
        }
        Builtin::Namespace => {
            let name = obj
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
                let labels = meta
                    .entry("labels")
                    .or_insert_with(|| Value::Object(Map::new()));
                if let Some(labels) = labels.as_object_mut() {
                    labels.insert(NAMESPACE_NAME_LABEL.into(), json!(name));
                }
            }
            if let Some(Value::Array(conditions)) = obj.pointer_mut("/status/conditions") {
                for condition in conditions {
                    normalize_time(condition.get_mut("lastTransitionTime"), false);
                }
            }
        }
        Builtin::Event => {
            normalize_time(obj.get_mut("firstTimestamp"), false);
            normalize_time(obj.get_mut("lastTimestamp"), false);
            normalize_time(obj.get_mut("eventTime"), true);
            normalize_time(obj.pointer_mut("/series/lastObservedTime"), true);
        }
        Builtin::Lease => {
            normalize_time(obj.pointer_mut("/spec/acquireTime"), true);
            normalize_time(obj.pointer_mut("/spec/renewTime"), true);
        }
        _ => {}
    }
}

/// Rewrites an RFC 3339 timestamp in UTC, with whole seconds (`metav1.Time`)
/// or six fractional digits (`metav1.MicroTime`), as Go marshals them. The
/// schema has already checked the format; anything jiff cannot read is left.
fn normalize_time(value: Option<&mut Value>, micro: bool) {
    let Some(value) = value else { return };
    let Some(text) = value.as_str() else { return };
    if let Some(normalized) = format_time(text, micro) {
        *value = Value::String(normalized);
    }
}

fn format_time(text: &str, micro: bool) -> Option<String> {
    let ts: jiff::Timestamp = text.parse().ok()?;
    let utc = ts.to_zoned(jiff::tz::TimeZone::UTC).datetime();
    let base = utc.strftime("%Y-%m-%dT%H:%M:%S").to_string();
    Some(if micro {
        format!("{base}.{:06}Z", utc.subsec_nanosecond() / 1000)
    } else {
        format!("{base}Z")
    })
}

/// Kind-specific validation of a normalized object; `old` is set on updates.
pub fn validate(kind: Builtin, obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let mut errors = Vec::new();
    match kind {
        Builtin::ConfigMap => validate_config_map(obj, old, &mut errors),
        Builtin::Secret => validate_secret(obj, old, &mut errors),
        Builtin::Lease => validate_lease(obj, &mut errors),
        Builtin::Event => validate_event(obj, &mut errors),
        Builtin::Role => super::rbac_rules::validate_rules(obj, true, &mut errors),
        Builtin::ClusterRole => super::rbac_rules::validate_rules(obj, false, &mut errors),
        Builtin::RoleBinding => super::rbac_rules::validate_binding(obj, old, true, &mut errors),
        Builtin::ClusterRoleBinding => {
            super::rbac_rules::validate_binding(obj, old, false, &mut errors)
        }
        _ => {}
    }
    errors
}

fn map<'a>(obj: &'a Value, field: &str) -> Option<&'a Map<String, Value>> {
    obj.get(field).and_then(Value::as_object)
}

/// A map field, with an empty map and an absent one the same, since neither survives a round trip.
fn same_map(a: &Value, b: &Value, field: &str) -> bool {
    let empty = Map::new();
    map(a, field).unwrap_or(&empty) == map(b, field).unwrap_or(&empty)
}

fn is_immutable(obj: &Value) -> bool {
    obj.get("immutable").and_then(Value::as_bool) == Some(true)
}

fn decoded_len(value: &Value) -> usize {
    value
        .as_str()
        .and_then(|s| base64::engine::general_purpose::STANDARD.decode(s).ok())
        .map_or(0, |bytes| bytes.len())
}

/// `validation.IsConfigMapKey`.
fn check_config_key(field: &str, key: &str, errors: &mut Vec<FieldError>) {
    let invalid = |message: &str| {
        FieldError::new(
            CauseType::Invalid,
            format!("{field}[{key}]"),
            format!("Invalid value: {}: {message}", quote(key)),
        )
    };
    if key.len() > 253 {
        errors.push(invalid("must be no more than 253 characters"));
    }
    if key.is_empty()
        || !key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        errors.push(invalid("a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"));
    }
    if key == "." {
        errors.push(invalid("must not be '.'"));
    } else if key == ".." {
        errors.push(invalid("must not be '..'"));
    } else if key.starts_with("..") {
        errors.push(invalid("must not start with '..'"));
    }
}

fn too_long(field: &str) -> FieldError {
    FieldError::new(
        CauseType::Invalid,
        field,
        format!("Too long: must have at most {MAX_DATA_BYTES} bytes"),
    )
}

fn validate_config_map(obj: &Value, old: Option<&Value>, errors: &mut Vec<FieldError>) {
    let mut total = 0;
    let data_keys: BTreeSet<&str> = map(obj, "data")
        .map(|m| m.keys().map(String::as_str).collect())
        .unwrap_or_default();
    if let Some(data) = map(obj, "data") {
        for (key, value) in data {
            check_config_key("data", key, errors);
            total += value.as_str().map_or(0, str::len);
        }
    }
    if let Some(binary) = map(obj, "binaryData") {
        for (key, value) in binary {
            check_config_key("binaryData", key, errors);
            if data_keys.contains(key.as_str()) {
                errors.push(FieldError::new(
                    CauseType::Invalid,
                    format!("binaryData[{key}]"),
                    format!(
                        "Invalid value: {}: duplicate of key present in data",
                        quote(key)
                    ),
                ));
            }
            total += decoded_len(value);
        }
    }
    if total > MAX_DATA_BYTES {
        errors.push(too_long("data"));
    }
    if let Some(old) = old.filter(|old| is_immutable(old)) {
        if !is_immutable(obj) {
            errors.push(forbidden("immutable", IMMUTABLE_WHEN_SET));
        }
        if !same_map(obj, old, "data") {
            errors.push(forbidden("data", IMMUTABLE_WHEN_SET));
        }
        if !same_map(obj, old, "binaryData") {
            errors.push(forbidden("binaryData", IMMUTABLE_WHEN_SET));
        }
    }
}

fn validate_secret(obj: &Value, old: Option<&Value>, errors: &mut Vec<FieldError>) {
    let empty = Map::new();
    let data = map(obj, "data").unwrap_or(&empty);
    let mut total = 0;
    for (key, value) in data {
        check_config_key("data", key, errors);
        total += decoded_len(value);
    }
    if total > MAX_DATA_BYTES {
        errors.push(too_long("data"));
    }
    let type_ = obj
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or(SECRET_TYPE_OPAQUE);
    let require = |key: &str, errors: &mut Vec<FieldError>| {
        if !data.contains_key(key) {
            errors.push(FieldError::new(
                CauseType::Required,
                format!("data[{key}]"),
                "Required value",
            ));
        }
    };
    match type_ {
        secret_type::SERVICE_ACCOUNT_TOKEN => {
            let named = obj
                .pointer("/metadata/annotations")
                .and_then(|a| a.get(SERVICE_ACCOUNT_NAME_ANNOTATION))
                .and_then(Value::as_str)
                .is_some_and(|s| !s.is_empty());
            if !named {
                errors.push(FieldError::new(
                    CauseType::Required,
                    format!("metadata.annotations[{SERVICE_ACCOUNT_NAME_ANNOTATION}]"),
                    "Required value",
                ));
            }
        }
        secret_type::DOCKERCFG => docker_config(data, ".dockercfg", errors),
        secret_type::DOCKER_CONFIG_JSON => docker_config(data, ".dockerconfigjson", errors),
        secret_type::BASIC_AUTH
            if !data.contains_key("username") && !data.contains_key("password") =>
        {
            require("username", errors);
            require("password", errors);
        }
        secret_type::SSH_AUTH => require("ssh-privatekey", errors),
        secret_type::TLS => {
            require("tls.crt", errors);
            require("tls.key", errors);
        }
        _ => {}
    }
    if let Some(old) = old {
        let old_type = old
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or(SECRET_TYPE_OPAQUE);
        if old_type != type_ {
            errors.push(FieldError::new(
                CauseType::Invalid,
                "type",
                format!("Invalid value: {}: field is immutable", quote(type_)),
            ));
        }
        if is_immutable(old) {
            if !is_immutable(obj) {
                errors.push(forbidden("immutable", IMMUTABLE_WHEN_SET));
            }
            // stringData was folded into data before this point, so comparing data covers it.
            if !same_map(obj, old, "data") {
                errors.push(forbidden("data", IMMUTABLE_WHEN_SET));
            }
        }
    }
}

/// The Docker config types need their key, holding JSON.
fn docker_config(data: &Map<String, Value>, key: &str, errors: &mut Vec<FieldError>) {
    let field = format!("data[{key}]");
    let Some(value) = data.get(key) else {
        errors.push(FieldError::new(
            CauseType::Required,
            field,
            "Required value",
        ));
        return;
    };
    let bytes = value
        .as_str()
        .and_then(|s| base64::engine::general_purpose::STANDARD.decode(s).ok())
        .unwrap_or_default();
    if let Err(e) = serde_json::from_slice::<Value>(&bytes) {
        errors.push(FieldError::new(
            CauseType::Invalid,
            field,
            format!("Invalid value: \"<secret contents redacted>\": {e}"),
        ));
    }
}

fn validate_lease(obj: &Value, errors: &mut Vec<FieldError>) {
    let spec = |f: &str| obj.pointer(&format!("/spec/{f}"));
    if let Some(n) = spec("leaseDurationSeconds").and_then(Value::as_i64) {
        if n <= 0 {
            errors.push(FieldError::new(
                CauseType::Invalid,
                "spec.leaseDurationSeconds",
                format!("Invalid value: {n}: must be greater than 0"),
            ));
        }
    }
    if let Some(n) = spec("leaseTransitions").and_then(Value::as_i64) {
        if n < 0 {
            errors.push(FieldError::new(
                CauseType::Invalid,
                "spec.leaseTransitions",
                format!("Invalid value: {n}: must be greater than or equal to 0"),
            ));
        }
    }
    let text = |f: &str| spec(f).and_then(Value::as_str).unwrap_or("");
    if !text("preferredHolder").is_empty() && text("strategy").is_empty() {
        errors.push(forbidden(
            "spec.preferredHolder",
            "Forbidden: may only be specified if `strategy` is defined",
        ));
    }
}

/// `legacyValidateEvent`: what core/v1 Events must satisfy. Events with an
/// `eventTime` are new-style and must say who reported them and what they did.
fn validate_event(obj: &Value, errors: &mut Vec<FieldError>) {
    let text = |path: &str| obj.pointer(path).and_then(Value::as_str).unwrap_or("");
    let namespace = text("/metadata/namespace");
    let involved_namespace = text("/involvedObject/namespace");
    let mismatch = || {
        FieldError::new(
            CauseType::Invalid,
            "involvedObject.namespace",
            format!(
                "Invalid value: {}: does not match event.namespace",
                quote(involved_namespace)
            ),
        )
    };
    if text("/eventTime").is_empty() {
        if involved_namespace.is_empty() {
            // Events about cluster-scoped objects live in "default", for old clients.
            if !namespace.is_empty() && namespace != "default" {
                errors.push(mismatch());
            }
        } else if namespace != involved_namespace {
            errors.push(mismatch());
        }
        return;
    }
    if involved_namespace.is_empty() && namespace != "default" && namespace != "kube-system" {
        errors.push(mismatch());
    }
    let required = |field: &str, errors: &mut Vec<FieldError>| {
        errors.push(FieldError::new(
            CauseType::Required,
            field,
            "Required value",
        ))
    };
    let limited = |field: &str, limit: usize, errors: &mut Vec<FieldError>| {
        if text(&format!("/{field}")).chars().count() > limit {
            errors.push(FieldError::new(
                CauseType::Invalid,
                field,
                format!("Invalid value: \"\": can have at most {limit} characters"),
            ));
        }
    };
    let reporting = text("/reportingComponent");
    if reporting.is_empty() {
        required("reportingComponent", errors);
    } else if let Err(message) = crate::object::check_qualified_name(reporting) {
        errors.push(FieldError::new(
            CauseType::Invalid,
            "reportingComponent",
            format!("Invalid value: {}: {message}", quote(reporting)),
        ));
    }
    if text("/reportingInstance").is_empty() {
        required("reportingInstance", errors);
    }
    limited("reportingInstance", EVENT_REPORTING_INSTANCE_LIMIT, errors);
    if text("/action").is_empty() {
        required("action", errors);
    }
    limited("action", EVENT_ACTION_LIMIT, errors);
    if text("/reason").is_empty() {
        required("reason", errors);
    }
    limited("reason", EVENT_REASON_LIMIT, errors);
    limited("message", EVENT_NOTE_LIMIT, errors);
}

fn forbidden(field: &str, message: &str) -> FieldError {
    FieldError::new(CauseType::Forbidden, field, message)
}

/// Quotes like Go's `%q` closely enough for messages.
fn quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("\"{s}\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(errors: &[FieldError]) -> Vec<&str> {
        errors.iter().map(|e| e.field.as_str()).collect()
    }

    #[test]
    fn times_are_written_as_go_marshals_them() {
        let cases = [
            ("2024-05-01T10:00:00Z", false, "2024-05-01T10:00:00Z"),
            (
                "2024-05-01T12:00:00.75+02:00",
                false,
                "2024-05-01T10:00:00Z",
            ),
            ("2024-05-01T10:00:00Z", true, "2024-05-01T10:00:00.000000Z"),
            (
                "2024-05-01T10:00:00.1234567Z",
                true,
                "2024-05-01T10:00:00.123456Z",
            ),
            (
                "2024-05-01T11:30:00.5+01:30",
                true,
                "2024-05-01T10:00:00.500000Z",
            ),
        ];
        for (input, micro, want) in cases {
            assert_eq!(
                format_time(input, micro).as_deref(),
                Some(want),
                "{input} micro={micro}"
            );
        }
    }

    #[test]
    fn config_map_rules() {
        struct Case {
            reason: &'static str,
            obj: Value,
            old: Option<Value>,
            want: Vec<&'static str>,
        }
        let big = "a".repeat(MAX_DATA_BYTES + 1);
        let cases = [
            Case {
                reason: "valid keys pass",
                obj: json!({"data": {"a.b_C-1": "x"}, "binaryData": {"bin": "eA=="}}),
                old: None,
                want: vec![],
            },
            Case {
                reason: "keys with spaces or slashes are refused",
                obj: json!({"data": {"a b": "x", "a/b": "y"}, "binaryData": {"..x": "eA=="}}),
                old: None,
                want: vec!["data[a b]", "data[a/b]", "binaryData[..x]"],
            },
            Case {
                reason: "a key in both data and binaryData is refused",
                obj: json!({"data": {"k": "x"}, "binaryData": {"k": "eA=="}}),
                old: None,
                want: vec!["binaryData[k]"],
            },
            Case {
                reason: "more than 1 MiB of data is refused",
                obj: json!({"data": {"k": big}}),
                old: None,
                want: vec!["data"],
            },
            Case {
                reason: "an immutable ConfigMap keeps its data and stays immutable",
                obj: json!({"data": {"k": "changed"}, "binaryData": {"b": "eA=="}}),
                old: Some(json!({"immutable": true, "data": {"k": "v"}})),
                want: vec!["immutable", "data", "binaryData"],
            },
            Case {
                reason: "metadata may change on an immutable ConfigMap",
                obj: json!({"metadata": {"labels": {"a": "b"}}, "immutable": true, "data": {"k": "v"}}),
                old: Some(json!({"immutable": true, "data": {"k": "v"}})),
                want: vec![],
            },
        ];
        for case in cases {
            let errors = validate(Builtin::ConfigMap, &case.obj, case.old.as_ref());
            assert_eq!(fields(&errors), case.want, "{}: {errors:?}", case.reason);
        }
    }

    #[test]
    fn secret_rules() {
        struct Case {
            reason: &'static str,
            obj: Value,
            old: Option<Value>,
            want: Vec<&'static str>,
        }
        let cases = [
            Case {
                reason: "an Opaque secret with good keys passes",
                obj: json!({"type": "Opaque", "data": {"k": "eA=="}}),
                old: None,
                want: vec![],
            },
            Case {
                reason: "a TLS secret needs tls.crt and tls.key",
                obj: json!({"type": "kubernetes.io/tls", "data": {"other": "eA=="}}),
                old: None,
                want: vec!["data[tls.crt]", "data[tls.key]"],
            },
            Case {
                reason: "a TLS secret with both keys passes",
                obj: json!({"type": "kubernetes.io/tls", "data": {"tls.crt": "eA==", "tls.key": "eA=="}}),
                old: None,
                want: vec![],
            },
            Case {
                reason: "the type cannot change",
                obj: json!({"type": "kubernetes.io/basic-auth", "data": {"username": "eA=="}}),
                old: Some(json!({"type": "Opaque", "data": {"username": "eA=="}})),
                want: vec!["type"],
            },
            Case {
                reason: "an immutable secret keeps its data",
                obj: json!({"type": "Opaque", "immutable": true, "data": {"k": "eQ=="}}),
                old: Some(json!({"type": "Opaque", "immutable": true, "data": {"k": "eA=="}})),
                want: vec!["data"],
            },
            Case {
                reason: "a dockerconfigjson secret needs JSON under its key",
                obj: json!({"type": "kubernetes.io/dockerconfigjson", "data": {".dockerconfigjson": "eA=="}}),
                old: None,
                want: vec!["data[.dockerconfigjson]"],
            },
            Case {
                reason: "a service-account-token secret names its account",
                obj: json!({"type": "kubernetes.io/service-account-token"}),
                old: None,
                want: vec!["metadata.annotations[kubernetes.io/service-account.name]"],
            },
        ];
        for case in cases {
            let errors = validate(Builtin::Secret, &case.obj, case.old.as_ref());
            assert_eq!(fields(&errors), case.want, "{}: {errors:?}", case.reason);
        }
    }

    #[test]
    fn lease_and_event_rules() {
        let errors = validate(
            Builtin::Lease,
            &json!({"spec": {"leaseDurationSeconds": 0, "leaseTransitions": -1, "preferredHolder": "x"}}),
            None,
        );
        assert_eq!(
            fields(&errors),
            vec![
                "spec.leaseDurationSeconds",
                "spec.leaseTransitions",
                "spec.preferredHolder"
            ]
        );
        let event = |ns: &str, involved: Value| json!({"metadata": {"namespace": ns}, "involvedObject": involved, "reason": "R"});
        let cases = [
            ("default", json!({"kind": "Node", "name": "n"}), 0),
            ("other", json!({"kind": "Node", "name": "n"}), 1),
            (
                "team",
                json!({"kind": "Pod", "name": "p", "namespace": "team"}),
                0,
            ),
            (
                "team",
                json!({"kind": "Pod", "name": "p", "namespace": "else"}),
                1,
            ),
        ];
        for (ns, involved, want) in cases {
            let errors = validate(Builtin::Event, &event(ns, involved.clone()), None);
            assert_eq!(errors.len(), want, "{ns} {involved}: {errors:?}");
        }
        let new_style = json!({"metadata": {"namespace": "default"}, "eventTime": "2024-05-01T10:00:00.000000Z"});
        assert_eq!(
            fields(&validate(Builtin::Event, &new_style, None)),
            vec![
                "reportingComponent",
                "reportingInstance",
                "action",
                "reason"
            ]
        );
    }

    #[test]
    fn normalize_folds_string_data_and_labels_namespaces() {
        let mut secret = json!({"data": {"a": "eA=="}, "stringData": {"b": "y"}});
        normalize(Builtin::Secret, &mut secret);
        assert_eq!(
            secret,
            json!({"data": {"a": "eA==", "b": "eQ=="}, "type": "Opaque"})
        );
        let mut ns =
            json!({"metadata": {"name": "team", "labels": {NAMESPACE_NAME_LABEL: "forged"}}});
        normalize(Builtin::Namespace, &mut ns);
        assert_eq!(ns["metadata"]["labels"][NAMESPACE_NAME_LABEL], "team");
        let mut value = json!({"a": null, "b": {"c": null, "d": [1, null]}});
        drop_nulls(&mut value);
        assert_eq!(value, json!({"b": {"d": [1, null]}}));
    }
}
