//! OAM's group, kinds and labels, in KubeVela's spellings so its tooling
//! and habits carry over.

use kube::api::{ApiResource, GroupVersionKind};

pub const GROUP: &str = "core.oam.dev";
pub const VERSION: &str = "v1beta1";
pub const API_VERSION: &str = "core.oam.dev/v1beta1";
pub const APPLICATION: &str = "Application";
pub const COMPONENT_DEFINITION: &str = "ComponentDefinition";

/// Where KubeVela keeps the definitions every namespace may use.
pub const DEFINITIONS_NAMESPACE: &str = "vela-system";

/// The field manager of what the OAM controllers write.
pub const FIELD_MANAGER: &str = "plinth-oam";

/// Labels KubeVela puts on what it creates for an Application.
pub mod label {
    pub const APP_NAME: &str = "app.oam.dev/name";
    pub const APP_NAMESPACE: &str = "app.oam.dev/namespace";
    pub const COMPONENT: &str = "app.oam.dev/component";
    /// The component's type.
    pub const WORKLOAD_TYPE: &str = "workload.oam.dev/type";
    /// `WORKLOAD` on what a component becomes.
    pub const RESOURCE_TYPE: &str = "app.oam.dev/resourceType";
    /// On generated ComponentDefinitions: the XRD they stand for.
    pub const XRD: &str = "plinth.dev/xrd";
}

/// KubeVela's parameter schema ConfigMaps: `component-schema-<name>`,
/// holding the JSON schema under this key.
pub const SCHEMA_CONFIGMAP_PREFIX: &str = "component-schema-";
pub const SCHEMA_KEY: &str = "openapi-v3-json-schema";

/// Application phases (`status.status`), as KubeVela names them: a spec
/// that cannot be read stays `rendering`.
pub mod phase {
    pub const RENDERING: &str = "rendering";
    pub const RUNNING_WORKFLOW: &str = "runningWorkflow";
    pub const RUNNING: &str = "running";
}

/// The trait types Plinth applies; any other is refused.
pub mod traits {
    pub const LABELS: &str = "labels";
    pub const ANNOTATIONS: &str = "annotations";
    /// Names the Secret the claim writes its connection details to.
    pub const CONNECTION_SECRET: &str = "connection-secret";
    pub const ALL: &[&str] = &[LABELS, ANNOTATIONS, CONNECTION_SECRET];
}

/// The workflow step types Plinth runs; any other is refused.
pub mod steps {
    /// Applies one component, then waits for it to be healthy.
    pub const APPLY_COMPONENT: &str = "apply-component";
    pub const ALL: &[&str] = &[APPLY_COMPONENT];
}

pub fn application_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(GROUP, VERSION, APPLICATION),
        "applications",
    )
}

pub fn component_definition_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(GROUP, VERSION, COMPONENT_DEFINITION),
        "componentdefinitions",
    )
}

/// Crossplane's CompositeResourceDefinition, read to generate definitions.
pub fn xrd_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(
            "apiextensions.crossplane.io",
            "v1",
            "CompositeResourceDefinition",
        ),
        "compositeresourcedefinitions",
    )
}
