//! Dapr for Plinth, as data in and data out:
//! - [`component_crd`]: Dapr's `dapr.io/v1alpha1` `Component` CRD, taken
//!   verbatim from Dapr's Helm chart (`data/`), which `plinth up` serves;
//! - [`Rules`]: components-contrib's metadata for a component type
//!   (`state.postgresql` v1, also verbatim in `data/`), to check that a
//!   Component names only fields the store knows, fills one authentication
//!   profile, and passes every sensitive field through a secret;
//! - [`standalone`]: the files `dapr run --resources-path DIR` needs to use
//!   a claimed store outside Kubernetes: each Component, a
//!   `secretstores.local.file` Component and the JSON file it reads.

use std::collections::BTreeMap;

use serde_json::{json, Value};

const COMPONENT_CRD: &str = include_str!("../data/components.dapr.io.yaml");
const STATE_POSTGRESQL_V1: &str = include_str!("../data/state-postgresql-v1-metadata.yaml");

/// The name of the secret store Component the standalone export writes.
pub const SECRET_STORE: &str = "plinth-secrets";
/// The JSON file that secret store reads.
pub const SECRETS_FILE: &str = "secrets.json";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read the bundled {what}: {cause}")]
    Bundled { what: &'static str, cause: String },
    #[error("cannot print {what} as YAML: {cause}")]
    Print { what: String, cause: String },
    #[error("cannot export Component {component}: {cause}")]
    Export { component: String, cause: String },
}

/// Dapr's Component CRD, as its Helm chart has it.
pub fn component_crd() -> Result<Value, Error> {
    serde_saphyr::from_str(COMPONENT_CRD).map_err(|e| Error::Bundled {
        what: "Dapr Component CRD",
        cause: e.to_string(),
    })
}

/// One metadata field of a component type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub name: String,
    pub required: bool,
    pub sensitive: bool,
}

/// A component type's metadata rules, as components-contrib declares them.
#[derive(Debug, Clone)]
pub struct Rules {
    /// `state.postgresql`.
    pub type_: String,
    pub version: String,
    /// Fields any Component of the type may set.
    pub fields: Vec<Field>,
    /// Ways to authenticate, each with its fields: one must be filled.
    pub profiles: Vec<(String, Vec<Field>)>,
}

fn fields(list: Option<&Value>) -> Vec<Field> {
    list.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|f| {
            Some(Field {
                name: f.get("name")?.as_str()?.to_string(),
                required: f.get("required").and_then(Value::as_bool).unwrap_or(false),
                sensitive: f.get("sensitive").and_then(Value::as_bool).unwrap_or(false),
            })
        })
        .collect()
}

impl Rules {
    /// The rules of the PostgreSQL state store, v1.
    pub fn state_postgresql_v1() -> Result<Rules, Error> {
        let doc: Value =
            serde_saphyr::from_str(STATE_POSTGRESQL_V1).map_err(|e| Error::Bundled {
                what: "state.postgresql v1 metadata",
                cause: e.to_string(),
            })?;
        let text = |k: &str| {
            doc.get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let mut profiles: Vec<(String, Vec<Field>)> = doc
            .get("authenticationProfiles")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|p| {
                (
                    p.get("title")
                        .and_then(Value::as_str)
                        .unwrap_or("profile")
                        .to_string(),
                    fields(p.get("metadata")),
                )
            })
            .collect();
        // The shared profiles (Azure AD, AWS IAM) add the fields this store
        // lists for them; the shared fields themselves are not in this file,
        // so only what it names can be checked.
        profiles.extend(
            doc.get("builtinAuthenticationProfiles")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|p| {
                    (
                        p.get("name")
                            .and_then(Value::as_str)
                            .unwrap_or("builtin")
                            .to_string(),
                        fields(p.get("metadata")),
                    )
                }),
        );
        Ok(Rules {
            type_: format!("{}.{}", text("type"), text("name")),
            version: text("version"),
            fields: fields(doc.get("metadata")),
            profiles,
        })
    }

    fn field(&self, name: &str) -> Option<&Field> {
        // Dapr reads metadata names case-insensitively.
        self.fields
            .iter()
            .chain(self.profiles.iter().flat_map(|(_, f)| f))
            .find(|f| f.name.eq_ignore_ascii_case(name))
    }

    /// What is wrong with a Component of this type, each naming the field.
    pub fn check(&self, component: &Value) -> Vec<String> {
        let mut problems = Vec::new();
        let spec_type = component
            .pointer("/spec/type")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if spec_type != self.type_ {
            problems.push(format!(
                "spec.type: Invalid value: \"{spec_type}\": these rules are for {}",
                self.type_
            ));
        }
        let version = component
            .pointer("/spec/version")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if version != self.version {
            problems.push(format!(
                "spec.version: Invalid value: \"{version}\": these rules are for {}",
                self.version
            ));
        }
        let items = component
            .pointer("/spec/metadata")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let mut set = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let at = format!("spec.metadata[{i}]");
            let Some(name) = item.get("name").and_then(Value::as_str) else {
                problems.push(format!("{at}.name: Required value"));
                continue;
            };
            let sources = ["value", "secretKeyRef", "envRef"]
                .iter()
                .filter(|s| item.get(**s).is_some())
                .count();
            if sources != 1 {
                problems.push(format!("{at}: Invalid value: \"{name}\" must have exactly one of value, secretKeyRef or envRef"));
            }
            match self.field(name) {
                None => problems.push(format!("{at}.name: Unsupported value: \"{name}\": {} {} has no such metadata field", self.type_, self.version)),
                Some(f) if f.sensitive && item.get("secretKeyRef").is_none() => problems.push(format!(
                    "{at}: Invalid value: \"{name}\" is sensitive and must come through secretKeyRef, not a plain value"
                )),
                Some(_) => {}
            }
            if let Some(reference) = item.get("secretKeyRef") {
                if reference
                    .get("name")
                    .and_then(Value::as_str)
                    .is_none_or(str::is_empty)
                {
                    problems.push(format!("{at}.secretKeyRef.name: Required value"));
                }
            }
            set.push(name.to_ascii_lowercase());
        }
        for f in &self.fields {
            if f.required && !set.contains(&f.name.to_ascii_lowercase()) {
                problems.push(format!("spec.metadata: Required value: \"{}\"", f.name));
            }
        }
        let filled = |profile: &[Field]| {
            profile
                .iter()
                .filter(|f| f.required)
                .all(|f| set.contains(&f.name.to_ascii_lowercase()))
        };
        if !self.profiles.is_empty() && !self.profiles.iter().any(|(_, p)| filled(p)) {
            let names: Vec<String> = self
                .profiles
                .iter()
                .map(|(title, p)| {
                    let required: Vec<&str> = p
                        .iter()
                        .filter(|f| f.required)
                        .map(|f| f.name.as_str())
                        .collect();
                    format!("{title} ({})", required.join(", "))
                })
                .collect();
            problems.push(format!(
                "spec.metadata: Required value: no authentication profile is complete; one of: {}",
                names.join("; ")
            ));
        }
        problems
    }
}

/// The standalone-mode files for `components` of one namespace, whose
/// `secretKeyRef`s are resolved in `secrets` (Secret name → key → value).
/// `dir` is where the files will be, so the secret store can name its
/// JSON file by absolute path (Dapr resolves a relative one from the
/// directory `dapr run` starts in). Returns (file name, contents), the
/// secrets file last.
pub fn standalone(
    components: &[Value],
    secrets: &BTreeMap<String, BTreeMap<String, String>>,
    dir: &str,
) -> Result<Vec<(String, String)>, Error> {
    let mut files = Vec::new();
    let mut used: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for component in components {
        let name = component
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let fail = |cause: String| Error::Export {
            component: name.clone(),
            cause,
        };
        for item in component
            .pointer("/spec/metadata")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let Some(reference) = item.get("secretKeyRef") else {
                continue;
            };
            let secret = reference
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let field = item.get("name").and_then(Value::as_str).unwrap_or_default();
            let key = reference
                .get("key")
                .and_then(Value::as_str)
                .filter(|k| !k.is_empty())
                .unwrap_or(secret);
            let value = secrets
                .get(secret)
                .and_then(|data| data.get(key))
                .ok_or_else(|| fail(format!("metadata {field} reads key {key:?} of Secret {secret:?}, which does not exist (is the claim Ready?)")))?;
            used.entry(secret.to_string())
                .or_default()
                .insert(key.to_string(), value.clone());
        }
        // What Dapr reads in standalone mode: no namespace (that filters by
        // $NAMESPACE), none of the object's server-side metadata, and the
        // secret store named, since standalone mode has no default one.
        let mut out = json!({
            "apiVersion": "dapr.io/v1alpha1",
            "kind": "Component",
            "metadata": {"name": name},
            "spec": component.get("spec").cloned().unwrap_or_else(|| json!({})),
            "auth": {"secretStore": SECRET_STORE}
        });
        if let Some(scopes) = component.get("scopes") {
            out["scopes"] = scopes.clone();
        }
        files.push((format!("{name}.yaml"), print(&name, &out)?));
    }
    let store = json!({
        "apiVersion": "dapr.io/v1alpha1",
        "kind": "Component",
        "metadata": {"name": SECRET_STORE},
        "spec": {
            "type": "secretstores.local.file",
            "version": "v1",
            "metadata": [
                {"name": "secretsFile", "value": format!("{}/{SECRETS_FILE}", dir.trim_end_matches('/'))},
                // Each top-level key is one secret holding several keys, so
                // secretKeyRef {name, key} reads as it does in Kubernetes.
                {"name": "multiValued", "value": "true"}
            ]
        }
    });
    files.push((format!("{SECRET_STORE}.yaml"), print(SECRET_STORE, &store)?));
    let json = serde_json::to_string_pretty(&used).map_err(|e| Error::Print {
        what: SECRETS_FILE.into(),
        cause: e.to_string(),
    })?;
    files.push((SECRETS_FILE.to_string(), format!("{json}\n")));
    Ok(files)
}

fn print(name: &str, value: &Value) -> Result<String, Error> {
    serde_saphyr::to_string(value).map_err(|e| Error::Print {
        what: name.to_string(),
        cause: e.to_string(),
    })
}

#[cfg(test)]
mod tests;
