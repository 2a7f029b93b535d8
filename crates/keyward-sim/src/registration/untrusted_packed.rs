//! `packed` attestation whose certificate fails the WebAuthn §8.2.1 requirements, checked by
//! its signature alone.
//!
//! Entra accepted a `packed` statement signed under a self-signed "Passkeys" CA with a
//! critical AAGUID extension when attestation was not enforced (DSInternals.Passkeys' live
//! test): it evidently verifies the signature but not the certificate's profile. The
//! emulator does the same by default: the statement must be ES256 and its signature must
//! verify with the leaf certificate's key over `authData ‖ SHA-256(clientDataJSON)`; the
//! passkey is then `notAttested`. `--strict` refuses such certificates as webauthn-rs-core
//! does.

use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};
use sha2::{Digest, Sha256};

use super::cbor::{self, Value as Cbor};

/// COSE ES256.
const ES256: i128 = -7;

/// Whether `att_stmt`'s ES256 signature verifies with its x5c leaf over the signed data.
pub(super) fn signature_verifies(att_stmt: &Cbor, auth_data: &[u8], client_data_json: &[u8]) -> bool {
    let alg = cbor::get_text_key(att_stmt, "alg").and_then(cbor::as_int);
    let sig = cbor::get_text_key(att_stmt, "sig").and_then(Cbor::as_bytes);
    let leaf = match cbor::get_text_key(att_stmt, "x5c") {
        Some(Cbor::Array(items)) => items.first().and_then(Cbor::as_bytes),
        _ => None,
    };
    let (Some(ES256), Some(sig), Some(leaf)) = (alg, sig, leaf) else { return false };
    let Ok((_, certificate)) = x509_parser::parse_x509_certificate(leaf) else { return false };
    let point = certificate.public_key().subject_public_key.data.as_ref();
    let (Ok(key), Ok(signature)) = (VerifyingKey::from_sec1_bytes(point), Signature::from_der(sig)) else {
        return false;
    };
    let signed = [auth_data, &Sha256::digest(client_data_json)[..]].concat();
    key.verify(&signed, &signature).is_ok()
}
