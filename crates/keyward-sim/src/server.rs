//! Serving the emulator: a hyper accept loop (not `axum::serve`) because injecting a
//! connection reset, or a response lost after the work was committed, needs control of
//! the connection itself — a service error makes hyper drop the connection mid-exchange,
//! which is exactly what a client sees when the real network fails.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request, Response, StatusCode};
use axum::response::IntoResponse;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::ServiceExt;

use crate::Sim;
use crate::faults::Fault;
use crate::graph::GraphFailure;

/// A fault that makes the server drop the connection.
#[derive(Debug)]
struct DroppedConnection;

impl std::fmt::Display for DroppedConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by fault injection")
    }
}

impl std::error::Error for DroppedConnection {}

/// A served emulator; dropping it does not stop it, [`RunningSim::stop`] does.
pub struct RunningSim {
    /// The emulator's state.
    pub sim: Sim,
    /// `http://127.0.0.1:PORT` (or `https://`): login authority and Graph host in one.
    pub base_url: String,
    /// The bound address.
    pub addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl RunningSim {
    /// Stops accepting and waits for the accept loop to end.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// TLS material for `--tls`: a self-signed certificate for `localhost` and `127.0.0.1`.
pub struct SelfSignedTls {
    /// The certificate, PEM, for clients to trust.
    pub certificate_pem: String,
    acceptor: tokio_rustls::TlsAcceptor,
}

impl SelfSignedTls {
    /// Generates a fresh certificate and key.
    pub fn generate() -> Result<Self, String> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
            .map_err(|e| format!("cannot create a TLS certificate: {e}"))?;
        let der = cert.cert.der().clone();
        let key = rustls::pki_types::PrivateKeyDer::try_from(cert.signing_key.serialize_der())
            .map_err(|e| format!("TLS key: {e}"))?;
        let config = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(vec![der], key)
            .map_err(|e| format!("TLS config: {e}"))?;
        Ok(Self {
            certificate_pem: cert.cert.pem(),
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
        })
    }
}

/// Binds `listen` and serves the emulator in the background.
pub async fn spawn(sim: Sim, listen: SocketAddr, tls: Option<SelfSignedTls>) -> std::io::Result<RunningSim> {
    let listener = TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let host = if addr.ip().is_unspecified() { "127.0.0.1".to_string() } else { addr.ip().to_string() };
    let base_url = format!("{scheme}://{host}:{}", addr.port());
    sim.set_base_url(base_url.clone());
    let (stop, mut stopped) = watch::channel(false);
    let acceptor = tls.map(|t| t.acceptor);
    let served = sim.clone();
    let task = tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                a = listener.accept() => a,
                _ = stopped.changed() => break,
            };
            let Ok((stream, _)) = accepted else { continue };
            let _ = stream.set_nodelay(true);
            let sim = served.clone();
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| handle(sim.clone(), req));
                let builder = auto::Builder::new(TokioExecutor::new());
                match acceptor {
                    Some(acceptor) => {
                        if let Ok(tls) = acceptor.accept(stream).await {
                            let _ = builder.serve_connection(TokioIo::new(tls), service).await;
                        }
                    }
                    None => {
                        let _ = builder.serve_connection(TokioIo::new(stream), service).await;
                    }
                }
            });
        }
    });
    Ok(RunningSim { sim, base_url, addr, stop, task })
}

async fn handle(
    sim: Sim,
    request: Request<hyper::body::Incoming>,
) -> Result<Response<Body>, DroppedConnection> {
    let latency = sim.options().latency;
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let path = request.uri().path();
    let is_graph = path.starts_with("/v1.0/") || path.starts_with("/beta/");
    let write = !matches!(*request.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    let fault = if is_graph { sim.faults().roll(write) } else { Fault::None };
    let client_id = request.headers().get("client-request-id").cloned();
    let request = request.map(Body::new);
    match fault {
        Fault::None => Ok(route(&sim, request).await),
        Fault::Unavailable(after) => {
            Ok(transient(StatusCode::SERVICE_UNAVAILABLE, "serviceNotAvailable", after, client_id))
        }
        Fault::GatewayTimeout(after) => {
            Ok(transient(StatusCode::GATEWAY_TIMEOUT, "gatewayTimeout", after, client_id))
        }
        Fault::Reset => Err(DroppedConnection),
        Fault::Lost => {
            let response = route(&sim, request).await;
            // Make sure the work is done (body produced) before the caller loses the answer.
            let _ = axum::body::to_bytes(response.into_body(), usize::MAX).await;
            Err(DroppedConnection)
        }
    }
}

async fn route(sim: &Sim, request: Request<Body>) -> Response<Body> {
    match sim.router().oneshot(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    }
}

/// A 503/504 as the service's front door sends it, with the usual correlation ids.
fn transient(
    status: StatusCode,
    code: &str,
    retry_after: f64,
    client_request_id: Option<axum::http::HeaderValue>,
) -> Response<Body> {
    let message = "The service is temporarily unavailable. Retry after the time given in Retry-After.";
    let failure = GraphFailure::new(status, code, message);
    let ids = crate::graph::RequestIds {
        request_id: uuid::Uuid::new_v4().to_string(),
        client_request_id: client_request_id
            .as_ref()
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
    };
    let mut response = (status, axum::Json(failure.body(Some(&ids)))).into_response();
    let headers = response.headers_mut();
    for (name, value) in [
        ("retry-after", format!("{retry_after}")),
        ("request-id", ids.request_id.clone()),
        ("client-request-id", ids.client_request_id.clone()),
    ] {
        if let Ok(v) = axum::http::HeaderValue::from_str(&value) {
            headers.insert(name, v);
        }
    }
    response
}
