//! `plinth trace`: the tree from a claim to its composite resource to the
//! managed resources behind it, with Ready, Synced, age and the last message.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{anyhow, bail, Result};
use clap::{Args, ValueEnum};
use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
use kube::{Api, Client, ResourceExt};
use serde_json::{json, Value};

use crate::cli::DataDirArgs;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Output {
    Wide,
    Json,
}

#[derive(Args, Debug, Clone)]
pub struct TraceArgs {
    /// What to trace, as KIND/NAME or KIND.GROUP/NAME (kind, plural,
    /// singular or short name), e.g. `postgresqlinstance/orders`.
    pub target: String,
    /// The namespace of a claim.
    #[arg(short = 'n', long, default_value = "default")]
    pub namespace: String,
    /// `wide` adds each object's last message; `json` prints the tree as JSON.
    #[arg(short = 'o', long)]
    pub output: Option<Output>,
    /// Redraw the tree as it changes, until interrupted.
    #[arg(long)]
    pub watch: bool,
    /// A kubeconfig to use instead of the data directory's.
    #[arg(long, env = "KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    #[command(flatten)]
    pub data: DataDirArgs,
}

/// One object in the tree.
struct Node {
    kind: String,
    name: String,
    namespace: Option<String>,
    synced: String,
    ready: String,
    age: String,
    message: String,
    children: Vec<Node>,
}

fn condition(obj: &Value, type_: &str) -> (String, String) {
    obj.pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|l| {
            l.iter()
                .find(|c| c.get("type").and_then(Value::as_str) == Some(type_))
        })
        .map(|c| {
            (
                c.get("status")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
                c.get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
            )
        })
        .unwrap_or_else(|| ("-".into(), String::new()))
}

/// An error as a person should read it: the API server's message, not
/// kube's Debug dump of the whole Status.
fn plain(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(status) if !status.message.is_empty() => status.message.clone(),
        other => other.to_string(),
    }
}

/// One served resource, with the names a user may call it by.
#[derive(Clone)]
struct Served {
    ar: ApiResource,
    namespaced: bool,
    singular: String,
    short: Vec<String>,
}

/// Every resource the server serves, at each group's preferred version
/// (listed first) and then at its other versions.
async fn served(client: &Client) -> Result<Vec<Served>> {
    let mut out = Vec::new();
    let mut add =
        |gv: &str, list: k8s_openapi::apimachinery::pkg::apis::meta::v1::APIResourceList| {
            let (group, version) = gv.split_once('/').unwrap_or(("", gv));
            for r in list.resources.into_iter().filter(|r| !r.name.contains('/')) {
                let gvk = GroupVersionKind::gvk(group, version, &r.kind);
                out.push(Served {
                    ar: ApiResource::from_gvk_with_plural(&gvk, &r.name),
                    namespaced: r.namespaced,
                    singular: r.singular_name,
                    short: r.short_names.unwrap_or_default(),
                });
            }
        };
    let core = client
        .list_core_api_resources("v1")
        .await
        .map_err(|e| anyhow!("API discovery failed: {}", plain(&e)))?;
    add("v1", core);
    let groups = client
        .list_api_groups()
        .await
        .map_err(|e| anyhow!("API discovery failed: {}", plain(&e)))?;
    for g in groups.groups {
        let preferred = g.preferred_version.map(|v| v.group_version);
        let mut versions: Vec<String> = g.versions.into_iter().map(|v| v.group_version).collect();
        if let Some(p) = &preferred {
            versions.retain(|v| v != p);
            versions.insert(0, p.clone());
        }
        for gv in versions {
            // A group that fails to list is skipped, as kubectl does.
            if let Ok(list) = client.list_api_group_resources(&gv).await {
                add(&gv, list);
            }
        }
    }
    Ok(out)
}

/// The resources `KIND` or `KIND.GROUP` (or `KIND.VERSION.GROUP`) may name,
/// at most one per group, preferred versions first.
fn candidates(all: &[Served], target: &str) -> Vec<Served> {
    let target = target.to_lowercase();
    let (name, qualifier) = match target.split_once('.') {
        Some((n, q)) => (n.to_string(), Some(q.to_string())),
        None => (target.clone(), None),
    };
    let mut seen = std::collections::BTreeSet::new();
    all.iter()
        .filter(|s| {
            s.ar.kind.to_lowercase() == name
                || s.ar.plural == name
                || s.singular == name
                || s.short.iter().any(|x| x.to_lowercase() == name)
        })
        .filter(|s| match &qualifier {
            None => true,
            Some(q) => *q == s.ar.group || *q == format!("{}.{}", s.ar.version, s.ar.group),
        })
        .filter(|s| seen.insert(s.ar.group.clone()))
        .cloned()
        .collect()
}

/// The served resource for a reference's apiVersion and kind.
fn by_reference(all: &[Served], api_version: &str, kind: &str) -> Option<Served> {
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let same_kind = |s: &&Served| s.ar.group == group && s.ar.kind == kind;
    all.iter()
        .filter(same_kind)
        .find(|s| s.ar.version == version)
        .or_else(|| all.iter().find(same_kind))
        .cloned()
}

fn api_for(client: &Client, s: &Served, namespace: &str) -> Api<DynamicObject> {
    if s.namespaced {
        Api::namespaced_with(client.clone(), namespace, &s.ar)
    } else {
        Api::all_with(client.clone(), &s.ar)
    }
}

/// The one object `KIND[.GROUP]/NAME` names: where a kind is served by two
/// groups, the group that has an object of that name.
async fn resolve(
    client: &Client,
    all: &[Served],
    kind: &str,
    name: &str,
    namespace: &str,
) -> Result<(Served, DynamicObject)> {
    let options = candidates(all, kind);
    if options.is_empty() {
        bail!("the server does not serve a kind named {kind:?}");
    }
    let mut found = Vec::new();
    for s in options.iter() {
        match api_for(client, s, namespace).get_opt(name).await {
            Ok(Some(obj)) => found.push((s.clone(), obj)),
            Ok(None) => {}
            Err(e) => bail!(
                "cannot get {}.{} {name}: {}",
                s.ar.kind,
                s.ar.group,
                plain(&e)
            ),
        }
    }
    let describe = |s: &Served| {
        if s.namespaced {
            format!(
                "{}.{} {name:?} in namespace {namespace:?}",
                s.ar.kind, s.ar.group
            )
        } else {
            format!("{}.{} {name:?}", s.ar.kind, s.ar.group)
        }
    };
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => bail!(
            "{} not found",
            options
                .iter()
                .map(describe)
                .collect::<Vec<_>>()
                .join(", nor ")
        ),
        _ => bail!(
            "{kind:?} is ambiguous: {}; name one as KIND.GROUP/NAME",
            found
                .iter()
                .map(|(s, _)| format!("{}.{}", s.ar.kind.to_lowercase(), s.ar.group))
                .collect::<Vec<_>>()
                .join(" and ")
        ),
    }
}

async fn node(
    client: &Client,
    all: &[Served],
    served: &Served,
    obj: DynamicObject,
    namespace: &str,
) -> Result<Node> {
    let value = serde_json::to_value(&obj)?;
    let (synced, synced_message) = condition(&value, "Synced");
    let (ready, ready_message) = condition(&value, "Ready");
    let message = if synced == "False" {
        synced_message
    } else {
        ready_message
    };
    let age = obj
        .metadata
        .creation_timestamp
        .as_ref()
        .map(|t| apimachinery::printer::age(&t.0.to_string(), jiff::Timestamp::now()))
        .unwrap_or_default();
    let mut children = Vec::new();
    let mut refs: Vec<Value> = value
        .pointer("/spec/resourceRefs")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if let Some(r) = value.pointer("/spec/resourceRef").filter(|r| r.is_object()) {
        refs.insert(0, r.clone());
    }
    for r in refs {
        let (Some(kind), Some(child)) = (
            r.get("kind").and_then(Value::as_str),
            r.get("name").and_then(Value::as_str),
        ) else {
            continue;
        };
        let api_version = r.get("apiVersion").and_then(Value::as_str).unwrap_or("");
        let Some(child_served) = by_reference(all, api_version, kind) else {
            children.push(missing(
                kind,
                child,
                &format!("{api_version} {kind} is not served"),
            ));
            continue;
        };
        match api_for(client, &child_served, namespace)
            .get_opt(child)
            .await
        {
            Ok(Some(o)) => match Box::pin(node(client, all, &child_served, o, namespace)).await {
                Ok(n) => children.push(n),
                Err(e) => children.push(missing(kind, child, &format!("{e:#}"))),
            },
            Ok(None) => children.push(missing(kind, child, "not found")),
            Err(e) => children.push(missing(kind, child, &plain(&e))),
        }
    }
    Ok(Node {
        kind: served.ar.kind.clone(),
        name: obj.name_any(),
        namespace: obj.namespace(),
        synced,
        ready,
        age,
        message,
        children,
    })
}

fn missing(kind: &str, name: &str, why: &str) -> Node {
    Node {
        kind: kind.into(),
        name: name.into(),
        namespace: None,
        synced: "-".into(),
        ready: "-".into(),
        age: "-".into(),
        message: why.into(),
        children: Vec::new(),
    }
}

fn to_json(n: &Node) -> Value {
    json!({
        "kind": n.kind, "name": n.name, "namespace": n.namespace,
        "synced": n.synced, "ready": n.ready, "age": n.age, "message": n.message,
        "children": n.children.iter().map(to_json).collect::<Vec<_>>()
    })
}

fn paint(status: &str, colour: bool) -> String {
    let text = format!("{status:<6}");
    if !colour {
        return text;
    }
    match status {
        "True" => format!("\x1b[32m{text}\x1b[0m"),
        "False" => format!("\x1b[31m{text}\x1b[0m"),
        _ => format!("\x1b[33m{text}\x1b[0m"),
    }
}

fn lines(
    n: &Node,
    prefix: &str,
    last: bool,
    root: bool,
    wide: bool,
    colour: bool,
    out: &mut Vec<String>,
) {
    let branch = if root {
        ""
    } else if last {
        "└─ "
    } else {
        "├─ "
    };
    let mut label = format!("{prefix}{branch}{}/{}", n.kind, n.name);
    if let Some(ns) = &n.namespace {
        label.push_str(&format!(" ({ns})"));
    }
    let mut line = format!(
        "{label:<64} {} {} {:<6}",
        paint(&n.synced, colour),
        paint(&n.ready, colour),
        n.age
    );
    if wide || (n.synced == "False" || n.ready == "False") && !n.message.is_empty() {
        line.push_str(&format!(" {}", n.message));
    }
    out.push(line);
    let child_prefix = if root {
        String::new()
    } else {
        format!("{prefix}{}", if last { "   " } else { "│  " })
    };
    for (i, c) in n.children.iter().enumerate() {
        lines(
            c,
            &child_prefix,
            i + 1 == n.children.len(),
            false,
            wide,
            colour,
            out,
        );
    }
}

pub async fn run(args: TraceArgs) -> Result<()> {
    let kubeconfig = match &args.kubeconfig {
        Some(p) => p.clone(),
        None => args.data.resolve()?.join("kubeconfig"),
    };
    let client = crate::bench::client(&kubeconfig).await?;
    let Some((kind, name)) = args.target.split_once('/') else {
        bail!("give the object as KIND/NAME, e.g. postgresqlinstance/orders");
    };
    let colour = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    loop {
        let all = served(&client).await?;
        let (served, obj) = resolve(&client, &all, kind, name, &args.namespace).await?;
        let tree = node(&client, &all, &served, obj, &args.namespace).await?;
        if matches!(args.output, Some(Output::Json)) {
            println!("{}", serde_json::to_string_pretty(&to_json(&tree))?);
        } else {
            let mut out = vec![format!(
                "{:<64} {:<6} {:<6} {:<6}",
                "NAME", "SYNCED", "READY", "AGE"
            )];
            lines(
                &tree,
                "",
                true,
                true,
                matches!(args.output, Some(Output::Wide)),
                colour,
                &mut out,
            );
            if args.watch && colour {
                print!("\x1b[2J\x1b[H");
            }
            println!("{}", out.join("\n"));
        }
        if !args.watch {
            return Ok(());
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = tokio::signal::ctrl_c() => return Ok(()),
        }
    }
}
