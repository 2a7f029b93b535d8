//! A test attestation CA: an rcgen root and one P-256 attestation certificate meeting the
//! `packed` requirements. The emulator's registration tests and verification bench, the
//! connector's tests, the server's and the CLI's stacks all use this one chain, so a change to
//! what Entra demands of an attestation certificate is made here once.

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

/// A registration made by an independent test authenticator: p256 and CBOR written here, not
/// Keyward's soft key or CTAP client, so the emulator and Keyward's client cannot share a mistake.
pub struct PackedRegistration {
    /// The new credential's id (32 random bytes).
    pub credential_id: Vec<u8>,
    /// The clientDataJSON the attestation signs over.
    pub client_data_json: Vec<u8>,
    /// The attestationObject: `packed`, signed by the CA's attestation key, x5c = its certificate.
    pub attestation_object: Vec<u8>,
}

impl TestCa {
    /// A `packed` full-chain registration of a fresh ES256 credential on an authenticator of
    /// model `aaguid`, for `challenge` at `rp_id` from `origin`, user present and verified.
    pub fn packed_registration(
        &self,
        aaguid: [u8; 16],
        rp_id: &str,
        origin: &str,
        challenge: &str,
    ) -> PackedRegistration {
        use ciborium::Value as Cbor;
        use p256::ecdsa::Signature;
        use p256::ecdsa::signature::Signer;
        use sha2::{Digest, Sha256};

        let mut credential_id = vec![0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut credential_id);
        let client_data_json = serde_json::to_vec(&serde_json::json!({
            "type": "webauthn.create", "challenge": challenge, "origin": origin, "crossOrigin": false,
        }))
        .expect("JSON");
        let credential_key = SigningKey::random(&mut rand::thread_rng());
        let point = credential_key.verifying_key().to_encoded_point(false);
        let cose = Cbor::Map(vec![
            (Cbor::Integer(1.into()), Cbor::Integer(2.into())),
            (Cbor::Integer(3.into()), Cbor::Integer((-7).into())),
            (Cbor::Integer((-1).into()), Cbor::Integer(1.into())),
            (Cbor::Integer((-2).into()), Cbor::Bytes(point.x().expect("x").to_vec())),
            (Cbor::Integer((-3).into()), Cbor::Bytes(point.y().expect("y").to_vec())),
        ]);
        let mut auth_data = Sha256::digest(rp_id.as_bytes()).to_vec();
        auth_data.push(0x01 | 0x04 | 0x40); // UP | UV | AT
        auth_data.extend_from_slice(&0u32.to_be_bytes());
        auth_data.extend_from_slice(&aaguid);
        auth_data.extend_from_slice(&(credential_id.len() as u16).to_be_bytes());
        auth_data.extend_from_slice(&credential_id);
        ciborium::into_writer(&cose, &mut auth_data).expect("CBOR");
        let signed = [auth_data.as_slice(), &Sha256::digest(&client_data_json)[..]].concat();
        let signature: Signature = self.attestation_key.sign(&signed);
        let text = |s: &str| Cbor::Text(s.into());
        let statement = Cbor::Map(vec![
            (text("alg"), Cbor::Integer((-7).into())),
            (text("sig"), Cbor::Bytes(signature.to_der().as_bytes().to_vec())),
            (text("x5c"), Cbor::Array(vec![Cbor::Bytes(self.attestation_der.clone())])),
        ]);
        let object = Cbor::Map(vec![
            (text("fmt"), text("packed")),
            (text("attStmt"), statement),
            (text("authData"), Cbor::Bytes(auth_data)),
        ]);
        let mut attestation_object = vec![];
        ciborium::into_writer(&object, &mut attestation_object).expect("CBOR");
        PackedRegistration { credential_id, client_data_json, attestation_object }
    }
}
