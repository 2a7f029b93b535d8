//! A test attestation CA: an rcgen root and one P-256 attestation certificate meeting the
//! `packed` requirements, shared by the registration tests and the verification bench so
//! both exercise the same chain. Included with `#[path]`; not a test target of its own.

use p256::ecdsa::SigningKey;

/// A P-256 public key as rcgen needs it to certify a key it does not hold.
pub struct P256Public(Vec<u8>);

impl rcgen::PublicKeyData for P256Public {
    fn der_bytes(&self) -> &[u8] {
        &self.0
    }
    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        &rcgen::PKCS_ECDSA_P256_SHA256
    }
}

/// A test attestation CA and one attestation certificate issued by it.
pub struct TestCa {
    /// The root, PEM (goes into the seed's `attestationRootsPem`).
    pub ca_pem: String,
    /// The attestation private key.
    pub attestation_key: SigningKey,
    /// The attestation certificate, DER.
    pub attestation_der: Vec<u8>,
}

/// A fresh root and an attestation certificate for `aaguid` with subject OU `ou`.
pub fn test_ca(aaguid: [u8; 16], ou: &str) -> TestCa {
    test_ca_with_aaguid_criticality(aaguid, ou, false)
}

/// As [`test_ca`], with the AAGUID extension marked critical when `critical` (WebAuthn
/// §8.2.1 forbids it; DSInternals.Passkeys' "Passkeys" test CA does it).
#[allow(dead_code)] // Used by the registration tests, not by the bench.
pub fn test_ca_with_aaguid_criticality(aaguid: [u8; 16], ou: &str, critical: bool) -> TestCa {
    let ca_key = rcgen::KeyPair::generate().expect("test CA generation");
    let mut ca_params = rcgen::CertificateParams::default();
    ca_params.distinguished_name.push(rcgen::DnType::CommonName, "Keyward Test Attestation Root");
    ca_params.distinguished_name.push(rcgen::DnType::OrganizationName, "Keyward Tests");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::CrlSign];
    ca_params.not_before = rcgen::date_time_ymd(2024, 1, 1);
    ca_params.not_after = rcgen::date_time_ymd(2099, 1, 1);
    let ca_cert = ca_params.self_signed(&ca_key).expect("test CA generation");
    let issuer = rcgen::Issuer::new(ca_params, ca_key);

    let attestation_key = SigningKey::random(&mut rand::thread_rng());
    let spki = P256Public(attestation_key.verifying_key().to_encoded_point(false).as_bytes().to_vec());
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name.push(rcgen::DnType::CountryName, "SE");
    params.distinguished_name.push(rcgen::DnType::OrganizationName, "Keyward Test Vendor");
    params.distinguished_name.push(rcgen::DnType::OrganizationalUnitName, ou);
    params.distinguished_name.push(rcgen::DnType::CommonName, "Keyward Test Key Attestation");
    params.is_ca = rcgen::IsCa::ExplicitNoCa;
    params.not_before = rcgen::date_time_ymd(2024, 1, 1);
    params.not_after = rcgen::date_time_ymd(2099, 1, 1);
    let mut ext = vec![0x04, 0x10];
    ext.extend_from_slice(&aaguid);
    let mut aaguid_extension =
        rcgen::CustomExtension::from_oid_content(&[1, 3, 6, 1, 4, 1, 45724, 1, 1, 4], ext);
    aaguid_extension.set_criticality(critical);
    params.custom_extensions = vec![aaguid_extension];
    let cert = params.signed_by(&spki, &issuer).expect("test CA generation");
    TestCa { ca_pem: ca_cert.pem(), attestation_key, attestation_der: cert.der().to_vec() }
}
