//! gRPC server reflection (`grpc.reflection.v1` and `grpc.reflection.v1alpha`, the same service
//! under two package names): what grpcurl, buf curl and grpcio-reflection ask to list and call
//! passlink's services without proto files.
//!
//! [`Descriptors`] indexes the descriptor set compiled from `proto/` at build time (with its
//! imports): every file by name, every message, enum and extension by full name, and the served
//! services with their methods (a service passlink does not serve is not exposed, its files are).
//! One request gets one response on the stream, in order; a file comes with those of its
//! transitive imports not yet sent on this stream (the file asked for is always sent). Unknown
//! names answer an `error_response` with NOT_FOUND and the stream goes on.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use buffa::Message;
use buffa_descriptor::generated::descriptor::{DescriptorProto, FieldDescriptorProto, FileDescriptorSet};
use futures::StreamExt;
use passlink_wire::grpc::reflection::{v1, v1alpha};

/// gRPC status codes an `error_response` carries.
const NOT_FOUND: i32 = 5;
const INVALID_ARGUMENT: i32 = 3;

/// The compiled protos, indexed for reflection.
pub struct Descriptors {
    /// File name → its serialized `FileDescriptorProto` and the files it imports.
    files: HashMap<String, File>,
    /// Full name (no leading dot) of a message, enum, served service or method, or extension →
    /// the file defining it.
    symbols: HashMap<String, String>,
    /// Full names of the messages (the types extensions may extend).
    messages: HashSet<String>,
    /// (extended message, field number) → the file defining the extension.
    extensions: HashMap<(String, i32), String>,
    /// The services listed, sorted.
    services: Vec<String>,
}

struct File {
    encoded: Vec<u8>,
    dependencies: Vec<String>,
}

/// A reflection request, whichever version it came in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Query {
    FileByFilename(String),
    FileContainingSymbol(String),
    FileContainingExtension {
        containing_type: String,
        number: i32,
    },
    AllExtensionNumbersOfType(String),
    ListServices,
    /// A request without any of the above.
    Empty,
}

/// The answer to a [`Query`], whichever version it goes out in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Serialized `FileDescriptorProto`s.
    Files(Vec<Vec<u8>>),
    ExtensionNumbers {
        base_type: String,
        numbers: Vec<i32>,
    },
    Services(Vec<String>),
    Error {
        code: i32,
        message: String,
    },
}

fn join(scope: &str, name: Option<&String>) -> String {
    let name = name.map(String::as_str).unwrap_or_default();
    if scope.is_empty() { name.to_string() } else { format!("{scope}.{name}") }
}

impl Descriptors {
    /// Index `set` (an encoded `FileDescriptorSet`) and expose the `served` services; each of them
    /// must be defined in it.
    pub fn load(set: &[u8], served: &[String]) -> Result<Descriptors, String> {
        let set = FileDescriptorSet::decode_from_slice(set).map_err(|e| format!("descriptor set: {e}"))?;
        let served: HashSet<&str> = served.iter().map(String::as_str).collect();
        let mut index = Descriptors {
            files: HashMap::new(),
            symbols: HashMap::new(),
            messages: HashSet::new(),
            extensions: HashMap::new(),
            services: Vec::new(),
        };
        for file in &set.file {
            let name = file.name.clone().unwrap_or_default();
            let package = file.package.clone().unwrap_or_default();
            for message in &file.message_type {
                index.add_message(&package, message, &name);
            }
            for e in &file.enum_type {
                index.symbols.insert(join(&package, e.name.as_ref()), name.clone());
            }
            for x in &file.extension {
                index.add_extension(&package, x, &name);
            }
            for service in &file.service {
                let full = join(&package, service.name.as_ref());
                if !served.contains(full.as_str()) {
                    continue;
                }
                for method in &service.method {
                    index.symbols.insert(join(&full, method.name.as_ref()), name.clone());
                }
                index.symbols.insert(full.clone(), name.clone());
                index.services.push(full);
            }
            let file_entry = File { encoded: file.encode_to_vec(), dependencies: file.dependency.clone() };
            index.files.insert(name, file_entry);
        }
        index.services.sort();
        if let Some(missing) = served.iter().find(|s| !index.services.iter().any(|f| f == *s)) {
            return Err(format!("reflection: the served service {missing} is not in the compiled protos"));
        }
        Ok(index)
    }

    fn add_message(&mut self, scope: &str, message: &DescriptorProto, file: &str) {
        let full = join(scope, message.name.as_ref());
        for nested in &message.nested_type {
            self.add_message(&full, nested, file);
        }
        for e in &message.enum_type {
            self.symbols.insert(join(&full, e.name.as_ref()), file.to_string());
        }
        for x in &message.extension {
            self.add_extension(&full, x, file);
        }
        self.symbols.insert(full.clone(), file.to_string());
        self.messages.insert(full);
    }

    fn add_extension(&mut self, scope: &str, field: &FieldDescriptorProto, file: &str) {
        self.symbols.insert(join(scope, field.name.as_ref()), file.to_string());
        let extendee = field.extendee.as_deref().unwrap_or_default().trim_start_matches('.').to_string();
        self.extensions.insert((extendee, field.number.unwrap_or_default()), file.to_string());
    }

    /// The services listed by reflection.
    pub fn services(&self) -> &[String] {
        &self.services
    }

    /// Answer `query`; `sent` holds the files already sent on this stream.
    pub fn answer(&self, query: &Query, sent: &mut HashSet<String>) -> Answer {
        let not_found = |message: String| Answer::Error { code: NOT_FOUND, message };
        match query {
            Query::ListServices => Answer::Services(self.services.clone()),
            Query::FileByFilename(name) => match self.files.contains_key(name) {
                true => self.with_imports(name, sent),
                false => not_found(format!("file not found: {name}")),
            },
            Query::FileContainingSymbol(symbol) => match self.symbols.get(symbol.trim_start_matches('.')) {
                Some(file) => self.with_imports(file, sent),
                None => not_found(format!("symbol not found: {symbol}")),
            },
            Query::FileContainingExtension { containing_type, number } => {
                let key = (containing_type.trim_start_matches('.').to_string(), *number);
                match self.extensions.get(&key) {
                    Some(file) => self.with_imports(file, sent),
                    None => not_found(format!("extension not found: {containing_type} {number}")),
                }
            }
            Query::AllExtensionNumbersOfType(name) => {
                let base_type = name.trim_start_matches('.').to_string();
                if !self.messages.contains(&base_type) {
                    return not_found(format!("type not found: {name}"));
                }
                let mut numbers: Vec<i32> =
                    self.extensions.keys().filter(|(t, _)| *t == base_type).map(|(_, n)| *n).collect();
                numbers.sort_unstable();
                Answer::ExtensionNumbers { base_type, numbers }
            }
            Query::Empty => {
                Answer::Error { code: INVALID_ARGUMENT, message: "the request asks for nothing".to_string() }
            }
        }
    }

    /// `name` (always) and its transitive imports not in `sent`, which gains them all.
    fn with_imports(&self, name: &str, sent: &mut HashSet<String>) -> Answer {
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        let mut queue = VecDeque::from([name.to_string()]);
        while let Some(next) = queue.pop_front() {
            if !seen.insert(next.clone()) {
                continue;
            }
            let Some(file) = self.files.get(&next) else { continue };
            if out.is_empty() || !sent.contains(&next) {
                out.push(file.encoded.clone());
                sent.insert(next);
            }
            queue.extend(file.dependencies.iter().cloned());
        }
        Answer::Files(out)
    }
}

/// The ServerReflection service (both versions) over shared [`Descriptors`].
pub struct Reflection {
    descriptors: Arc<Descriptors>,
}

impl Reflection {
    pub fn new(descriptors: Arc<Descriptors>) -> Self {
        Reflection { descriptors }
    }
}

/// Both versions have the same messages under another package: one impl, stamped out per version.
macro_rules! serve_version {
    ($v:ident) => {
        #[allow(refining_impl_trait)]
        impl $v::ServerReflection for Reflection {
            async fn server_reflection_info(
                &self,
                _: connectrpc::RequestContext,
                requests: connectrpc::InboundStream<$v::ServerReflectionRequest>,
            ) -> connectrpc::ServiceResult<connectrpc::ServiceStream<$v::ServerReflectionResponse>> {
                use $v::__buffa::oneof::server_reflection_request::MessageRequest as Req;
                use $v::__buffa::oneof::server_reflection_response::MessageResponse as Resp;
                let descriptors = self.descriptors.clone();
                let mut sent = HashSet::new();
                let responses = requests.map(move |request| {
                    let request = request?.to_owned_message();
                    let query = match &request.message_request {
                        Some(Req::FileByFilename(name)) => Query::FileByFilename(name.clone()),
                        Some(Req::FileContainingSymbol(symbol)) => {
                            Query::FileContainingSymbol(symbol.clone())
                        }
                        Some(Req::FileContainingExtension(x)) => Query::FileContainingExtension {
                            containing_type: x.containing_type.clone(),
                            number: x.extension_number,
                        },
                        Some(Req::AllExtensionNumbersOfType(name)) => {
                            Query::AllExtensionNumbersOfType(name.clone())
                        }
                        Some(Req::ListServices(_)) => Query::ListServices,
                        None => Query::Empty,
                    };
                    let answer = match descriptors.answer(&query, &mut sent) {
                        Answer::Files(files) => Resp::from($v::FileDescriptorResponse {
                            file_descriptor_proto: files,
                            ..Default::default()
                        }),
                        Answer::ExtensionNumbers { base_type, numbers } => {
                            Resp::from($v::ExtensionNumberResponse {
                                base_type_name: base_type,
                                extension_number: numbers,
                                ..Default::default()
                            })
                        }
                        Answer::Services(names) => Resp::from($v::ListServiceResponse {
                            service: names
                                .into_iter()
                                .map(|name| $v::ServiceResponse { name, ..Default::default() })
                                .collect(),
                            ..Default::default()
                        }),
                        Answer::Error { code, message } => Resp::from($v::ErrorResponse {
                            error_code: code,
                            error_message: message,
                            ..Default::default()
                        }),
                    };
                    Ok($v::ServerReflectionResponse {
                        valid_host: request.host.clone(),
                        original_request: buffa::MessageField::some(request),
                        message_response: Some(answer),
                        ..Default::default()
                    })
                });
                connectrpc::Response::stream_ok(responses)
            }
        }
    };
}

serve_version!(v1);
serve_version!(v1alpha);

#[cfg(test)]
#[allow(clippy::panic)] // test code: a failed expectation is a panic
mod tests {
    use buffa_descriptor::generated::descriptor::FileDescriptorProto;

    use super::*;

    fn index(served: &[&str]) -> Descriptors {
        let served: Vec<String> = served.iter().map(|s| s.to_string()).collect();
        Descriptors::load(passlink_wire::FILE_DESCRIPTOR_SET, &served).unwrap_or_else(|e| panic!("{e}"))
    }

    /// The names of the files of an answer, in order.
    fn names(answer: Answer) -> Vec<String> {
        let Answer::Files(files) = answer else { panic!("not files: {answer:?}") };
        files
            .iter()
            .map(|b| match FileDescriptorProto::decode_from_slice(b) {
                Ok(f) => f.name.unwrap_or_default(),
                Err(e) => panic!("{e}"),
            })
            .collect()
    }

    fn symbol(d: &Descriptors, name: &str) -> Answer {
        d.answer(&Query::FileContainingSymbol(name.into()), &mut HashSet::new())
    }

    #[test]
    fn only_served_services_are_exposed_but_every_file_and_message_is() {
        let d = index(&["zitadel.org.v2.OrganizationService", "grpc.health.v1.Health"]);
        assert_eq!(d.services(), ["grpc.health.v1.Health", "zitadel.org.v2.OrganizationService"]);
        for hidden in ["zitadel.user.v2.UserService", "zitadel.user.v2.UserService.AddHumanUser"] {
            assert!(matches!(symbol(&d, hidden), Answer::Error { code: NOT_FOUND, .. }), "{hidden}");
        }
        for (name, file) in [
            ("zitadel.user.v2.AddHumanUserRequest", "zitadel/user/v2/user_service.proto"),
            ("zitadel.user.v2.CreateUserRequest.Human", "zitadel/user/v2/user_service.proto"),
            (".grpc.health.v1.HealthCheckResponse.ServingStatus", "grpc/health/v1/health.proto"),
            ("grpc.health.v1.Health.Watch", "grpc/health/v1/health.proto"),
            ("google.api.http", "google/api/annotations.proto"),
        ] {
            assert_eq!(names(symbol(&d, name)).first().map(String::as_str), Some(file), "{name}");
        }
        let Err(e) = Descriptors::load(passlink_wire::FILE_DESCRIPTOR_SET, &["no.such.Service".to_string()])
        else {
            panic!("a served service missing from the protos must fail the start")
        };
        assert!(e.contains("no.such.Service"), "{e}");
    }

    #[test]
    fn a_file_comes_with_its_imports_once_per_stream() {
        let d = index(&["zitadel.user.v2.UserService"]);
        let mut sent = HashSet::new();
        let query = Query::FileContainingSymbol("zitadel.user.v2.UserService".into());
        let first = names(d.answer(&query, &mut sent));
        assert_eq!(first[0], "zitadel/user/v2/user_service.proto");
        assert!(first.iter().any(|f| f == "google/protobuf/descriptor.proto"), "transitive: {first:?}");
        let unique: HashSet<&String> = first.iter().collect();
        assert_eq!(unique.len(), first.len(), "each file once");
        assert_eq!(names(d.answer(&query, &mut sent)), ["zitadel/user/v2/user_service.proto"]);
        let by_name = Query::FileByFilename("google/protobuf/timestamp.proto".into());
        assert_eq!(names(d.answer(&by_name, &mut sent)), ["google/protobuf/timestamp.proto"]);
        let missing = Query::FileByFilename("zitadel/nope.proto".into());
        assert!(matches!(d.answer(&missing, &mut sent), Answer::Error { code: NOT_FOUND, .. }));
        assert!(matches!(d.answer(&Query::Empty, &mut sent), Answer::Error { code: INVALID_ARGUMENT, .. }));
    }

    #[test]
    fn extensions_by_number_and_by_type() {
        let d = index(&[]);
        let http = 72295728; // google.api.http on google.protobuf.MethodOptions
        let query = Query::FileContainingExtension {
            containing_type: ".google.protobuf.MethodOptions".into(),
            number: http,
        };
        assert_eq!(names(d.answer(&query, &mut HashSet::new()))[0], "google/api/annotations.proto");
        let numbers = d.answer(
            &Query::AllExtensionNumbersOfType("google.protobuf.MethodOptions".into()),
            &mut HashSet::new(),
        );
        let Answer::ExtensionNumbers { base_type, numbers } = numbers else { panic!("{numbers:?}") };
        assert_eq!(base_type, "google.protobuf.MethodOptions");
        assert!(numbers.contains(&http), "{numbers:?}");
        let unknown = Query::AllExtensionNumbersOfType("no.Such".into());
        assert!(matches!(d.answer(&unknown, &mut HashSet::new()), Answer::Error { code: NOT_FOUND, .. }));
        let unknown = Query::FileContainingExtension {
            containing_type: "google.protobuf.MethodOptions".into(),
            number: 1,
        };
        assert!(matches!(d.answer(&unknown, &mut HashSet::new()), Answer::Error { code: NOT_FOUND, .. }));
    }
}
