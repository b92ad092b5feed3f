//! The RPC table and the two ways into a handler.
//!
//! Every RPC is one [`Rpc`] entry in [`rpc::table`](crate::rpc::table): its path
//! (`pkg.Service/Method`) and its handler, an async function
//! `(app, caller, request) → Result<response, core Error>`. The handler's caller type
//! ([`Access`]) says whether it needs a token. An entry serves its handler two ways:
//!
//! - [`Method::rpc`] for gRPC, gRPC-web and Connect (reached through [`Api`], the connectrpc
//!   [`Dispatcher`] over the table): authenticate, decode the payload once, handle; a core error
//!   becomes a `ConnectError` ([`error::to_connect`]).
//! - [`Method::rest`] for the REST routes ([`crate::rest`]): decode the JSON body once into the
//!   request message (with the query string's fields, [`rest::decode_request`]), set the path
//!   parameters on it, authenticate, handle; the response is the
//!   message's JSON, a core error grpc-gateway's status JSON ([`error::to_rest`]).
//!
//! An entry made with [`limited`] is rate limited ([`crate::limits`]): the targets its request
//! names take a token before the handler runs, kept when the handler fails on the client's
//! mistake, given back otherwise.

use std::collections::HashMap;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;

use axum::Extension;
use axum::Router;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, RawQuery};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{MethodFilter, on};
use bytes::Bytes;
use connectrpc::dispatcher::{RequestStream, StreamingResult, UnaryResult};
use connectrpc::{
    CodecFormat, Dispatcher, JsonDeserialize, JsonSerialize, MethodDescriptor, Payload, RequestContext,
};
use passlink_core::app::App;
use passlink_core::error::{Error, Result};
use passlink_wire::PathParams;

use crate::auth::{Access, authenticate};
use crate::limits::{self, Throttle};
use crate::observe::RequestInfo;
use crate::{error, rest};

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// An RPC handler: `async fn(Arc<App>, caller, request) -> Result<response>`.
pub trait Handler<Req, A>: Send + Sync + 'static {
    type Response;
    fn call(&self, app: Arc<App>, caller: A, request: Req) -> BoxFuture<Result<Self::Response>>;
}

impl<F, Fut, Req, A, Resp> Handler<Req, A> for F
where
    F: Fn(Arc<App>, A, Req) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Resp>> + Send + 'static,
    Resp: Send + 'static,
{
    type Response = Resp;
    /// The handler runs as a task of its own: a command runs to its end when its client goes
    /// away mid-request (no commit is abandoned between its write and its answer, and the leader
    /// of a group of link requests answers the whole group).
    fn call(&self, app: Arc<App>, caller: A, request: Req) -> BoxFuture<Result<Resp>> {
        let task = tokio::spawn(self(app, caller, request));
        Box::pin(async move { task.await.map_err(Error::internal)? })
    }
}

/// One RPC of the table, with its request and response types erased.
pub trait Method: Send + Sync {
    /// gRPC, gRPC-web, Connect: the encoded response, or the error as a `ConnectError`.
    fn rpc(&self, app: Arc<App>, ctx: RequestContext, request: Payload, format: CodecFormat) -> UnaryResult;
    /// REST: the HTTP response (`success` with the response JSON, or the error's status JSON).
    /// `query` is the raw query string (grpc-gateway: request fields a GET binding carries).
    /// `info` (from the request layer) learns the caller and the outcome; `throttle` (from the
    /// limits layer) limits a rate-limited entry.
    #[allow(clippy::too_many_arguments)]
    fn rest(
        &self,
        app: Arc<App>,
        info: Option<RequestInfo>,
        throttle: Option<Throttle>,
        headers: HeaderMap,
        body: Bytes,
        params: HashMap<String, String>,
        query: Option<String>,
        success: StatusCode,
    ) -> BoxFuture<Response>;
}

/// The rate-limit targets a request names (`user:<id>`, `session:<id>`, …).
pub type Targets<Req> = fn(&Req) -> Vec<String>;

/// A typed entry: a handler for requests `Req` from callers `A`.
pub struct Rpc<Req, A, H> {
    handler: Arc<H>,
    /// Rate limited: the targets of a request ([`limited`]).
    targets: Option<Targets<Req>>,
    _types: PhantomData<fn(Req, A)>,
}

/// The table entry for `path` served by `handler`.
pub fn rpc<Req, A, H>(path: &'static str, handler: H) -> (&'static str, Arc<dyn Method>)
where
    Rpc<Req, A, H>: Method + 'static,
{
    (path, Arc::new(Rpc { handler: Arc::new(handler), targets: None, _types: PhantomData }))
}

/// The table entry for `path` served by `handler`, rate limited on the `targets` of each request
/// (and on the client's address when the request carries no token).
pub fn limited<Req, A, H>(
    path: &'static str,
    handler: H,
    targets: Targets<Req>,
) -> (&'static str, Arc<dyn Method>)
where
    Rpc<Req, A, H>: Method + 'static,
{
    (path, Arc::new(Rpc { handler: Arc::new(handler), targets: Some(targets), _types: PhantomData }))
}

impl<Req, A, H> Method for Rpc<Req, A, H>
where
    Req: buffa::Message + JsonDeserialize + PathParams + Default + Send + 'static,
    A: Access,
    H: Handler<Req, A>,
    H::Response: buffa::Message + JsonSerialize + Send + 'static,
{
    fn rpc(&self, app: Arc<App>, ctx: RequestContext, request: Payload, format: CodecFormat) -> UnaryResult {
        let handler = self.handler.clone();
        let targets = self.targets;
        Box::pin(async move {
            let info = ctx.extensions().get::<RequestInfo>().cloned();
            let throttle = ctx.extensions().get::<Throttle>().cloned();
            let served = async {
                let caller =
                    authenticate::<A>(&app, ctx.headers()).await.map_err(|e| error::to_connect(&e))?;
                if let (Some(info), Some(c)) = (&info, caller.caller()) {
                    info.set_caller(c);
                }
                let request: Req = request.take_message()?;
                let attempt = limits::begin(throttle.as_ref(), ctx.headers(), targets.map(|t| t(&request)))
                    .map_err(|e| error::to_connect(&e))?;
                let response = handler.call(app, caller, request).await;
                if let Some(a) = attempt {
                    a.end_with(&response);
                }
                let response = response.map_err(|e| error::to_connect(&e))?;
                connectrpc::Response::new(response).encode::<H::Response>(format)
            };
            let result = served.await;
            if let Some(info) = &info {
                info.set_code(result.as_ref().err().map_or(0, |e| e.code.grpc_code()));
            }
            result
        })
    }

    fn rest(
        &self,
        app: Arc<App>,
        info: Option<RequestInfo>,
        throttle: Option<Throttle>,
        headers: HeaderMap,
        body: Bytes,
        params: HashMap<String, String>,
        query: Option<String>,
        success: StatusCode,
    ) -> BoxFuture<Response> {
        let handler = self.handler.clone();
        let targets = self.targets;
        Box::pin(async move {
            let served = async {
                let mut request: Req = rest::decode_request(&body, query.as_deref())?;
                for (name, value) in params {
                    request.set_path_param(&name, value);
                }
                let caller = authenticate::<A>(&app, &headers).await?;
                if let (Some(info), Some(c)) = (&info, caller.caller()) {
                    info.set_caller(c);
                }
                let attempt = limits::begin(throttle.as_ref(), &headers, targets.map(|t| t(&request)))?;
                let response = handler.call(app, caller, request).await;
                if let Some(a) = attempt {
                    a.end_with(&response);
                }
                serde_json::to_vec(&response?).map_err(Error::internal)
            };
            let result = served.await;
            if let Some(info) = &info {
                info.set_code(result.as_ref().err().map_or(0, |e| error::grpc_code(e.kind)));
            }
            match result {
                Ok(json) => rest::json_response(success, Bytes::from(json)),
                Err(e) => error::rest_response(&e),
            }
        })
    }
}

/// The table as the connectrpc dispatcher behind gRPC, gRPC-web and Connect.
pub struct Api {
    app: Arc<App>,
    methods: HashMap<&'static str, Arc<dyn Method>>,
}

impl Api {
    pub fn new(app: Arc<App>, table: impl IntoIterator<Item = (&'static str, Arc<dyn Method>)>) -> Self {
        Api { app, methods: table.into_iter().collect() }
    }

    /// The entry of an RPC path (`pkg.Service/Method`, without the leading `/`).
    pub fn method(&self, path: &str) -> Option<&Arc<dyn Method>> {
        self.methods.get(path.trim_start_matches('/'))
    }

    pub fn app(&self) -> &Arc<App> {
        &self.app
    }

    /// The OpenAPI document of the REST routes [`Api::rest_routes`] serves
    /// ([`rest::openapi_document`]).
    pub fn openapi(&self) -> Bytes {
        rest::openapi_document(|rpc| self.method(rpc).is_some())
    }

    /// The REST routes: one per `google.api.http` binding ([`passlink_wire::REST_ROUTES`]), each
    /// served by its RPC's entry ([`Method::rest`]); a binding without an entry is not served.
    pub fn rest_routes(&self) -> Router {
        let mut router = Router::new();
        for &(method, path, rpc, success) in passlink_wire::REST_ROUTES {
            let Some((name, entry)) =
                self.methods.get_key_value(rpc.trim_start_matches('/')).map(|(k, v)| (*k, v.clone()))
            else {
                tracing::debug!(rpc, path, "REST binding without a handler: not served");
                continue;
            };
            let filter = match method {
                "GET" => MethodFilter::GET,
                "DELETE" => MethodFilter::DELETE,
                "PUT" => MethodFilter::PUT,
                "PATCH" => MethodFilter::PATCH,
                _ => MethodFilter::POST,
            };
            let app = self.app().clone();
            let success = StatusCode::from_u16(success).unwrap_or(StatusCode::OK);
            // A path parameter that is not UTF-8 or a body over the limit is turned down by the
            // extractors: answered in grpc-gateway's error shape too.
            let handler = move |params: std::result::Result<Path<HashMap<String, String>>, PathRejection>,
                                RawQuery(query): RawQuery,
                                info: Option<Extension<RequestInfo>>,
                                throttle: Option<Extension<Throttle>>,
                                headers: HeaderMap,
                                body: std::result::Result<Bytes, BytesRejection>| {
                let info = info.map(|Extension(info)| {
                    info.set_rpc(name);
                    info.set_rest();
                    info
                });
                let request = params
                    .map(|Path(p)| p)
                    .map_err(|r| (r.status(), r.body_text()))
                    .and_then(|p| body.map(|b| (p, b)).map_err(|r| (r.status(), r.body_text())));
                let entry = entry.clone();
                let app = app.clone();
                let throttle = throttle.map(|Extension(t)| t);
                async move {
                    match request {
                        Ok((params, body)) => {
                            entry.rest(app, info, throttle, headers, body, params, query, success).await
                        }
                        Err((status, message)) => {
                            let (status, json) = error::rest_rejection(status, message);
                            rest::json_response(status, Bytes::from(json.to_string()))
                        }
                    }
                }
            };
            router = router.route(path, on(filter, handler));
        }
        // A known path with another method: grpc-gateway answers 405 with code 12 (Unimplemented).
        router.method_not_allowed_fallback(|| async {
            let body = serde_json::json!({"code": 12, "message": "Method Not Allowed"}).to_string();
            rest::json_response(StatusCode::METHOD_NOT_ALLOWED, Bytes::from(body))
        })
    }
}

impl Dispatcher for Api {
    fn lookup(&self, path: &str) -> Option<MethodDescriptor> {
        self.method(path).map(|_| MethodDescriptor::unary(false))
    }

    fn call_unary(
        &self,
        path: &str,
        ctx: RequestContext,
        request: Payload,
        format: CodecFormat,
    ) -> UnaryResult {
        match self.methods.get_key_value(path.trim_start_matches('/')) {
            Some((name, m)) => {
                if let Some(info) = ctx.extensions().get::<RequestInfo>() {
                    info.set_rpc(name);
                }
                m.rpc(self.app.clone(), ctx, request, format)
            }
            None => connectrpc::dispatcher::unimplemented_unary(path),
        }
    }

    fn call_server_streaming(
        &self,
        path: &str,
        _: RequestContext,
        _: Bytes,
        _: CodecFormat,
    ) -> StreamingResult {
        connectrpc::dispatcher::unimplemented_streaming(path)
    }

    fn call_client_streaming(
        &self,
        path: &str,
        _: RequestContext,
        _: RequestStream,
        _: CodecFormat,
    ) -> UnaryResult {
        connectrpc::dispatcher::unimplemented_unary(path)
    }

    fn call_bidi_streaming(
        &self,
        path: &str,
        _: RequestContext,
        _: RequestStream,
        _: CodecFormat,
    ) -> StreamingResult {
        connectrpc::dispatcher::unimplemented_streaming(path)
    }
}
