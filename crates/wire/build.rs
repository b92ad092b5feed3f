//! Generates the protobuf messages and service traits (connectrpc + buffa) from `proto/`, and from
//! the `google.api.http` options in the same files the REST route table and, for each bound
//! request message, how its path parameters are set on it (`PathParams`); from the compiled
//! descriptors and the same bindings the OpenAPI document of the REST API (`build/openapi.rs`).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

#[path = "build/openapi.rs"]
mod openapi;

fn proto_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let mut entries: Vec<_> = entries.flatten().map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            proto_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "proto") {
            out.push(p);
        }
    }
}

/// One REST binding of an RPC.
struct Binding {
    verb: String,
    /// The path template, e.g. `/v2/users/{user_id}/passkeys`.
    path: String,
    /// `pkg.Service/Method`.
    rpc: String,
    /// The request message as a Rust path from the crate root, e.g. `zitadel::user::v2::AddKeyRequest`.
    request: String,
    success: u16,
}

impl Binding {
    /// The path parameters of the template (`{user_id}` → `user_id`): plain field names only.
    fn params(&self) -> Vec<&str> {
        self.path
            .split('{')
            .skip(1)
            .filter_map(|s| s.split_once('}').map(|(name, _)| name))
            .inspect(|name| {
                assert!(
                    !name.is_empty() && name.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                    "{}: only plain field names are supported as path parameters, not {name:?}",
                    self.path
                );
            })
            .collect()
    }
}

/// The Rust path of a message named in an `rpc` line of `package`.
fn rust_type(package: &str, name: &str) -> String {
    let full = if name.contains('.') {
        name.trim_start_matches('.').to_string()
    } else {
        format!("{package}.{name}")
    };
    full.replace('.', "::")
}

/// The REST bindings of a proto file, and the request message of every RPC in it.
fn http_bindings(file: &str, text: &str) -> (Vec<Binding>, Vec<String>) {
    let mut out = Vec::new();
    let mut requests = Vec::new();
    let mut package = String::new();
    let mut service = String::new();
    let mut rpc: Option<(String, String)> = None;
    let mut success = 200u16;
    let mut pending_success = 200u16;
    for line in text.lines().map(str::trim) {
        if let Some(p) = line.strip_prefix("package ") {
            package = p.trim_end_matches(';').trim().to_string();
        } else if let Some(s) = line.strip_prefix("service ") {
            service = s.trim_end_matches('{').trim().to_string();
        } else if let Some(code) = line.strip_prefix("// passlink:http-success ") {
            pending_success = code.trim().parse().unwrap_or_else(|_| panic!("{file}: bad success code"));
        } else if let Some(r) = line.strip_prefix("rpc ") {
            let name = r.split(['(', ' ']).next().unwrap_or_default().to_string();
            let request = r
                .split_once('(')
                .and_then(|(_, rest)| rest.split_once(')'))
                .map(|(req, _)| req.trim().trim_start_matches("stream ").trim().to_string())
                .unwrap_or_else(|| panic!("{file}: cannot read the request type of {name}"));
            requests.push(rust_type(&package, &request));
            rpc = Some((name, rust_type(&package, &request)));
            success = pending_success;
            pending_success = 200;
        } else if let Some((rpc_name, request)) = &rpc {
            for verb in ["get", "post", "put", "patch", "delete"] {
                if let Some(rest) = line.strip_prefix(&format!("{verb}:")) {
                    out.push(Binding {
                        verb: verb.to_uppercase(),
                        path: rest.trim().trim_matches('"').to_string(),
                        rpc: format!("{package}.{service}/{rpc_name}"),
                        request: request.clone(),
                        success,
                    });
                }
            }
            if line == "}" {
                rpc = None;
            }
        }
    }
    (out, requests)
}

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let mut files = Vec::new();
    proto_files(&root, &mut files);
    println!("cargo:rerun-if-changed={}", root.display());

    let protoc = protoc_bin_vendored::protoc_bin_path().expect("vendored protoc");
    // SAFETY: build scripts are single-threaded; connectrpc-build reads PROTOC from the environment.
    unsafe { std::env::set_var("PROTOC", &protoc) };
    let include = protoc_bin_vendored::include_path().expect("vendored protoc includes");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
    // The descriptor set (with imports and source info): served by gRPC reflection, and compared
    // with ZITADEL's by the wire-conformance check.
    let status = std::process::Command::new(&protoc)
        .arg("-I")
        .arg(&root)
        .arg("-I")
        .arg(&include)
        .arg("--include_imports")
        .arg("--include_source_info")
        .arg(format!("--descriptor_set_out={}", out.join("passlink.pb").display()))
        .args(&files)
        .status()
        .expect("run protoc");
    assert!(status.success(), "protoc failed");
    connectrpc_build::Config::new()
        .files(&files)
        .includes(&[root.clone(), include])
        .include_file("_connectrpc.rs")
        .compile()
        .expect("protobuf code generation");

    let mut bindings = Vec::new();
    let mut requests = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).expect("read proto");
        let (b, r) = http_bindings(&f.display().to_string(), &text);
        bindings.extend(b);
        requests.extend(r);
    }
    let mut routes = String::from(
        "/// REST bindings read from the protos' `google.api.http` options at build time:\n\
         /// (HTTP method, path template, RPC path, success status).\n\
         pub const REST_ROUTES: &[(&str, &str, &str, u16)] = &[\n",
    );
    for b in &bindings {
        let _ = writeln!(routes, "    ({:?}, {:?}, {:?}, {}),", b.verb, b.path, b.rpc, b.success);
    }
    routes.push_str("];\n");
    // One `PathParams` impl per request message (of every RPC, so the server can treat all RPCs
    // alike): each path parameter of its routes names a string field of the same name.
    let mut params: std::collections::BTreeMap<&str, std::collections::BTreeSet<&str>> =
        requests.iter().map(|r| (r.as_str(), Default::default())).collect();
    for b in &bindings {
        params.entry(b.request.as_str()).or_default().extend(b.params());
    }
    for (request, names) in params {
        let _ = writeln!(routes, "\nimpl crate::PathParams for crate::{request} {{");
        if names.is_empty() {
            let _ = writeln!(routes, "    fn set_path_param(&mut self, _: &str, _: String) {{}}\n}}");
            continue;
        }
        let _ = writeln!(
            routes,
            "    fn set_path_param(&mut self, name: &str, value: String) {{\n        match name {{"
        );
        for n in names {
            let _ = writeln!(routes, "            {n:?} => self.{n} = value,");
        }
        let _ = writeln!(routes, "            _ => {{}}\n        }}\n    }}\n}}");
    }
    std::fs::write(out.join("rest_routes.rs"), routes).expect("write routes");

    let descriptors = std::fs::read(out.join("passlink.pb")).expect("read the descriptor set");
    let routes: Vec<openapi::Route<'_>> = bindings
        .iter()
        .map(|b| openapi::Route { verb: &b.verb, path: &b.path, rpc: &b.rpc, success: b.success })
        .collect();
    std::fs::write(out.join("openapi.json"), openapi::document(&descriptors, &routes))
        .expect("write openapi.json");
}
