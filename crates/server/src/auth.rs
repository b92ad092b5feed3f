//! The one pipeline every protocol passes through: a [`Dispatcher`] wrapper that authenticates
//! the bearer token, resolves the context organization (`x-zitadel-orgid`) and hands the
//! [`Caller`] to the service implementation in the request extensions.
//!
//! gRPC, gRPC-web and Connect reach it through `ConnectRpcService`; REST calls it directly.

use std::sync::Arc;

use bytes::Bytes;
use connectrpc::dispatcher::{StreamingResult, UnaryResult};
use connectrpc::{CodecFormat, ConnectError, Dispatcher, MethodDescriptor, Payload, RequestContext};
use passlink_core::app::{App, Caller};

use crate::error::to_connect;

pub struct Authenticated<D> {
    inner: Arc<D>,
    app: Arc<App>,
}

impl<D> Authenticated<D> {
    pub fn new(inner: D, app: Arc<App>) -> Self {
        Authenticated { inner: Arc::new(inner), app }
    }
}

/// RPCs a registration code can authorize on its own.
fn allows_anonymous(path: &str) -> bool {
    path.ends_with("/RegisterPasskey") || path.ends_with("/VerifyPasskeyRegistration")
}

/// The caller, if the request carried a token (only for [`allows_anonymous`] RPCs can it be absent).
pub fn optional_caller(ctx: &RequestContext) -> Option<Caller> {
    ctx.extensions().get::<Caller>().cloned()
}

/// The authenticated caller of the current request (set by [`Authenticated`]).
pub fn caller(ctx: &RequestContext) -> Result<Caller, ConnectError> {
    ctx.extensions()
        .get::<Caller>()
        .cloned()
        .ok_or_else(|| ConnectError::unauthenticated("context missing (AUTH-rKLWEH)"))
}

impl<D: Dispatcher> Dispatcher for Authenticated<D> {
    fn lookup(&self, path: &str) -> Option<MethodDescriptor> {
        self.inner.lookup(path)
    }

    fn call_unary(
        &self,
        path: &str,
        mut ctx: RequestContext,
        request: Payload,
        format: CodecFormat,
    ) -> UnaryResult {
        let inner = self.inner.clone();
        let app = self.app.clone();
        let path = path.to_string();
        Box::pin(async move {
            let header = |name: &str| ctx.header(name).and_then(|v| v.to_str().ok()).map(str::to_string);
            let (authorization, org) = (header("authorization"), header("x-zitadel-orgid"));
            // A registration code authorizes the passkey ceremony without a token: those two RPCs
            // run anonymously when no Authorization header is sent (a sent one must be valid).
            if authorization.is_some() || !allows_anonymous(&path) {
                let principal =
                    app.authenticate(authorization.as_deref()).await.map_err(|e| to_connect(&e))?;
                let caller = app.caller(principal, org.as_deref());
                ctx.extensions_mut().insert(caller);
            }
            inner.call_unary(&path, ctx, request, format).await
        })
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
        _: connectrpc::dispatcher::RequestStream,
        _: CodecFormat,
    ) -> UnaryResult {
        connectrpc::dispatcher::unimplemented_unary(path)
    }

    fn call_bidi_streaming(
        &self,
        path: &str,
        _: RequestContext,
        _: connectrpc::dispatcher::RequestStream,
        _: CodecFormat,
    ) -> StreamingResult {
        connectrpc::dispatcher::unimplemented_streaming(path)
    }
}
