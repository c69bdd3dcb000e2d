//! Static checks of a `mode: Resources` Composition: what the schema cannot
//! say (patch, transform, readiness and connection detail types, their
//! settings, field paths and regular expressions), so `plinth validate`
//! refuses a Composition that would only fail once a composite uses it.
//!
//! Each problem names the field, as `spec.resources[0].patches[1].type: …`.

use regex::Regex;
use serde_json::Value;

use crate::connection;
use crate::fieldpath;
use crate::transform;

pub const PATCH_TYPES: &[&str] = &[
    "FromCompositeFieldPath",
    "ToCompositeFieldPath",
    "CombineFromComposite",
    "CombineToComposite",
    "PatchSet",
];
pub const TRANSFORM_TYPES: &[&str] = &["map", "match", "math", "string", "convert"];
pub const MATH_TYPES: &[&str] = &["Multiply", "ClampMin", "ClampMax"];
pub const STRING_TYPES: &[&str] = &[
    "Format",
    "Convert",
    "TrimPrefix",
    "TrimSuffix",
    "Regexp",
    "Join",
];
pub const CONVERT_TYPES: &[&str] = transform::CONVERT_TYPES;
pub const CONVERT_FORMATS: &[&str] = transform::CONVERT_FORMATS;
pub const READINESS_TYPES: &[&str] = &[
    "NonEmpty",
    "MatchString",
    "MatchInteger",
    "MatchTrue",
    "MatchFalse",
    "MatchCondition",
    "None",
];
pub const CONNECTION_TYPES: &[&str] = &["FromConnectionSecretKey", "FromFieldPath", "FromValue"];
pub const FROM_FIELD_PATH_POLICIES: &[&str] = &["Optional", "Required"];
pub const TO_FIELD_PATH_POLICIES: &[&str] = &[
    "Replace",
    "MergeObjects",
    "MergeObjectsAppendArrays",
    "ForceMergeObjects",
    "ForceMergeObjectsAppendArrays",
];

/// Collects problems, each under the path of the field it is about.
struct Problems(Vec<String>);

impl Problems {
    fn add(&mut self, path: &str, message: impl std::fmt::Display) {
        self.0.push(format!("{path}: {message}"));
    }

    fn unsupported(&mut self, path: &str, got: &str, supported: &[&str]) {
        let list: Vec<String> = supported.iter().map(|s| format!("{s:?}")).collect();
        self.add(
            path,
            format!(
                "Unsupported value: {got:?}: supported values: {}",
                list.join(", ")
            ),
        );
    }

    fn required(&mut self, path: &str) {
        self.add(path, "Required value");
    }

    fn string<'a>(&mut self, obj: &'a Value, field: &str, path: &str) -> Option<&'a str> {
        match obj.get(field) {
            Some(Value::String(s)) => Some(s),
            None | Some(Value::Null) => {
                self.required(&format!("{path}.{field}"));
                None
            }
            Some(_) => {
                self.add(
                    &format!("{path}.{field}"),
                    "Invalid value: must be a string",
                );
                None
            }
        }
    }

    fn field_path(&mut self, obj: &Value, field: &str, path: &str) {
        if let Some(p) = self.string(obj, field, path) {
            if let Err(e) = fieldpath::parse(p) {
                self.add(&format!("{path}.{field}"), e);
            }
        }
    }

    fn regexp(&mut self, pattern: &str, path: &str) {
        if let Err(e) = Regex::new(pattern) {
            self.add(
                path,
                format!(
                    "Invalid value: {pattern:?}: not a regular expression: {}",
                    transform::regex_error(&e)
                ),
            );
        }
    }

    fn integer(&mut self, obj: &Value, field: &str, path: &str) {
        match obj.get(field) {
            Some(v) if v.is_i64() => {}
            None | Some(Value::Null) => self.required(&format!("{path}.{field}")),
            Some(_) => self.add(
                &format!("{path}.{field}"),
                "Invalid value: must be an integer",
            ),
        }
    }
}

fn array<'a>(v: &'a Value, field: &str) -> &'a [Value] {
    v.get(field)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

/// Problems with a Composition; empty when it is sound.
pub fn composition(c: &Value) -> Vec<String> {
    let mut p = Problems(Vec::new());
    let Some(spec) = c.get("spec").filter(|s| s.is_object()) else {
        p.required("spec");
        return p.0;
    };
    match spec.get("compositeTypeRef") {
        Some(r) if r.is_object() => {
            p.string(r, "apiVersion", "spec.compositeTypeRef");
            p.string(r, "kind", "spec.compositeTypeRef");
        }
        _ => p.required("spec.compositeTypeRef"),
    }
    let mode = spec
        .get("mode")
        .and_then(Value::as_str)
        .unwrap_or("Resources");
    if mode == "Pipeline" {
        // Function pipelines are checked by the functions themselves.
        return p.0;
    }
    if mode != "Resources" {
        p.unsupported("spec.mode", mode, &["Resources", "Pipeline"]);
        return p.0;
    }
    let patch_sets = array(spec, "patchSets");
    let set_names: Vec<&str> = patch_sets
        .iter()
        .filter_map(|s| s.get("name").and_then(Value::as_str))
        .collect();
    for (i, set) in patch_sets.iter().enumerate() {
        let path = format!("spec.patchSets[{i}]");
        p.string(set, "name", &path);
        for (j, patch) in array(set, "patches").iter().enumerate() {
            let patch_path = format!("{path}.patches[{j}]");
            if patch.get("type").and_then(Value::as_str) == Some("PatchSet") {
                p.add(
                    &format!("{patch_path}.type"),
                    "Invalid value: a patchSet may not refer to another patchSet",
                );
                continue;
            }
            check_patch(&mut p, patch, &patch_path, &set_names);
        }
    }
    let mut names = std::collections::BTreeSet::new();
    for (i, r) in array(spec, "resources").iter().enumerate() {
        let path = format!("spec.resources[{i}]");
        if let Some(name) = r.get("name").and_then(Value::as_str) {
            if !names.insert(name.to_string()) {
                p.add(
                    &format!("{path}.name"),
                    format!("Duplicate value: {name:?}"),
                );
            }
        }
        match r.get("base") {
            Some(base) if base.is_object() => {
                p.string(base, "apiVersion", &format!("{path}.base"));
                p.string(base, "kind", &format!("{path}.base"));
            }
            _ => p.required(&format!("{path}.base")),
        }
        for (j, patch) in array(r, "patches").iter().enumerate() {
            check_patch(&mut p, patch, &format!("{path}.patches[{j}]"), &set_names);
        }
        for (j, check) in array(r, "readinessChecks").iter().enumerate() {
            check_readiness(&mut p, check, &format!("{path}.readinessChecks[{j}]"));
        }
        for (j, d) in array(r, "connectionDetails").iter().enumerate() {
            check_connection(&mut p, d, &format!("{path}.connectionDetails[{j}]"));
        }
    }
    p.0
}

fn check_patch(p: &mut Problems, patch: &Value, path: &str, sets: &[&str]) {
    let kind = patch
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("FromCompositeFieldPath");
    match kind {
        "FromCompositeFieldPath" | "ToCompositeFieldPath" => {
            p.field_path(patch, "fromFieldPath", path);
            if patch.get("toFieldPath").is_some() {
                p.field_path(patch, "toFieldPath", path);
            }
        }
        "CombineFromComposite" | "CombineToComposite" => {
            match patch.get("combine") {
                Some(c) if c.is_object() => {
                    let vars = array(c, "variables");
                    if vars.is_empty() {
                        p.required(&format!("{path}.combine.variables"));
                    }
                    for (k, v) in vars.iter().enumerate() {
                        p.field_path(
                            v,
                            "fromFieldPath",
                            &format!("{path}.combine.variables[{k}]"),
                        );
                    }
                    let strategy = c
                        .get("strategy")
                        .and_then(Value::as_str)
                        .unwrap_or("string");
                    if strategy != "string" {
                        p.unsupported(&format!("{path}.combine.strategy"), strategy, &["string"]);
                    } else if c.pointer("/string/fmt").and_then(Value::as_str).is_none() {
                        p.required(&format!("{path}.combine.string.fmt"));
                    }
                }
                _ => p.required(&format!("{path}.combine")),
            }
            p.field_path(patch, "toFieldPath", path);
        }
        "PatchSet" => {
            if let Some(name) = p.string(patch, "patchSetName", path) {
                if !sets.contains(&name) {
                    p.add(
                        &format!("{path}.patchSetName"),
                        format!("Not found: {name:?} is not in spec.patchSets"),
                    );
                }
            }
            return;
        }
        other => {
            p.unsupported(&format!("{path}.type"), other, PATCH_TYPES);
            return;
        }
    }
    if let Some(policy) = patch.get("policy") {
        if let Some(from) = policy.get("fromFieldPath").and_then(Value::as_str) {
            if !FROM_FIELD_PATH_POLICIES.contains(&from) {
                p.unsupported(
                    &format!("{path}.policy.fromFieldPath"),
                    from,
                    FROM_FIELD_PATH_POLICIES,
                );
            }
        }
        if let Some(to) = policy.get("toFieldPath").and_then(Value::as_str) {
            if !TO_FIELD_PATH_POLICIES.contains(&to) {
                p.unsupported(
                    &format!("{path}.policy.toFieldPath"),
                    to,
                    TO_FIELD_PATH_POLICIES,
                );
            }
        }
    }
    for (k, t) in array(patch, "transforms").iter().enumerate() {
        check_transform(p, t, &format!("{path}.transforms[{k}]"));
    }
}

fn check_transform(p: &mut Problems, t: &Value, path: &str) {
    let kind = transform::kind(t);
    if kind.is_empty() {
        p.required(&format!("{path}.type"));
        return;
    }
    if !TRANSFORM_TYPES.contains(&kind) {
        p.unsupported(&format!("{path}.type"), kind, TRANSFORM_TYPES);
        return;
    }
    let settings_path = format!("{path}.{kind}");
    let Some(settings) = t.get(kind).filter(|s| !s.is_null()) else {
        p.required(&settings_path);
        return;
    };
    match kind {
        "map" if !settings.is_object() => {
            p.add(
                &settings_path,
                "Invalid value: must be a map of input to output",
            );
        }
        "match" => {
            for (i, pattern) in array(settings, "patterns").iter().enumerate() {
                let pp = format!("{settings_path}.patterns[{i}]");
                match pattern
                    .get("type")
                    .and_then(Value::as_str)
                    .unwrap_or("literal")
                {
                    "literal" => {
                        p.string(pattern, "literal", &pp);
                    }
                    "regexp" => {
                        if let Some(re) = p.string(pattern, "regexp", &pp) {
                            p.regexp(re, &format!("{pp}.regexp"));
                        }
                    }
                    other => p.unsupported(&format!("{pp}.type"), other, &["literal", "regexp"]),
                }
            }
            if let Some(f) = settings.get("fallbackTo").and_then(Value::as_str) {
                if f != "Value" && f != "Input" {
                    p.unsupported(
                        &format!("{settings_path}.fallbackTo"),
                        f,
                        &["Value", "Input"],
                    );
                }
            }
        }
        "math" => {
            let m = settings
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or("Multiply");
            match m {
                // Crossplane's operands are int64: 0.5 does not decode.
                "Multiply" => p.integer(settings, "multiply", &settings_path),
                "ClampMin" => p.integer(settings, "clampMin", &settings_path),
                "ClampMax" => p.integer(settings, "clampMax", &settings_path),
                other => p.unsupported(&format!("{settings_path}.type"), other, MATH_TYPES),
            }
        }
        "string" => {
            // The schema defaults the type to Format.
            let s = settings
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or("Format");
            match s {
                "Format" => {
                    p.string(settings, "fmt", &settings_path);
                }
                "Convert" => {
                    if let Some(c) = p.string(settings, "convert", &settings_path) {
                        if !transform::STRING_CONVERTS.contains(&c) {
                            p.unsupported(
                                &format!("{settings_path}.convert"),
                                c,
                                transform::STRING_CONVERTS,
                            );
                        }
                    }
                }
                "TrimPrefix" | "TrimSuffix" => {
                    p.string(settings, "trim", &settings_path);
                }
                "Regexp" => match settings.get("regexp") {
                    Some(re) if re.is_object() => {
                        let rp = format!("{settings_path}.regexp");
                        if let Some(m) = p.string(re, "match", &rp) {
                            p.regexp(m, &format!("{rp}.match"));
                        }
                        if re.get("group").is_some_and(|g| !g.is_u64()) {
                            p.add(
                                &format!("{rp}.group"),
                                "Invalid value: must be a non-negative integer",
                            );
                        }
                    }
                    _ => p.required(&format!("{settings_path}.regexp")),
                },
                "Join" => {}
                "" => p.required(&format!("{settings_path}.type")),
                other => p.unsupported(&format!("{settings_path}.type"), other, STRING_TYPES),
            }
        }
        "convert" => {
            if let Some(to) = p.string(settings, "toType", &settings_path) {
                if !CONVERT_TYPES.contains(&to) {
                    p.unsupported(&format!("{settings_path}.toType"), to, CONVERT_TYPES);
                }
            }
            if let Some(f) = settings.get("format").and_then(Value::as_str) {
                if !CONVERT_FORMATS.contains(&f) {
                    p.unsupported(&format!("{settings_path}.format"), f, CONVERT_FORMATS);
                }
            }
        }
        _ => {}
    }
}

fn check_readiness(p: &mut Problems, c: &Value, path: &str) {
    let kind = c
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("MatchCondition");
    match kind {
        "None" | "MatchCondition" => {}
        "NonEmpty" | "MatchTrue" | "MatchFalse" => p.field_path(c, "fieldPath", path),
        "MatchString" => {
            p.field_path(c, "fieldPath", path);
            p.string(c, "matchString", path);
        }
        "MatchInteger" => {
            p.field_path(c, "fieldPath", path);
            if !c.get("matchInteger").is_some_and(Value::is_i64) {
                p.required(&format!("{path}.matchInteger"));
            }
        }
        other => p.unsupported(&format!("{path}.type"), other, READINESS_TYPES),
    }
}

fn check_connection(p: &mut Problems, d: &Value, path: &str) {
    let kind = connection::detail_type(d);
    if !CONNECTION_TYPES.contains(&kind) {
        p.unsupported(&format!("{path}.type"), kind, CONNECTION_TYPES);
        return;
    }
    // A FromConnectionSecretKey detail may borrow its key as its name.
    if connection::detail_name(d, kind).is_none() {
        p.required(&format!("{path}.name"));
    }
    match kind {
        "FromConnectionSecretKey" => {
            p.string(d, "fromConnectionSecretKey", path);
        }
        "FromFieldPath" => p.field_path(d, "fromFieldPath", path),
        _ => {
            p.string(d, "value", path);
        }
    }
}
