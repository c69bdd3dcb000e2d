//! Property-based fuzz targets (proptest, stable Rust) for request bodies
//! as the API server decodes them, JSON, YAML and protobuf, and the JSON
//! and merge patches it applies: arbitrary bytes give an object or a 4xx
//! `Status` with a message, never a panic or a 5xx.

#[path = "../../../../tests/fuzz/json.rs"]
mod json;

use proptest::prelude::*;
use serde_json::Value;

use super::body;

const MEDIA: &[&str] = &[
    "application/json",
    "application/json; charset=utf-8",
    "application/yaml",
    "application/apply-patch+yaml",
    "application/vnd.kubernetes.protobuf",
    "",
    "text/plain",
];

/// A JSON object's text, cut short and with a byte changed: broken the
/// ways a truncated or corrupted upload is.
fn damaged_json() -> impl Strategy<Value = Vec<u8>> {
    (
        json::object(),
        any::<prop::sample::Index>(),
        any::<prop::sample::Index>(),
        any::<u8>(),
    )
        .prop_map(|(value, cut, flip, byte)| {
            let mut text = value.to_string().into_bytes();
            let keep = cut.index(text.len() + 1);
            text.truncate(keep);
            if !text.is_empty() {
                let at = flip.index(text.len());
                text[at] = byte;
            }
            text
        })
}

fn body_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..256),
        damaged_json(),
        json::json().prop_map(|v| v.to_string().into_bytes()),
        proptest::collection::vec(
            proptest::sample::select(
                &[
                    "a",
                    ":",
                    " ",
                    "\n",
                    "- ",
                    "{",
                    "}",
                    "[",
                    "]",
                    "&x",
                    "*x",
                    "!!",
                    "'",
                    "\"",
                    "#",
                    "---",
                    "? ",
                    "|",
                    ">",
                    "\t",
                    "%YAML 1.2",
                    "<<:"
                ][..]
            ),
            0..24,
        )
        .prop_map(|p| p.concat().into_bytes()),
    ]
}

fn json_patch_op() -> impl Strategy<Value = Value> {
    (
        proptest::sample::select(&["add", "remove", "replace", "move", "copy", "test", "bogus"][..]),
        proptest::collection::vec(proptest::sample::select(&["", "a", "b", "0", "1", "-", "~0", "~1", "metadata", "spec"][..]), 0..4),
        proptest::collection::vec(proptest::sample::select(&["", "a", "0", "-"][..]), 0..3),
        json::json(),
    )
        .prop_map(|(op, path, from, value)| {
            let pointer = |parts: Vec<&str>| parts.iter().map(|p| format!("/{p}")).collect::<String>();
            serde_json::json!({"op": op, "path": pointer(path), "from": pointer(from), "value": value})
        })
}

proptest! {
    #[test]
    fn bodies_decode_to_an_object_or_a_client_error(bytes in body_bytes(), media in proptest::sample::select(MEDIA)) {
        match body::decode(&bytes, media) {
            Ok(value) => prop_assert!(value.is_object()),
            Err(e) => {
                prop_assert!((400..500).contains(&e.code), "{} for {:?}", e, String::from_utf8_lossy(&bytes));
                prop_assert!(!e.message.is_empty());
            }
        }
    }

    #[test]
    fn the_field_of_a_syntax_error_is_found_anywhere(bytes in body_bytes(), line in 0usize..8, column in 0usize..300) {
        let field = body::json_path_at(&bytes, line, column);
        prop_assert!(!field.is_empty());
    }

    #[test]
    fn json_patches_apply_or_fail_cleanly(doc in json::json(), ops in proptest::collection::vec(json_patch_op(), 0..4)) {
        // Through the handler's own function: it must answer, never panic
        // (json-patch's undo of a failed patch can).
        if let Ok(patch) = serde_json::from_value::<json_patch::Patch>(Value::Array(ops)) {
            if let Err(e) = super::patch::apply_json_patch(&doc, &patch) {
                prop_assert_eq!(e.code, 422);
            }
        }
    }

    #[test]
    fn merge_patches_apply(doc in json::json(), patch in json::json()) {
        let mut target = doc;
        json_patch::merge(&mut target, &patch);
        if !patch.is_object() {
            prop_assert_eq!(target, patch, "a merge patch that is not an object replaces the whole");
        }
    }
}

/// Found by `json_patches_apply_or_fail_cleanly`: json-patch's `patch`
/// panics undoing a failed move of the whole document into itself, which
/// any client could send as a PATCH.
#[test]
fn a_json_patch_whose_undo_would_panic_is_refused() {
    let patch: json_patch::Patch = serde_json::from_value(serde_json::json!([
        {"op": "move", "from": "/metadata", "path": ""},
        {"op": "move", "from": "", "path": ""}
    ]))
    .expect("a patch");
    let current = serde_json::json!({"metadata": {"name": "a"}, "data": {}});
    let err = super::patch::apply_json_patch(&current, &patch).expect_err("refused");
    assert_eq!(err.code, 422, "{err}");
}
