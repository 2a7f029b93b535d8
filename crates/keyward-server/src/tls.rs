//! Transport: the server over TLS (rustls), optional client certificates, and the rule for plain
//! HTTP.
//!
//! Bearer tokens, client secrets and certificate private keys travel in requests, so the server
//! speaks TLS whenever it listens beyond this machine: plain HTTP is served on a loopback address
//! (a reverse proxy on the same host, tests), and elsewhere only when the operator insists with
//! `--insecure-http`, with a warning ([`plain_http_allowed`]).
//!
//! **Why tokio-rustls and hyper-util, not axum-server.** Both are already built for the Entra
//! emulator (`keyward-sim`), and the accept loop is a dozen lines; axum-server would add a crate
//! for the same rustls acceptor. No OpenSSL.
//!
//! **Client certificates.** With a client CA, the server asks every client for a certificate but
//! accepts connections without one (API clients authenticate with bearer tokens); a certificate
//! that does not chain to the CA fails the handshake. A verified certificate is put on each
//! request of its connection as a [`PeerCertificate`] extension, for certificate-based
//! collection to use.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;

use crate::service::Service;

/// The acceptor [`acceptor`] builds and [`serve_tls`] takes.
pub use tokio_rustls::TlsAcceptor;

/// The verified client certificate of the request's connection (DER), when one was presented.
#[derive(Debug, Clone)]
pub struct PeerCertificate(pub CertificateDer<'static>);

/// Whether the server may listen on `listen` without TLS: always on loopback; elsewhere only
/// with `insecure` (the caller then warns). The error says what to do instead.
pub fn plain_http_allowed(listen: SocketAddr, insecure: bool) -> Result<(), String> {
    if listen.ip().is_loopback() || insecure {
        return Ok(());
    }
    Err(format!(
        "refusing to serve plain HTTP on {listen}: API tokens and connector secrets would cross the network in clear; pass --tls-cert FILE --tls-key FILE, listen on 127.0.0.1 behind a TLS proxy, or accept the risk with --insecure-http"
    ))
}

/// A TLS acceptor from a PEM certificate chain and private key, and optionally a CA whose client
/// certificates are accepted (requested, not required).
pub fn acceptor(cert: &Path, key: &Path, client_ca: Option<&Path>) -> Result<TlsAcceptor, String> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("cannot read the TLS certificate {}: {e}", cert.display()))?;
    if chain.is_empty() {
        return Err(format!("{} holds no PEM certificate", cert.display()));
    }
    let private = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| format!("cannot read the TLS private key {}: {e}", key.display()))?;
    let builder = rustls::ServerConfig::builder();
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in
                CertificateDer::pem_file_iter(ca).map_err(|e| format!("cannot read {}: {e}", ca.display()))?
            {
                let c = c.map_err(|e| format!("cannot read {}: {e}", ca.display()))?;
                roots.add(c).map_err(|e| format!("{} is not a usable CA certificate: {e}", ca.display()))?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder(Arc::new(roots))
                .allow_unauthenticated()
                .build()
                .map_err(|e| format!("cannot use {} as the client CA: {e}", ca.display()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder
        .with_single_cert(chain, private)
        .map_err(|e| format!("the TLS certificate and key do not fit together: {e}"))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Serves `service` over TLS on `listener` until `shutdown` resolves (connections in progress
/// are left to finish on their own).
pub async fn serve_tls(
    service: Arc<Service>,
    listener: TcpListener,
    acceptor: TlsAcceptor,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let flusher = crate::spawn_refusal_flush(service.clone());
    let app = crate::api::router(service.clone());
    tokio::pin!(shutdown);
    loop {
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => { tracing::warn!("accept failed: {e}"); continue; }
            },
            () = &mut shutdown => {
                flusher.abort();
                crate::flush_last_refusals(&service).await;
                return Ok(());
            }
        };
        let _ = stream.set_nodelay(true);
        let (acceptor, app) = (acceptor.clone(), app.clone());
        tokio::spawn(async move {
            let tls = match acceptor.accept(stream).await {
                Ok(tls) => tls,
                Err(e) => {
                    tracing::debug!(%remote, "TLS handshake failed: {e}");
                    return;
                }
            };
            let peer = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .map(|c| PeerCertificate(c.clone().into_owned()));
            let app = tower::ServiceExt::map_request(
                app,
                move |mut req: axum::extract::Request<hyper::body::Incoming>| {
                    req.extensions_mut().insert(axum::extract::ConnectInfo(remote));
                    if let Some(p) = &peer {
                        req.extensions_mut().insert(p.clone());
                    }
                    req
                },
            );
            let service = hyper_util::service::TowerToHyperService::new(app);
            let builder = hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
            let _ = builder.serve_connection_with_upgrades(hyper_util::rt::TokioIo::new(tls), service).await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_only_on_loopback_unless_insisted() {
        let cases = [
            ("127.0.0.1:8080", false, true),
            ("[::1]:8080", false, true),
            ("0.0.0.0:8080", false, false),
            ("192.0.2.10:8080", false, false),
            ("[::]:8080", false, false),
            ("0.0.0.0:8080", true, true),
        ];
        for (listen, insecure, allowed) in cases {
            let result = plain_http_allowed(listen.parse().unwrap(), insecure);
            assert_eq!(result.is_ok(), allowed, "{listen} insecure={insecure}");
            if let Err(e) = result {
                assert!(e.contains("--tls-cert") && e.contains("--insecure-http"), "{e}");
            }
        }
    }
}
