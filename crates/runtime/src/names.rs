//! Every annotation, finalizer, condition type, reason and event reason the
//! controllers write, in one place. Crossplane's spellings where Crossplane
//! has one, so its tooling and habits carry over.

/// Annotations on managed resources.
pub mod annotation {
    /// The name of the external resource.
    pub const EXTERNAL_NAME: &str = "crossplane.io/external-name";
    /// Written, conflict-checked, just before Create is called.
    pub const EXTERNAL_CREATE_PENDING: &str = "crossplane.io/external-create-pending";
    /// Written once Create returned.
    pub const EXTERNAL_CREATE_SUCCEEDED: &str = "crossplane.io/external-create-succeeded";
    /// Written when Create failed.
    pub const EXTERNAL_CREATE_FAILED: &str = "crossplane.io/external-create-failed";
    /// Overrides the drift poll interval of one resource, e.g. `30s`, `5m`.
    pub const POLL_INTERVAL: &str = "plinth.dev/poll-interval";
}

/// Labels Crossplane puts on composed resources, copied onto their
/// connection Secrets so a change to a Secret reaches the composite and the
/// claim behind it.
pub mod label {
    pub const COMPOSITE: &str = "crossplane.io/composite";
    pub const CLAIM_NAME: &str = "crossplane.io/claim-name";
    pub const CLAIM_NAMESPACE: &str = "crossplane.io/claim-namespace";
    /// ClusterRoles with it set to "true" aggregate into the controllers'
    /// own (deploy/base/rbac.yaml): how each XRD's and each provider's
    /// kinds become theirs to manage.
    pub const AGGREGATE_TO_CONTROLLER: &str = "plinth.dev/aggregate-to-controller";
}

/// Finalizers.
pub mod finalizer {
    /// Held on a managed resource until its external resource is gone.
    pub const MANAGED_RESOURCE: &str = "finalizer.managedresource.crossplane.io";
    /// Held on a ProviderConfig while a managed resource uses it.
    pub const IN_USE: &str = "in-use.crossplane.io";
}

/// Condition types.
pub mod condition {
    pub const READY: &str = "Ready";
    pub const SYNCED: &str = "Synced";
    pub const HEALTHY: &str = "Healthy";
    pub const INSTALLED: &str = "Installed";
    /// On a ProviderConfig: whether managed resources use it.
    pub const IN_USE: &str = "InUse";
}

/// Condition reasons.
pub mod reason {
    pub const AVAILABLE: &str = "Available";
    pub const CREATING: &str = "Creating";
    pub const DELETING: &str = "Deleting";
    pub const UNAVAILABLE: &str = "Unavailable";
    pub const RECONCILE_SUCCESS: &str = "ReconcileSuccess";
    pub const RECONCILE_ERROR: &str = "ReconcileError";
    pub const HEALTHY: &str = "HealthyPackageRevision";
    pub const UNHEALTHY: &str = "UnhealthyPackageRevision";
    pub const INSTALLED: &str = "ActivePackageRevision";
    pub const INSTALLING: &str = "InstallingPackageRevision";
    /// The provider never got as far as serving its kinds.
    pub const INSTALL_FAILED: &str = "UnhealthyPackageRevision";
    pub const IN_USE: &str = "InUse";
    pub const UNUSED: &str = "Unused";
}

/// Event reasons.
pub mod event {
    pub const CREATED: &str = "CreatedExternalResource";
    pub const UPDATED: &str = "UpdatedExternalResource";
    pub const DELETED: &str = "DeletedExternalResource";
    pub const RECOVERED: &str = "RecoveredInterruptedCreate";
    pub const CANNOT_OBSERVE: &str = "CannotObserveExternalResource";
    pub const CANNOT_CREATE: &str = "CannotCreateExternalResource";
    pub const CANNOT_UPDATE: &str = "CannotUpdateExternalResource";
    pub const CANNOT_DELETE: &str = "CannotDeleteExternalResource";
    pub const CANNOT_CONNECT: &str = "CannotConnectToProvider";
    /// The control plane's own part of a cycle failed (a missing
    /// ProviderConfig, an invalid spec, an API error).
    pub const RECONCILE_ERROR: &str = "ReconcileError";
}

/// Values of `spec.managementPolicies`.
pub mod policy {
    pub const ALL: &str = "*";
    pub const OBSERVE: &str = "Observe";
    pub const CREATE: &str = "Create";
    pub const UPDATE: &str = "Update";
    pub const DELETE: &str = "Delete";
    pub const LATE_INITIALIZE: &str = "LateInitialize";
}

/// The API group and kind of provider packages.
pub const PROVIDER_GROUP: &str = "pkg.plinth.dev";
pub const PROVIDER_VERSION: &str = "v1";
pub const PROVIDER_KIND: &str = "Provider";
pub const PROVIDER_PLURAL: &str = "providers";
/// The kind every provider's config has, in the provider's own group.
pub const PROVIDER_CONFIG_KIND: &str = "ProviderConfig";
pub const PROVIDER_CONFIG_PLURAL: &str = "providerconfigs";
/// The ProviderConfig a resource uses when it names none.
pub const DEFAULT_PROVIDER_CONFIG: &str = "default";
/// The field manager the controllers write as.
pub const FIELD_MANAGER: &str = "plinth-controllers";
/// Namespace for Events about cluster-scoped objects.
pub const EVENT_NAMESPACE: &str = "default";
/// Where the control plane keeps Secrets of its own.
pub const SYSTEM_NAMESPACE: &str = "plinth-system";
/// The Secret holding the key every managed resource's secret seed is
/// derived from, and the key in it.
pub const SEED_SECRET: &str = "plinth-resource-seed";
pub const SEED_SECRET_KEY: &str = "key";
