//! "Validate certificate": everything that can be checked about the connector's certificate
//! credential before Entra sees it — the PEM parses, the private key belongs to the
//! certificate, the validity dates (not yet valid, expired, expiring within 30 days), and the
//! SHA-1 (`x5t`) and SHA-256 (`x5t#S256`) thumbprints, in the hex form the Entra portal shows,
//! so the operator can compare them with the uploaded certificate.
//!
//! X.509 is read with `x509-parser` and the RSA key with `rsa` (both pure Rust, no OpenSSL).
//! Only RSA keys are supported because Entra certificate credentials sign RS256/PS256.

use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs8::DecodePrivateKey;
use rsa::traits::PublicKeyParts;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use sha1::Digest;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::error::CertificateError;

/// Days before `notAfter` from which a certificate counts as expiring soon.
pub const EXPIRY_WARNING_DAYS: i64 = 30;

/// Where the certificate stands in its validity period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "state")]
pub enum Validity {
    /// Valid for more than 30 days.
    Valid,
    /// Valid, but expires within 30 days.
    ExpiresSoon {
        /// Whole days left.
        days_left: i64,
    },
    /// `notAfter` has passed.
    Expired,
    /// `notBefore` is in the future.
    NotYetValid,
}

/// Something that makes the certificate unusable or needs attention.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Problem {
    /// The private key is not the certificate's key.
    KeyDoesNotMatch,
    /// The certificate's key is not RSA.
    NotRsa,
    /// Expired.
    Expired,
    /// Not yet valid.
    NotYetValid,
    /// Expires within 30 days (a warning: it still works).
    ExpiresSoon,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Problem::KeyDoesNotMatch => {
                "the private key does not belong to this certificate: paste the key the certificate was issued for"
            }
            Problem::NotRsa => "the certificate key is not RSA: Entra assertions are signed RS256/PS256, issue an RSA certificate",
            Problem::Expired => "the certificate has expired: issue a new one and upload it to the app registration",
            Problem::NotYetValid => "the certificate is not valid yet: check its notBefore date and this machine's clock",
            Problem::ExpiresSoon => "the certificate expires within 30 days: plan its renewal",
        })
    }
}

/// The result of "Validate certificate".
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CertificateReport {
    /// Subject DN.
    pub subject: String,
    /// Issuer DN.
    pub issuer: String,
    /// `notBefore`, RFC 3339.
    pub not_before: String,
    /// `notAfter`, RFC 3339.
    pub not_after: String,
    /// Validity now.
    pub validity: Validity,
    /// Whether the private key matches the certificate.
    pub key_matches: bool,
    /// SHA-1 of the DER, uppercase hex: the "Thumbprint" the Entra portal lists.
    pub sha1_thumbprint: String,
    /// SHA-256 of the DER, uppercase hex.
    pub sha256_thumbprint: String,
    /// `x5t` header value (base64url SHA-1).
    pub x5t: String,
    /// `x5t#S256` header value (base64url SHA-256).
    pub x5t_s256: String,
    /// Problems, most serious first; empty when the credential is good to use.
    pub problems: Vec<Problem>,
}

impl CertificateReport {
    /// Whether the credential can sign assertions Entra will accept (warnings allowed).
    pub fn is_usable(&self) -> bool {
        self.problems.iter().all(|p| *p == Problem::ExpiresSoon)
    }
}

/// The parsed certificate: DER and thumbprints, for the token client.
#[derive(Debug, Clone)]
pub(crate) struct ParsedCertificate {
    pub der: Vec<u8>,
    pub not_before: i64,
    pub not_after: i64,
}

impl ParsedCertificate {
    pub fn sha1(&self) -> Vec<u8> {
        sha1::Sha1::digest(&self.der).to_vec()
    }

    pub fn sha256(&self) -> Vec<u8> {
        sha2::Sha256::digest(&self.der).to_vec()
    }
}

/// Reads the first CERTIFICATE block of `pem`.
pub(crate) fn parse_certificate(pem: &str) -> Result<ParsedCertificate, CertificateError> {
    let der = first_certificate_der(pem)?;
    let (_, cert) =
        X509Certificate::from_der(&der).map_err(|e| CertificateError::Certificate(e.to_string()))?;
    let not_before = cert.validity().not_before.timestamp();
    let not_after = cert.validity().not_after.timestamp();
    Ok(ParsedCertificate { der, not_before, not_after })
}

fn first_certificate_der(pem: &str) -> Result<Vec<u8>, CertificateError> {
    for item in x509_parser::pem::Pem::iter_from_buffer(pem.as_bytes()) {
        match item {
            Ok(block) if block.label == "CERTIFICATE" => return Ok(block.contents),
            Ok(_) => continue,
            Err(_) => break,
        }
    }
    Err(CertificateError::NoCertificate)
}

/// Reads an unencrypted RSA private key (PKCS#8 or PKCS#1 PEM).
pub(crate) fn parse_private_key(pem: &SecretString) -> Result<rsa::RsaPrivateKey, CertificateError> {
    let text = pem.expose_secret().trim();
    rsa::RsaPrivateKey::from_pkcs8_pem(text)
        .or_else(|_| rsa::RsaPrivateKey::from_pkcs1_pem(text))
        .map_err(|_| CertificateError::PrivateKey)
}

/// Validates a certificate credential at `now` (unix seconds).
pub fn validate_certificate_at(
    certificate_pem: &str,
    private_key_pem: &SecretString,
    now: i64,
) -> Result<CertificateReport, CertificateError> {
    let der = first_certificate_der(certificate_pem)?;
    let (_, cert) =
        X509Certificate::from_der(&der).map_err(|e| CertificateError::Certificate(e.to_string()))?;
    let key = parse_private_key(private_key_pem)?;
    let mut problems = Vec::new();
    let key_matches = match cert.public_key().parsed() {
        Ok(x509_parser::public_key::PublicKey::RSA(rsa_key)) => {
            let matches = strip_zero(rsa_key.modulus) == key.n().to_bytes_be()
                && strip_zero(rsa_key.exponent) == key.e().to_bytes_be();
            if !matches {
                problems.push(Problem::KeyDoesNotMatch);
            }
            matches
        }
        _ => {
            problems.push(Problem::NotRsa);
            false
        }
    };
    let not_before = cert.validity().not_before.timestamp();
    let not_after = cert.validity().not_after.timestamp();
    let validity = if now < not_before {
        problems.push(Problem::NotYetValid);
        Validity::NotYetValid
    } else if now > not_after {
        problems.push(Problem::Expired);
        Validity::Expired
    } else if not_after - now < EXPIRY_WARNING_DAYS * 86_400 {
        problems.push(Problem::ExpiresSoon);
        Validity::ExpiresSoon { days_left: (not_after - now) / 86_400 }
    } else {
        Validity::Valid
    };
    let sha1 = sha1::Sha1::digest(&der);
    let sha256 = sha2::Sha256::digest(&der);
    Ok(CertificateReport {
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        not_before: rfc3339(not_before),
        not_after: rfc3339(not_after),
        validity,
        key_matches,
        sha1_thumbprint: hex::encode_upper(sha1),
        sha256_thumbprint: hex::encode_upper(sha256),
        x5t: keyward_webauthn::b64::encode(&sha1),
        x5t_s256: keyward_webauthn::b64::encode(&sha256),
        problems,
    })
}

/// Validates a certificate credential now.
pub fn validate_certificate(
    certificate_pem: &str,
    private_key_pem: &SecretString,
) -> Result<CertificateReport, CertificateError> {
    validate_certificate_at(certificate_pem, private_key_pem, now())
}

pub(crate) fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

pub(crate) fn rfc3339(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| unix.to_string())
}

fn strip_zero(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len().saturating_sub(1));
    &bytes[start..]
}
