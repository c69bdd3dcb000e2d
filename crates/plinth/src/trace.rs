//! `plinth trace`: the tree from a claim to its composite resource to the
//! managed resources behind it, with Ready, Synced, age and the last message.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use kube::api::{ApiResource, DynamicObject};
use kube::discovery::{Discovery, Scope};
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
    /// What to trace, as KIND/NAME (kind, plural or short name).
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

fn find(discovery: &Discovery, kind_or_plural: &str) -> Option<(ApiResource, Scope)> {
    let wanted = kind_or_plural.to_lowercase();
    for group in discovery.groups() {
        for (ar, caps) in group.recommended_resources() {
            if ar.kind.to_lowercase() == wanted
                || ar.plural == wanted
                || ar.kind.to_lowercase() + "s" == wanted
            {
                return Some((ar, caps.scope));
            }
        }
    }
    None
}

async fn node(
    client: &Client,
    discovery: &Discovery,
    ar: &ApiResource,
    scope: &Scope,
    name: &str,
    namespace: &str,
) -> Result<Node> {
    let api: Api<DynamicObject> = match scope {
        Scope::Namespaced => Api::namespaced_with(client.clone(), namespace, ar),
        Scope::Cluster => Api::all_with(client.clone(), ar),
    };
    let obj = api
        .get(name)
        .await
        .with_context(|| format!("cannot get {}/{name}", ar.kind))?;
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
        match find(discovery, kind) {
            Some((child_ar, child_scope)) => match Box::pin(node(
                client,
                discovery,
                &child_ar,
                &child_scope,
                child,
                namespace,
            ))
            .await
            {
                Ok(n) => children.push(n),
                Err(e) => children.push(missing(kind, child, &e.to_string())),
            },
            None => children.push(missing(kind, child, "kind not served")),
        }
    }
    Ok(Node {
        kind: ar.kind.clone(),
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
        let discovery = Discovery::new(client.clone())
            .run()
            .await
            .context("API discovery failed")?;
        let (ar, scope) = find(&discovery, kind)
            .with_context(|| format!("the server does not serve a kind named {kind:?}"))?;
        let tree = node(&client, &discovery, &ar, &scope, name, &args.namespace).await?;
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
