//! `plinth render`: a composite resource and a Composition in, the composed
//! resources out, offline, like `crossplane render`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;
use composition::Observed;
use serde_json::Value;

#[derive(Args, Debug, Clone)]
pub struct RenderArgs {
    /// The composite resource (XR), as YAML.
    pub composite: PathBuf,
    /// The Composition, as YAML.
    pub composition: PathBuf,
    /// Composed resources as they are observed (YAML, several documents), so
    /// ToComposite patches, readiness and connection details can be shown.
    #[arg(long, visible_alias = "observed-resources")]
    pub observed: Option<PathBuf>,
}

fn read_documents(path: &PathBuf) -> Result<Vec<Value>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let docs: Vec<Value> = serde_saphyr::from_multiple(&text)
        .with_context(|| format!("{} is not valid YAML", path.display()))?;
    Ok(docs.into_iter().filter(|d| !d.is_null()).collect())
}

fn read_one(path: &PathBuf, what: &str) -> Result<Value> {
    let mut docs = read_documents(path)?;
    match docs.len() {
        1 => Ok(docs.remove(0)),
        0 => bail!("{} holds no {what}", path.display()),
        n => bail!("{} holds {n} documents; give one {what}", path.display()),
    }
}

pub fn run(args: RenderArgs) -> Result<()> {
    let xr = read_one(&args.composite, "composite resource")?;
    let composition = read_one(&args.composition, "Composition")?;
    let mut observed = BTreeMap::new();
    if let Some(path) = &args.observed {
        for doc in read_documents(path)? {
            let template = doc
                .pointer(&format!(
                    "/metadata/annotations/{}",
                    composition::render::ANNOTATION_RESOURCE_NAME.replace('/', "~1")
                ))
                .and_then(Value::as_str)
                .map(str::to_string)
                .with_context(|| {
                    format!(
                        "an observed resource lacks the {} annotation naming its template",
                        composition::render::ANNOTATION_RESOURCE_NAME
                    )
                })?;
            observed.insert(
                template,
                Observed {
                    object: doc,
                    connection: Default::default(),
                },
            );
        }
    }
    let rendered = composition::render(&xr, &composition, &observed)?;
    let mut out = String::new();
    let mut composite = rendered.composite.clone();
    let ready = if rendered.ready { "True" } else { "False" };
    composite["status"]["conditions"] = serde_json::json!([{"type": "Ready", "status": ready, "reason": if rendered.ready { "Available" } else { "Creating" }}]);
    // The composite's connection details, as the Secret the reconciler would
    // write (Crossplane's render leaves them out; here they are what a
    // Composition author most often wants to check).
    let secret = (!rendered.connection.is_empty()).then(|| {
        let name = xr
            .pointer("/spec/writeConnectionSecretToRef/name")
            .and_then(Value::as_str)
            .or_else(|| xr.pointer("/metadata/name").and_then(Value::as_str))
            .unwrap_or("composite");
        let mut meta = serde_json::json!({"name": name});
        if let Some(ns) = xr
            .pointer("/spec/writeConnectionSecretToRef/namespace")
            .and_then(Value::as_str)
        {
            meta["namespace"] = serde_json::json!(ns);
        }
        let data: serde_json::Map<String, Value> = rendered
            .connection
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    Value::String(String::from_utf8_lossy(v).into_owned()),
                )
            })
            .collect();
        serde_json::json!({"apiVersion": "v1", "kind": "Secret", "metadata": meta,
                           "type": "connection.crossplane.io/v1alpha1", "stringData": data})
    });
    for doc in std::iter::once(&composite)
        .chain(rendered.composed.iter().map(|c| &c.object))
        .chain(secret.iter())
    {
        out.push_str("---\n");
        out.push_str(&serde_saphyr::to_string(doc).context("cannot print YAML")?);
    }
    print!("{out}");
    Ok(())
}
