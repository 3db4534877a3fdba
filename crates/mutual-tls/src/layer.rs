//! A tower layer that authorizes each request by the verified peer: a permitted request goes on
//! with a [`Permit`] in its extensions; a refused one gets `403` and a body that names the
//! caller and the rule (`you cannot be here bob.example.com: only cn=alice.example.com may
//! call`), or for a gRPC call gRPC's own answer with that text: `grpc-status` 7
//! PERMISSION_DENIED, 16 UNAUTHENTICATED without a verified certificate.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use arc_swap::ArcSwap;
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use tower::{Layer, Service};

use crate::grpc;
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
        let grpc = grpc::is_grpc_request(&req);
        let Some(peer) = req.extensions().get::<Arc<PeerIdentity>>().cloned() else {
            tracing::warn!(decision = "deny", reason = "no verified client certificate");
            let reason = "you cannot be here: no verified client certificate";
            return Box::pin(async move {
                Ok(if grpc {
                    grpc::refusal(StatusCode::UNAUTHORIZED, reason, ResB::from(Bytes::new()))
                } else {
                    forbidden(reason.into())
                })
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
                let reason = denial.to_string();
                Box::pin(async move {
                    Ok(if grpc {
                        grpc::refusal(StatusCode::FORBIDDEN, &reason, ResB::from(Bytes::new()))
                    } else {
                        forbidden(reason)
                    })
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use super::*;

    fn peer(cn: &str) -> Arc<PeerIdentity> {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, cn);
        let der = params.self_signed(&key).unwrap().der().to_vec();
        Arc::new(PeerIdentity::from_chain(&[der]).unwrap())
    }

    async fn ask(who: Option<&str>, content_type: &str) -> Response<Bytes> {
        let inner = tower::service_fn(|_req: Request<()>| async {
            Ok::<_, Infallible>(Response::new(Bytes::from("inner")))
        });
        let mut svc =
            AuthorizeLayer::new(Policy::parse(["cn=alice.example.com"]).unwrap()).layer(inner);
        let mut req = Request::builder()
            .header(http::header::CONTENT_TYPE, content_type)
            .body(())
            .unwrap();
        if let Some(cn) = who {
            req.extensions_mut().insert(peer(cn));
        }
        svc.call(req).await.unwrap()
    }

    fn header<'a>(r: &'a Response<Bytes>, name: &str) -> &'a str {
        r.headers()
            .get(name)
            .map(|v| v.to_str().unwrap())
            .unwrap_or("")
    }

    #[tokio::test]
    async fn refusals_over_http_and_grpc() {
        let r = ask(Some("alice.example.com"), "application/grpc").await;
        assert_eq!(
            (r.status(), r.body().as_ref()),
            (StatusCode::OK, &b"inner"[..])
        );
        assert_eq!(header(&r, "grpc-status"), "");

        let bob = "you cannot be here bob.example.com: only cn=alice.example.com may call";
        let r = ask(Some("bob.example.com"), "text/plain").await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        assert_eq!(r.body().as_ref(), format!("{bob}\n").as_bytes());
        for ct in ["application/grpc", "application/grpc+proto"] {
            let r = ask(Some("bob.example.com"), ct).await;
            assert_eq!(r.status(), StatusCode::OK, "{ct}");
            assert_eq!(header(&r, "grpc-status"), "7");
            assert_eq!(header(&r, "grpc-message"), bob);
            assert!(r.body().is_empty());
        }

        let nobody = "you cannot be here: no verified client certificate";
        let r = ask(None, "application/json").await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        let r = ask(None, "application/grpc").await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(header(&r, "grpc-status"), "16");
        assert_eq!(header(&r, "grpc-message"), nobody);
    }
}
