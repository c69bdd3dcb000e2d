//! The names the composition controllers write: groups, finalizers, labels,
//! condition reasons.

pub const GROUP: &str = "apiextensions.crossplane.io";
pub const VERSION: &str = "v1";
pub const XRD_KIND: &str = "CompositeResourceDefinition";
pub const XRD_PLURAL: &str = "compositeresourcedefinitions";
pub const COMPOSITION_KIND: &str = "Composition";
pub const COMPOSITION_PLURAL: &str = "compositions";
pub const REVISION_KIND: &str = "CompositionRevision";
pub const REVISION_PLURAL: &str = "compositionrevisions";

/// Held on a claim until its composite resource is deleted.
pub const CLAIM_FINALIZER: &str = "finalizer.apiextensions.crossplane.io";

/// Labels.
pub const LABEL_COMPOSITION_NAME: &str = "crossplane.io/composition-name";
pub const LABEL_COMPOSITION_HASH: &str = "crossplane.io/composition-hash";
pub const LABEL_CLAIM_NAME: &str = composition::render::LABEL_CLAIM_NAME;
pub const LABEL_CLAIM_NAMESPACE: &str = composition::render::LABEL_CLAIM_NAMESPACE;

/// Condition types and reasons.
pub const ESTABLISHED: &str = "Established";
pub const OFFERED: &str = "Offered";
pub const WATCHING_COMPOSITE: &str = "WatchingCompositeResource";
pub const WATCHING_CLAIM: &str = "WatchingCompositeResourceClaim";

/// Where composite resources keep their connection Secrets.
pub const SYSTEM_NAMESPACE: &str = "plinth-system";
/// The field manager the composition controllers write as.
pub const FIELD_MANAGER: &str = "plinth-composition";
