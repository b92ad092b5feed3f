//! Generates the protobuf messages and service traits (connectrpc + buffa) from `proto/`, and the
//! REST route table from the `google.api.http` options in the same files.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

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

/// One REST binding: (http method, path template, "pkg.Service/Method", success status).
fn http_bindings(file: &str, text: &str) -> Vec<(String, String, String, u16)> {
    let mut out = Vec::new();
    let mut package = String::new();
    let mut service = String::new();
    let mut rpc: Option<String> = None;
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
            rpc = Some(name);
            success = pending_success;
            pending_success = 200;
        } else if let Some(rpc_name) = &rpc {
            for verb in ["get", "post", "put", "patch", "delete"] {
                if let Some(rest) = line.strip_prefix(&format!("{verb}:")) {
                    let path = rest.trim().trim_matches('"').to_string();
                    out.push((verb.to_uppercase(), path, format!("{package}.{service}/{rpc_name}"), success));
                }
            }
            if line == "}" {
                rpc = None;
            }
        }
    }
    out
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
    // The descriptor set (with source info) the wire-conformance check compares with ZITADEL's.
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

    let mut routes = String::from(
        "/// REST bindings read from the protos' `google.api.http` options at build time:\n\
         /// (HTTP method, path template, RPC path, success status).\n\
         pub const REST_ROUTES: &[(&str, &str, &str, u16)] = &[\n",
    );
    for f in &files {
        let text = std::fs::read_to_string(f).expect("read proto");
        for (verb, path, rpc, status) in http_bindings(&f.display().to_string(), &text) {
            let _ = writeln!(routes, "    ({verb:?}, {path:?}, {rpc:?}, {status}),");
        }
    }
    routes.push_str("];\n");
    std::fs::write(out.join("rest_routes.rs"), routes).expect("write routes");
}
