//! The open interfaces Plinth ships, group `platform.plinth.dev`: DBaaS
//! (`PostgreSQLInstance`) and Compute (`ComputeInstance`), each with a
//! `local` Composition backed by the local provider. Each cloud's
//! Compositions for the same claims are data that lives with its provider
//! (`providers/<cloud>/compositions`), handed in by the binary: this crate
//! knows no instance class, tier or image.
//!
//! `dapr` gives each DBaaS Composition a twin labelled `dapr: state` that
//! also composes a Dapr state store Component.

use kube::api::{DynamicObject, Patch, PatchParams};
use kube::{Api, Client};
use serde_json::{json, Value};

use crate::{names, util};

pub mod dapr;

pub const GROUP: &str = "platform.plinth.dev";

/// What differs between the built-in interfaces' XRDs.
struct Interface<'a> {
    kind: &'a str,
    plural: &'a str,
    claim_kind: &'a str,
    claim_plural: &'a str,
    default_composition: &'a str,
    keys: &'a [&'a str],
    parameters: Value,
    columns: Value,
}

fn xrd(i: Interface) -> Value {
    let Interface {
        kind,
        plural,
        claim_kind,
        claim_plural,
        default_composition: default,
        keys,
        parameters,
        columns,
    } = i;
    json!({
        "apiVersion": format!("{}/{}", names::GROUP, names::VERSION),
        "kind": names::XRD_KIND,
        "metadata": {"name": format!("{plural}.{GROUP}")},
        "spec": {
            "group": GROUP,
            "names": {"kind": kind, "plural": plural},
            "claimNames": {"kind": claim_kind, "plural": claim_plural},
            "connectionSecretKeys": keys,
            "defaultCompositionRef": {"name": default},
            // Deleting a claim returns once what it stands for (the database,
            // the process) is gone, not before; user XRDs keep Crossplane's
            // Background default.
            "defaultCompositeDeletePolicy": names::DELETE_FOREGROUND,
            "versions": [{
                "name": "v1alpha1",
                "served": true,
                "referenceable": true,
                "additionalPrinterColumns": columns,
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "properties": {
                        "spec": {"type": "object", "required": ["parameters"], "properties": {"parameters": parameters}},
                        "status": {"type": "object", "properties": {
                            "address": {"type": "string"},
                            "database": {"type": "string"},
                            "pid": {"type": "integer"},
                            "daprComponent": {"type": "string", "description": "The Dapr Component composed beside the database, if any."}
                        }}
                    }
                }}
            }]
        }
    })
}

/// The DBaaS interface: `PostgreSQLInstance`.
pub fn dbaas() -> (Value, Value) {
    let xrd = xrd(Interface {
        kind: "XPostgreSQLInstance",
        plural: "xpostgresqlinstances",
        claim_kind: "PostgreSQLInstance",
        claim_plural: "postgresqlinstances",
        default_composition: "postgresqlinstance-local",
        keys: &[
            "host",
            "port",
            "username",
            "password",
            "database",
            "uri",
            "connectionString",
        ],
        parameters: json!({
            "type": "object",
            "description": "What the database should be; the Composition decides where it runs.",
            "properties": {
                "storageGB": {"type": "integer", "minimum": 1, "default": 20, "description": "Storage in GiB."},
                "version": {"type": "string", "default": "15", "description": "PostgreSQL major version."},
                "size": {"type": "string", "enum": ["small", "medium", "large"], "default": "small"},
                "highAvailability": {"type": "boolean", "default": false},
                "dapr": {"type": "object", "description": "With a Composition labelled dapr: state: the Dapr state store Component composed beside the database.",
                         "properties": {
                             "name": {"type": "string", "description": "The Component's name (default: the claim's name)."},
                             "scopes": {"type": "array", "items": {"type": "string"}, "description": "The Dapr app ids that may use the store (default: every app)."}
                         }}
            }
        }),
        columns: json!([{"name": "SIZE", "type": "string", "jsonPath": ".spec.parameters.size"}]),
    });
    let composition = json!({
        "apiVersion": format!("{}/{}", names::GROUP, names::VERSION),
        "kind": names::COMPOSITION_KIND,
        "metadata": {"name": "postgresqlinstance-local", "labels": {"provider": "local"}},
        "spec": {
            "compositeTypeRef": {"apiVersion": format!("{GROUP}/v1alpha1"), "kind": "XPostgreSQLInstance"},
            "mode": "Resources",
            "resources": [{
                "name": "database",
                "base": {
                    "apiVersion": "postgres.local.plinth.dev/v1alpha1",
                    "kind": "Database",
                    "spec": {"forProvider": {}, "providerConfigRef": {"name": "default"}}
                },
                "patches": [
                    {"fromFieldPath": "spec.parameters.size", "toFieldPath": "spec.forProvider.connectionLimit",
                     "transforms": [{"type": "map", "map": {"small": 20, "medium": 50, "large": 100}}]},
                    {"fromFieldPath": "spec.parameters.storageGB", "toFieldPath": "metadata.annotations[platform.plinth.dev/storage-gb]",
                     "transforms": [{"type": "convert", "convert": {"toType": "string"}}]},
                    {"type": "ToCompositeFieldPath", "fromFieldPath": "metadata.annotations[crossplane.io/external-name]", "toFieldPath": "status.database"}
                ],
                "connectionDetails": [
                    {"fromConnectionSecretKey": "host"}, {"fromConnectionSecretKey": "port"},
                    {"fromConnectionSecretKey": "username"}, {"fromConnectionSecretKey": "password"},
                    {"fromConnectionSecretKey": "database"}, {"fromConnectionSecretKey": "uri"},
                    {"fromConnectionSecretKey": "connectionString"}
                ]
            }]
        }
    });
    (xrd, composition)
}

/// The Compute interface: `ComputeInstance`.
pub fn compute() -> (Value, Value) {
    let xrd = xrd(Interface {
        kind: "XComputeInstance",
        plural: "xcomputeinstances",
        claim_kind: "ComputeInstance",
        claim_plural: "computeinstances",
        default_composition: "computeinstance-local",
        keys: &["host", "port"],
        parameters: json!({
            "type": "object",
            "properties": {
                "cpu": {"type": "integer", "minimum": 1, "default": 1},
                "memoryMiB": {"type": "integer", "minimum": 64, "default": 512},
                "image": {"type": "string", "description": "A machine or container image (cloud Compositions)."},
                "command": {"type": "array", "items": {"type": "string"}, "description": "The program and its arguments (local Composition)."},
                "ports": {"type": "array", "items": {"type": "integer"}}
            }
        }),
        columns: json!([{"name": "CPU", "type": "integer", "jsonPath": ".spec.parameters.cpu"}]),
    });
    let composition = json!({
        "apiVersion": format!("{}/{}", names::GROUP, names::VERSION),
        "kind": names::COMPOSITION_KIND,
        "metadata": {"name": "computeinstance-local", "labels": {"provider": "local"}},
        "spec": {
            "compositeTypeRef": {"apiVersion": format!("{GROUP}/v1alpha1"), "kind": "XComputeInstance"},
            "mode": "Resources",
            "resources": [{
                "name": "process",
                "base": {
                    "apiVersion": "compute.local.plinth.dev/v1alpha1",
                    "kind": "Instance",
                    // A process can die at any time; looking every 15 s (an
                    // in-process check) lets a crash loop show on the claim soon.
                    "metadata": {"annotations": {runtime::names::annotation::POLL_INTERVAL: "15s"}},
                    // Without a command the instance idles; with one, the whole
                    // command line (program and arguments) replaces argv.
                    "spec": {"forProvider": {"argv": ["sleep", "infinity"]}, "providerConfigRef": {"name": "default"}}
                },
                "patches": [
                    {"fromFieldPath": "spec.parameters.command", "toFieldPath": "spec.forProvider.argv"},
                    {"fromFieldPath": "spec.parameters.ports[0]", "toFieldPath": "spec.forProvider.port"},
                    {"type": "ToCompositeFieldPath", "fromFieldPath": "status.atProvider.pid", "toFieldPath": "status.pid"}
                ],
                "connectionDetails": [{"fromConnectionSecretKey": "host"}, {"fromConnectionSecretKey": "port"}]
            }]
        }
    });
    (xrd, composition)
}

/// Every built-in Composition: the local ones, then the clouds' as given,
/// then the `dapr: state` twin of each DBaaS Composition.
pub fn compositions(cloud: &[Value]) -> Vec<Value> {
    let mut all = vec![dbaas().1, compute().1];
    all.extend(cloud.iter().cloned());
    let twins: Vec<Value> = all
        .iter()
        .filter(|c| c["spec"]["compositeTypeRef"]["kind"] == "XPostgreSQLInstance")
        .map(|c| dapr::with_state_store(c.clone()))
        .collect();
    all.extend(twins);
    all
}

/// Installs the built-in XRDs and Compositions, the clouds' among them
/// (server-side apply, so a restart brings them back to what this Plinth
/// ships).
pub async fn install(client: &Client, cloud: &[Value]) -> Result<(), kube::Error> {
    let xrds: Api<DynamicObject> = Api::all_with(client.clone(), &util::xrd_resource());
    let compositions: Api<DynamicObject> =
        Api::all_with(client.clone(), &util::composition_resource());
    let objects = [dbaas().0, compute().0]
        .into_iter()
        .map(|xrd| (&xrds, xrd))
        .chain(
            self::compositions(cloud)
                .into_iter()
                .map(|c| (&compositions, c)),
        );
    for (api, object) in objects {
        let name = object["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        api.patch(
            &name,
            &PatchParams::apply(names::FIELD_MANAGER).force(),
            &Patch::Apply(object),
        )
        .await?;
    }
    Ok(())
}
