//! TLS material for tests of `keyward serve` over HTTPS: a private CA, a server certificate for
//! `127.0.0.1`/`localhost` issued by it, a client certificate issued by it, and a client
//! certificate from a foreign CA — written as PEM files into a directory.

use std::path::{Path, PathBuf};

/// The PEM files [`TlsFiles::write`] made.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// The CA certificate (trusted by clients; the client CA of the server).
    pub ca: PathBuf,
    /// The server's certificate and key.
    pub server_cert: PathBuf,
    /// The server's private key.
    pub server_key: PathBuf,
    /// A client certificate issued by the CA, and its key (one PEM file with both).
    pub client: PathBuf,
    /// A client certificate from another CA, and its key (one PEM file with both).
    pub foreign_client: PathBuf,
}

fn ca(name: &str) -> (rcgen::Certificate, rcgen::Issuer<'static, rcgen::KeyPair>) {
    let key = rcgen::KeyPair::generate().expect("CA key");
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name.push(rcgen::DnType::CommonName, name);
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::DigitalSignature];
    let cert = params.self_signed(&key).expect("CA certificate");
    (cert, rcgen::Issuer::new(params, key))
}

fn leaf(
    names: &[&str],
    usage: rcgen::ExtendedKeyUsagePurpose,
    issuer: &rcgen::Issuer<'static, rcgen::KeyPair>,
) -> (String, String) {
    let key = rcgen::KeyPair::generate().expect("leaf key");
    let mut params = rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
        .expect("names");
    params.extended_key_usages = vec![usage];
    let cert = params.signed_by(&key, issuer).expect("leaf certificate");
    (cert.pem(), key.serialize_pem())
}

impl TlsFiles {
    /// Generates the material and writes it into `dir`.
    pub fn write(dir: &Path) -> Self {
        use rcgen::ExtendedKeyUsagePurpose::{ClientAuth, ServerAuth};
        let (ca_cert, issuer) = ca("Keyward Test TLS CA");
        let (_, foreign) = ca("Foreign CA");
        let (server_cert, server_key) = leaf(&["127.0.0.1", "localhost"], ServerAuth, &issuer);
        let (client_cert, client_key) = leaf(&["operator"], ClientAuth, &issuer);
        let (foreign_cert, foreign_key) = leaf(&["intruder"], ClientAuth, &foreign);
        let files = TlsFiles {
            ca: dir.join("ca.pem"),
            server_cert: dir.join("server.pem"),
            server_key: dir.join("server.key"),
            client: dir.join("client.pem"),
            foreign_client: dir.join("foreign-client.pem"),
        };
        let write = |p: &Path, text: String| std::fs::write(p, text).expect("write TLS test file");
        write(&files.ca, ca_cert.pem());
        write(&files.server_cert, server_cert);
        write(&files.server_key, server_key);
        write(&files.client, format!("{client_cert}{client_key}"));
        write(&files.foreign_client, format!("{foreign_cert}{foreign_key}"));
        files
    }
}
