//! The structural schemas of the built-in kinds and of `ObjectMeta`.
//!
//! kube-apiserver decodes built-in kinds into Go structs, which drops (or, under
//! `fieldValidation=Strict`, refuses) unknown fields and refuses values of the
//! wrong type. Plinth keeps every object as JSON, so it gets the same effect by
//! running built-in kinds through the same structural-schema pruning and
//! validation as custom resources, with schemas written here after the
//! k8s.io/api types (Kubernetes 1.33). The same schemas, descriptions included,
//! are published through OpenAPI for `kubectl explain`, and their list types
//! tell server-side apply how lists merge (`ServiceAccount.secrets` by `name`).

use std::sync::{Arc, LazyLock};

use apimachinery::schema::StructuralSchema;
use serde_json::{json, Value};

use super::Builtin;

/// The compiled schema of a built-in kind.
pub fn structural(kind: Builtin) -> Arc<StructuralSchema> {
    static SCHEMAS: LazyLock<Vec<(Builtin, Arc<StructuralSchema>)>> = LazyLock::new(|| {
        Builtin::ALL
            .iter()
            .map(|&kind| (kind, Arc::new(compile(&raw(kind), kind.kind()))))
            .collect()
    });
    SCHEMAS
        .iter()
        .find(|(k, _)| *k == kind)
        .map(|(_, schema)| schema.clone())
        .unwrap_or_else(|| Arc::new(compile(&raw(kind), kind.kind())))
}

/// The compiled schema of `metadata`, shared by every kind.
pub fn object_meta() -> &'static StructuralSchema {
    static META: LazyLock<StructuralSchema> =
        LazyLock::new(|| compile(&object_meta_raw(), "ObjectMeta"));
    &META
}

/// The schemas are constants of this file, checked by a unit test, so a parse
/// failure is a programming error; still, a server that keeps such a kind
/// unvalidated is better than one that cannot start.
fn compile(raw: &Value, what: &str) -> StructuralSchema {
    match StructuralSchema::new(raw, what) {
        Ok(schema) => schema,
        Err(errors) => {
            tracing::error!(
                schema = what,
                ?errors,
                "built-in schema does not parse; not validating this kind"
            );
            StructuralSchema::permissive()
        }
    }
}

fn string(description: &str) -> Value {
    json!({"type": "string", "description": description})
}

fn boolean(description: &str) -> Value {
    json!({"type": "boolean", "description": description})
}

fn int32(description: &str) -> Value {
    json!({"type": "integer", "format": "int32", "description": description})
}

fn int64(description: &str) -> Value {
    json!({"type": "integer", "format": "int64", "description": description})
}

/// `metav1.Time`: RFC 3339, stored with second precision.
fn time(description: &str) -> Value {
    json!({"type": "string", "format": "date-time", "description": description})
}

/// `metav1.MicroTime`: RFC 3339, stored with microsecond precision.
fn micro_time(description: &str) -> Value {
    json!({"type": "string", "format": "date-time", "description": description})
}

fn string_map(description: &str) -> Value {
    json!({"type": "object", "additionalProperties": {"type": "string"}, "description": description})
}

fn bytes_map(description: &str) -> Value {
    json!({"type": "object", "additionalProperties": {"type": "string", "format": "byte"}, "description": description})
}

fn strings(description: &str) -> Value {
    json!({"type": "array", "items": {"type": "string"}, "description": description})
}

/// A field Go always writes, so it is there with its zero value when a client left it out.
fn with_default(mut schema: Value, default: Value) -> Value {
    schema["default"] = default;
    schema
}

/// `corev1.ObjectReference`'s fields.
fn object_reference_properties() -> Value {
    json!({
        "apiVersion": string("API version of the referent."),
        "fieldPath": string("If referring to a piece of an object instead of an entire object, the path to that piece, e.g. spec.containers{name}."),
        "kind": string("Kind of the referent."),
        "name": string("Name of the referent."),
        "namespace": string("Namespace of the referent."),
        "resourceVersion": string("Specific resourceVersion to which this reference is made, if any."),
        "uid": string("UID of the referent."),
    })
}

/// `corev1.ObjectReference`, which upstream marks `+structType=atomic`.
fn object_reference(description: &str) -> Value {
    json!({
        "type": "object",
        "description": description,
        "properties": object_reference_properties(),
        "x-kubernetes-map-type": "atomic",
    })
}

/// The schema of one built-in kind, as published and as validated.
pub fn raw(kind: Builtin) -> Value {
    match kind {
        Builtin::Namespace => json!({
            "type": "object",
            "description": "Namespace provides a scope for Names. Use of multiple namespaces is optional.",
            "properties": {
                "spec": {
                    "type": "object",
                    "description": "Spec defines the behavior of the Namespace.",
                    "properties": {
                        "finalizers": strings("Finalizers is an opaque list of values that must be empty to permanently remove object from storage."),
                    },
                },
                "status": {
                    "type": "object",
                    "description": "Status describes the current status of a Namespace.",
                    "properties": {
                        "phase": string("Phase is the current lifecycle phase of the namespace: Active or Terminating."),
                        "conditions": {
                            "type": "array",
                            "description": "Represents the latest available observations of a namespace's current state.",
                            "x-kubernetes-list-type": "map",
                            "x-kubernetes-list-map-keys": ["type"],
                            "items": {
                                "type": "object",
                                "required": ["type", "status"],
                                "properties": {
                                    "type": string("Type of namespace controller condition."),
                                    "status": string("Status of the condition, one of True, False, Unknown."),
                                    "lastTransitionTime": time("Last time the condition transitioned from one status to another."),
                                    "reason": string("Unique, one-word, CamelCase reason for the condition's last transition."),
                                    "message": string("Human-readable message indicating details about last transition."),
                                },
                            },
                        },
                    },
                },
            },
        }),
        Builtin::Secret => json!({
            "type": "object",
            "description": "Secret holds secret data of a certain type. The total bytes of the values in the Data field must be less than MaxSecretSize bytes.",
            "properties": {
                "data": bytes_map("Data contains the secret data. Each key must consist of alphanumeric characters, '-', '_' or '.'. The serialized form of the secret data is a base64 encoded string."),
                "stringData": string_map("stringData allows specifying non-binary secret data in string form. It is provided as a write-only input field for convenience. All keys and values are merged into the data field on write, overwriting any existing values."),
                "type": string("Used to facilitate programmatic handling of secret data."),
                "immutable": boolean("Immutable, if set to true, ensures that data stored in the Secret cannot be updated (only object metadata can be modified)."),
            },
        }),
        Builtin::ConfigMap => json!({
            "type": "object",
            "description": "ConfigMap holds configuration data for pods to consume.",
            "properties": {
                "data": string_map("Data contains the configuration data. Each key must consist of alphanumeric characters, '-', '_' or '.'."),
                "binaryData": bytes_map("BinaryData contains the binary data. Each key must consist of alphanumeric characters, '-', '_' or '.'. Keys stored in BinaryData must not overlap with the ones in the Data field."),
                "immutable": boolean("Immutable, if set to true, ensures that data stored in the ConfigMap cannot be updated (only object metadata can be modified)."),
            },
        }),
        Builtin::Event => json!({
            "type": "object",
            "description": "Event is a report of an event somewhere in the cluster.",
            "properties": {
                // Go always writes these fields (no omitempty), and typed
                // clients (the Python client's models) require involvedObject.
                "involvedObject": with_default(object_reference("The object that this event is about."), json!({})),
                "reason": string("This should be a short, machine understandable string that gives the reason for the transition into the object's current status."),
                "message": string("A human-readable description of the status of this operation."),
                "source": {
                    "type": "object",
                    "description": "The component reporting this event.",
                    "properties": {
                        "component": string("Component from which the event is generated."),
                        "host": string("Node name on which the event is generated."),
                    },
                },
                "firstTimestamp": time("The time at which the event was first recorded."),
                "lastTimestamp": time("The time at which the most recent occurrence of this event was recorded."),
                "count": int32("The number of times this event has occurred."),
                "type": string("Type of this event (Normal, Warning), new types could be added in the future."),
                "eventTime": micro_time("Time when this Event was first observed."),
                "series": {
                    "type": "object",
                    "description": "Data about the Event series this event represents or nil if it's a singleton Event.",
                    "properties": {
                        "count": int32("Number of occurrences in this series up to the last heartbeat time."),
                        "lastObservedTime": micro_time("Time of the last occurrence observed."),
                    },
                },
                "action": string("What action was taken/failed regarding to the Regarding object."),
                "related": object_reference("Optional secondary object for more complex actions."),
                "reportingComponent": with_default(string("Name of the controller that emitted this Event, e.g. `kubernetes.io/kubelet`."), json!("")),
                "reportingInstance": with_default(string("ID of the controller instance, e.g. `kubelet-xyzf`."), json!("")),
            },
        }),
        Builtin::ServiceAccount => json!({
            "type": "object",
            "description": "ServiceAccount binds together a name, understood by users, and perhaps by peripheral systems, for an identity, and a set of secrets.",
            "properties": {
                "secrets": {
                    "type": "array",
                    "description": "Secrets is a list of the secrets in the same namespace that pods running using this ServiceAccount are allowed to use.",
                    "x-kubernetes-list-type": "map",
                    "x-kubernetes-list-map-keys": ["name"],
                    "items": {
                        "type": "object",
                        "required": ["name"],
                        "properties": object_reference_properties(),
                    },
                },
                "imagePullSecrets": {
                    "type": "array",
                    "description": "ImagePullSecrets is a list of references to secrets in the same namespace to use for pulling any images in pods that reference this ServiceAccount.",
                    "items": {
                        "type": "object",
                        "x-kubernetes-map-type": "atomic",
                        "properties": {"name": string("Name of the referent.")},
                    },
                },
                "automountServiceAccountToken": boolean("AutomountServiceAccountToken indicates whether pods running as this service account should have an API token automatically mounted."),
            },
        }),
        Builtin::Lease => json!({
            "type": "object",
            "description": "Lease defines a lease concept.",
            "properties": {
                "spec": {
                    "type": "object",
                    "description": "spec contains the specification of the Lease.",
                    "properties": {
                        "holderIdentity": string("holderIdentity contains the identity of the holder of a current lease."),
                        "leaseDurationSeconds": int32("leaseDurationSeconds is a duration that candidates for a lease need to wait to force acquire it. This is measured against the time of last observed renewTime."),
                        "acquireTime": micro_time("acquireTime is a time when the current lease was acquired."),
                        "renewTime": micro_time("renewTime is a time when the current holder of a lease has last updated the lease."),
                        "leaseTransitions": int32("leaseTransitions is the number of transitions of a lease between holders."),
                        "strategy": string("Strategy indicates the strategy for picking the leader for coordinated leader election."),
                        "preferredHolder": string("PreferredHolder signals to a lease holder that the lease has a more optimal holder and should be given up."),
                    },
                },
            },
        }),
        Builtin::CustomResourceDefinition => custom_resource_definition(),
        Builtin::Role => json!({
            "type": "object",
            "description": "Role is a namespaced, logical grouping of PolicyRules that can be referenced as a unit by a RoleBinding.",
            "properties": {"rules": policy_rules()},
        }),
        Builtin::ClusterRole => json!({
            "type": "object",
            "description": "ClusterRole is a cluster level, logical grouping of PolicyRules that can be referenced as a unit by a RoleBinding or ClusterRoleBinding.",
            "properties": {
                "rules": policy_rules(),
                "aggregationRule": {
                    "type": "object",
                    "description": "AggregationRule is an optional field that describes how to build the Rules for this ClusterRole. If AggregationRule is set, then the Rules are controller managed and direct changes to Rules will be stomped by the controller.",
                    "properties": {
                        "clusterRoleSelectors": {
                            "type": "array",
                            "description": "ClusterRoleSelectors holds a list of selectors which will be used to find ClusterRoles and create the rules. If any of the selectors match, then the ClusterRole's permissions will be added",
                            "x-kubernetes-list-type": "atomic",
                            "items": label_selector(),
                        },
                    },
                },
            },
        }),
        Builtin::RoleBinding | Builtin::ClusterRoleBinding => json!({
            "type": "object",
            "description": if kind == Builtin::RoleBinding {
                "RoleBinding references a role, but does not contain it. It can reference a Role in the same namespace or a ClusterRole in the global namespace. It adds who information via Subjects and namespace information by which namespace it exists in."
            } else {
                "ClusterRoleBinding references a ClusterRole, but not contain it. It can reference a ClusterRole in the global namespace, and adds who information via Subject."
            },
            "required": ["roleRef"],
            "properties": {
                "roleRef": {
                    "type": "object",
                    "description": "RoleRef can reference a Role in the current namespace or a ClusterRole in the global namespace. If the RoleRef cannot be resolved, the Authorizer must return an error. This field is immutable.",
                    "required": ["apiGroup", "kind", "name"],
                    "x-kubernetes-map-type": "atomic",
                    "properties": {
                        "apiGroup": string("APIGroup is the group for the resource being referenced"),
                        "kind": string("Kind is the type of resource being referenced"),
                        "name": string("Name is the name of resource being referenced"),
                    },
                },
                "subjects": {
                    "type": "array",
                    "description": "Subjects holds references to the objects the role applies to.",
                    "x-kubernetes-list-type": "atomic",
                    "items": {
                        "type": "object",
                        "required": ["kind", "name"],
                        "x-kubernetes-map-type": "atomic",
                        "properties": {
                            "kind": string("Kind of object being referenced. Values defined by this API group are \"User\", \"Group\", and \"ServiceAccount\"."),
                            "apiGroup": string("APIGroup holds the API group of the referenced subject. Defaults to \"\" for ServiceAccount subjects. Defaults to \"rbac.authorization.k8s.io\" for User and Group subjects."),
                            "name": string("Name of the object being referenced."),
                            "namespace": string("Namespace of the referenced object."),
                        },
                    },
                },
            },
        }),
        Builtin::SelfSubjectReview
        | Builtin::SelfSubjectAccessReview
        | Builtin::SubjectAccessReview
        | Builtin::LocalSubjectAccessReview
        | Builtin::SelfSubjectRulesReview => json!({
            "type": "object",
            "description": "A review: created to ask the server a question, answered in status, and never stored.",
            "properties": {
                "spec": {"type": "object", "description": "What is asked.", "x-kubernetes-preserve-unknown-fields": true},
                "status": {"type": "object", "description": "The server's answer.", "x-kubernetes-preserve-unknown-fields": true},
            },
        }),
    }
}

/// `[]rbacv1.PolicyRule`.
fn policy_rules() -> Value {
    json!({
        "type": "array",
        "description": "Rules holds all the PolicyRules for this Role",
        "x-kubernetes-list-type": "atomic",
        "items": {
            "type": "object",
            "description": "PolicyRule holds information that describes a policy rule, but does not contain information about who the rule applies to or which namespace the rule applies to.",
            "required": ["verbs"],
            "properties": {
                "verbs": strings("Verbs is a list of Verbs that apply to ALL the ResourceKinds contained in this rule. '*' represents all verbs."),
                "apiGroups": strings("APIGroups is the name of the APIGroup that contains the resources. If multiple API groups are specified, any action requested against one of the enumerated resources in any API group will be allowed. \"\" represents the core API group and \"*\" represents all API groups."),
                "resources": strings("Resources is a list of resources this rule applies to. '*' represents all resources."),
                "resourceNames": strings("ResourceNames is an optional white list of names that the rule applies to.  An empty set means that everything is allowed."),
                "nonResourceURLs": strings("NonResourceURLs is a set of partial urls that a user should have access to.  *s are allowed, but only as the full, final step in the path."),
            },
        },
    })
}

/// `metav1.LabelSelector`.
fn label_selector() -> Value {
    json!({
        "type": "object",
        "description": "A label selector is a label query over a set of resources.",
        "x-kubernetes-map-type": "atomic",
        "properties": {
            "matchLabels": string_map("matchLabels is a map of {key,value} pairs."),
            "matchExpressions": {
                "type": "array",
                "description": "matchExpressions is a list of label selector requirements. The requirements are ANDed.",
                "x-kubernetes-list-type": "atomic",
                "items": {
                    "type": "object",
                    "required": ["key", "operator"],
                    "properties": {
                        "key": string("key is the label key that the selector applies to."),
                        "operator": string("operator represents a key's relationship to a set of values. Valid operators are In, NotIn, Exists and DoesNotExist."),
                        "values": strings("values is an array of string values."),
                    },
                },
            },
        },
    })
}

/// The CRD's own schema: its shape is checked field by field down to each
/// version; `openAPIV3Schema` itself is a recursive JSON Schema that no
/// structural schema can describe, and `crd::resources` checks it instead.
fn custom_resource_definition() -> Value {
    let any_object = |description: &str| json!({"type": "object", "description": description, "x-kubernetes-preserve-unknown-fields": true});
    json!({
        "type": "object",
        "description": "CustomResourceDefinition represents a resource that should be exposed on the API server. Its name MUST be in the format <.spec.name>.<.spec.group>.",
        "properties": {
            "spec": {
                "type": "object",
                "description": "spec describes how the user wants the resources to appear.",
                "properties": {
                    "group": string("group is the API group of the defined custom resource."),
                    "names": {
                        "type": "object",
                        "description": "names specify the resource and kind names for the custom resource.",
                        "properties": {
                            "plural": string("plural is the plural name of the resource to serve."),
                            "singular": string("singular is the singular name of the resource."),
                            "shortNames": strings("shortNames are short names for the resource, exposed in API discovery documents."),
                            "kind": string("kind is the serialized kind of the resource."),
                            "listKind": string("listKind is the serialized kind of the list for this resource."),
                            "categories": strings("categories is a list of grouped resources this custom resource belongs to (e.g. 'all')."),
                        },
                    },
                    "scope": string("scope indicates whether the defined custom resource is cluster- or namespace-scoped: Cluster or Namespaced."),
                    "versions": {
                        "type": "array",
                        "description": "versions is the list of all API versions of the defined custom resource.",
                        "items": {
                            "type": "object",
                            "properties": {
                                "name": string("name is the version name, e.g. \"v1\", \"v2beta1\"."),
                                // Plain bools in Go, always written; typed clients require them.
                                "served": with_default(boolean("served is a flag enabling/disabling this version from being served via REST APIs."), json!(false)),
                                "storage": with_default(boolean("storage indicates this version should be used when persisting custom resources to storage."), json!(false)),
                                "deprecated": boolean("deprecated indicates this version of the custom resource API is deprecated."),
                                "deprecationWarning": string("deprecationWarning overrides the default warning returned to API clients."),
                                "schema": {
                                    "type": "object",
                                    "description": "schema describes the schema used for validation, pruning, and defaulting of this version of the custom resource.",
                                    "properties": {
                                        "openAPIV3Schema": any_object("openAPIV3Schema is the OpenAPI v3 schema to use for validation and pruning."),
                                    },
                                },
                                "subresources": {
                                    "type": "object",
                                    "description": "subresources specify what subresources this version of the defined custom resource have.",
                                    "properties": {
                                        "status": any_object("status indicates the custom resource should serve a `/status` subresource."),
                                        "scale": {
                                            "type": "object",
                                            "description": "scale indicates the custom resource should serve a `/scale` subresource.",
                                            "properties": {
                                                "specReplicasPath": string("specReplicasPath defines the JSON path inside of a custom resource that corresponds to Scale `spec.replicas`."),
                                                "statusReplicasPath": string("statusReplicasPath defines the JSON path inside of a custom resource that corresponds to Scale `status.replicas`."),
                                                "labelSelectorPath": string("labelSelectorPath defines the JSON path inside of a custom resource that corresponds to Scale `status.selector`."),
                                            },
                                        },
                                    },
                                },
                                "additionalPrinterColumns": {
                                    "type": "array",
                                    "description": "additionalPrinterColumns specifies additional columns returned in Table output.",
                                    "items": {
                                        "type": "object",
                                        "properties": {
                                            "name": string("name is a human readable name for the column."),
                                            "type": string("type is an OpenAPI type definition for this column."),
                                            "format": string("format is an optional OpenAPI type definition for this column."),
                                            "description": string("description is a human readable description of this column."),
                                            "priority": int32("priority is an integer defining the relative importance of this column compared to others."),
                                            "jsonPath": string("jsonPath is a simple JSON path (i.e. with array notation) which is evaluated against each custom resource to produce the value for this column."),
                                        },
                                    },
                                },
                                "selectableFields": {
                                    "type": "array",
                                    "description": "selectableFields specifies paths to fields that may be used as field selectors.",
                                    "items": {
                                        "type": "object",
                                        "properties": {"jsonPath": string("jsonPath is a simple JSON path which is evaluated against each custom resource to produce a field selector value.")},
                                    },
                                },
                            },
                        },
                    },
                    "conversion": {
                        "type": "object",
                        "description": "conversion defines conversion settings for the CRD.",
                        "properties": {
                            "strategy": string("strategy specifies how custom resources are converted between versions: None or Webhook."),
                            "webhook": any_object("webhook describes how to call the conversion webhook."),
                        },
                    },
                    "preserveUnknownFields": boolean("preserveUnknownFields indicates that object fields which are not specified in the OpenAPI schema should be preserved when persisting to storage."),
                },
            },
            "status": any_object("status indicates the actual state of the CustomResourceDefinition."),
        },
    })
}

/// `metav1.ObjectMeta`, validated on its own below every object's `metadata`.
fn object_meta_raw() -> Value {
    json!({
        "type": "object",
        "description": "ObjectMeta is metadata that all persisted resources must have.",
        "properties": {
            "name": string("Name must be unique within a namespace."),
            "generateName": string("An optional prefix the server uses to generate a unique name when name is not provided."),
            "namespace": string("The namespace the object is in."),
            "selfLink": string("Deprecated: selfLink is a legacy read-only field that is no longer populated by the system."),
            "uid": string("The unique in time and space value for this object."),
            "resourceVersion": string("An opaque value that represents the internal version of this object."),
            "generation": int64("A sequence number representing a specific generation of the desired state."),
            "creationTimestamp": time("When this object was created."),
            "deletionTimestamp": time("When this object will be deleted; set by the server when deletion is requested."),
            "deletionGracePeriodSeconds": int64("Number of seconds allowed for this object to gracefully terminate before it will be removed from the system."),
            "labels": string_map("Map of string keys and values that can be used to organize and categorize objects."),
            "annotations": string_map("Unstructured key value map stored with a resource."),
            "ownerReferences": {
                "type": "array",
                "description": "Objects this object depends on.",
                "items": {
                    "type": "object",
                    "properties": {
                        "apiVersion": string("API version of the referent."),
                        "kind": string("Kind of the referent."),
                        "name": string("Name of the referent."),
                        "uid": string("UID of the referent."),
                        "controller": boolean("If true, this reference points to the managing controller."),
                        "blockOwnerDeletion": boolean("If true, the owner cannot be deleted from the key-value store until this reference is removed."),
                    },
                },
            },
            "finalizers": strings("Must be empty before the object is deleted from the registry."),
            "managedFields": {
                "type": "array",
                "description": "Which field manager owns which fields.",
                "items": {
                    "type": "object",
                    "properties": {
                        "manager": string("Manager is an identifier of the workflow managing these fields."),
                        "operation": string("Operation is the type of operation which lead to this ManagedFieldsEntry being created: Apply or Update."),
                        "apiVersion": string("APIVersion defines the version of this resource that this field set applies to."),
                        "time": time("Time is the timestamp of when the ManagedFields entry was added."),
                        "fieldsType": string("FieldsType is the discriminator for the different fields format and version: FieldsV1."),
                        "fieldsV1": {"type": "object", "description": "FieldsV1 holds the first JSON version format as described in the \"FieldsV1\" type.", "x-kubernetes-preserve-unknown-fields": true},
                        "subresource": string("Subresource is the name of the subresource used to update that object, or empty string if the object was updated through the main resource."),
                    },
                },
            },
        },
    })
}

/// The schema OpenAPI publishes for `metadata`.
pub fn object_meta_openapi() -> Value {
    object_meta_raw()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_schema_is_structural() {
        for kind in Builtin::ALL {
            if let Err(errors) = StructuralSchema::new(&raw(kind), kind.kind()) {
                panic!("{}: {errors:?}", kind.kind());
            }
        }
        if let Err(errors) = StructuralSchema::new(&object_meta_raw(), "ObjectMeta") {
            panic!("ObjectMeta: {errors:?}");
        }
    }
}
