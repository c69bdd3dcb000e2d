//! `plinth render`: a composite resource and a Composition in, the composed
//! resources out, offline, like `crossplane render`. A `mode: Pipeline`
//! Composition runs its functions, named in the functions file: at the
//! address `crossplane render`'s Development annotations give, or started
//! here from their `plinth.dev/function-command`.

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
    /// The Function objects a pipeline's steps name (YAML, several
    /// documents); needed for a `mode: Pipeline` Composition.
    pub functions: Option<PathBuf>,
    /// Composed resources as they are observed (YAML, several documents), so
    /// ToComposite patches, readiness and connection details can be shown.
    #[arg(long, visible_alias = "observed-resources")]
    pub observed: Option<PathBuf>,
    /// Resources that functions may require (YAML, several documents).
    #[arg(long, visible_alias = "required-resources")]
    pub extra_resources: Option<PathBuf>,
    /// Secrets that steps' credentials name (YAML, several documents).
    #[arg(long)]
    pub function_credentials: Option<PathBuf>,
    /// The pipeline's starting context: KEY=FILE, the file holding the
    /// key's JSON value (repeat, or separate with commas).
    #[arg(long, value_delimiter = ',')]
    pub context_files: Vec<String>,
    /// The pipeline's starting context: KEY=JSON (repeat for more keys; JSON
    /// has commas of its own, so they separate nothing here).
    #[arg(long)]
    pub context_values: Vec<String>,
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

/// The `--observed-resources` documents, by the resource name their
/// `crossplane.io/composition-resource-name` annotation gives.
fn observed_resources(path: Option<&PathBuf>) -> Result<BTreeMap<String, Value>> {
    let mut observed = BTreeMap::new();
    let Some(path) = path else {
        return Ok(observed);
    };
    for doc in read_documents(path)? {
        let name = doc
            .pointer("/metadata/annotations")
            .and_then(|a| a.get(composition::render::ANNOTATION_RESOURCE_NAME))
            .and_then(Value::as_str)
            .map(str::to_string)
            .with_context(|| {
                format!(
                    "an observed resource lacks the {} annotation naming it",
                    composition::render::ANNOTATION_RESOURCE_NAME
                )
            })?;
        observed.insert(name, doc);
    }
    Ok(observed)
}

pub async fn run(args: RenderArgs) -> Result<()> {
    let xr = read_one(&args.composite, "composite resource")?;
    let composition = read_one(&args.composition, "Composition")?;
    if composition.pointer("/spec/mode").and_then(Value::as_str) == Some("Pipeline") {
        return pipeline::run(&args, &xr, &composition).await;
    }
    let observed: BTreeMap<String, Observed> = observed_resources(args.observed.as_ref())?
        .into_iter()
        .map(|(name, object)| {
            (
                name,
                Observed {
                    object,
                    connection: Default::default(),
                },
            )
        })
        .collect();
    let mut rendered = composition::render(&xr, &composition, &observed)?;
    // The input's own conditions are what was; Ready is rendered anew.
    if let Some(status) = rendered
        .composite
        .get_mut("status")
        .and_then(Value::as_object_mut)
    {
        status.remove("conditions");
    }
    print!("{}", stream(&xr, &rendered, &[])?);
    Ok(())
}

/// The YAML stream `plinth render` prints: the composite with its Ready
/// condition, the composed resources, the connection Secret, then extra
/// documents (a pipeline's results).
fn stream(xr: &Value, rendered: &composition::Rendered, extra: &[Value]) -> Result<String> {
    let mut out = String::new();
    let mut composite = rendered.composite.clone();
    let ready = if rendered.ready { "True" } else { "False" };
    let mut conditions = vec![
        serde_json::json!({"type": "Ready", "status": ready, "reason": if rendered.ready { "Available" } else { "Creating" }}),
    ];
    // A pipeline's functions' conditions, after Ready.
    if let Some(Value::Array(more)) = composite.pointer("/status/conditions") {
        conditions.extend(more.iter().cloned());
    }
    composite["status"]["conditions"] = Value::Array(conditions);
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
        .chain(extra.iter())
    {
        out.push_str("---\n");
        out.push_str(&serde_saphyr::to_string(doc).context("cannot print YAML")?);
    }
    Ok(out)
}

mod pipeline {
    //! A `mode: Pipeline` Composition, run offline.

    use std::collections::BTreeMap;

    use anyhow::{bail, Context, Result};
    use functions::pb;
    use functions::pipeline::{self as fnpipeline, Details};
    use serde_json::{json, Value};

    use super::{read_documents, RenderArgs};

    /// What functions may require and credentials may name, from files.
    struct Files {
        resources: Vec<Value>,
        secrets: Vec<Value>,
    }

    fn text<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
        v.pointer(pointer).and_then(Value::as_str)
    }

    fn matches(selector: &pb::ResourceSelector, o: &Value) -> bool {
        use pb::resource_selector::Match;
        if text(o, "/apiVersion") != Some(selector.api_version.as_str())
            || text(o, "/kind") != Some(selector.kind.as_str())
        {
            return false;
        }
        if let Some(ns) = &selector.namespace {
            if text(o, "/metadata/namespace") != Some(ns.as_str()) {
                return false;
            }
        }
        match &selector.r#match {
            Some(Match::MatchName(n)) => text(o, "/metadata/name") == Some(n.as_str()),
            Some(Match::MatchLabels(l)) => l.labels.iter().all(|(k, v)| {
                o.pointer("/metadata/labels")
                    .and_then(|ls| ls.get(k))
                    .and_then(Value::as_str)
                    == Some(v.as_str())
            }),
            // No match at all is every object of the kind, as in Crossplane.
            None => true,
        }
    }

    impl functions::Fetch for Files {
        async fn resources(&self, selector: &pb::ResourceSelector) -> Result<Vec<Value>, String> {
            Ok(self
                .resources
                .iter()
                .filter(|o| matches(selector, o))
                .cloned()
                .collect())
        }

        async fn secret(&self, namespace: &str, name: &str) -> Result<Details, String> {
            use base64::Engine;
            let secret = self
                .secrets
                .iter()
                .find(|s| {
                    text(s, "/metadata/namespace") == Some(namespace)
                        && text(s, "/metadata/name") == Some(name)
                })
                .ok_or_else(|| {
                    format!("Secret {namespace}/{name} is not in --function-credentials")
                })?;
            let mut data = Details::new();
            for (k, v) in secret
                .get("data")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
            {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(v.as_str().unwrap_or_default())
                    .map_err(|e| format!("Secret {namespace}/{name}: data.{k}: {e}"))?;
                data.insert(k.clone(), bytes);
            }
            for (k, v) in secret
                .get("stringData")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
            {
                data.insert(
                    k.clone(),
                    v.as_str().unwrap_or_default().as_bytes().to_vec(),
                );
            }
            Ok(data)
        }
    }

    fn context(args: &RenderArgs) -> Result<Value> {
        let mut context = serde_json::Map::new();
        for pair in &args.context_files {
            let (key, path) = pair
                .split_once('=')
                .with_context(|| format!("--context-files {pair:?}: expected KEY=FILE"))?;
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("--context-files: cannot read {path}"))?;
            let value: Value = serde_json::from_str(&text)
                .with_context(|| format!("--context-files: {path} is not JSON"))?;
            context.insert(key.to_string(), value);
        }
        for pair in &args.context_values {
            let (key, raw) = pair
                .split_once('=')
                .with_context(|| format!("--context-values {pair:?}: expected KEY=JSON"))?;
            let value: Value = serde_json::from_str(raw)
                .with_context(|| format!("--context-values {key}: {raw:?} is not JSON"))?;
            context.insert(key.to_string(), value);
        }
        Ok(Value::Object(context))
    }

    pub async fn run(args: &RenderArgs, xr: &Value, composition: &Value) -> Result<()> {
        let spec = composition.get("spec").cloned().unwrap_or_default();
        let steps = fnpipeline::steps(&spec)?;
        let Some(functions_file) = &args.functions else {
            bail!("a mode: Pipeline Composition needs the functions file: plinth render XR COMPOSITION FUNCTIONS");
        };
        let runner = functions::Runner::new(functions::runner::DEFAULT_TIMEOUT);
        // Started functions stop when these are dropped (kill on drop).
        let mut children = Vec::new();
        for f in read_documents(functions_file)? {
            let name = text(&f, "/metadata/name")
                .with_context(|| {
                    format!(
                        "{}: a Function without metadata.name",
                        functions_file.display()
                    )
                })?
                .to_string();
            match functions::host::runtime_of(&f) {
                functions::host::Runtime::Development { target } => {
                    runner.register_insecure(&name, &target)?;
                }
                functions::host::Runtime::Process {
                    command,
                    working_dir,
                } => {
                    let (child, address) =
                        functions::host::start(&name, &command, working_dir.as_deref())
                            .await
                            .map_err(|e| anyhow::anyhow!("function {name:?}: {e}"))?;
                    runner.register_insecure(&name, &address)?;
                    children.push((name, child));
                }
                functions::host::Runtime::Remote { endpoint, .. } => bail!(
                    "function {name:?} is served at {endpoint} over mTLS, which needs the cluster's Secret; give plinth render its {}: Development and {}: HOST:PORT instead",
                    functions::ANNOTATION_RUNTIME,
                    functions::ANNOTATION_DEVELOPMENT_TARGET
                ),
                functions::host::Runtime::Unsupported(why) => bail!("function {name:?}: {why}"),
            }
        }
        let observed: BTreeMap<String, fnpipeline::Observed> =
            super::observed_resources(args.observed.as_ref())?
                .into_iter()
                .map(|(name, object)| {
                    (
                        name,
                        fnpipeline::Observed {
                            object,
                            connection: Details::new(),
                        },
                    )
                })
                .collect();
        let files = Files {
            resources: match &args.extra_resources {
                Some(p) => read_documents(p)?,
                None => Vec::new(),
            },
            secrets: match &args.function_credentials {
                Some(p) => read_documents(p)?,
                None => Vec::new(),
            },
        };
        let composite = fnpipeline::Observed {
            object: xr.clone(),
            connection: Details::new(),
        };
        let outcome = fnpipeline::run_with_context(
            &*runner,
            &files,
            &steps,
            &composite,
            &observed,
            &context(args)?,
        )
        .await?;
        let as_composed: BTreeMap<String, composition::Observed> = observed
            .into_iter()
            .map(|(k, o)| {
                (
                    k,
                    composition::Observed {
                        object: o.object,
                        connection: o.connection,
                    },
                )
            })
            .collect();
        let pipelined = composite::composite::plan::pipelined(xr, &outcome, &as_composed)
            .map_err(anyhow::Error::msg)?;
        // Results as crossplane render prints them.
        let results: Vec<Value> = outcome
            .events
            .iter()
            .map(|e| {
                json!({
                    "apiVersion": "render.crossplane.io/v1beta1",
                    "kind": "Result",
                    "step": e.step,
                    "severity": if e.warning { "SEVERITY_WARNING" } else { "SEVERITY_NORMAL" },
                    "reason": e.reason,
                    "message": e.message,
                })
            })
            .collect();
        let mut rendered = pipelined.rendered;
        // The functions' own conditions; stream adds Ready.
        let conditions: Vec<Value> = pipelined
            .conditions
            .iter()
            .map(|c| json!({"type": c.type_, "status": if c.status { "True" } else { "False" }, "reason": c.reason, "message": c.message}))
            .collect();
        if rendered
            .composite
            .get("status")
            .is_none_or(|s| !s.is_object())
        {
            rendered.composite["status"] = json!({});
        }
        rendered.composite["status"]["conditions"] = Value::Array(conditions);
        print!("{}", super::stream(xr, &rendered, &results)?);
        for (name, mut child) in children {
            runtime::process::terminate(&name, &mut child, std::time::Duration::from_secs(5)).await;
        }
        Ok(())
    }
}
