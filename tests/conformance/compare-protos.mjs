#!/usr/bin/env node
// Conformance check: our protos vs. ZITADEL's published descriptors (@zitadel/proto).
//
// Usage: node compare-protos.mjs <descriptor-set.pb>
//   The descriptor set is produced with
//     protoc -I proto -I <protoc include> --include_imports --include_source_info \
//            --descriptor_set_out=<descriptor-set.pb> $(find proto -name '*.proto')
//   (--include_source_info is optional; it enables the `passlink:http-success` check.)
//
// For every message/enum/service in OUR set (except google/protobuf/*, grpc/*, passlink/*), the same-named
// element in ZITADEL's registry is looked up and compared: file + package, every field
// (name, number, type, type name, label, proto3 optional, oneof, json name) in both
// directions, reserved ranges/names, enum values, and for each of our methods: input/output
// types, streaming, google.api.http rule. `// passlink:http-success NNN` comments are
// compared with ZITADEL's zitadel.protoc_gen_zitadel.v2 http_response.success_code
// (default 200). Prints every difference; exits 1 if there is any.
//
// Covered packages include zitadel/oidc/v2 and zitadel/filter/v2 (both in @zitadel/proto 1.3.1,
// and must be present in the set, see MUST_COMPARE). zitadel/project/v2 and
// zitadel/application/v2 are NOT in @zitadel/proto 1.3.1 (it only ships their v2beta
// predecessors), so those files are skipped (see UNPUBLISHED); they were vendored from ZITADEL's
// own protos. A few newer elements of published files are listed in NEWER_THAN_PUBLISHED.
//
// @zitadel/proto and @bufbuild/protobuf are resolved from the node_modules next to this script.
import fs from "node:fs";
import { createRegistry, createFileRegistry, fromBinary, hasExtension, getExtension } from "@bufbuild/protobuf";
import { FileDescriptorSetSchema, FieldDescriptorProto_Type as T, FieldDescriptorProto_Label as L } from "@bufbuild/protobuf/wkt";

const pbPath = process.argv[2];
if (!pbPath) { console.error("usage: compare-protos.mjs <descriptor-set.pb>"); process.exit(2); }

const ours = createFileRegistry(fromBinary(FileDescriptorSetSchema, fs.readFileSync(pbPath)));
const { http } = await import("@zitadel/proto/google/api/annotations_pb.js");
const { options: zoptions } = await import("@zitadel/proto/zitadel/protoc_gen_zitadel/v2/options_pb.js");

// Not ZITADEL's: the well-known types, gRPC's own services (health, reflection) and passlink's
// own packages (passlink/*), which extend the API beside ZITADEL's and have no counterpart there.
const skipFile = (name) => ["google/protobuf/", "grpc/", "passlink/"].some((p) => name.startsWith(p));
const diffs = [];
const diff = (where, what) => diffs.push(`${where}: ${what}`);

// Files that must be in our set and compared (a vendored package silently missing is a failure).
const MUST_COMPARE = [
  "zitadel/oidc/v2/oidc_service.proto",
  "zitadel/oidc/v2/authorization.proto",
  "zitadel/filter/v2/filter.proto",
];
// Packages ZITADEL serves but @zitadel/proto 1.3.1 does not contain (only zitadel/project/v2beta
// and zitadel/app/v2beta are published): their files cannot be compared here. If a package version
// that has them is installed, they are compared like every other file.
const UNPUBLISHED = ["zitadel/project/v2/", "zitadel/application/v2/"];
const unpublished = new Set();
// Elements of published files that ZITADEL added after @zitadel/proto 1.3.1; still compared if
// the installed package has them.
const NEWER_THAN_PUBLISHED = {
  "zitadel.filter.v2.InIDsFilter": "used by zitadel.project.v2 filters",
  "zitadel.filter.v2.ByteFilterMethod": "part of ZITADEL's filter/v2 file",
};

// ---- load ZITADEL's descriptors for every file we declare --------------------------------
const theirFiles = new Map();
const addTheirs = (f) => { if (theirFiles.has(f.name)) return; theirFiles.set(f.name, f); f.dependencies.forEach(addTheirs); };
addTheirs((await import("@zitadel/proto/google/api/annotations_pb.js")).file_google_api_annotations);
for (const f of ours.files) {
  if (skipFile(f.name)) continue;
  let mod;
  try { mod = await import(`@zitadel/proto/${f.name}_pb.js`); }
  catch {
    if (UNPUBLISHED.some((p) => f.name.startsWith(p))) unpublished.add(f.name);
    else diff(f.name + ".proto", "no such file in @zitadel/proto");
    continue;
  }
  for (const [k, v] of Object.entries(mod)) if (k.startsWith("file_")) addTheirs(v);
}
const theirs = createRegistry(...theirFiles.values());

// ---- helpers -----------------------------------------------------------------------------
const fieldSig = (f) => ({
  name: f.name,
  type: T[f.proto.type],
  typeName: f.proto.typeName ? f.proto.typeName.replace(/^\./, "") : "",
  label: L[f.proto.label],
  proto3Optional: !!f.proto.proto3Optional,
  oneof: f.oneof ? f.oneof.name : "",
  jsonName: f.jsonName,
});
const httpOf = (m) => {
  const o = m.proto.options;
  if (!o || !hasExtension(o, http)) return null;
  const norm = (r) => ({ selector: r.selector, pattern: r.pattern.case === "custom"
      ? { custom: { kind: r.pattern.value.kind, path: r.pattern.value.path } } : { [r.pattern.case]: r.pattern.value },
    body: r.body, responseBody: r.responseBody, additionalBindings: r.additionalBindings.map(norm) });
  return norm(getExtension(o, http));
};
// Deliberate departures from ZITADEL's REST success codes, each with its reason.
const DELIBERATE_SUCCESS = {
  // ZITADEL's descriptors say 200 for v2 (201 for v2beta); passlink's contract (issue 2,
  // reference/zitadel-contract.md section 10) says 201 for both. REST clients accept any 2xx.
  "zitadel.user.v2.UserService.AddHumanUser": 201,
};

const successOf = (m) => {
  const o = m.proto.options;
  const z = o && hasExtension(o, zoptions) ? getExtension(o, zoptions) : null;
  return z?.httpResponse?.successCode || 200;
};
// leading comments of our methods, keyed "pkg.Service.Method"
const ourComments = new Map();
let haveSourceInfo = false;
for (const f of ours.files) {
  const locs = f.proto.sourceCodeInfo?.location ?? [];
  if (locs.length) haveSourceInfo = true;
  for (const loc of locs) {
    const p = loc.path;
    if (p.length === 4 && p[0] === 6 && p[2] === 2) {
      const s = f.services[p[1]], m = s?.methods[p[3]];
      if (m) ourComments.set(`${s.typeName}.${m.name}`, loc.leadingComments ?? "");
    }
  }
}

// ---- comparisons -------------------------------------------------------------------------
function checkPlacement(kind, o, t) {
  if (o.file.name !== t.file.name) diff(o.typeName, `${kind} lives in ${o.file.name}.proto, ZITADEL has it in ${t.file.name}.proto`);
  if (o.file.proto.package !== t.file.proto.package) diff(o.typeName, `package ${o.file.proto.package} != ${t.file.proto.package}`);
}
function checkEnum(o) {
  const t = theirs.getEnum(o.typeName);
  if (!t && o.typeName in NEWER_THAN_PUBLISHED) return;
  if (!t) return diff(o.typeName, "enum not found in ZITADEL");
  checkPlacement("enum", o, t);
  const ov = new Map(o.values.map((v) => [v.name, v.number]));
  const tv = new Map(t.values.map((v) => [v.name, v.number]));
  for (const [n, num] of ov) if (!tv.has(n)) diff(o.typeName, `extra value ${n}=${num}`); else if (tv.get(n) !== num) diff(o.typeName, `value ${n}: ${num} != ${tv.get(n)}`);
  for (const [n, num] of tv) if (!ov.has(n)) diff(o.typeName, `missing value ${n}=${num}`);
}
function checkMessage(o) {
  const t = theirs.getMessage(o.typeName);
  if (!t && o.typeName in NEWER_THAN_PUBLISHED) return;
  if (!t) return diff(o.typeName, "message not found in ZITADEL");
  checkPlacement("message", o, t);
  const of = new Map(o.fields.map((f) => [f.number, fieldSig(f)]));
  const tf = new Map(t.fields.map((f) => [f.number, fieldSig(f)]));
  for (const [num, a] of of) {
    const b = tf.get(num);
    if (!b) { diff(o.typeName, `extra field ${a.name}=${num}`); continue; }
    for (const k of Object.keys(a)) if (a[k] !== b[k]) diff(`${o.typeName}.${a.name}`, `${k}: ours=${JSON.stringify(a[k])} zitadel=${JSON.stringify(b[k])}`);
  }
  for (const [num, b] of tf) if (!of.has(num)) diff(o.typeName, `missing field ${b.name}=${num} (${b.label} ${b.typeName || b.type})`);
  const rr = (d) => d.proto.reservedRange.map((r) => `${r.start}-${r.end}`).sort().join(",");
  const rn = (d) => [...d.proto.reservedName].sort().join(",");
  if (rr(o) !== rr(t)) diff(o.typeName, `reserved ranges ours=[${rr(o)}] zitadel=[${rr(t)}]`);
  if (rn(o) !== rn(t)) diff(o.typeName, `reserved names ours=[${rn(o)}] zitadel=[${rn(t)}]`);
  o.nestedMessages.forEach(checkMessage);
  o.nestedEnums.forEach(checkEnum);
}
function checkService(o) {
  const t = theirs.getService(o.typeName);
  if (!t) return diff(o.typeName, "service not found in ZITADEL");
  checkPlacement("service", o, t);
  for (const m of o.methods) {
    const where = `${o.typeName}/${m.name}`;
    const tm = t.methods.find((x) => x.name === m.name);
    if (!tm) { diff(where, "method not found in ZITADEL"); continue; }
    if (m.input.typeName !== tm.input.typeName) diff(where, `input ${m.input.typeName} != ${tm.input.typeName}`);
    if (m.output.typeName !== tm.output.typeName) diff(where, `output ${m.output.typeName} != ${tm.output.typeName}`);
    if (m.methodKind !== tm.methodKind) diff(where, `kind ${m.methodKind} != ${tm.methodKind}`);
    const oh = JSON.stringify(httpOf(m)), th = JSON.stringify(httpOf(tm));
    if (oh !== th) diff(where, `google.api.http ours=${oh} zitadel=${th}`);
    if (haveSourceInfo) {
      const c = ourComments.get(`${o.typeName}.${m.name}`) ?? "";
      const mm = c.match(/passlink:http-success\s+(\d+)/);
      const ours = mm ? Number(mm[1]) : 200;
      const expected = DELIBERATE_SUCCESS[`${o.typeName}.${m.name}`] ?? successOf(tm);
      if (ours !== expected) diff(where, `http success code ours=${ours} expected=${expected} (zitadel=${successOf(tm)})`);
    }
  }
}

let counts = { files: 0, messages: 0, enums: 0, services: 0, methods: 0 };
for (const name of MUST_COMPARE) if (!ours.getFile(name)) diff(name, "not in our descriptor set");
for (const f of ours.files) {
  if (skipFile(f.name) || unpublished.has(f.name)) continue;
  counts.files++;
  const tfile = theirs.getFile(f.name);
  if (tfile && tfile.proto.package !== f.proto.package) diff(f.name + ".proto", `package ${f.proto.package} != ${tfile.proto.package}`);
  const countMsgs = (m) => 1 + m.nestedMessages.reduce((a, n) => a + countMsgs(n), 0);
  f.messages.forEach((m) => { counts.messages += countMsgs(m); checkMessage(m); });
  f.enums.forEach((e) => { counts.enums++; checkEnum(e); });
  f.services.forEach((s) => { counts.services++; counts.methods += s.methods.length; checkService(s); });
}

console.log(`compared ${counts.files} files, ${counts.messages} messages, ${counts.enums} top-level enums, ${counts.services} services, ${counts.methods} methods`);
if (unpublished.size) console.log(`skipped ${unpublished.size} files not in @zitadel/proto: ${[...unpublished].join(", ")}`);
if (!haveSourceInfo) console.log("note: descriptor set has no source info; passlink:http-success comments not checked (use --include_source_info)");
for (const d of diffs) console.log("DIFF " + d);
console.log(`${diffs.length} difference(s)`);
process.exit(diffs.length ? 1 : 0);
