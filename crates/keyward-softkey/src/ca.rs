//! Attestation certificates for the soft key: a generated or user-supplied CA issues the
//! batch certificate that signs packed attestation statements.
//!
//! Entra (and any WebAuthn relying party that checks attestation) accepts a packed statement
//! only if its x5c leaf meets the FIDO packed-attestation certificate requirements: version 3,
//! subject C/O/OU="Authenticator Attestation"/CN, basicConstraints CA=false, and — when present —
//! the id-fido-gen-ce-aaguid extension (1.3.6.1.4.1.45724.1.1.4) equal to the AAGUID in the
//! authenticator data. `rcgen` (ring backend) writes the certificates; we only choose the
//! fields. An operator who wants the soft key trusted by a real tenant supplies their own CA
//! (PEM certificate + PKCS#8 key); otherwise a throw-away root is generated.

use p256::ecdsa::SigningKey;
use p256::pkcs8::DecodePrivateKey;
use rand::RngCore;
use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    PKCS_ECDSA_P256_SHA256, SerialNumber, date_time_ymd,
};
use secrecy::{ExposeSecret, SecretString};

use crate::authenticator::Attestation;

/// OID of the FIDO extension carrying the AAGUID in an attestation certificate.
pub const OID_FIDO_GEN_CE_AAGUID: &[u64] = &[1, 3, 6, 1, 4, 1, 45724, 1, 1, 4];

/// Subject organisational unit that FIDO requires in a batch attestation certificate.
pub const ATTESTATION_OU: &str = "Authenticator Attestation";

/// Why an attestation CA could not be created, loaded or used.
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    /// rcgen refused the parameters (should not happen with the fixed ones used here).
    #[error("cannot create the attestation certificate ({0}); this is a Keyward bug, please report it")]
    Generate(String),
    /// The CA certificate is not a PEM X.509 certificate.
    #[error(
        "the CA certificate is not a PEM X.509 certificate ({0}); pass the CA's PEM certificate to --ca-cert"
    )]
    Certificate(String),
    /// The CA key is not an unencrypted PKCS#8 PEM key of a supported type.
    #[error(
        "the CA key is not an unencrypted PKCS#8 PEM private key (P-256, P-384, Ed25519 or RSA); \
         pass a `-----BEGIN PRIVATE KEY-----` file to --ca-key"
    )]
    Key,
}

/// A CA that can issue batch attestation certificates.
pub struct AttestationCa {
    key: KeyPair,
    cert_der: Vec<u8>,
    cert_pem: String,
}

impl std::fmt::Debug for AttestationCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AttestationCa({} bytes of certificate, key redacted)", self.cert_der.len())
    }
}

/// A batch (leaf) certificate with its private key, ready for packed attestation.
pub struct BatchCertificate {
    /// The leaf's signing key.
    pub key: SigningKey,
    /// DER certificates, leaf first (the root is left out: verifiers hold it as trust anchor).
    pub x5c: Vec<Vec<u8>>,
}

impl std::fmt::Debug for BatchCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BatchCertificate({} certs, key redacted)", self.x5c.len())
    }
}

impl BatchCertificate {
    /// The packed attestation this certificate produces.
    pub fn into_attestation(self) -> Attestation {
        Attestation::Packed { key: self.key, x5c: self.x5c }
    }
}

fn random_serial() -> SerialNumber {
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes[0] &= 0x7F; // positive INTEGER
    bytes[0] |= 0x01; // and no leading zero byte to strip
    SerialNumber::from_slice(&bytes)
}

fn generate_error(e: rcgen::Error) -> CaError {
    CaError::Generate(e.to_string())
}

impl AttestationCa {
    /// Generates a fresh self-signed P-256 root ("Keyward Soft Key Attestation Root").
    pub fn generate() -> Result<Self, CaError> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(generate_error)?;
        let mut params = CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(DnType::CountryName, "US");
        params.distinguished_name.push(DnType::OrganizationName, "Keyward");
        params.distinguished_name.push(DnType::CommonName, "Keyward Soft Key Attestation Root");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.serial_number = Some(random_serial());
        params.not_before = date_time_ymd(2024, 1, 1);
        params.not_after = date_time_ymd(2054, 1, 1);
        let cert = params.self_signed(&key).map_err(generate_error)?;
        Ok(Self { cert_der: cert.der().to_vec(), cert_pem: cert.pem(), key })
    }

    /// Loads a CA from its PEM certificate and PKCS#8 PEM private key.
    pub fn from_pem(cert_pem: &str, key_pem: &SecretString) -> Result<Self, CaError> {
        let key = KeyPair::from_pem(key_pem.expose_secret()).map_err(|_| CaError::Key)?;
        let (_, pem) = x509_parser::pem::parse_x509_pem(cert_pem.as_bytes())
            .map_err(|e| CaError::Certificate(e.to_string()))?;
        if pem.label != "CERTIFICATE" {
            return Err(CaError::Certificate(format!("found a {} block", pem.label)));
        }
        // Parse once here so a bad certificate is reported when loading, not when issuing.
        Issuer::from_ca_cert_der(&pem.contents.as_slice().into(), &key)
            .map_err(|e| CaError::Certificate(e.to_string()))?;
        Ok(Self { cert_der: pem.contents, cert_pem: cert_pem.to_owned(), key })
    }

    /// The CA certificate in PEM form (what a verifier must trust).
    pub fn certificate_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA certificate in DER form.
    pub fn certificate_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// Issues a P-256 batch certificate for the given AAGUID, meeting the FIDO packed
    /// attestation certificate requirements.
    pub fn issue_batch(&self, aaguid: &[u8; 16]) -> Result<BatchCertificate, CaError> {
        let issuer = Issuer::from_ca_cert_der(&self.cert_der.as_slice().into(), &self.key)
            .map_err(|e| CaError::Certificate(e.to_string()))?;
        let leaf_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(generate_error)?;
        let mut params = CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(DnType::CountryName, "US");
        params.distinguished_name.push(DnType::OrganizationName, "Keyward");
        params.distinguished_name.push(DnType::OrganizationalUnitName, ATTESTATION_OU);
        params.distinguished_name.push(DnType::CommonName, "Keyward Soft Key Batch");
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.serial_number = Some(random_serial());
        params.not_before = date_time_ymd(2024, 1, 1);
        params.not_after = date_time_ymd(2054, 1, 1);
        params.use_authority_key_identifier_extension = true;
        // extnValue is an OCTET STRING that itself wraps the 16 AAGUID bytes.
        let mut content = vec![0x04, 16];
        content.extend_from_slice(aaguid);
        params.custom_extensions = vec![CustomExtension::from_oid_content(OID_FIDO_GEN_CE_AAGUID, content)];
        let cert = params.signed_by(&leaf_key, &issuer).map_err(generate_error)?;
        let key = SigningKey::from_pkcs8_der(leaf_key.serialized_der())
            .map_err(|e| CaError::Generate(format!("leaf key does not load: {e}")))?;
        Ok(BatchCertificate { key, x5c: vec![cert.der().to_vec()] })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::VerifyingKey;
    use p256::pkcs8::DecodePublicKey;
    use x509_parser::prelude::*;

    const AAGUID: [u8; 16] = *b"0123456789abcdef";

    fn leaf_checks(ca: &AttestationCa, batch: &BatchCertificate) {
        assert_eq!(batch.x5c.len(), 1);
        let (_, leaf) = X509Certificate::from_der(&batch.x5c[0]).unwrap();
        let (_, root) = X509Certificate::from_der(ca.certificate_der()).unwrap();
        assert_eq!(leaf.version(), X509Version::V3);
        let subject = leaf.subject();
        let first = |it: &mut dyn Iterator<Item = &AttributeTypeAndValue>| {
            it.next().and_then(|a| a.as_str().ok()).map(str::to_owned)
        };
        assert_eq!(first(&mut subject.iter_organizational_unit()).as_deref(), Some(ATTESTATION_OU));
        assert!(first(&mut subject.iter_country()).is_some_and(|c| c.len() == 2));
        assert!(first(&mut subject.iter_organization()).is_some());
        assert!(first(&mut subject.iter_common_name()).is_some());
        let bc = leaf.basic_constraints().unwrap().expect("basicConstraints present");
        assert!(!bc.value.ca);
        let ext = leaf
            .extensions()
            .iter()
            .find(|e| e.oid.to_id_string() == "1.3.6.1.4.1.45724.1.1.4")
            .expect("AAGUID extension");
        assert!(!ext.critical);
        assert_eq!(ext.value, [&[0x04, 16][..], &AAGUID].concat());
        assert_eq!(leaf.issuer(), root.subject());
        leaf.verify_signature(Some(root.public_key())).expect("leaf signed by the CA");
        // The key handed to the authenticator is the certificate's key.
        let public = VerifyingKey::from_public_key_der(leaf.public_key().raw).unwrap();
        assert_eq!(&public, batch.key.verifying_key());
    }

    #[test]
    fn generated_ca_issues_fido_compliant_batch_certificate() {
        let ca = AttestationCa::generate().unwrap();
        let (_, root) = X509Certificate::from_der(ca.certificate_der()).unwrap();
        assert!(root.basic_constraints().unwrap().unwrap().value.ca);
        let batch = ca.issue_batch(&AAGUID).unwrap();
        leaf_checks(&ca, &batch);
    }

    #[test]
    fn user_supplied_ca_is_loaded_from_pem_and_signs_the_leaf() {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, "Contoso Attestation CA");
        params.is_ca = IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign];
        let cert = params.self_signed(&key).unwrap();
        let ca = AttestationCa::from_pem(&cert.pem(), &SecretString::from(key.serialize_pem())).unwrap();
        let batch = ca.issue_batch(&AAGUID).unwrap();
        leaf_checks(&ca, &batch);
        let (_, leaf) = X509Certificate::from_der(&batch.x5c[0]).unwrap();
        assert!(leaf.issuer().to_string().contains("Contoso Attestation CA"));
    }

    #[test]
    fn bad_ca_files_are_refused_with_a_hint() {
        let ca = AttestationCa::generate().unwrap();
        let not_a_key = SecretString::from("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n");
        let e = AttestationCa::from_pem(ca.certificate_pem(), &not_a_key).unwrap_err();
        assert!(e.to_string().contains("--ca-key"), "{e}");
        let key = SecretString::from(KeyPair::generate().unwrap().serialize_pem());
        let e = AttestationCa::from_pem("not a certificate", &key).unwrap_err();
        assert!(e.to_string().contains("--ca-cert"), "{e}");
    }
}
