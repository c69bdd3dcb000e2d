//! OpenAPI v2 (Swagger 2.0) in the protobuf form kube-apiserver serves at
//! `/openapi/v2`: gnostic's `openapi.v2.Document`.
//!
//! client-go asks for this document only as protobuf, and `kubectl explain
//! --output plaintext-openapiv2` reads it. Only the part kubectl's model
//! parser reads is encoded: the definitions (type, format, description,
//! required, properties, items, additionalProperties, `$ref`, defaults and
//! enums as YAML, and the `x-` vendor extensions, which carry
//! `x-kubernetes-group-version-kind`). Paths are left empty.
//!
//! The messages are declared with prost's derive, as in `protobuf`, rather
//! than generated from gnostic's `OpenAPIv2.proto`: a few messages are
//! needed and a build step is not worth it. Tags follow that file.

use prost::Message;
use serde_json::{Map, Value};

/// The media type client-go asks `/openapi/v2` for.
pub const MEDIA_TYPE: &str = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf";

/// What the response says it is: the same with `.` for `@`, as upstream
/// answers, since Go's media-type parser refuses the `@`.
pub const RESPONSE_MEDIA_TYPE: &str = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";

/// Nesting past this is not encoded; a schema this deep is surely malformed.
const MAX_DEPTH: usize = 64;

/// Encodes a Swagger 2.0 JSON document (`swagger`, `info`, `definitions`).
pub fn encode(doc: &Value) -> Vec<u8> {
    let text = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or("").to_string();
    let definitions = doc
        .get("definitions")
        .and_then(Value::as_object)
        .map(|defs| Definitions {
            additional_properties: defs
                .iter()
                .map(|(name, schema)| NamedSchema {
                    name: name.clone(),
                    value: Some(Box::new(schema_of(schema, 0))),
                })
                .collect(),
        });
    let document = Document {
        swagger: text(doc.get("swagger")),
        info: Some(Info {
            title: text(doc.pointer("/info/title")),
            version: text(doc.pointer("/info/version")),
        }),
        paths: Some(Paths::default()),
        definitions,
    };
    document.encode_to_vec()
}

fn schema_of(raw: &Value, depth: usize) -> Schema {
    let mut out = Schema::default();
    let Some(obj) = raw.as_object() else {
        return out;
    };
    let text = |key: &str| {
        obj.get(key)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let number = |key: &str| obj.get(key).and_then(Value::as_f64).unwrap_or(0.0);
    let count = |key: &str| obj.get(key).and_then(Value::as_i64).unwrap_or(0);
    let flag = |key: &str| obj.get(key).and_then(Value::as_bool).unwrap_or(false);
    out.xref = text("$ref");
    out.format = text("format");
    out.title = text("title");
    out.description = text("description");
    out.default = obj.get("default").map(any);
    out.multiple_of = number("multipleOf");
    out.maximum = number("maximum");
    out.exclusive_maximum = flag("exclusiveMaximum");
    out.minimum = number("minimum");
    out.exclusive_minimum = flag("exclusiveMinimum");
    out.max_length = count("maxLength");
    out.min_length = count("minLength");
    out.pattern = text("pattern");
    out.max_items = count("maxItems");
    out.min_items = count("minItems");
    out.unique_items = flag("uniqueItems");
    out.max_properties = count("maxProperties");
    out.min_properties = count("minProperties");
    out.required = strings(obj.get("required"));
    out.enum_values = obj
        .get("enum")
        .and_then(Value::as_array)
        .map(|values| values.iter().map(any).collect())
        .unwrap_or_default();
    out.vendor_extension = obj
        .iter()
        .filter(|(k, _)| k.starts_with("x-"))
        .map(|(k, v)| NamedAny {
            name: k.clone(),
            value: Some(any(v)),
        })
        .collect();
    match obj.get("type") {
        Some(Value::String(t)) => {
            out.type_ = Some(TypeItem {
                value: vec![t.clone()],
            })
        }
        Some(Value::Array(ts)) => {
            out.type_ = Some(TypeItem {
                value: strings_of(ts),
            })
        }
        _ => {}
    }
    if depth >= MAX_DEPTH {
        return out;
    }
    let sub = |v: &Value| schema_of(v, depth + 1);
    match obj.get("items") {
        Some(Value::Array(items)) => {
            out.items = Some(ItemsItem {
                schema: items.iter().map(sub).collect(),
            })
        }
        Some(item @ Value::Object(_)) => {
            out.items = Some(ItemsItem {
                schema: vec![sub(item)],
            })
        }
        _ => {}
    }
    if let Some(props) = obj.get("properties").and_then(Value::as_object) {
        out.properties = Some(Properties {
            additional_properties: named(props, depth),
        });
    }
    out.additional_properties = match obj.get("additionalProperties") {
        Some(Value::Bool(b)) => Some(AdditionalPropertiesItem {
            oneof: Some(Additional::Boolean(*b)),
        }),
        Some(schema @ Value::Object(_)) => Some(AdditionalPropertiesItem {
            oneof: Some(Additional::Schema(Box::new(sub(schema)))),
        }),
        _ => None,
    };
    out.all_of = obj
        .get("allOf")
        .and_then(Value::as_array)
        .map(|all| all.iter().map(sub).collect())
        .unwrap_or_default();
    out
}

fn named(props: &Map<String, Value>, depth: usize) -> Vec<NamedSchema> {
    props
        .iter()
        .map(|(name, schema)| NamedSchema {
            name: name.clone(),
            value: Some(Box::new(schema_of(schema, depth + 1))),
        })
        .collect()
}

/// gnostic keeps arbitrary values as YAML text; JSON is YAML.
fn any(value: &Value) -> Any {
    Any {
        yaml: serde_json::to_string(value).unwrap_or_default(),
    }
}

fn strings(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_array)
        .map(|a| strings_of(a))
        .unwrap_or_default()
}

fn strings_of(values: &[Value]) -> Vec<String> {
    values
        .iter()
        .filter_map(Value::as_str)
        .map(String::from)
        .collect()
}

#[derive(Clone, PartialEq, Message)]
struct Document {
    #[prost(string, tag = "1")]
    swagger: String,
    #[prost(message, optional, tag = "2")]
    info: Option<Info>,
    #[prost(message, optional, tag = "8")]
    paths: Option<Paths>,
    #[prost(message, optional, tag = "9")]
    definitions: Option<Definitions>,
}

#[derive(Clone, PartialEq, Message)]
struct Info {
    #[prost(string, tag = "1")]
    title: String,
    #[prost(string, tag = "2")]
    version: String,
}

#[derive(Clone, PartialEq, Message)]
struct Paths {}

#[derive(Clone, PartialEq, Message)]
struct Definitions {
    #[prost(message, repeated, tag = "1")]
    additional_properties: Vec<NamedSchema>,
}

#[derive(Clone, PartialEq, Message)]
struct NamedSchema {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(message, optional, boxed, tag = "2")]
    value: Option<Box<Schema>>,
}

#[derive(Clone, PartialEq, Message)]
struct NamedAny {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(message, optional, tag = "2")]
    value: Option<Any>,
}

/// gnostic's `Any`; only its `yaml` form (tag 2) is written.
#[derive(Clone, PartialEq, Message)]
struct Any {
    #[prost(string, tag = "2")]
    yaml: String,
}

#[derive(Clone, PartialEq, Message)]
struct TypeItem {
    #[prost(string, repeated, tag = "1")]
    value: Vec<String>,
}

#[derive(Clone, PartialEq, Message)]
struct ItemsItem {
    #[prost(message, repeated, tag = "1")]
    schema: Vec<Schema>,
}

#[derive(Clone, PartialEq, Message)]
struct Properties {
    #[prost(message, repeated, tag = "1")]
    additional_properties: Vec<NamedSchema>,
}

#[derive(Clone, PartialEq, Message)]
struct AdditionalPropertiesItem {
    #[prost(oneof = "Additional", tags = "1, 2")]
    oneof: Option<Additional>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
enum Additional {
    #[prost(message, tag = "1")]
    Schema(Box<Schema>),
    #[prost(bool, tag = "2")]
    Boolean(bool),
}

#[derive(Clone, PartialEq, Message)]
struct Schema {
    #[prost(string, tag = "1")]
    xref: String,
    #[prost(string, tag = "2")]
    format: String,
    #[prost(string, tag = "3")]
    title: String,
    #[prost(string, tag = "4")]
    description: String,
    #[prost(message, optional, tag = "5")]
    default: Option<Any>,
    #[prost(double, tag = "6")]
    multiple_of: f64,
    #[prost(double, tag = "7")]
    maximum: f64,
    #[prost(bool, tag = "8")]
    exclusive_maximum: bool,
    #[prost(double, tag = "9")]
    minimum: f64,
    #[prost(bool, tag = "10")]
    exclusive_minimum: bool,
    #[prost(int64, tag = "11")]
    max_length: i64,
    #[prost(int64, tag = "12")]
    min_length: i64,
    #[prost(string, tag = "13")]
    pattern: String,
    #[prost(int64, tag = "14")]
    max_items: i64,
    #[prost(int64, tag = "15")]
    min_items: i64,
    #[prost(bool, tag = "16")]
    unique_items: bool,
    #[prost(int64, tag = "17")]
    max_properties: i64,
    #[prost(int64, tag = "18")]
    min_properties: i64,
    #[prost(string, repeated, tag = "19")]
    required: Vec<String>,
    #[prost(message, repeated, tag = "20")]
    enum_values: Vec<Any>,
    #[prost(message, optional, tag = "21")]
    additional_properties: Option<AdditionalPropertiesItem>,
    #[prost(message, optional, tag = "22")]
    type_: Option<TypeItem>,
    #[prost(message, optional, tag = "23")]
    items: Option<ItemsItem>,
    #[prost(message, repeated, tag = "24")]
    all_of: Vec<Schema>,
    #[prost(message, optional, tag = "25")]
    properties: Option<Properties>,
    #[prost(message, repeated, tag = "31")]
    vendor_extension: Vec<NamedAny>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn round_trips_what_kubectl_reads() {
        let doc = json!({
            "swagger": "2.0",
            "info": {"title": "Plinth", "version": "v1.33.0"},
            "definitions": {
                "io.k8s.api.core.v1.ConfigMap": {
                    "type": "object",
                    "description": "ConfigMap holds configuration data.",
                    "required": ["data"],
                    "properties": {
                        "data": {"type": "object", "additionalProperties": {"type": "string"}},
                        "list": {"type": "array", "items": {"type": "integer", "format": "int32", "enum": [1, 2]}},
                        "metadata": {"$ref": "#/definitions/meta"},
                    },
                    "x-kubernetes-group-version-kind": [{"group": "", "version": "v1", "kind": "ConfigMap"}],
                }
            }
        });
        let bytes = encode(&doc);
        let decoded = Document::decode(bytes.as_slice()).expect("decodes");
        assert_eq!(decoded.swagger, "2.0");
        let defs = decoded
            .definitions
            .expect("definitions")
            .additional_properties;
        assert_eq!(defs[0].name, "io.k8s.api.core.v1.ConfigMap");
        let cm = defs[0].value.as_deref().expect("schema");
        assert_eq!(cm.required, vec!["data"]);
        assert_eq!(
            cm.type_.as_ref().map(|t| t.value.clone()),
            Some(vec!["object".to_string()])
        );
        assert_eq!(
            cm.vendor_extension[0].name,
            "x-kubernetes-group-version-kind"
        );
        let gvk: Value =
            serde_json::from_str(&cm.vendor_extension[0].value.as_ref().expect("value").yaml)
                .expect("yaml is json");
        assert_eq!(gvk[0]["kind"], "ConfigMap");
        let props = &cm
            .properties
            .as_ref()
            .expect("properties")
            .additional_properties;
        let names: Vec<&str> = props.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, vec!["data", "list", "metadata"]);
        let data = props[0].value.as_deref().expect("data");
        assert!(matches!(
            data.additional_properties.as_ref().and_then(|a| a.oneof.as_ref()),
            Some(Additional::Schema(s)) if s.type_.as_ref().is_some_and(|t| t.value == ["string"])
        ));
        let list = props[1].value.as_deref().expect("list");
        let item = &list.items.as_ref().expect("items").schema[0];
        assert_eq!((item.format.as_str(), item.enum_values.len()), ("int32", 2));
        assert_eq!(
            props[2].value.as_deref().expect("metadata").xref,
            "#/definitions/meta"
        );
    }
}
