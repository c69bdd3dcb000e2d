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

/// Held on an XRD until the CRDs it defines are deleted.
pub const XRD_FINALIZER: &str = "defined.apiextensions.crossplane.io";
/// Held on a claim until its composite resource is deleted.
pub const CLAIM_FINALIZER: &str = "finalizer.apiextensions.crossplane.io";

/// Labels.
pub const LABEL_COMPOSITION_NAME: &str = "crossplane.io/composition-name";
pub const LABEL_COMPOSITION_HASH: &str = "crossplane.io/composition-hash";
pub const LABEL_CLAIM_NAME: &str = composition::render::LABEL_CLAIM_NAME;
pub const LABEL_CLAIM_NAMESPACE: &str = composition::render::LABEL_CLAIM_NAMESPACE;
/// On the CRDs an XRD defines: the XRD's name.
pub const LABEL_XRD: &str = "plinth.dev/xrd";
/// On a claim's composite resource: the name of the Secret the claim
/// writes in its namespace, for Compositions that compose something there
/// that reads it (a Dapr Component's `secretKeyRef`).
pub const ANNOTATION_CLAIM_CONNECTION_SECRET: &str = "plinth.dev/claim-connection-secret";

/// Condition types and reasons.
pub const ESTABLISHED: &str = "Established";
pub const OFFERED: &str = "Offered";
pub const WATCHING_COMPOSITE: &str = "WatchingCompositeResource";
pub const WATCHING_CLAIM: &str = "WatchingCompositeResourceClaim";
pub const INVALID_DEFINITION: &str = "InvalidDefinition";
pub const TERMINATING: &str = "Terminating";

/// Composition policies and their Crossplane defaults.
pub const POLICY_AUTOMATIC: &str = "Automatic";
pub const POLICY_MANUAL: &str = "Manual";
pub const DELETE_BACKGROUND: &str = "Background";
pub const DELETE_FOREGROUND: &str = "Foreground";

/// Where composite resources keep their connection Secrets unless the XRD's
/// `spec.writeConnectionSecretsToNamespace` says otherwise.
pub const SYSTEM_NAMESPACE: &str = "plinth-system";
/// Crossplane's own namespace: its documented Compositions write connection
/// Secrets there, so Plinth creates it.
pub const CROSSPLANE_NAMESPACE: &str = "crossplane-system";
/// The field manager the composition controllers write as.
pub const FIELD_MANAGER: &str = "plinth-composition";
/// The field manager the claim reconciler applies composite resources as:
/// it owns the spec fields copied from the claim, so a field removed from
/// the claim is removed from the composite resource too.
pub const CLAIM_FIELD_MANAGER: &str = "plinth-claim";

/// How long the composite and claim reconcilers wait after a change before
/// they act on it, so a burst of changes to one object is one cycle: the
/// composed resources of one composite become Ready within a few
/// milliseconds of each other. A change the reconciler's own write caused
/// wakes nothing (see `runtime::controller`), so the bursts left are short,
/// and every hop of a claim (claim, composite, managed, composite, claim)
/// waits this long once.
pub const DEBOUNCE: std::time::Duration = std::time::Duration::from_millis(10);

/// How long a Ready composite or claim waits for another look when nothing
/// it depends on has changed. Everything it depends on is watched, so this
/// is only a safety net; at thousands of objects a short one was most of
/// the idle CPU.
pub const RESYNC_READY: std::time::Duration = std::time::Duration::from_secs(3600);
/// The same for one that is not Ready yet.
pub const RESYNC_NOT_READY: std::time::Duration = std::time::Duration::from_secs(30);
