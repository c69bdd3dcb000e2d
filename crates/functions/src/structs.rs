//! JSON values to `google.protobuf.Struct` and back. A Struct holds numbers
//! as doubles, as Crossplane's `structpb` does: integers come back as
//! integers when they are whole and within 2^53, which is how Go's
//! `AsMap` followed by JSON encoding shows them too.

use prost_types::{value::Kind, ListValue, Struct, Value as PbValue};
use serde_json::{Map, Number, Value};

/// A JSON object as a Struct; anything else is an empty Struct.
pub fn to_struct(value: &Value) -> Struct {
    match value {
        Value::Object(map) => Struct {
            fields: map.iter().map(|(k, v)| (k.clone(), to_value(v))).collect(),
        },
        _ => Struct::default(),
    }
}

pub fn to_value(value: &Value) -> PbValue {
    let kind = match value {
        Value::Null => Kind::NullValue(0),
        Value::Bool(b) => Kind::BoolValue(*b),
        Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or(0.0)),
        Value::String(s) => Kind::StringValue(s.clone()),
        Value::Array(items) => Kind::ListValue(ListValue {
            values: items.iter().map(to_value).collect(),
        }),
        Value::Object(_) => Kind::StructValue(to_struct(value)),
    };
    PbValue { kind: Some(kind) }
}

pub fn from_struct(s: &Struct) -> Value {
    Value::Object(
        s.fields
            .iter()
            .map(|(k, v)| (k.clone(), from_value(v)))
            .collect::<Map<String, Value>>(),
    )
}

/// Whole numbers within a double's exact range read back as integers.
const EXACT: f64 = 9_007_199_254_740_992.0;

pub fn from_value(v: &PbValue) -> Value {
    match &v.kind {
        None | Some(Kind::NullValue(_)) => Value::Null,
        Some(Kind::BoolValue(b)) => Value::Bool(*b),
        Some(Kind::NumberValue(n)) => {
            if n.fract() == 0.0 && n.abs() <= EXACT {
                Value::Number(Number::from(*n as i64))
            } else {
                Number::from_f64(*n).map_or(Value::Null, Value::Number)
            }
        }
        Some(Kind::StringValue(s)) => Value::String(s.clone()),
        Some(Kind::ListValue(l)) => Value::Array(l.values.iter().map(from_value).collect()),
        Some(Kind::StructValue(s)) => from_struct(s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_survives_a_round_trip() {
        let cases = [
            (
                "an object of every kind of value",
                json!({"a": 1, "b": 1.5, "c": "s", "d": true, "e": null, "f": [1, {"g": []}], "h": {}}),
            ),
            ("negative whole numbers stay integers", json!({"n": -42})),
            ("an empty object", json!({})),
        ];
        for (reason, value) in cases {
            pretty_assertions::assert_eq!(from_struct(&to_struct(&value)), value, "{reason}");
        }
    }

    #[test]
    fn a_non_object_is_an_empty_struct() {
        assert_eq!(to_struct(&json!([1, 2])), Struct::default());
    }
}
