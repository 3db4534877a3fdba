//! A tower layer that authorizes each request by the verified peer: a permitted request goes on
//! with a [`Permit`] in its extensions; a refused one gets `403` and a body that names the
//! caller and the rule (`you cannot be here bob.example.com: only cn=alice.example.com may
//! call`).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use arc_swap::ArcSwap;
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use tower::{Layer, Service};

use crate::identity::PeerIdentity;
use crate::policy::{Permit, Policy};

/// Authorizes requests with a [`Policy`] that can be swapped while serving.
#[derive(Debug, Clone)]
pub struct AuthorizeLayer {
    policy: Arc<ArcSwap<Policy>>,
}

impl AuthorizeLayer {
    /// A layer with a fixed policy.
    pub fn new(policy: Policy) -> AuthorizeLayer {
        AuthorizeLayer {
            policy: Arc::new(ArcSwap::from_pointee(policy)),
        }
    }

    /// A layer whose policy is read from a shared, swappable holder on every request.
    pub fn shared(policy: Arc<ArcSwap<Policy>>) -> AuthorizeLayer {
        AuthorizeLayer { policy }
    }
}

impl<S> Layer<S> for AuthorizeLayer {
    type Service = Authorize<S>;

    fn layer(&self, inner: S) -> Authorize<S> {
        Authorize {
            inner,
            policy: Arc::clone(&self.policy),
        }
    }
}

/// The service made by [`AuthorizeLayer`].
#[derive(Debug, Clone)]
pub struct Authorize<S> {
    inner: S,
    policy: Arc<ArcSwap<Policy>>,
}

fn forbidden<B: From<Bytes>>(body: String) -> Response<B> {
    let mut res = Response::new(B::from(Bytes::from(body + "\n")));
    *res.status_mut() = StatusCode::FORBIDDEN;
    res.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    res
}

impl<S, ReqB, ResB> Service<Request<ReqB>> for Authorize<S>
where
    S: Service<Request<ReqB>, Response = Response<ResB>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    ReqB: Send + 'static,
    ResB: From<Bytes> + Send + 'static,
{
    type Response = Response<ResB>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response<ResB>, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqB>) -> Self::Future {
        let Some(peer) = req.extensions().get::<Arc<PeerIdentity>>().cloned() else {
            tracing::warn!(decision = "deny", reason = "no verified client certificate");
            return Box::pin(async {
                Ok(forbidden(
                    "you cannot be here: no verified client certificate".into(),
                ))
            });
        };
        let decision: Result<Permit, _> = self.policy.load().authorize(&peer);
        match decision {
            Ok(permit) => {
                tracing::debug!(
                    peer.cn = peer.name(),
                    rule = permit.rule(),
                    decision = "allow"
                );
                req.extensions_mut().insert(permit);
                // Take the service that was driven to readiness, leave a fresh clone behind.
                let clone = self.inner.clone();
                let mut inner = std::mem::replace(&mut self.inner, clone);
                Box::pin(async move { inner.call(req).await })
            }
            Err(denial) => {
                tracing::warn!(
                    peer.cn = peer.name(),
                    peer.subject = %peer.subject,
                    peer.issuer = %peer.issuer,
                    decision = "deny",
                    reason = %denial,
                    "refused request"
                );
                Box::pin(async move { Ok(forbidden(denial.to_string())) })
            }
        }
    }
}
