//! The life of an object: create, update and delete with every rule the API
//! server enforces — system metadata, schema defaulting and validation,
//! generation, field ownership, finalizers and deletion.
//!
//! The HTTP handlers and the garbage collector both go through here, so an
//! object deleted by cascade obeys the same finalizers as one deleted by a user.

use std::sync::Arc;

use apimachinery::fieldmanager::{self, Manager, Operation};
use apimachinery::{CauseType, FieldError, TypeInfo, Untyped};
use rand::Rng;
use serde_json::{json, Map, Value};
use store::{Record, StoreError};

use crate::builtin::{self, Builtin};
use crate::object::{self, meta};
use crate::resource::Resource;
use crate::status::{reason, ApiError};
use crate::{crd, Api};

/// The field manager of the only writer allowed to change a namespace's
/// `spec.finalizers`: the garbage collector, once the namespace is empty.
pub const NAMESPACE_CLEANUP_MANAGER: &str = "plinth-garbage-collector";

/// How many times a write without a client precondition is retried after
/// losing a race with another writer before the client sees 409.
const MAX_RETRIES: usize = 16;

/// The `fieldValidation` query parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldValidation {
    Ignore,
    Warn,
    Strict,
}

/// Per-request write options.
#[derive(Debug, Clone)]
pub struct WriteOptions {
    pub dry_run: bool,
    pub field_manager: String,
    pub field_validation: FieldValidation,
    /// The API verb, for the store-write metrics (`system` for the server's own).
    pub verb: &'static str,
    /// Who asks, for the RBAC escalation check; `None` for the server's own
    /// writes, which need none.
    pub user: Option<std::sync::Arc<rbac::UserInfo>>,
}

impl WriteOptions {
    /// Options for writes the server makes on its own behalf.
    pub fn system(manager: &str) -> WriteOptions {
        WriteOptions {
            dry_run: false,
            field_manager: manager.to_string(),
            field_validation: FieldValidation::Ignore,
            verb: "system",
            user: None,
        }
    }
}

/// A successful write.
#[derive(Debug)]
pub struct Written {
    pub object: WrittenObject,
    pub created: bool,
    /// `Warning` headers to send (unknown fields under `fieldValidation=Warn`).
    pub warnings: Vec<String>,
}

/// What a write left: the stored record, whose JSON the response sends as
/// it is, or for a dry run the object that would have been stored.
#[derive(Debug)]
pub enum WrittenObject {
    Stored(Arc<Record>),
    DryRun(Box<Value>),
}

/// Which part of an object a write replaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Main,
    Status,
}

/// How field ownership is recorded for a write.
enum Tracking<'a> {
    /// An ordinary write by this manager.
    Update(&'a str),
    /// Server-side apply already computed `managedFields`.
    Applied,
}

// === create ===

pub async fn create(
    api: &Api,
    res: &Resource,
    namespace: Option<&str>,
    body: Value,
    opts: &WriteOptions,
) -> Result<Written, ApiError> {
    let (obj, warnings) = prepare_create(
        api,
        res,
        namespace,
        body,
        Tracking::Update(&opts.field_manager),
        opts,
    )?;
    store_create(api, res, namespace, obj, warnings, opts).await
}

fn prepare_create(
    api: &Api,
    res: &Resource,
    namespace: Option<&str>,
    body: Value,
    tracking: Tracking<'_>,
    opts: &WriteOptions,
) -> Result<(Value, Vec<String>), ApiError> {
    let mut obj = body;
    check_type_meta(res, &mut obj)?;
    refuse_if_crd_terminating(api, res)?;
    set_namespace(api, res, namespace, &mut obj)?;
    let name = object::name(&obj).to_string();
    let name = if name.is_empty() {
        let prefix = object::meta_str(&obj, "generateName").to_string();
        if prefix.is_empty() {
            return Err(ApiError::invalid(
                &res.group,
                &res.kind,
                "",
                vec![FieldError::new(
                    CauseType::Required,
                    "metadata.name",
                    "Required value: name or generateName is required",
                )],
            ));
        }
        generate_name(&prefix)
    } else {
        name
    };
    let now = object::now();
    let Some(meta) = object::metadata_mut(&mut obj) else {
        return Err(ApiError::bad_field(
            "body",
            "the request body must be a JSON object",
        ));
    };
    meta.insert("name".into(), json!(name));
    meta.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
    meta.insert("creationTimestamp".into(), json!(now));
    if res.has_generation() {
        meta.insert("generation".into(), json!(1));
    } else {
        meta.remove("generation");
    }
    for field in [
        "resourceVersion",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "selfLink",
    ] {
        meta.remove(field);
    }
    if matches!(tracking, Tracking::Update(_)) {
        meta.remove("managedFields");
    }
    if res.status_subresource && res.builtin.is_none() {
        // Status is written through its subresource only.
        if let Some(map) = obj.as_object_mut() {
            map.remove("status");
        }
    }
    let warnings = normalize(res, None, &mut obj, opts)?;
    if let Tracking::Update(manager) = tracking {
        track(res, None, &mut obj, manager, Part::Main);
    }
    Ok((obj, warnings))
}

async fn store_create(
    api: &Api,
    res: &Resource,
    namespace: Option<&str>,
    obj: Value,
    warnings: Vec<String>,
    opts: &WriteOptions,
) -> Result<Written, ApiError> {
    let name = object::name(&obj).to_string();
    let key = res.key(namespace, &name);
    check_escalation(api, res, &obj, opts)?;
    if opts.dry_run {
        if api.store.get(&key).is_some() {
            return Err(ApiError::already_exists(&res.group, &res.plural, &name));
        }
        return Ok(Written {
            object: WrittenObject::DryRun(Box::new(obj)),
            created: true,
            warnings,
        });
    }
    let crd = (res.builtin == Some(Builtin::CustomResourceDefinition)).then(|| obj.clone());
    match api.store.create(&key, obj).await {
        Ok(record) => {
            api.metrics.stored(res, Part::Main, opts.verb);
            if let Some(crd) = crd {
                api.sync_crd(&crd, false);
            }
            invalidate_policy(api, res);
            Ok(Written {
                object: WrittenObject::Stored(record),
                created: true,
                warnings,
            })
        }
        Err(StoreError::AlreadyExists) => {
            Err(ApiError::already_exists(&res.group, &res.plural, &name))
        }
        Err(err) => Err(err.into()),
    }
}

// === update ===

/// PUT: replaces the object (or its status).
pub async fn update(
    api: &Api,
    res: &Resource,
    namespace: Option<&str>,
    name: &str,
    body: Value,
    part: Part,
    opts: &WriteOptions,
) -> Result<Written, ApiError> {
    check_body_name(&body, name)?;
    let precondition = object::resource_version(&body)
        .map_err(|e| ApiError::invalid(&res.group, &res.kind, name, vec![e]))?;
    let key = res.key(namespace, name);
    for _ in 0..MAX_RETRIES {
        let current = api
            .store
            .get(&key)
            .ok_or_else(|| ApiError::not_found(&res.group, &res.plural, name))?;
        if precondition.is_some_and(|rv| rv != current.mod_revision) {
            return Err(ApiError::conflict(&res.group, &res.plural, name));
        }
        let current_value = current.value()?;
        let (new, warnings) = prepare_update(
            res,
            &current_value,
            body.clone(),
            part,
            Tracking::Update(&opts.field_manager),
            opts,
        )?;
        match commit_update(
            api,
            res,
            part,
            &current,
            &current_value,
            new,
            warnings,
            opts,
        )
        .await
        {
            Err(Retry) if precondition.is_none() => continue,
            Err(Retry) => return Err(ApiError::conflict(&res.group, &res.plural, name)),
            Ok(result) => return result,
        }
    }
    Err(ApiError::conflict(&res.group, &res.plural, name))
}

/// Read-modify-write: `mutate` turns the current object into the new one;
/// lost races are retried against the newer object.
pub async fn update_with<F>(
    api: &Api,
    res: &Resource,
    namespace: Option<&str>,
    name: &str,
    part: Part,
    opts: &WriteOptions,
    mut mutate: F,
) -> Result<Written, ApiError>
where
    F: FnMut(&Value) -> Result<Value, ApiError>,
{
    let key = res.key(namespace, name);
    for _ in 0..MAX_RETRIES {
        let current = api
            .store
            .get(&key)
            .ok_or_else(|| ApiError::not_found(&res.group, &res.plural, name))?;
        let current_value = current.value()?;
        let desired = mutate(&current_value)?;
        check_body_name(&desired, name)?;
        let precondition = object::resource_version(&desired)
            .map_err(|e| ApiError::invalid(&res.group, &res.kind, name, vec![e]))?;
        if precondition.is_some_and(|rv| rv != current.mod_revision) {
            return Err(ApiError::conflict(&res.group, &res.plural, name));
        }
        let (new, warnings) = prepare_update(
            res,
            &current_value,
            desired,
            part,
            Tracking::Update(&opts.field_manager),
            opts,
        )?;
        match commit_update(
            api,
            res,
            part,
            &current,
            &current_value,
            new,
            warnings,
            opts,
        )
        .await
        {
            Err(Retry) => continue,
            Ok(result) => return result,
        }
    }
    Err(ApiError::conflict(&res.group, &res.plural, name))
}

/// An applied configuration and whether it may take fields from other managers.
pub struct Applied<'a> {
    pub config: Value,
    pub force: bool,
    /// Asked before an apply creates the object: kube-apiserver authorizes
    /// a patch that creates as a `create` too, so `patch` alone cannot
    /// make new objects.
    pub may_create: &'a (dyn Fn() -> Result<(), ApiError> + Send + Sync),
}

/// Server-side apply (`application/apply-patch+yaml`).
pub async fn apply(
    api: &Api,
    res: &Resource,
    namespace: Option<&str>,
    name: &str,
    applied: Applied<'_>,
    part: Part,
    opts: &WriteOptions,
) -> Result<Written, ApiError> {
    let Applied {
        config: mut applied,
        force,
        may_create,
    } = applied;
    check_type_meta(res, &mut applied)?;
    check_body_name(&applied, name)?;
    if let Some(meta) = object::metadata_mut(&mut applied) {
        meta.insert("name".into(), json!(name));
        meta.remove("managedFields");
    }
    let key = res.key(namespace, name);
    let api_version = res.api_version();
    let time = object::now();
    let manager = Manager {
        name: &opts.field_manager,
        operation: Operation::Apply,
        subresource: (part == Part::Status).then_some("status"),
        api_version: &api_version,
        time: &time,
    };
    let types = type_info(res);
    for _ in 0..MAX_RETRIES {
        let Some(current) = api.store.get(&key) else {
            may_create()?;
            let merged = fieldmanager::apply(None, &applied, &manager, force, types)
                .map_err(|e| apply_error(res, name, e))?;
            let (obj, warnings) =
                prepare_create(api, res, namespace, merged, Tracking::Applied, opts)?;
            match store_create(api, res, namespace, obj, warnings, opts).await {
                Err(e) if e.reason == reason::ALREADY_EXISTS => continue,
                other => return other,
            }
        };
        let current_value = current.value()?;
        let merged = fieldmanager::apply(Some(&current_value), &applied, &manager, force, types)
            .map_err(|e| apply_error(res, name, e))?;
        let (new, warnings) =
            prepare_update(res, &current_value, merged, part, Tracking::Applied, opts)?;
        match commit_update(
            api,
            res,
            part,
            &current,
            &current_value,
            new,
            warnings,
            opts,
        )
        .await
        {
            Err(Retry) => continue,
            Ok(result) => return result,
        }
    }
    Err(ApiError::conflict(&res.group, &res.plural, name))
}

fn apply_error(res: &Resource, name: &str, err: fieldmanager::ApplyError) -> ApiError {
    match err {
        fieldmanager::ApplyError::Conflicts(conflicts) => {
            let mut e = ApiError::new(
                409,
                reason::CONFLICT,
                fieldmanager::conflict_message(&conflicts),
            );
            e.causes = fieldmanager::conflict_causes(&conflicts);
            e.subject = Some(Box::new(crate::status::Subject {
                group: res.group.clone(),
                kind: res.plural.clone(),
                name: name.to_string(),
            }));
            e
        }
        fieldmanager::ApplyError::Invalid(cause) => {
            ApiError::invalid(&res.group, &res.kind, name, vec![cause])
        }
    }
}

/// The store moved on under us; read again and retry.
struct Retry;

fn prepare_update(
    res: &Resource,
    old: &Value,
    body: Value,
    part: Part,
    tracking: Tracking<'_>,
    opts: &WriteOptions,
) -> Result<(Value, Vec<String>), ApiError> {
    let mut body = body;
    check_type_meta(res, &mut body)?;
    let mut new = match part {
        Part::Status => {
            // A status write changes status and nothing else.
            let mut merged = old.clone();
            if let Some(map) = merged.as_object_mut() {
                match body.get("status") {
                    Some(status) if !status.is_null() => {
                        map.insert("status".into(), status.clone());
                    }
                    _ => {
                        map.remove("status");
                    }
                }
            }
            if let Tracking::Applied = tracking {
                if let (Some(meta), Some(fields)) = (
                    object::metadata_mut(&mut merged),
                    object::metadata(&body).and_then(|m| m.get("managedFields")),
                ) {
                    meta.insert("managedFields".into(), fields.clone());
                }
            }
            merged
        }
        Part::Main => {
            if res.status_subresource {
                if let Some(map) = body.as_object_mut() {
                    match old.get("status") {
                        Some(status) => {
                            map.insert("status".into(), status.clone());
                        }
                        None => {
                            map.remove("status");
                        }
                    }
                }
            }
            body
        }
    };
    let no_meta = Map::new();
    let old_meta = object::metadata(old).unwrap_or(&no_meta);
    let Some(meta) = object::metadata_mut(&mut new) else {
        return Err(ApiError::bad_field(
            "body",
            "the request body must be a JSON object",
        ));
    };
    for field in [
        "name",
        "namespace",
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "generation",
    ] {
        match old_meta.get(field) {
            Some(v) => meta.insert(field.into(), v.clone()),
            None => meta.remove(field),
        };
    }
    meta.insert(
        "resourceVersion".into(),
        old_meta
            .get("resourceVersion")
            .cloned()
            .unwrap_or(Value::Null),
    );
    meta.remove("selfLink");
    if let Tracking::Update(_) = tracking {
        match old_meta.get("managedFields") {
            Some(v) => meta.insert("managedFields".into(), v.clone()),
            None => meta.remove("managedFields"),
        };
    }
    if object::is_deleting(old) {
        let before = object::finalizers(old);
        if let Some(added) = object::finalizers(&new)
            .into_iter()
            .find(|f| !before.contains(f))
        {
            return Err(ApiError::invalid(
                &res.group,
                &res.kind,
                object::name(old),
                vec![FieldError::new(
                    CauseType::Forbidden,
                    "metadata.finalizers",
                    format!("Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers [{added:?}]"),
                )],
            ));
        }
    }
    let warnings = normalize(res, Some(old), &mut new, opts)?;
    if res.has_generation() && spec_changed(res, old, &new) {
        let generation = old_meta
            .get("generation")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        if let Some(meta) = object::metadata_mut(&mut new) {
            meta.insert("generation".into(), json!(generation + 1));
        }
    }
    if let Tracking::Update(manager) = tracking {
        track(res, Some(old), &mut new, manager, part);
    }
    Ok((new, warnings))
}

#[allow(clippy::too_many_arguments)]
async fn commit_update(
    api: &Api,
    res: &Resource,
    part: Part,
    current: &Arc<Record>,
    current_value: &Value,
    new: Value,
    warnings: Vec<String>,
    opts: &WriteOptions,
) -> Result<Result<Written, ApiError>, Retry> {
    if unchanged(current_value, &new) {
        return Ok(Ok(Written {
            object: WrittenObject::Stored(current.clone()),
            created: false,
            warnings,
        }));
    }
    if object::is_deleting(&new) && pending_finalizers(res, &new).is_empty() {
        // The last finalizer is gone: the deletion completes now.
        if opts.dry_run {
            return Ok(Ok(Written {
                object: WrittenObject::DryRun(Box::new(new)),
                created: false,
                warnings,
            }));
        }
        return match api
            .store
            .delete(&current.key, Some(current.mod_revision))
            .await
        {
            Ok(record) => {
                api.metrics.stored(res, Part::Main, opts.verb);
                after_write(api, res, &new, true);
                Ok(Ok(Written {
                    object: WrittenObject::Stored(record),
                    created: false,
                    warnings,
                }))
            }
            Err(StoreError::Conflict { .. }) | Err(StoreError::NotFound) => Err(Retry),
            Err(err) => Ok(Err(err.into())),
        };
    }
    if let Err(err) = check_escalation(api, res, &new, opts) {
        return Ok(Err(err));
    }
    if opts.dry_run {
        return Ok(Ok(Written {
            object: WrittenObject::DryRun(Box::new(new)),
            created: false,
            warnings,
        }));
    }
    let crd = (res.builtin == Some(Builtin::CustomResourceDefinition)).then(|| new.clone());
    match api
        .store
        .update(&current.key, new, Some(current.mod_revision))
        .await
    {
        Ok(record) => {
            api.metrics.stored(res, part, opts.verb);
            if let Some(crd) = crd {
                api.sync_crd(&crd, false);
            }
            invalidate_policy(api, res);
            Ok(Ok(Written {
                object: WrittenObject::Stored(record),
                created: false,
                warnings,
            }))
        }
        Err(StoreError::Conflict { .. }) | Err(StoreError::NotFound) => Err(Retry),
        Err(err) => Ok(Err(err.into())),
    }
}

// === delete ===

/// `propagationPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Propagation {
    Background,
    Foreground,
    Orphan,
}

/// Parsed `DeleteOptions`.
#[derive(Debug, Clone)]
pub struct DeleteOptions {
    pub propagation: Option<Propagation>,
    pub precondition_uid: Option<String>,
    pub precondition_resource_version: Option<String>,
    pub dry_run: bool,
}

impl DeleteOptions {
    pub fn background() -> DeleteOptions {
        DeleteOptions {
            propagation: Some(Propagation::Background),
            precondition_uid: None,
            precondition_resource_version: None,
            dry_run: false,
        }
    }
}

/// What a delete did.
pub enum Deleted {
    /// The object is gone; this was its last state.
    Gone(Value),
    /// Finalizers hold it; it now carries `deletionTimestamp`.
    Pending(Value),
}

pub async fn delete(
    api: &Api,
    res: &Resource,
    namespace: Option<&str>,
    name: &str,
    options: &DeleteOptions,
) -> Result<Deleted, ApiError> {
    let key = res.key(namespace, name);
    for _ in 0..MAX_RETRIES {
        let current = api
            .store
            .get(&key)
            .ok_or_else(|| ApiError::not_found(&res.group, &res.plural, name))?;
        if let Some(uid) = &options.precondition_uid {
            if **uid != *current.meta.uid {
                return Err(ApiError::new(
                    409,
                    reason::CONFLICT,
                    format!(
                        "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                        current.meta.uid
                    ),
                ));
            }
        }
        if let Some(rv) = &options.precondition_resource_version {
            if *rv != current.mod_revision.to_string() {
                return Err(ApiError::new(
                    409,
                    reason::CONFLICT,
                    format!(
                        "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                        current.mod_revision
                    ),
                ));
            }
        }
        let current_value = current.value()?;
        let mut desired = current_value.clone();
        let mut finalizers = object::finalizers(&desired);
        let wanted = match options.propagation {
            Some(Propagation::Foreground) => Some(meta::FOREGROUND_DELETION),
            Some(Propagation::Orphan) => Some(meta::ORPHAN),
            _ => None,
        };
        if let Some(f) = wanted {
            if !object::is_deleting(&desired) || !finalizers.is_empty() {
                let opposite = if f == meta::ORPHAN {
                    meta::FOREGROUND_DELETION
                } else {
                    meta::ORPHAN
                };
                finalizers.retain(|x| x != opposite);
                if !finalizers.iter().any(|x| x == f) {
                    finalizers.push(f.to_string());
                }
                object::set_finalizers(&mut desired, &finalizers);
            }
        }
        if pending_finalizers(res, &desired).is_empty() {
            if options.dry_run {
                return Ok(Deleted::Gone(desired));
            }
            match api.store.delete(&key, Some(current.mod_revision)).await {
                Ok(record) => {
                    api.metrics.stored(res, Part::Main, "delete");
                    let last = record.value()?;
                    after_write(api, res, &last, true);
                    return Ok(Deleted::Gone(last));
                }
                Err(StoreError::Conflict { .. }) => continue,
                Err(StoreError::NotFound) => {
                    return Err(ApiError::not_found(&res.group, &res.plural, name))
                }
                Err(err) => return Err(err.into()),
            }
        }
        if let Some(meta) = object::metadata_mut(&mut desired) {
            if !meta.contains_key("deletionTimestamp") {
                meta.insert("deletionTimestamp".into(), json!(object::now()));
                meta.insert("deletionGracePeriodSeconds".into(), json!(0));
            }
        }
        match res.builtin {
            Some(Builtin::Namespace) => desired["status"] = json!({"phase": "Terminating"}),
            // The CRD now says its instances are going (the Terminating condition).
            Some(Builtin::CustomResourceDefinition) => {
                desired["status"] = crd::established_status(&desired, &object::now())
            }
            _ => {}
        }
        if unchanged(&current_value, &desired) {
            return Ok(Deleted::Pending(desired));
        }
        if options.dry_run {
            return Ok(Deleted::Pending(desired));
        }
        match api
            .store
            .update(&key, desired, Some(current.mod_revision))
            .await
        {
            Ok(record) => {
                api.metrics.stored(res, Part::Main, "delete");
                let now = record.value()?;
                after_write(api, res, &now, false);
                return Ok(Deleted::Pending(now));
            }
            Err(StoreError::Conflict { .. }) | Err(StoreError::NotFound) => continue,
            Err(err) => return Err(err.into()),
        }
    }
    Err(ApiError::conflict(&res.group, &res.plural, name))
}

/// Finalizers that still hold a deleting object.
pub fn pending_finalizers(res: &Resource, obj: &Value) -> Vec<String> {
    let mut out = object::finalizers(obj);
    if res.builtin == Some(Builtin::Namespace) {
        if let Some(spec) = obj.pointer("/spec/finalizers").and_then(Value::as_array) {
            out.extend(spec.iter().filter_map(Value::as_str).map(String::from));
        }
    }
    out
}

// === shared rules ===

/// Checks `apiVersion` and `kind` against the URL, filling them in when absent.
fn check_type_meta(res: &Resource, obj: &mut Value) -> Result<(), ApiError> {
    let Some(map) = obj.as_object_mut() else {
        return Err(ApiError::bad_field(
            "body",
            "the request body must be a JSON or YAML object",
        ));
    };
    let api_version = res.api_version();
    match map.get("apiVersion").and_then(Value::as_str) {
        None | Some("") => {
            map.insert("apiVersion".into(), json!(api_version));
        }
        Some(v) if v == api_version => {}
        Some(v) => {
            // Another served version of the same kind is written as this one.
            let same_group = v.split_once('/').map(|(g, _)| g).unwrap_or("") == res.group;
            if !same_group {
                return Err(ApiError::bad_field(
                    "apiVersion",
                    format!("the API version in the data ({v}) does not match the expected API version ({api_version})"),
                ));
            }
            map.insert("apiVersion".into(), json!(api_version));
        }
    }
    match map.get("kind").and_then(Value::as_str) {
        None | Some("") => {
            map.insert("kind".into(), json!(res.kind));
        }
        Some(k) if k == res.kind => {}
        Some(k) => {
            return Err(ApiError::bad_field(
                "kind",
                format!(
                    "the kind in the data ({k}) does not match the expected kind ({}) for this URL",
                    res.kind
                ),
            ))
        }
    }
    Ok(())
}

/// Upstream refuses new custom resources once their CRD is being deleted,
/// so the cleanup that empties the type is not raced by new instances.
fn refuse_if_crd_terminating(api: &Api, res: &Resource) -> Result<(), ApiError> {
    let Some(crd_name) = &res.crd_name else {
        return Ok(());
    };
    let key = format!("{}{crd_name}", crd::KEY_PREFIX);
    match api.store.get(&key) {
        Some(record) if record.meta.deleting => Err(ApiError::new(
            405,
            reason::METHOD_NOT_ALLOWED,
            format!(
                "create is not allowed on {}: the CustomResourceDefinition {crd_name} is terminating",
                crate::status::qualified(&res.plural, &res.group)
            ),
        )),
        _ => Ok(()),
    }
}

fn check_body_name(body: &Value, name: &str) -> Result<(), ApiError> {
    let body_name = object::name(body);
    if !body_name.is_empty() && body_name != name {
        return Err(ApiError::bad_field(
            "metadata.name",
            format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            ),
        ));
    }
    Ok(())
}

fn set_namespace(
    api: &Api,
    res: &Resource,
    namespace: Option<&str>,
    obj: &mut Value,
) -> Result<(), ApiError> {
    let body_ns = object::meta_str(obj, "namespace").to_string();
    let Some(meta) = object::metadata_mut(obj) else {
        return Err(ApiError::bad_field(
            "body",
            "the request body must be a JSON object",
        ));
    };
    if !res.namespaced {
        meta.remove("namespace");
        return Ok(());
    }
    let Some(ns) = namespace else {
        return Err(ApiError::bad_field(
            "metadata.namespace",
            format!(
                "{} is namespaced: create it under /namespaces/<namespace>/",
                res.plural
            ),
        ));
    };
    if !body_ns.is_empty() && body_ns != ns {
        return Err(ApiError::bad_field(
            "metadata.namespace",
            format!(
                "the namespace of the provided object ({body_ns}) does not match the namespace sent on the request ({ns})"
            ),
        ));
    }
    meta.insert("namespace".into(), json!(ns));
    let ns_res = api.namespaces();
    match api.store.get(&ns_res.key(None, ns)) {
        None => Err(ApiError::not_found("", "namespaces", ns)),
        Some(record) if record.meta.deleting => Err(ApiError::new(
            403,
            reason::FORBIDDEN,
            format!(
                "{} \"{}\" is forbidden: unable to create new content in namespace {ns} because it is being terminated",
                res.plural,
                object::name(obj)
            ),
        )),
        Some(_) => Ok(()),
    }
}

/// Defaults, prunes and validates an object about to be stored.
///
/// Every kind goes the way kube-apiserver takes it: `metadata` is decoded as
/// `ObjectMeta` (unknown fields dropped, wrong types refused), the rest is
/// pruned and checked against the kind's structural schema (a CRD's, or the
/// built-in one), and only an object of the right shape gets the kind's own
/// normalization and semantic checks, as Go's decoder runs before validation.
fn normalize(
    res: &Resource,
    old: Option<&Value>,
    obj: &mut Value,
    opts: &WriteOptions,
) -> Result<Vec<String>, ApiError> {
    let name = object::name(obj).to_string();
    let meta_schema = builtin::schema::object_meta();
    let mut unknown = Vec::new();
    if let Some(meta) = obj.get_mut("metadata") {
        builtin::rules::drop_nulls(meta);
        unknown.extend(meta_schema.prune_at(meta, "metadata"));
    }
    match res.builtin {
        // A CRD's schemas may hold meaningful nulls (`default: null`, enums).
        Some(Builtin::CustomResourceDefinition) => {
            if let Some(map) = obj.as_object_mut() {
                map.retain(|_, v| !v.is_null());
            }
        }
        Some(_) => builtin::rules::drop_nulls(obj),
        None => {}
    }
    if let Some(schema) = &res.schema {
        unknown.extend(schema.prune(obj));
    }
    if res.builtin == Some(Builtin::CustomResourceDefinition) {
        unknown.extend(crd::prune_schemas(obj));
    }
    let warnings = unknown_fields(res, unknown, opts)?;

    let mut errors = match obj.get("metadata") {
        Some(meta) => meta_schema.validate_at(meta, "metadata"),
        None => Vec::new(),
    };
    errors.extend(object::validate_metadata(obj, name_rule(res)));
    if let Some(schema) = &res.schema {
        schema.apply_defaults(obj);
        errors.extend(schema.validate(obj));
    }
    if !errors.is_empty() {
        return Err(ApiError::invalid(&res.group, &res.kind, &name, errors));
    }
    if let Some(builtin) = res.builtin {
        normalize_builtin(builtin, old, obj, opts);
        errors.extend(builtin::rules::validate(builtin, obj, old));
        if builtin == Builtin::CustomResourceDefinition {
            if let Err(mut errs) = crd::resources(obj) {
                errors.append(&mut errs);
            }
        }
    }
    if errors.is_empty() {
        Ok(warnings)
    } else {
        Err(ApiError::invalid(&res.group, &res.kind, &name, errors))
    }
}

/// What `fieldValidation` makes of the fields pruning removed: a 400 under
/// Strict (kubectl's default), `Warning` headers under Warn, nothing under Ignore.
fn unknown_fields(
    res: &Resource,
    unknown: Vec<String>,
    opts: &WriteOptions,
) -> Result<Vec<String>, ApiError> {
    if unknown.is_empty() {
        return Ok(Vec::new());
    }
    tracing::debug!(kind = %res.kind, fields = ?unknown, validation = ?opts.field_validation, "unknown fields in a write");
    let list: Vec<String> = unknown
        .iter()
        .map(|p| format!("unknown field \"{p}\""))
        .collect();
    match opts.field_validation {
        FieldValidation::Strict => {
            // Upstream's wording for a body its strict decoder refused.
            let mut err = ApiError::bad_request(format!(
                "{kind} in version \"{version}\" cannot be handled as a {kind}: strict decoding error: {}",
                list.join(", "),
                kind = res.kind,
                version = res.version,
            ));
            for (p, message) in unknown.iter().zip(list) {
                err = err.with_cause(FieldError::new(CauseType::Unknown, p.clone(), message));
            }
            Err(err)
        }
        FieldValidation::Warn => Ok(list),
        FieldValidation::Ignore => Ok(Vec::new()),
    }
}

fn normalize_builtin(builtin: Builtin, old: Option<&Value>, obj: &mut Value, opts: &WriteOptions) {
    match builtin {
        Builtin::Namespace => match old {
            None => {
                obj["spec"] = json!({"finalizers": [meta::NAMESPACE_FINALIZER]});
                obj["status"] = json!({"phase": "Active"});
            }
            // Upstream changes spec.finalizers only through the /finalize
            // subresource; here only the namespace cleanup may change them,
            // so a client cannot skip emptying a namespace on deletion.
            Some(old) if opts.field_manager != NAMESPACE_CLEANUP_MANAGER => match old.get("spec") {
                Some(spec) => obj["spec"] = spec.clone(),
                None => {
                    if let Some(map) = obj.as_object_mut() {
                        map.remove("spec");
                    }
                }
            },
            Some(_) => {}
        },
        Builtin::CustomResourceDefinition => {
            let now = object::now();
            obj["status"] = crd::established_status(obj, &now);
            if old.is_none() {
                let mut finalizers = object::finalizers(obj);
                if !finalizers.iter().any(|f| f == crd::CLEANUP_FINALIZER) {
                    finalizers.push(crd::CLEANUP_FINALIZER.to_string());
                    object::set_finalizers(obj, &finalizers);
                }
            }
        }
        _ => {}
    }
    builtin::rules::normalize(builtin, obj);
}

/// True when anything but metadata (and status, where it is a subresource) changed.
fn spec_changed(res: &Resource, old: &Value, new: &Value) -> bool {
    let skip: &[&str] = if res.status_subresource {
        &["metadata", "status"]
    } else {
        &["metadata"]
    };
    !equal_except(old, new, skip)
}

/// True when a write would change nothing but `resourceVersion` and `managedFields`.
fn unchanged(old: &Value, new: &Value) -> bool {
    const BOOKKEEPING: &[&str] = &["resourceVersion", "managedFields"];
    equal_except(old, new, &["metadata"])
        && equal_except(
            old.get("metadata").unwrap_or(&Value::Null),
            new.get("metadata").unwrap_or(&Value::Null),
            BOOKKEEPING,
        )
}

/// Compares two objects key by key, leaving out `skip`, without copying
/// either (this runs on every write). Non-objects compare whole.
fn equal_except(a: &Value, b: &Value, skip: &[&str]) -> bool {
    let (Some(a), Some(b)) = (a.as_object(), b.as_object()) else {
        return a == b;
    };
    let kept =
        |map: &Map<String, Value>| map.keys().filter(|k| !skip.contains(&k.as_str())).count();
    kept(a) == kept(b)
        && a.iter()
            .filter(|(k, _)| !skip.contains(&k.as_str()))
            .all(|(k, v)| b.get(k) == Some(v))
}

fn track(res: &Resource, old: Option<&Value>, new: &mut Value, manager: &str, part: Part) {
    let api_version = res.api_version();
    let time = object::now();
    let m = Manager {
        name: manager,
        operation: Operation::Update,
        subresource: (part == Part::Status).then_some("status"),
        api_version: &api_version,
        time: &time,
    };
    fieldmanager::track_update(old, new, &m, type_info(res));
}

fn type_info(res: &Resource) -> &(dyn TypeInfo + Sync) {
    match &res.schema {
        Some(schema) => schema.as_ref(),
        None => &Untyped,
    }
}

fn name_rule(res: &Resource) -> object::NameRule {
    match res.builtin {
        Some(b) if b.requires_dns_label() => object::NameRule::DnsLabel,
        Some(b) if b.is_rbac() => object::NameRule::PathSegment,
        _ => object::NameRule::DnsSubdomain,
    }
}

/// Keeps the server's own view in step with what was just stored.
fn after_write(api: &Api, res: &Resource, obj: &Value, removed: bool) {
    if res.builtin == Some(Builtin::CustomResourceDefinition) {
        api.sync_crd(obj, removed);
    }
    invalidate_policy(api, res);
}

/// A write to an RBAC kind changes what everyone may do from the next request on.
fn invalidate_policy(api: &Api, res: &Resource) {
    if res.builtin.is_some_and(Builtin::is_rbac) {
        api.authz.invalidate();
    }
}

/// Nobody grants through a Role or binding more than they hold (see
/// [`crate::authz::check_escalation`]); the server's own writes are exempt.
fn check_escalation(
    api: &Api,
    res: &Resource,
    obj: &Value,
    opts: &WriteOptions,
) -> Result<(), ApiError> {
    match (res.builtin, &opts.user) {
        (Some(kind), Some(user)) if kind.is_rbac() => {
            crate::authz::check_escalation(api, user, kind, obj)
        }
        _ => Ok(()),
    }
}

/// `prefix` plus five random characters from the alphabet upstream uses
/// (no vowels, so generated names never spell words).
fn generate_name(prefix: &str) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::rng();
    let suffix: String = (0..5)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect();
    format!("{prefix}{suffix}")
}
