//! Discovery: `/version`, `/api`, `/apis`, `/apis/{group}` and the resource
//! lists of each group version, in the legacy (non-aggregated) format that
//! every client falls back to.

use serde_json::{json, Value};

use crate::resource::Resource;
use crate::status::ApiError;
use crate::Api;

/// The Kubernetes minor version Plinth reports; kubectl warns past ±1 skew.
pub const KUBERNETES_MINOR: &str = "32";

pub fn version() -> Value {
    json!({
        "major": "1",
        "minor": KUBERNETES_MINOR,
        "gitVersion": format!("v1.{KUBERNETES_MINOR}.0-plinth.{}", env!("CARGO_PKG_VERSION")),
        "gitCommit": "",
        "gitTreeState": "clean",
        "buildDate": "",
        "goVersion": "",
        "compiler": "rustc",
        "platform": format!("{}/{}", std::env::consts::OS, std::env::consts::ARCH),
    })
}

pub fn core_versions() -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [],
    })
}

pub fn groups(api: &Api) -> Value {
    let groups: Vec<Value> = api
        .registry
        .groups()
        .into_iter()
        .filter(|g| !g.group.is_empty())
        .map(|g| group_json(&g.group, &g.versions))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

pub fn group(api: &Api, name: &str) -> Result<Value, ApiError> {
    let group = api
        .registry
        .groups()
        .into_iter()
        .find(|g| g.group == name && !name.is_empty())
        .ok_or_else(|| ApiError::unknown_resource(&format!("/apis/{name}")))?;
    let mut value = group_json(&group.group, &group.versions);
    value["kind"] = json!("APIGroup");
    value["apiVersion"] = json!("v1");
    Ok(value)
}

fn group_json(group: &str, versions: &[String]) -> Value {
    let versions: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v}))
        .collect();
    let preferred = versions.first().cloned().unwrap_or(json!({}));
    json!({"name": group, "versions": versions, "preferredVersion": preferred})
}

pub fn resources(api: &Api, group: &str, version: &str) -> Result<Value, ApiError> {
    let resources = api.registry.in_group_version(group, version);
    let group_version = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    if resources.is_empty() {
        return Err(ApiError::unknown_resource(&format!(
            "/apis/{group_version}"
        )));
    }
    let mut list = Vec::new();
    for r in &resources {
        list.push(resource_json(r));
        if r.status_subresource {
            list.push(json!({
                "name": format!("{}/status", r.plural),
                "singularName": "",
                "namespaced": r.namespaced,
                "kind": r.kind,
                "verbs": ["get", "patch", "update"],
            }));
        }
        if r.builtin == Some(crate::builtin::Builtin::ServiceAccount) {
            list.push(json!({
                "name": "serviceaccounts/token",
                "singularName": "",
                "namespaced": true,
                "group": "authentication.k8s.io",
                "version": "v1",
                "kind": "TokenRequest",
                "verbs": ["create"],
            }));
        }
    }
    Ok(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": list,
    }))
}

fn resource_json(r: &Resource) -> Value {
    let mut v = json!({
        "name": r.plural,
        "singularName": r.singular,
        "namespaced": r.namespaced,
        "kind": r.kind,
        "verbs": r.verbs(),
    });
    if !r.short_names.is_empty() {
        v["shortNames"] = json!(r.short_names);
    }
    if !r.categories.is_empty() {
        v["categories"] = json!(r.categories);
    }
    v
}
