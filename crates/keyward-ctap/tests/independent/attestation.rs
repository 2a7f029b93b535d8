//! A batch attestation key and certificate for trussed's `fido-authenticator`, made per test run.
//!
//! Real keys ship with a vendor batch certificate; `fido-authenticator` loads one from its
//! internal filesystem (`fido/sec/00`, the P-256 key in trussed's serialized-key format, and
//! `fido/x5c/00`, the DER certificate, whose AAGUID extension it reports). We generate both
//! instead of copying the Nitrokey test files, so the test knows the attestation public key
//! and AAGUID it must find in the answer. The CA and the certificate come from `rcgen` (as in
//! our other attestation tests); the key is a RustCrypto `p256` key because trussed needs the
//! raw scalar, which `rcgen` does not hand out.

use p256::ecdsa::{SigningKey, VerifyingKey};
use zeroize::Zeroizing;

/// OID 1.3.6.1.4.1.45724.1.1.4, id-fido-gen-ce-aaguid.
const OID_FIDO_GEN_CE_AAGUID: &[u64] = &[1, 3, 6, 1, 4, 1, 45724, 1, 1, 4];

/// trussed key flags "sensitive" (a secret key) and key kind P-256, both big-endian u16.
const TRUSSED_P256_SECRET_HEADER: [u8; 4] = [0x00, 0x02, 0x00, 0x05];

/// A P-256 public key as rcgen needs it to certify a key it does not hold.
struct P256Public(Vec<u8>);

impl rcgen::PublicKeyData for P256Public {
    fn der_bytes(&self) -> &[u8] {
        &self.0
    }
    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        &rcgen::PKCS_ECDSA_P256_SHA256
    }
}

/// A batch attestation key and its certificate, issued by a throw-away root.
pub struct Batch {
    /// The AAGUID written into the certificate.
    pub aaguid: [u8; 16],
    /// The attestation key (its public half verifies attestation signatures).
    key: SigningKey,
    /// The batch certificate, DER.
    pub certificate_der: Vec<u8>,
}

impl Batch {
    /// A fresh root and a packed-attestation batch certificate for `aaguid`.
    pub fn generate(aaguid: [u8; 16]) -> Self {
        let root_key = rcgen::KeyPair::generate().expect("root key");
        let mut root = rcgen::CertificateParams::default();
        root.distinguished_name.push(rcgen::DnType::CommonName, "Keyward Interop Test Root");
        root.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        root.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign];
        let issuer = rcgen::Issuer::new(root, root_key);

        let key = SigningKey::random(&mut rand::thread_rng());
        let spki = P256Public(key.verifying_key().to_encoded_point(false).as_bytes().to_vec());
        let mut params = rcgen::CertificateParams::default();
        params.distinguished_name.push(rcgen::DnType::CountryName, "SE");
        params.distinguished_name.push(rcgen::DnType::OrganizationName, "Keyward Interop Vendor");
        params.distinguished_name.push(rcgen::DnType::OrganizationalUnitName, "Authenticator Attestation");
        params.distinguished_name.push(rcgen::DnType::CommonName, "Keyward Interop Batch");
        params.is_ca = rcgen::IsCa::ExplicitNoCa;
        // extnValue is an OCTET STRING wrapping the 16 AAGUID bytes.
        let mut content = vec![0x04, 0x10];
        content.extend_from_slice(&aaguid);
        params.custom_extensions =
            vec![rcgen::CustomExtension::from_oid_content(OID_FIDO_GEN_CE_AAGUID, content)];
        let cert = params.signed_by(&spki, &issuer).expect("batch certificate");
        Self { aaguid, key, certificate_der: cert.der().to_vec() }
    }

    /// The key that must verify the authenticator's attestation signatures.
    pub fn verifying_key(&self) -> VerifyingKey {
        *self.key.verifying_key()
    }

    /// The key in trussed's serialized form: flags, kind, then the 32-byte scalar.
    pub fn trussed_key_file(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(TRUSSED_P256_SECRET_HEADER.to_vec());
        out.extend_from_slice(&self.key.to_bytes());
        out
    }
}
