//! `plinth validate`: checks manifests offline against the schemas of the
//! built-in APIs and of any XRDs among the files, as the API server would.

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::{Context, Result};
use apimachinery::schema::StructuralSchema;
use clap::Args;
use serde_json::Value;

#[derive(Args, Debug, Clone)]
pub struct ValidateArgs {
    /// YAML files, each with one or more documents.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

/// `apiVersion/kind` → the schema of that kind.
fn schemas(crds: &[Value]) -> Result<HashMap<String, StructuralSchema>> {
    let mut out = HashMap::new();
    for crd in crds {
        let group = crd
            .pointer("/spec/group")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let kind = crd
            .pointer("/spec/names/kind")
            .and_then(Value::as_str)
            .unwrap_or_default();
        for v in crd
            .pointer("/spec/versions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let (Some(version), Some(schema)) = (
                v.get("name").and_then(Value::as_str),
                v.pointer("/schema/openAPIV3Schema"),
            ) else {
                continue;
            };
            let s = StructuralSchema::new(schema, "").map_err(|errs| {
                anyhow::anyhow!(
                    "the schema of {kind}.{group} is not structural: {}",
                    errs[0]
                )
            })?;
            out.insert(format!("{group}/{version}/{kind}"), s);
        }
    }
    Ok(out)
}

pub fn run(args: ValidateArgs) -> Result<bool> {
    let mut docs = Vec::new();
    for path in &args.files {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let parsed: Vec<Value> = serde_saphyr::from_multiple(&text)
            .with_context(|| format!("{} is not valid YAML", path.display()))?;
        for (i, doc) in parsed.into_iter().enumerate().filter(|(_, d)| !d.is_null()) {
            docs.push((format!("{}#{}", path.display(), i + 1), doc));
        }
    }
    let mut crds = composite::crds::composition_api();
    for (xrd, _) in [composite::builtin::dbaas(), composite::builtin::compute()] {
        crds.push(composite::crds::composite(&xrd).map_err(anyhow::Error::msg)?);
        crds.extend(composite::crds::claim(&xrd).map_err(anyhow::Error::msg)?);
    }
    // Problems an XRD has that keep it from defining its kinds.
    let mut xrd_problems: HashMap<String, Vec<String>> = HashMap::new();
    for (place, doc) in &docs {
        if doc.get("kind").and_then(Value::as_str) == Some("CompositeResourceDefinition") {
            match composite::crds::composite(doc) {
                Ok(xr) => crds.push(xr),
                Err(e) => xrd_problems.entry(place.clone()).or_default().push(e),
            }
            match composite::crds::claim(doc) {
                Ok(Some(claim)) => crds.push(claim),
                Ok(None) => {}
                Err(e) => xrd_problems.entry(place.clone()).or_default().push(e),
            }
        }
    }
    let schemas = schemas(&crds)?;
    let mut ok = true;
    for (place, doc) in &docs {
        let name = doc
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("<no name>");
        let (Some(api_version), Some(kind)) = (
            doc.get("apiVersion")
                .and_then(Value::as_str)
                .filter(|v| !v.is_empty()),
            doc.get("kind")
                .and_then(Value::as_str)
                .filter(|k| !k.is_empty()),
        ) else {
            ok = false;
            for field in ["apiVersion", "kind"] {
                if doc
                    .get(field)
                    .and_then(Value::as_str)
                    .is_none_or(str::is_empty)
                {
                    println!("{place}: {name}: {field}: Required value: every manifest needs apiVersion and kind");
                }
            }
            continue;
        };
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        let Some(schema) = schemas.get(&format!("{group}/{version}/{kind}")) else {
            println!("{place}: {kind}/{name}: not checked: {api_version} {kind} is neither built in nor defined by an XRD in these files");
            continue;
        };
        let mut obj = doc.clone();
        schema.apply_defaults(&mut obj);
        let mut problems: Vec<String> = schema
            .validate(&obj)
            .into_iter()
            .map(|e| e.to_string())
            .collect();
        problems.extend(
            schema
                .prune(&mut obj)
                .into_iter()
                .map(|f| format!("{f}: unknown field")),
        );
        if group == composite::names::GROUP && kind == composite::names::COMPOSITION_KIND {
            problems.extend(composition::validate::composition(&obj));
        }
        if let Some(more) = xrd_problems.get(place) {
            problems.extend(more.iter().cloned());
        }
        // The schema and the Composition checks may both see one problem.
        let mut seen = std::collections::HashSet::new();
        problems.retain(|p| seen.insert(p.clone()));
        if problems.is_empty() {
            println!("{place}: {kind}/{name}: valid");
        } else {
            ok = false;
            for p in problems {
                println!("{place}: {kind}/{name}: {p}");
            }
        }
    }
    Ok(ok)
}
