//! The OpenAPI 3 document of the REST API, generated from the compiled protos (a decoded
//! `FileDescriptorSet`): one operation per REST binding, its parameters and body from the
//! binding's `google.api.http` rule, and schemas following protojson as the server renders it
//! (lowerCamel names, 64-bit integers as strings, enums by name, well-known types in their JSON
//! forms, empty fields omitted: nothing is `required`).

use std::collections::{BTreeMap, BTreeSet};

use buffa::Message as _;
use buffa_descriptor::generated::descriptor::field_descriptor_proto::{Label, Type};
use buffa_descriptor::generated::descriptor::{
    DescriptorProto, EnumDescriptorProto, FieldDescriptorProto, FileDescriptorSet, MethodDescriptorProto,
};
use serde_json::{Map, Value, json};

/// The field number of the `google.api.http` extension of `MethodOptions`.
const HTTP_EXTENSION: u32 = 72_295_728;

/// One REST binding as `build.rs` read it (the success status is a passlink comment).
pub struct Route<'a> {
    pub verb: &'a str,
    pub path: &'a str,
    /// `pkg.Service/Method`.
    pub rpc: &'a str,
    pub success: u16,
}

/// Messages and enums by full name (without the leading dot), and methods by `pkg.Service/Method`.
struct Index<'a> {
    messages: BTreeMap<String, &'a DescriptorProto>,
    enums: BTreeMap<String, &'a EnumDescriptorProto>,
    methods: BTreeMap<String, &'a MethodDescriptorProto>,
}

impl<'a> Index<'a> {
    fn new(set: &'a FileDescriptorSet) -> Self {
        let mut index = Index { messages: BTreeMap::new(), enums: BTreeMap::new(), methods: BTreeMap::new() };
        for file in &set.file {
            let package = file.package.clone().unwrap_or_default();
            for m in &file.message_type {
                index.add_message(&package, m);
            }
            for e in &file.enum_type {
                index.enums.insert(join(&package, e.name.as_deref().unwrap_or_default()), e);
            }
            for s in &file.service {
                let service = join(&package, s.name.as_deref().unwrap_or_default());
                for m in &s.method {
                    index.methods.insert(format!("{service}/{}", m.name.as_deref().unwrap_or_default()), m);
                }
            }
        }
        index
    }

    fn add_message(&mut self, scope: &str, m: &'a DescriptorProto) {
        let name = join(scope, m.name.as_deref().unwrap_or_default());
        for nested in &m.nested_type {
            self.add_message(&name, nested);
        }
        for e in &m.enum_type {
            self.enums.insert(join(&name, e.name.as_deref().unwrap_or_default()), e);
        }
        self.messages.insert(name, m);
    }

    fn message(&self, type_name: &str) -> &'a DescriptorProto {
        let name = type_name.trim_start_matches('.');
        self.messages.get(name).copied().unwrap_or_else(|| panic!("openapi: no message {name}"))
    }
}

fn join(scope: &str, name: &str) -> String {
    if scope.is_empty() { name.to_string() } else { format!("{scope}.{name}") }
}

/// The parts of a `google.api.http` rule the document needs.
#[derive(Default)]
struct HttpRule {
    body: String,
}

/// Reads the `google.api.http` option of a method from its options' unknown fields (the
/// extension is not compiled into the descriptor types): the `body` field (7) of `HttpRule`.
fn http_rule(method: &MethodDescriptorProto) -> HttpRule {
    let mut rule = HttpRule::default();
    let Some(options) = method.options.as_option() else { return rule };
    for field in options.__buffa_unknown_fields.iter() {
        if field.number != HTTP_EXTENSION {
            continue;
        }
        if let buffa::UnknownFieldData::LengthDelimited(bytes) = &field.data {
            let mut rest = bytes.as_slice();
            while let Some((number, wire, value)) = next_field(&mut rest) {
                if number == 7 && wire == 2 {
                    rule.body = String::from_utf8_lossy(value).into_owned();
                }
            }
        }
    }
    rule
}

/// The next (field number, wire type, length-delimited payload or empty) of a protobuf message.
fn next_field<'b>(buf: &mut &'b [u8]) -> Option<(u32, u8, &'b [u8])> {
    fn varint(buf: &mut &[u8]) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let (&b, rest) = buf.split_first()?;
            *buf = rest;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }
    if buf.is_empty() {
        return None;
    }
    let key = varint(buf)?;
    let (number, wire) = ((key >> 3) as u32, (key & 7) as u8);
    match wire {
        0 => varint(buf).map(|_| (number, wire, &[][..])),
        1 | 5 => {
            let n = if wire == 1 { 8 } else { 4 };
            let skipped = buf.get(n..)?;
            *buf = skipped;
            Some((number, wire, &[][..]))
        }
        2 => {
            let len = usize::try_from(varint(buf)?).ok()?;
            let value = buf.get(..len)?;
            *buf = &buf[len..];
            Some((number, wire, value))
        }
        _ => None,
    }
}

/// Schemas of the messages and enums referenced so far, by full name.
struct Schemas<'i, 'a> {
    index: &'i Index<'a>,
    done: BTreeMap<String, Value>,
}

impl Schemas<'_, '_> {
    /// A reference to the schema of a message or enum (well-known types inline), adding it and
    /// what it references to the components.
    fn reference(&mut self, type_name: &str, is_enum: bool) -> Value {
        let name = type_name.trim_start_matches('.');
        if let Some(wkt) = well_known(name) {
            return wkt;
        }
        if !self.done.contains_key(name) {
            self.done.insert(name.to_string(), Value::Null); // a recursive reference stops here
            let schema = if is_enum { self.enum_schema(name) } else { self.message_schema(name, &[]) };
            self.done.insert(name.to_string(), schema);
        }
        json!({"$ref": format!("#/components/schemas/{name}")})
    }

    fn enum_schema(&self, name: &str) -> Value {
        let e = self.index.enums.get(name).unwrap_or_else(|| panic!("openapi: no enum {name}"));
        let names: Vec<&str> = e.value.iter().filter_map(|v| v.name.as_deref()).collect();
        json!({"type": "string", "enum": names})
    }

    /// An object schema of a message's fields, except `skip` (proto names bound elsewhere).
    fn message_schema(&mut self, name: &str, skip: &[&str]) -> Value {
        let message = self.index.message(name);
        let mut properties = Map::new();
        for f in &message.field {
            let proto_name = f.name.as_deref().unwrap_or_default();
            if skip.contains(&proto_name) {
                continue;
            }
            properties.insert(json_name(f), self.field_schema(f));
        }
        let mut schema = json!({"type": "object", "properties": properties});
        // A oneof allows at most one of its fields (proto3 `optional` fields are synthetic oneofs
        // of one field): said in the description, not as a schema constraint.
        let mut groups: BTreeMap<i32, Vec<String>> = BTreeMap::new();
        for f in message.field.iter().filter(|f| f.proto3_optional != Some(true)) {
            if let Some(i) = f.oneof_index {
                groups.entry(i).or_default().push(json_name(f));
            }
        }
        let said: Vec<String> = groups
            .iter()
            .map(|(i, names)| {
                let group = usize::try_from(*i).ok().and_then(|i| message.oneof_decl.get(i));
                let group = group.and_then(|o| o.name.as_deref()).unwrap_or_default();
                format!("at most one of {} (oneof {group})", names.join(", "))
            })
            .collect();
        if !said.is_empty() {
            schema["description"] = format!("Set {}.", said.join("; ")).into();
        }
        schema
    }

    fn field_schema(&mut self, f: &FieldDescriptorProto) -> Value {
        let type_name = f.type_name.as_deref().unwrap_or_default();
        if f.label == Some(Label::LABEL_REPEATED) && f.r#type == Some(Type::TYPE_MESSAGE) {
            let entry = self.index.message(type_name);
            if entry.options.as_option().and_then(|o| o.map_entry) == Some(true) {
                let value = entry.field.iter().find(|v| v.number == Some(2)).map(|v| self.single(v));
                return json!({"type": "object", "additionalProperties": value.unwrap_or(json!({}))});
            }
        }
        let single = self.single(f);
        if f.label == Some(Label::LABEL_REPEATED) {
            json!({"type": "array", "items": single})
        } else {
            single
        }
    }

    /// The schema of one value of a field (an element, for a repeated field).
    fn single(&mut self, f: &FieldDescriptorProto) -> Value {
        let type_name = f.type_name.as_deref().unwrap_or_default();
        match f.r#type.unwrap_or(Type::TYPE_STRING) {
            Type::TYPE_MESSAGE | Type::TYPE_GROUP => self.reference(type_name, false),
            Type::TYPE_ENUM => self.reference(type_name, true),
            t => scalar(t),
        }
    }
}

/// The JSON form of a scalar field (protojson: 64-bit integers as decimal strings, bytes base64).
fn scalar(t: Type) -> Value {
    match t {
        Type::TYPE_DOUBLE => json!({"type": "number", "format": "double"}),
        Type::TYPE_FLOAT => json!({"type": "number", "format": "float"}),
        Type::TYPE_INT64 | Type::TYPE_SINT64 | Type::TYPE_SFIXED64 => {
            json!({"type": "string", "format": "int64", "pattern": "^-?[0-9]+$"})
        }
        Type::TYPE_UINT64 | Type::TYPE_FIXED64 => {
            json!({"type": "string", "format": "uint64", "pattern": "^[0-9]+$"})
        }
        Type::TYPE_INT32 | Type::TYPE_SINT32 | Type::TYPE_SFIXED32 => {
            json!({"type": "integer", "format": "int32", "minimum": i32::MIN, "maximum": i32::MAX})
        }
        Type::TYPE_UINT32 | Type::TYPE_FIXED32 => {
            json!({"type": "integer", "format": "int64", "minimum": 0, "maximum": u32::MAX})
        }
        Type::TYPE_BOOL => json!({"type": "boolean"}),
        Type::TYPE_BYTES => json!({"type": "string", "format": "byte"}),
        _ => json!({"type": "string"}),
    }
}

/// The JSON forms of the well-known types (protojson), inline.
fn well_known(name: &str) -> Option<Value> {
    Some(match name {
        "google.protobuf.Timestamp" => json!({"type": "string", "format": "date-time"}),
        "google.protobuf.Duration" => {
            json!({"type": "string", "pattern": "^-?[0-9]+(\\.[0-9]{1,9})?s$", "example": "1.5s"})
        }
        "google.protobuf.Struct" => json!({"type": "object", "additionalProperties": true}),
        "google.protobuf.Value" => json!({}),
        "google.protobuf.ListValue" => json!({"type": "array", "items": {}}),
        "google.protobuf.Empty" => json!({"type": "object"}),
        "google.protobuf.FieldMask" => json!({"type": "string"}),
        "google.protobuf.Any" => json!({
            "type": "object",
            "properties": {"@type": {"type": "string"}},
            "additionalProperties": true
        }),
        "google.protobuf.StringValue" => json!({"type": "string"}),
        "google.protobuf.BytesValue" => json!({"type": "string", "format": "byte"}),
        "google.protobuf.BoolValue" => json!({"type": "boolean"}),
        "google.protobuf.Int32Value" => scalar(Type::TYPE_INT32),
        "google.protobuf.UInt32Value" => scalar(Type::TYPE_UINT32),
        "google.protobuf.Int64Value" => scalar(Type::TYPE_INT64),
        "google.protobuf.UInt64Value" => scalar(Type::TYPE_UINT64),
        "google.protobuf.FloatValue" => scalar(Type::TYPE_FLOAT),
        "google.protobuf.DoubleValue" => scalar(Type::TYPE_DOUBLE),
        _ => return None,
    })
}

/// protojson's name of a field: protoc's `json_name` (lowerCamel).
fn json_name(f: &FieldDescriptorProto) -> String {
    f.json_name.clone().unwrap_or_else(|| f.name.clone().unwrap_or_default())
}

/// Query parameters of a binding without a body, as grpc-gateway reads them: every field not
/// bound by the path, nested messages as dotted paths; maps and repeated messages are not
/// settable from a query string.
fn query_parameters(
    schemas: &mut Schemas<'_, '_>,
    message: &DescriptorProto,
    prefix: &str,
    skip: &[&str],
    seen: &mut Vec<String>,
    out: &mut Vec<Value>,
) {
    for f in &message.field {
        let proto_name = f.name.as_deref().unwrap_or_default();
        if prefix.is_empty() && skip.contains(&proto_name) {
            continue;
        }
        let name = format!("{prefix}{}", json_name(f));
        let type_name = f.type_name.as_deref().unwrap_or_default().trim_start_matches('.');
        let repeated = f.label == Some(Label::LABEL_REPEATED);
        if f.r#type == Some(Type::TYPE_MESSAGE) && well_known(type_name).is_none() {
            if repeated || seen.iter().any(|s| s == type_name) {
                continue;
            }
            seen.push(type_name.to_string());
            let nested = schemas.index.message(type_name);
            query_parameters(schemas, nested, &format!("{name}."), &[], seen, out);
            seen.pop();
            continue;
        }
        let schema = schemas.field_schema(f);
        let mut p = json!({"name": name, "in": "query", "required": false, "schema": schema});
        if repeated {
            p["style"] = "form".into();
            p["explode"] = true.into();
        }
        out.push(p);
    }
}

/// The document, as JSON text.
pub fn document(descriptor_set: &[u8], routes: &[Route<'_>]) -> String {
    let set = FileDescriptorSet::decode_from_slice(descriptor_set).expect("decode the descriptor set");
    let index = Index::new(&set);
    let mut schemas = Schemas { index: &index, done: BTreeMap::new() };
    let mut paths: BTreeMap<&str, Map<String, Value>> = BTreeMap::new();
    let mut operation_ids = BTreeSet::new();
    for route in routes {
        let method =
            index.methods.get(route.rpc).unwrap_or_else(|| panic!("openapi: no method {}", route.rpc));
        let rule = http_rule(method);
        let input = method.input_type.as_deref().unwrap_or_default().trim_start_matches('.');
        let output = method.output_type.as_deref().unwrap_or_default();
        let path_params: Vec<&str> =
            route.path.split('{').skip(1).filter_map(|s| s.split_once('}').map(|(name, _)| name)).collect();
        let mut parameters: Vec<Value> = path_params
            .iter()
            .map(|p| json!({"name": p, "in": "path", "required": true, "schema": {"type": "string", "minLength": 1}}))
            .collect();
        let mut operation = Map::new();
        let (service, method_name) = route.rpc.split_once('/').unwrap_or((route.rpc, ""));
        let mut id = format!("{service}.{method_name}");
        let mut n = 2;
        while !operation_ids.insert(id.clone()) {
            id = format!("{service}.{method_name}_{n}");
            n += 1;
        }
        operation.insert("operationId".into(), id.into());
        operation.insert("tags".into(), json!([service]));
        operation.insert("x-rpc".into(), route.rpc.into());
        match rule.body.as_str() {
            "" => {
                let message = index.message(input);
                query_parameters(
                    &mut schemas,
                    message,
                    "",
                    &path_params,
                    &mut vec![input.to_string()],
                    &mut parameters,
                );
            }
            "*" => {
                let body = schemas.message_schema(input, &path_params);
                operation.insert(
                    "requestBody".into(),
                    json!({"required": false, "content": {"application/json": {"schema": body}}}),
                );
            }
            field => panic!("openapi: {}: only body \"*\" or none is supported, not {field:?}", route.rpc),
        }
        if !parameters.is_empty() {
            operation.insert("parameters".into(), parameters.into());
        }
        let response = schemas.reference(output, false);
        operation.insert(
            "responses".into(),
            json!({
                route.success.to_string(): {
                    "description": "the RPC's response message (protojson; empty fields are omitted)",
                    "content": {"application/json": {"schema": response}}
                },
                "4XX": {"$ref": "#/components/responses/Error"},
                "5XX": {"$ref": "#/components/responses/Error"}
            }),
        );
        paths.entry(route.path).or_default().insert(route.verb.to_lowercase(), operation.into());
    }
    let mut components: Map<String, Value> = schemas.done.into_iter().collect();
    components.insert(
        "google.rpc.Status".into(),
        json!({
            "type": "object",
            "description": "grpc-gateway's error body: the gRPC status code, a message ending in the error id, and ZITADEL's error detail",
            "properties": {
                "code": {"type": "integer", "format": "int32"},
                "message": {"type": "string"},
                "details": {"type": "array", "items": {
                    "type": "object",
                    "properties": {
                        "@type": {"type": "string"},
                        "id": {"type": "string"},
                        "message": {"type": "string"}
                    },
                    "required": ["@type"],
                    "additionalProperties": true
                }}
            },
            "required": ["code"]
        }),
    );
    let doc = json!({
        "openapi": "3.0.3",
        "info": {
            "title": "passlink REST API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "ZITADEL's REST bindings (grpc-gateway paths, protojson) as passlink serves them; generated from the protos at build time."
        },
        "paths": paths,
        "components": {
            "schemas": components,
            "responses": {
                "Error": {
                    "description": "an error: google.rpc.Status as JSON",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/google.rpc.Status"}}}
                }
            },
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "a personal access token or an OAuth access token"}
            }
        },
        "security": [{"bearer": []}]
    });
    serde_json::to_string_pretty(&doc).expect("serialize the OpenAPI document")
}
