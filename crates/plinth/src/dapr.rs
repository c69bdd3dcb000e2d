//! `plinth dapr components`: the Dapr Components of a namespace, with the
//! secrets they read, as files for Dapr's standalone mode (`dapr run
//! --resources-path DIR`); and serving Dapr's Component CRD in `plinth up`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, ListParams};
use kube::Api;
use serde_json::Value;

use crate::cli::DataDirArgs;

#[derive(Args, Debug, Clone)]
pub struct DaprArgs {
    #[command(subcommand)]
    pub command: DaprCommand,
}

#[derive(Subcommand, Debug, Clone)]
pub enum DaprCommand {
    /// Write a namespace's Dapr Components, a secretstores.local.file
    /// Component and the JSON file of the secrets they read, for `dapr run
    /// --resources-path DIR`.
    Components(ComponentsArgs),
}

#[derive(Args, Debug, Clone)]
pub struct ComponentsArgs {
    /// The namespace whose Components are written.
    #[arg(short = 'n', long, default_value = "default")]
    pub namespace: String,
    /// The directory to write the files into (made if missing).
    #[arg(long)]
    pub output: PathBuf,
    /// A kubeconfig to use instead of the data directory's.
    #[arg(long, env = "KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    #[command(flatten)]
    pub data: DataDirArgs,
}

fn components_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("dapr.io", "v1alpha1", "Component"),
        "components",
    )
}

/// Serves Dapr's Component CRD, as a built-in kind `--no-dapr` turns off.
pub async fn install_crd(client: &kube::Client) -> Result<()> {
    let crd = dapr::component_crd()?;
    runtime::crds::apply(client, crd)
        .await
        .context("cannot serve Dapr's Component CRD")
}

pub async fn run(args: DaprArgs) -> Result<()> {
    let DaprCommand::Components(args) = args.command;
    let kubeconfig = match &args.kubeconfig {
        Some(p) => p.clone(),
        None => args.data.resolve()?.join("kubeconfig"),
    };
    let client = crate::bench::client(&kubeconfig).await?;
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), &args.namespace, &components_resource());
    let list = api.list(&ListParams::default()).await.with_context(|| {
        format!(
            "cannot list the Dapr Components of namespace {}",
            args.namespace
        )
    })?;
    let components: Vec<Value> = list
        .items
        .into_iter()
        .map(|c| serde_json::to_value(c).context("cannot encode a Component"))
        .collect::<Result<_>>()?;
    if components.is_empty() {
        bail!("namespace {} has no Dapr Components: claim a PostgreSQLInstance with a Composition labelled dapr: state", args.namespace);
    }
    let rules = dapr::Rules::state_postgresql_v1()?;
    for c in &components {
        if c.pointer("/spec/type").and_then(Value::as_str) == Some(rules.type_.as_str()) {
            for problem in rules.check(c) {
                eprintln!(
                    "warning: Component {}: {problem}",
                    c.pointer("/metadata/name")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                );
            }
        }
    }
    // The Secrets the Components read, and nothing else of the namespace.
    let secrets_api: Api<Secret> = Api::namespaced(client, &args.namespace);
    let mut secrets: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for name in components
        .iter()
        .flat_map(|c| {
            c.pointer("/spec/metadata")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
        })
        .filter_map(|m| {
            m.pointer("/secretKeyRef/name")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
    {
        if secrets.contains_key(&name) {
            continue;
        }
        let Some(secret) = secrets_api
            .get_opt(&name)
            .await
            .with_context(|| format!("cannot read Secret {}/{name}", args.namespace))?
        else {
            continue;
        };
        let data = secret
            .data
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned()))
            .collect();
        secrets.insert(name, data);
    }
    std::fs::create_dir_all(&args.output)
        .with_context(|| format!("cannot create {}", args.output.display()))?;
    let dir = std::fs::canonicalize(&args.output)
        .with_context(|| format!("cannot resolve {}", args.output.display()))?;
    let files = dapr::standalone(&components, &secrets, &dir.to_string_lossy())?;
    for (file, contents) in &files {
        let path = dir.join(file);
        if file == dapr::SECRETS_FILE {
            // Secret values: readable by the owner only.
            apiserver::pki::write_private(&path, contents.as_bytes())?;
        } else {
            std::fs::write(&path, contents)
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        println!("{}", path.display());
    }
    Ok(())
}
