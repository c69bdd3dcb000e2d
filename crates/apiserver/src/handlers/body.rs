//! Request bodies: JSON, YAML or (for the built-in kinds kubectl sends that
//! way) Kubernetes protobuf, decoded into one object, and malformed bodies
//! reported with where they went wrong.

use apimachinery::{CauseType, FieldError};
use serde_json::Value;

use crate::status::{reason, ApiError};

/// The cause field of a malformed body whose failure is not inside any field.
pub const BODY_FIELD: &str = "body";

/// Decodes JSON, YAML or protobuf, as the content type says, into one object.
pub fn decode(body: &[u8], content_type: &str) -> Result<Value, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(
            ApiError::bad_request("the request body is empty; send a JSON or YAML object")
                .with_cause(FieldError::new(
                    CauseType::Required,
                    BODY_FIELD,
                    "Required value: the request body is empty",
                )),
        );
    }
    let media = content_type.split(';').next().unwrap_or("").trim();
    let value: Value = if media.ends_with("yaml") {
        decode_yaml(body)?
    } else if media == apimachinery::protobuf::MEDIA_TYPE {
        apimachinery::protobuf::decode(body).map_err(|e| {
            let (code, reason) = if e.is_unsupported() {
                (415, reason::UNSUPPORTED_MEDIA_TYPE)
            } else {
                (400, reason::BAD_REQUEST)
            };
            let message = e.to_string();
            ApiError::new(code, reason, message.clone()).with_cause(FieldError::new(
                CauseType::Invalid,
                BODY_FIELD,
                message,
            ))
        })?
    } else if media.is_empty() || media.contains("json") {
        decode_json(body, "the request body")?
    } else {
        return Err(ApiError::new(
            415,
            reason::UNSUPPORTED_MEDIA_TYPE,
            format!("the body of the request was in an unknown format ({media}); accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf"),
        ));
    };
    if !value.is_object() {
        return Err(not_an_object("the request body", &value));
    }
    Ok(value)
}

/// Parses JSON, naming the field and position of a syntax error.
pub fn decode_json(body: &[u8], what: &str) -> Result<Value, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        let (line, column) = (e.line(), e.column());
        let field = json_path_at(body, line, column);
        let text = e.to_string();
        let detail = strip_position(&text);
        let message = format!("{what} is not valid JSON: line {line}, column {column}: {detail}");
        ApiError::bad_request(message.clone()).with_cause(FieldError::new(
            CauseType::Invalid,
            field,
            message,
        ))
    })
}

fn decode_yaml(body: &[u8]) -> Result<Value, ApiError> {
    let text = std::str::from_utf8(body).map_err(|e| {
        let message = format!(
            "the request body is not valid UTF-8 YAML: invalid byte at offset {}",
            e.valid_up_to()
        );
        ApiError::bad_request(message.clone()).with_cause(FieldError::new(
            CauseType::Invalid,
            BODY_FIELD,
            message,
        ))
    })?;
    serde_saphyr::from_str(text).map_err(|e: serde_saphyr::Error| {
        let position = e
            .location()
            .map(|l| format!("line {}, column {}: ", l.line(), l.column()))
            .unwrap_or_default();
        let message = format!("the request body is not valid YAML: {position}{e}");
        ApiError::bad_request(message.clone()).with_cause(FieldError::new(
            CauseType::Invalid,
            BODY_FIELD,
            message,
        ))
    })
}

/// A body (or patch) that parsed but is not an object.
pub fn not_an_object(what: &str, value: &Value) -> ApiError {
    let kind = match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    };
    let message = format!("{what} must be a JSON or YAML object, not {kind}");
    ApiError::bad_request(message.clone()).with_cause(FieldError::new(
        CauseType::TypeInvalid,
        BODY_FIELD,
        message,
    ))
}

/// serde_json appends " at line L column C"; the message states the position itself.
fn strip_position(message: &str) -> &str {
    match message.rfind(" at line ") {
        Some(i) => &message[..i],
        None => message,
    }
}

/// The field a JSON document was inside of when it broke off at `line` and
/// `column` (1-based, as serde_json reports them), e.g. `metadata.labels` for
/// `{"metadata":{"labels":{"a":`, or [`BODY_FIELD`] at the top level.
///
/// Written by hand because serde_json reports only the position of a syntax
/// error; this walks the text before it, tracking open objects and arrays,
/// the last key read in each object and the index in each array.
pub fn json_path_at(body: &[u8], line: usize, column: usize) -> String {
    let end = offset_of(body, line, column).min(body.len());
    enum Frame {
        Object {
            key: Option<String>,
            expecting_key: bool,
        },
        Array {
            index: usize,
        },
    }
    let mut stack: Vec<Frame> = Vec::new();
    let mut i = 0;
    while i < end {
        match body[i] {
            b'{' => stack.push(Frame::Object {
                key: None,
                expecting_key: true,
            }),
            b'[' => stack.push(Frame::Array { index: 0 }),
            b'}' | b']' => {
                stack.pop();
            }
            b',' => match stack.last_mut() {
                Some(Frame::Array { index }) => *index += 1,
                Some(Frame::Object { expecting_key, .. }) => *expecting_key = true,
                None => {}
            },
            b'"' => {
                let start = i + 1;
                let mut j = start;
                while j < end && body[j] != b'"' {
                    j += if body[j] == b'\\' { 2 } else { 1 };
                }
                if let Some(Frame::Object { key, expecting_key }) = stack.last_mut() {
                    if *expecting_key {
                        let raw = body.get(start..j.min(end)).unwrap_or_default();
                        *key = Some(String::from_utf8_lossy(raw).into_owned());
                        *expecting_key = false;
                    }
                }
                i = j;
            }
            _ => {}
        }
        i += 1;
    }
    let mut path = String::new();
    for frame in &stack {
        match frame {
            Frame::Object { key: Some(key), .. } => {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
            }
            Frame::Object { key: None, .. } => {}
            Frame::Array { index } => path.push_str(&format!("[{index}]")),
        }
    }
    if path.is_empty() {
        BODY_FIELD.to_string()
    } else {
        path
    }
}

/// Byte offset of a 1-based line and column.
fn offset_of(body: &[u8], line: usize, column: usize) -> usize {
    let mut current = 1;
    let mut start = 0;
    for (i, b) in body.iter().enumerate() {
        if current == line {
            break;
        }
        if *b == b'\n' {
            current += 1;
            start = i + 1;
        }
    }
    start + column.saturating_sub(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path_of_error(text: &str) -> String {
        match serde_json::from_str::<Value>(text) {
            Ok(_) => panic!("{text} parsed"),
            Err(e) => json_path_at(text.as_bytes(), e.line(), e.column()),
        }
    }

    #[test]
    fn names_the_field_a_document_broke_off_in() {
        let cases = [
            ("{", "body"),
            ("{\"a\":", "a"),
            (
                r#"{"metadata":{"name":"x","labels":{"a":}}}"#,
                "metadata.labels.a",
            ),
            (r#"{"spec":{"items":[1,2,{"b":tru}]}}"#, "spec.items[2].b"),
            ("{\"data\":{\"k\":\"v\"},\n \"x\": ]}", "x"),
            (r#"{"a\"b":{"c":nul}}"#, "a\\\"b.c"),
            ("[1,2", "[1]"),
        ];
        for (text, want) in cases {
            assert_eq!(path_of_error(text), want, "{text}");
        }
    }

    #[test]
    fn malformed_bodies_carry_causes() {
        for (body, media) in [
            ("{", "application/json"),
            ("a: [", "application/yaml"),
            ("", "application/json"),
            ("[1]", "application/json"),
            ("null", "application/json"),
        ] {
            let err = decode(body.as_bytes(), media).expect_err(body);
            assert_eq!(err.code, 400, "{body}");
            assert!(!err.causes.is_empty(), "{body}: {err:?}");
        }
        let err = decode(b"{\"metadata\": {\"name\": }", "application/json").expect_err("bad");
        assert_eq!(err.causes[0].field, "metadata.name");
        assert!(err.message.contains("line 1, column"), "{}", err.message);
    }
}
