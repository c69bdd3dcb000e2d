//! Crossplane v1.20's patch tests
//! (internal/controller/apiextensions/composite/composition_patches_test.go:
//! TestPatchApply, TestOptionalFieldPathNotFound, TestComposedTemplates),
//! carried over case by case with the fake resources written as JSON.
//! The two Filter cases test Crossplane's patch-type filter, which we do
//! not have (render picks patches by direction), and are left out.

use composition::patch;
use pretty_assertions::assert_eq;
use serde_json::{json, Value};

struct Case {
    name: &'static str,
    /// Why the case holds, in a sentence.
    reason: &'static str,
    patch: Value,
    /// The composite and the composed resource before the patch.
    cp: Value,
    cd: Value,
    /// Both after it, or a fragment of the error message.
    want: Result<(Value, Value), &'static str>,
}

/// Applies the patch in its direction: composite to composed, or back.
fn apply(p: &Value, mut cp: Value, mut cd: Value) -> Result<(Value, Value), String> {
    match patch::direction(p) {
        Some(patch::Direction::ToComposite) => patch::apply(p, &cd, &mut cp)?,
        _ => patch::apply(p, &cp, &mut cd)?,
    }
    Ok((cp, cd))
}

fn run(cases: Vec<Case>) {
    for c in cases {
        let got = apply(&c.patch, c.cp, c.cd);
        match (&c.want, got) {
            (Ok(want), Ok(got)) => assert_eq!(&got, want, "{}: {}", c.name, c.reason),
            (Err(fragment), Err(message)) => assert!(
                message.contains(fragment),
                "{}: {}: {message:?} lacks {fragment:?}",
                c.name,
                c.reason
            ),
            (want, got) => panic!("{}: {}: want {want:?}, got {got:?}", c.name, c.reason),
        }
    }
}

fn meta(m: Value) -> Value {
    json!({ "objectMeta": m })
}

#[test]
fn patch_apply() {
    let labelled_cp = meta(json!({"name": "cp", "labels": {"Test": "blah"}}));
    let owners = |name: &str| {
        json!([
            {"name": name, "apiVersion": "v1"},
            {"name": name, "apiVersion": "v1alpha1"}
        ])
    };
    let sources = meta(json!({"name": "cp", "labels": {"source1": "foo", "source2": "bar"}}));
    let blah_cd = meta(json!({"name": "cd", "labels": {"Test": "blah"}}));
    let combine = |vars: &[&str]| {
        let variables: Vec<Value> = vars.iter().map(|v| json!({"fromFieldPath": v})).collect();
        json!({"variables": variables, "strategy": "string", "string": {"fmt": "%s-%s"}})
    };
    run(vec![
        Case {
            name: "InvalidCompositeFieldPathPatch",
            reason: "Should return error when required fields not passed to applyFromFieldPathPatch",
            patch: json!({"type": "FromCompositeFieldPath"}),
            cp: json!({}),
            cd: meta(json!({"name": "cd"})),
            want: Err("fromFieldPath is required by type FromCompositeFieldPath"),
        },
        Case {
            name: "InvalidPatchType",
            reason: "Should return an error if an invalid patch type is specified",
            patch: json!({"type": "invalid-patchtype"}),
            cp: json!({}),
            cd: meta(json!({"name": "cd"})),
            want: Err("unknown patch type \"invalid-patchtype\""),
        },
        Case {
            name: "ValidCompositeFieldPathPatch",
            reason: "Should correctly apply a CompositeFieldPathPatch with valid settings",
            patch: json!({"type": "FromCompositeFieldPath", "fromFieldPath": "objectMeta.labels", "toFieldPath": "objectMeta.labels"}),
            cp: labelled_cp.clone(),
            cd: meta(json!({"name": "cd"})),
            want: Ok((labelled_cp.clone(), meta(json!({"name": "cd", "labels": {"Test": "blah"}})))),
        },
        Case {
            name: "ValidCompositeFieldPathPatchWithWildcards",
            reason: "When passed a wildcarded path, adds a field to each element of an array",
            patch: json!({"type": "FromCompositeFieldPath", "fromFieldPath": "objectMeta.name", "toFieldPath": "objectMeta.ownerReferences[*].name"}),
            cp: meta(json!({"name": "test"})),
            cd: meta(json!({"ownerReferences": owners("")})),
            want: Ok((meta(json!({"name": "test"})), meta(json!({"ownerReferences": owners("test")})))),
        },
        Case {
            name: "InvalidCompositeFieldPathPatchWithWildcards",
            reason: "When passed a wildcarded path, throws an error if ToFieldPath cannot be expanded",
            patch: json!({"type": "FromCompositeFieldPath", "fromFieldPath": "objectMeta.name", "toFieldPath": "objectMeta.ownerReferences[*].badField"}),
            cp: meta(json!({"name": "test"})),
            cd: meta(json!({"ownerReferences": [{"name": "test", "apiVersion": "v1"}]})),
            want: Err("cannot expand toFieldPath objectMeta.ownerReferences[*].badField"),
        },
        Case {
            name: "MissingOptionalFieldPath",
            reason: "A FromFieldPath patch should be a no-op when an optional fromFieldPath doesn't exist",
            patch: json!({"type": "FromCompositeFieldPath", "fromFieldPath": "objectMeta.labels", "toFieldPath": "objectMeta.labels"}),
            cp: meta(json!({"name": "cp"})),
            cd: meta(json!({"name": "cd"})),
            want: Ok((meta(json!({"name": "cp"})), meta(json!({"name": "cd"})))),
        },
        Case {
            name: "MissingRequiredFieldPath",
            reason: "A FromFieldPath patch should return an error when a required fromFieldPath doesn't exist",
            patch: json!({"type": "FromCompositeFieldPath", "fromFieldPath": "wat", "toFieldPath": "wat", "policy": {"fromFieldPath": "Required"}}),
            cp: json!({}),
            cd: meta(json!({"name": "cd"})),
            want: Err("required field wat is not set"),
        },
        Case {
            name: "MergeOptionsKeepMapValues",
            reason: "Setting mergeOptions.keepMapValues = true adds new map values to existing ones",
            patch: json!({"type": "FromCompositeFieldPath", "fromFieldPath": "objectMeta.labels", "toFieldPath": "objectMeta.labels", "policy": {"mergeOptions": {"keepMapValues": true}}}),
            cp: meta(json!({"name": "cp", "labels": {"labelone": "foo", "labeltwo": "bar"}})),
            cd: meta(json!({"name": "cd", "labels": {"labelthree": "baz"}})),
            want: Ok((
                meta(json!({"name": "cp", "labels": {"labelone": "foo", "labeltwo": "bar"}})),
                meta(json!({"name": "cd", "labels": {"labelone": "foo", "labeltwo": "bar", "labelthree": "baz"}})),
            )),
        },
        Case {
            name: "DefaultToFieldCompositeFieldPathPatch",
            reason: "Should correctly default the ToFieldPath value if not specified.",
            patch: json!({"type": "FromCompositeFieldPath", "fromFieldPath": "objectMeta.labels"}),
            cp: labelled_cp.clone(),
            cd: meta(json!({"name": "cd"})),
            want: Ok((labelled_cp.clone(), meta(json!({"name": "cd", "labels": {"Test": "blah"}})))),
        },
        Case {
            name: "ValidToCompositeFieldPathPatch",
            reason: "Should correctly apply a ToCompositeFieldPath patch with valid settings",
            patch: json!({"type": "ToCompositeFieldPath", "fromFieldPath": "objectMeta.labels", "toFieldPath": "objectMeta.labels"}),
            cp: meta(json!({"name": "cp"})),
            cd: blah_cd.clone(),
            want: Ok((labelled_cp.clone(), blah_cd.clone())),
        },
        Case {
            name: "ValidToCompositeFieldPathPatchWithWildcards",
            reason: "When passed a wildcarded path, adds a field to each element of an array",
            patch: json!({"type": "ToCompositeFieldPath", "fromFieldPath": "objectMeta.name", "toFieldPath": "objectMeta.ownerReferences[*].name"}),
            cp: meta(json!({"ownerReferences": owners("")})),
            cd: meta(json!({"name": "test"})),
            want: Ok((meta(json!({"ownerReferences": owners("test")})), meta(json!({"name": "test"})))),
        },
        Case {
            name: "MissingCombineFromCompositeConfig",
            reason: "Should return an error if Combine config is not passed",
            patch: json!({"type": "CombineFromComposite", "toFieldPath": "objectMeta.labels.destination"}),
            cp: sources.clone(),
            cd: blah_cd.clone(),
            want: Err("combine is required by type CombineFromComposite"),
        },
        Case {
            name: "MissingCombineStrategyFromCompositeConfig",
            reason: "Should return an error if Combine strategy config is not passed",
            patch: json!({"type": "CombineFromComposite", "combine": {"variables": [{"fromFieldPath": "objectMeta.labels.source1"}, {"fromFieldPath": "objectMeta.labels.source2"}], "strategy": "string"}, "toFieldPath": "objectMeta.labels.destination"}),
            cp: sources.clone(),
            cd: blah_cd.clone(),
            want: Err("combine strategy string requires configuration"),
        },
        Case {
            name: "MissingCombineVariablesFromCompositeConfig",
            reason: "Should return an error if no variables have been passed",
            patch: json!({"type": "CombineFromComposite", "combine": {"variables": [], "strategy": "string", "string": {"fmt": "%s-%s"}}, "toFieldPath": "objectMeta.labels.destination"}),
            cp: sources.clone(),
            cd: blah_cd.clone(),
            want: Err("combine.variables must list at least one"),
        },
        Case {
            name: "NoOpOptionalInputFieldFromCompositeConfig",
            reason: "Should return no error and not apply patch if an optional variable is missing",
            patch: json!({"type": "CombineFromComposite", "combine": combine(&["objectMeta.labels.source1", "objectMeta.labels.source2", "objectMeta.labels.source3"]), "toFieldPath": "objectMeta.labels.destination"}),
            cp: meta(json!({"name": "cp", "labels": {"source1": "foo", "source3": "baz"}})),
            cd: blah_cd.clone(),
            want: Ok((meta(json!({"name": "cp", "labels": {"source1": "foo", "source3": "baz"}})), blah_cd.clone())),
        },
        Case {
            name: "ValidCombineFromComposite",
            reason: "Should correctly apply a CombineFromComposite patch with valid settings",
            patch: json!({"type": "CombineFromComposite", "combine": combine(&["objectMeta.labels.source1", "objectMeta.labels.source2"]), "toFieldPath": "objectMeta.labels.destination"}),
            cp: sources.clone(),
            cd: blah_cd.clone(),
            want: Ok((sources.clone(), meta(json!({"name": "cd", "labels": {"Test": "blah", "destination": "foo-bar"}})))),
        },
        Case {
            name: "ValidCombineToComposite",
            reason: "Should correctly apply a CombineToComposite patch with valid settings",
            patch: json!({"type": "CombineToComposite", "combine": combine(&["objectMeta.labels.source1", "objectMeta.labels.source2"]), "toFieldPath": "objectMeta.labels.destination"}),
            cp: labelled_cp.clone(),
            cd: meta(json!({"name": "cd", "labels": {"source1": "foo", "source2": "bar"}})),
            want: Ok((
                meta(json!({"name": "cp", "labels": {"Test": "blah", "destination": "foo-bar"}})),
                meta(json!({"name": "cd", "labels": {"source1": "foo", "source2": "bar"}})),
            )),
        },
    ]);
}

/// TestOptionalFieldPathNotFound, as whole patches: which read failures
/// skip a patch and which fail it.
#[test]
fn optional_field_path_not_found() {
    let cp = json!({"spec": {"present": "v", "scalar": "s"}});
    let from = |path: &str, policy: Value| {
        let mut p = json!({"fromFieldPath": path, "toFieldPath": "spec.out"});
        if !policy.is_null() {
            p["policy"] = policy;
        }
        p
    };
    run(vec![
        Case {
            name: "NoError",
            reason: "Should perform patch if no error finding field.",
            patch: from("spec.present", Value::Null),
            cp: cp.clone(),
            cd: json!({}),
            want: Ok((cp.clone(), json!({"spec": {"out": "v"}}))),
        },
        Case {
            name: "NotFieldNotFound",
            reason: "Should return error if something other than field not found.",
            patch: from("spec.scalar.x", Value::Null),
            cp: cp.clone(),
            cd: json!({}),
            want: Err("spec.scalar: not an object"),
        },
        Case {
            name: "NoPolicy",
            reason: "Should return no-op if field not found and no patch policy specified.",
            patch: from("spec.missing", Value::Null),
            cp: cp.clone(),
            cd: json!({}),
            want: Ok((cp.clone(), json!({}))),
        },
        Case {
            name: "NoPolicyFromFieldPath",
            reason: "Should return no-op if field not found and empty patch policy specified.",
            patch: from("spec.missing", json!({})),
            cp: cp.clone(),
            cd: json!({}),
            want: Ok((cp.clone(), json!({}))),
        },
        Case {
            name: "OptionalNotFound",
            reason: "Should return no-op if field not found and optional patch policy explicitly specified.",
            patch: from("spec.missing", json!({"fromFieldPath": "Optional"})),
            cp: cp.clone(),
            cd: json!({}),
            want: Ok((cp.clone(), json!({}))),
        },
        Case {
            name: "RequiredNotFound",
            reason: "Should return error if field not found and required patch policy explicitly specified.",
            patch: from("spec.missing", json!({"fromFieldPath": "Required"})),
            cp: cp.clone(),
            cd: json!({}),
            want: Err("required field spec.missing is not set"),
        },
    ]);
}

/// Ours: the corners of Crossplane's patch code that its tests leave out.
#[test]
fn patch_corners() {
    run(vec![
        Case {
            name: "WildcardOverMapKeys",
            reason: "A wildcard over an object writes every existing key",
            patch: json!({"fromFieldPath": "spec.v", "toFieldPath": "metadata.labels[*]"}),
            cp: json!({"spec": {"v": "x"}}),
            cd: json!({"metadata": {"labels": {"a": "1", "b.c": "2"}}}),
            want: Ok((json!({"spec": {"v": "x"}}), json!({"metadata": {"labels": {"a": "x", "b.c": "x"}}}))),
        },
        Case {
            name: "WildcardOverMissingArray",
            reason: "A wildcard toFieldPath that reaches nothing is an error, not a no-op",
            patch: json!({"fromFieldPath": "spec.v", "toFieldPath": "spec.items[*].name"}),
            cp: json!({"spec": {"v": "x"}}),
            cd: json!({}),
            want: Err("cannot expand toFieldPath spec.items[*].name"),
        },
        Case {
            name: "WildcardOverNull",
            reason: "A wildcard over null is an error for a patch",
            patch: json!({"fromFieldPath": "spec.v", "toFieldPath": "spec.items[*].name"}),
            cp: json!({"spec": {"v": "x"}}),
            cd: json!({"spec": {"items": null}}),
            want: Err("spec.items"),
        },
        Case {
            name: "WildcardOverScalar",
            reason: "A wildcard over a string is an error",
            patch: json!({"fromFieldPath": "spec.v", "toFieldPath": "spec.items[*]"}),
            cp: json!({"spec": {"v": "x"}}),
            cd: json!({"spec": {"items": "s"}}),
            want: Err("a wildcard needs an array or an object"),
        },
        Case {
            name: "WildcardFromFieldPathIsLiteral",
            reason: "Crossplane does not expand fromFieldPath: * is a field name, and an array has none",
            patch: json!({"fromFieldPath": "spec.items[*].name", "toFieldPath": "spec.out"}),
            cp: json!({"spec": {"items": [{"name": "a"}]}}),
            cd: json!({}),
            want: Err("spec.items: not an object"),
        },
        Case {
            name: "DotStarIsNotExpanded",
            reason: "Only a literal [*] asks for expansion; a.* sets the key *",
            patch: json!({"fromFieldPath": "spec.v", "toFieldPath": "spec.m.*"}),
            cp: json!({"spec": {"v": "x"}}),
            cd: json!({"spec": {"m": {"k": 1}}}),
            want: Ok((json!({"spec": {"v": "x"}}), json!({"spec": {"m": {"k": 1, "*": "x"}}}))),
        },
        Case {
            name: "NullIsPatched",
            reason: "A source field that is present but null is patched as null",
            patch: json!({"fromFieldPath": "spec.v", "toFieldPath": "spec.out"}),
            cp: json!({"spec": {"v": null}}),
            cd: json!({"spec": {"out": 1}}),
            want: Ok((json!({"spec": {"v": null}}), json!({"spec": {"out": null}}))),
        },
        Case {
            name: "OptionalWrongType",
            reason: "Reading through a value of the wrong type fails even an optional patch",
            patch: json!({"fromFieldPath": "spec.v[0]", "toFieldPath": "spec.out"}),
            cp: json!({"spec": {"v": {"a": 1}}}),
            cd: json!({}),
            want: Err("spec.v: not an array"),
        },
        Case {
            name: "WriteFieldIntoArray",
            reason: "Writing x.name where x is an array is an error",
            patch: json!({"fromFieldPath": "spec.v", "toFieldPath": "spec.list.name"}),
            cp: json!({"spec": {"v": "x"}}),
            cd: json!({"spec": {"list": []}}),
            want: Err("spec.list is not an object"),
        },
        Case {
            name: "WriteIndexIntoObject",
            reason: "Writing x[0] where x is an object is an error",
            patch: json!({"fromFieldPath": "spec.v", "toFieldPath": "spec.obj[0]"}),
            cp: json!({"spec": {"v": "x"}}),
            cd: json!({"spec": {"obj": {}}}),
            want: Err("spec.obj is not an array"),
        },
        Case {
            name: "WriteIndexTooLarge",
            reason: "Indexes above Crossplane's limit of 1024 are refused",
            patch: json!({"fromFieldPath": "spec.v", "toFieldPath": "spec.list[1025]"}),
            cp: json!({"spec": {"v": "x"}}),
            cd: json!({}),
            want: Err("index 1025 is greater than the maximum index 1024"),
        },
        Case {
            name: "MapResultWrittenAsInteger",
            reason: "A map's float64 20 reaches the API server as 20, as Go writes it",
            patch: json!({"fromFieldPath": "spec.size", "toFieldPath": "spec.limit", "transforms": [{"type": "map", "map": {"small": 20}}]}),
            cp: json!({"spec": {"size": "small"}}),
            cd: json!({}),
            want: Ok((json!({"spec": {"size": "small"}}), json!({"spec": {"limit": 20}}))),
        },
        Case {
            name: "CombineNeedsToFieldPath",
            reason: "A combine does not default its destination, even to a stray fromFieldPath",
            patch: json!({"type": "CombineFromComposite", "fromFieldPath": "spec.v", "combine": {"variables": [{"fromFieldPath": "spec.v"}], "strategy": "string", "string": {"fmt": "%s"}}}),
            cp: json!({"spec": {"v": "x"}}),
            cd: json!({}),
            want: Err("toFieldPath is required by type CombineFromComposite"),
        },
        Case {
            name: "CombineNeedsStrategy",
            reason: "The strategy has no default",
            patch: json!({"type": "CombineFromComposite", "combine": {"variables": [{"fromFieldPath": "spec.v"}], "string": {"fmt": "%s"}}, "toFieldPath": "spec.out"}),
            cp: json!({"spec": {"v": "x"}}),
            cd: json!({}),
            want: Err("unknown combine strategy \"\""),
        },
        Case {
            name: "CombineIgnoresMergeOptions",
            reason: "Crossplane writes a combine's result without its merge options",
            patch: json!({"type": "CombineFromComposite", "combine": {"variables": [{"fromFieldPath": "spec.v"}], "strategy": "string", "string": {"fmt": "%s"}}, "toFieldPath": "spec.out", "policy": {"mergeOptions": {"keepMapValues": true}}}),
            cp: json!({"spec": {"v": "x"}}),
            cd: json!({"spec": {"out": "old"}}),
            want: Ok((json!({"spec": {"v": "x"}}), json!({"spec": {"out": "x"}}))),
        },
        Case {
            name: "CombineWildcardIsLiteral",
            reason: "Crossplane never expands a combine's toFieldPath, so [*] is the key *",
            patch: json!({"type": "CombineFromComposite", "combine": {"variables": [{"fromFieldPath": "spec.v"}], "strategy": "string", "string": {"fmt": "%s"}}, "toFieldPath": "spec.m[*]"}),
            cp: json!({"spec": {"v": "x"}}),
            cd: json!({"spec": {"m": {"a": "1"}}}),
            want: Ok((json!({"spec": {"v": "x"}}), json!({"spec": {"m": {"a": "1", "*": "x"}}}))),
        },
        Case {
            name: "MergeReadsDestinationStrictly",
            reason: "With merge options the destination is read first, and a wrong type there is an error",
            patch: json!({"fromFieldPath": "spec.v", "toFieldPath": "spec.d.x", "policy": {"mergeOptions": {"keepMapValues": true}}}),
            cp: json!({"spec": {"v": {"a": 1}}}),
            cd: json!({"spec": {"d": "s"}}),
            want: Err("spec.d: not an object"),
        },
    ]);
}

#[test]
fn composed_templates() {
    struct Expand {
        name: &'static str,
        reason: &'static str,
        patches: Vec<Value>,
        sets: Vec<Value>,
        want: Result<Vec<Value>, &'static str>,
    }
    let p = |n: u32| json!({"fromFieldPath": format!("spec.p{n}"), "toFieldPath": format!("spec.p{n}")});
    let cases = vec![
        Expand {
            name: "NoCompositionPatchSets",
            reason: "Patches defined on a composite resource should be applied correctly if no PatchSets are defined on the composition",
            patches: vec![p(1), p(2)],
            sets: vec![],
            want: Ok(vec![p(1), p(2)]),
        },
        Expand {
            name: "UndefinedPatchSet",
            reason: "Should return error and not modify the patches field when referring to an undefined PatchSet",
            patches: vec![json!({"type": "PatchSet", "patchSetName": "patch-set-1"})],
            sets: vec![],
            want: Err("no patchSet named \"patch-set-1\""),
        },
        Expand {
            name: "DefinedPatchSets",
            reason: "Should de-reference PatchSets defined on the Composition when referenced in a composed resource",
            patches: vec![
                json!({"type": "PatchSet", "patchSetName": "patch-set-1"}),
                p(5),
                json!({"type": "PatchSet", "patchSetName": "patch-set-2"}),
            ],
            sets: vec![
                json!({"name": "patch-set-1", "patches": [p(1), p(2)]}),
                json!({"name": "patch-set-2", "patches": [p(3), p(4)]}),
            ],
            want: Ok(vec![p(1), p(2), p(5), p(3), p(4)]),
        },
        Expand {
            name: "NestedPatchSetAnywhere",
            reason: "Ours: Crossplane refuses a PatchSet patch inside any patchSet, even one not referenced",
            patches: vec![p(1)],
            sets: vec![json!({"name": "unused", "patches": [{"type": "PatchSet", "patchSetName": "x"}]})],
            want: Err("a patch in a PatchSet cannot be of type PatchSet"),
        },
    ];
    for c in cases {
        let got = patch::expand(&c.patches, &c.sets);
        match (&c.want, got) {
            (Ok(want), Ok(got)) => assert_eq!(&got, want, "{}: {}", c.name, c.reason),
            (Err(fragment), Err(message)) => assert!(
                message.contains(fragment),
                "{}: {}: {message:?} lacks {fragment:?}",
                c.name,
                c.reason
            ),
            (want, got) => panic!("{}: {}: want {want:?}, got {got:?}", c.name, c.reason),
        }
    }
}
