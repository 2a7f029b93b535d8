//! Our CTAP client against an authenticator that is not ours: trussed's `fido-authenticator`
//! (crates.io `fido-authenticator` 0.4.0-rc.4, Apache-2.0 OR MIT, the FIDO app of the
//! Nitrokey 3 and SoloKeys 2 firmware) on trussed's host `virt` platform, behind trussed's own
//! CTAPHID device pipe. See `independent/mod.rs` for the harness.
//!
//! Nothing on the far side of the 64-byte reports is Keyward code, so these tests catch the
//! misreadings of CTAP 2.1 that our soft key would share with our client. Signatures and
//! authenticator data are checked here, in the test, with RustCrypto `p256` — not with
//! anything from `keyward-softkey` or `keyward-webauthn`.

mod independent;

use ciborium::value::Value;
use independent::attestation::Batch;
use independent::{MAX_RESIDENT_CREDENTIALS, with_attested_authenticator, with_authenticator};
use keyward_ctap::client::{PERMISSION_ACFG, PERMISSION_CM, PERMISSION_GA, PERMISSION_MC};
use keyward_ctap::{
    AuthData, CtapError, CtapStatus, GetAssertion, HmacSecretInput, MakeCredential, MinPinLength, PinProtocol,
};
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};
use secrecy::SecretString;
use sha2::{Digest, Sha256};
use std::time::Duration;
use zeroize::Zeroizing;

const RP: &str = "login.microsoft.com";
const PIN: &str = "271828";

/// authData flag bits (WebAuthn §6.1).
const UP: u8 = 0x01;
const UV: u8 = 0x04;
const BE_BS: u8 = 0x18;
const AT: u8 = 0x40;

fn pin(s: &str) -> SecretString {
    SecretString::from(s.to_owned())
}

fn request(user: &[u8]) -> MakeCredential {
    MakeCredential {
        client_data_hash: Sha256::digest([b"create:".as_slice(), user].concat()).into(),
        rp_id: RP.into(),
        rp_name: Some("Microsoft".into()),
        user_id: user.to_vec(),
        user_name: Some("ada@contoso.com".into()),
        user_display_name: Some("Ada Lovelace".into()),
        resident_key: true,
        hmac_secret: true,
        cred_protect: Some(2),
        ..MakeCredential::default()
    }
}

fn int_key(map: &[(Value, Value)], key: i64) -> Option<&Value> {
    map.iter().find(|(k, _)| k.as_integer() == Some(key.into())).map(|(_, v)| v)
}

fn text_key<'a>(map: &'a [(Value, Value)], key: &str) -> Option<&'a Value> {
    map.iter().find(|(k, _)| k.as_text() == Some(key)).map(|(_, v)| v)
}

/// The credential's ES256 public key from COSE (kty EC2, alg ES256, crv P-256).
fn verifying_key(cose: &Value) -> VerifyingKey {
    let m = cose.as_map().expect("COSE key is a map");
    let num = |k| int_key(m, k).and_then(Value::as_integer).map(i128::from);
    assert_eq!((num(1), num(3), num(-1)), (Some(2), Some(-7), Some(1)), "EC2 / ES256 / P-256");
    let coord = |k| int_key(m, k).and_then(Value::as_bytes).expect("x and y coordinates").clone();
    let point = p256::EncodedPoint::from_affine_coordinates(
        coord(-2).as_slice().into(),
        coord(-3).as_slice().into(),
        false,
    );
    VerifyingKey::from_encoded_point(&point).expect("public key is a P-256 point")
}

fn verify(key: &VerifyingKey, auth_data: &[u8], client_data_hash: &[u8; 32], der: &[u8]) {
    let sig = Signature::from_der(der).expect("ECDSA signature in DER");
    key.verify(&[auth_data, client_data_hash.as_slice()].concat(), &sig)
        .expect("signature over authData || clientDataHash verifies");
}

#[test]
fn get_info_and_ping_describe_a_fido_2_1_key_offering_pin_protocol_2() {
    with_authenticator(|mut c, _| {
        assert!(c.hid().info().supports_cbor());
        // 300 bytes need continuation packets in both directions.
        c.hid().ping(&[0x5A; 300]).unwrap();
        let info = c.get_info().unwrap();
        assert!(info.versions.iter().any(|v| v == "FIDO_2_1"), "{:?}", info.versions);
        assert!(info.pin_protocols.contains(&2), "{:?}", info.pin_protocols);
        for ext in ["hmac-secret", "credProtect"] {
            assert!(info.extensions.iter().any(|e| e == ext), "{ext} in {:?}", info.extensions);
        }
        for (option, value) in [
            ("rk", true),
            ("clientPin", false),
            ("credMgmt", true),
            ("authnrCfg", true),
            ("setMinPINLength", true),
        ] {
            assert_eq!(info.options.get(option), Some(&value), "option {option}");
        }
        assert_eq!(c.pin_protocol().unwrap(), PinProtocol::V2);
    });
}

/// The whole provisioning path, once per PIN protocol the key offers.
#[test]
fn set_pin_token_make_credential_and_assertion_with_each_offered_pin_protocol() {
    let offered = with_authenticator(|mut c, _| c.get_info().unwrap().pin_protocols);
    let protocols: Vec<PinProtocol> = [PinProtocol::V2, PinProtocol::V1]
        .into_iter()
        .filter(|p| offered.contains(&u64::from(p.number())))
        .collect();
    assert_eq!(protocols.first(), Some(&PinProtocol::V2));
    for protocol in protocols {
        with_authenticator(|mut c, _| provision_and_assert(&mut c, protocol));
    }
}

fn provision_and_assert<T: keyward_ctap::Transport>(c: &mut keyward_ctap::Client<T>, protocol: PinProtocol) {
    c.force_pin_protocol(Some(protocol));
    c.set_pin(&pin(PIN)).unwrap();
    assert_eq!(c.get_retries().unwrap(), 8);
    assert_eq!(c.get_info().unwrap().options.get("clientPin"), Some(&true));
    let req = request(b"user-ada");

    // A PIN is set, so a discoverable credential needs UV through a token.
    let err = c.make_credential(&req, None).unwrap_err();
    assert_eq!(err.status(), Some(CtapStatus::PuatRequired), "{protocol:?}: {err}");

    let token = c.get_pin_uv_auth_token(&pin(PIN), PERMISSION_MC | PERMISSION_GA, Some(RP)).unwrap();
    assert_eq!(token.protocol(), protocol);
    let att = c.make_credential(&req, Some(&token)).unwrap();
    assert_eq!(att.fmt, "packed");
    let auth = att.parsed().unwrap();
    assert_eq!(auth.rp_id_hash, <[u8; 32]>::from(Sha256::digest(RP)));
    assert_eq!(auth.flags & (UP | UV | AT), UP | UV | AT, "flags {:#04x}", auth.flags);
    assert_eq!(auth.flags & BE_BS, 0, "a hardware key's credential is device-bound");
    // Without a provisioned attestation key fido-authenticator reports its placeholder AAGUID,
    // in getInfo and in the attested credential data alike.
    assert_eq!(auth.aaguid, Some(*b"AAGUID0123456789"));
    assert_eq!(c.get_info().unwrap().aaguid, *b"AAGUID0123456789");
    let cred_id = auth.credential_id.clone().expect("attested credential data");
    let ext = auth.extensions.as_ref().and_then(Value::as_map).expect("extension outputs");
    assert_eq!(text_key(ext, "hmac-secret").and_then(Value::as_bool), Some(true));
    assert_eq!(text_key(ext, "credProtect").and_then(Value::as_integer), Some(2.into()));

    // Packed self attestation (no x5c): alg ES256, signed by the new credential's own key.
    let key = verifying_key(auth.public_key.as_ref().expect("credential public key"));
    let stmt: Value = ciborium::de::from_reader(att.att_stmt_raw()).unwrap();
    let stmt = stmt.as_map().unwrap();
    assert_eq!(text_key(stmt, "alg").and_then(Value::as_integer), Some((-7).into()));
    assert!(text_key(stmt, "x5c").is_none(), "no attestation certificate was provisioned");
    let sig = text_key(stmt, "sig").and_then(Value::as_bytes).unwrap();
    verify(&key, &att.auth_data, &req.client_data_hash, sig);
    // The attestation object handed to Entra carries the key's authData unchanged.
    let obj: Value = ciborium::de::from_reader(att.attestation_object().as_slice()).unwrap();
    assert_eq!(text_key(obj.as_map().unwrap(), "authData").and_then(Value::as_bytes), Some(&att.auth_data));

    // A token with only the getAssertion permission.
    let ga_token = c.get_pin_uv_auth_token(&pin(PIN), PERMISSION_GA, Some(RP)).unwrap();
    let cdh: [u8; 32] = Sha256::digest(b"assert").into();
    let a = c.get_assertion(RP, &cdh, &[], Some(&ga_token)).unwrap();
    assert_eq!(a.credential_id, cred_id);
    assert_eq!(a.user_id.as_deref(), Some(&b"user-ada"[..]));
    let ad = AuthData::parse(&a.auth_data).unwrap();
    assert_eq!(ad.rp_id_hash, auth.rp_id_hash);
    assert_eq!(ad.flags & (UP | UV), UP | UV);
    assert!(ad.sign_count > auth.sign_count, "{} after {}", ad.sign_count, auth.sign_count);
    verify(&key, &a.auth_data, &cdh, &a.signature);

    // credProtect 2 (userVerificationOptionalWithCredentialIDList): without UV the credential
    // is found only through its id.
    let err = c.get_assertion(RP, &cdh, &[], None).unwrap_err();
    assert_eq!(err.status(), Some(CtapStatus::NoCredentials), "{err}");
    let a = c.get_assertion(RP, &cdh, std::slice::from_ref(&cred_id), None).unwrap();
    let ad = AuthData::parse(&a.auth_data).unwrap();
    assert_eq!(ad.flags & (UP | UV), UP);
    verify(&key, &a.auth_data, &cdh, &a.signature);

    // excludeList naming the credential → the operator is told the key is already registered.
    let token = c.get_pin_uv_auth_token(&pin(PIN), PERMISSION_MC, Some(RP)).unwrap();
    let mut again = request(b"user-ada");
    again.exclude_list = vec![vec![7; 32], cred_id];
    let err = c.make_credential(&again, Some(&token)).unwrap_err();
    assert_eq!(err.status(), Some(CtapStatus::CredentialExcluded));
    assert!(err.to_string().contains("already holds a passkey"), "{err}");
}

/// With a vendor batch key provisioned, the key attests with it: x5c carries the batch
/// certificate, the AAGUID comes from that certificate, and the signature verifies with the
/// batch key (and not with the credential key).
#[test]
fn packed_attestation_with_a_provisioned_batch_certificate() {
    let batch = Batch::generate(*b"keyward-interop!");
    with_attested_authenticator(&batch, |mut c, _| {
        assert_eq!(c.get_info().unwrap().aaguid, batch.aaguid);
        c.set_pin(&pin(PIN)).unwrap();
        let token = c.get_pin_uv_auth_token(&pin(PIN), PERMISSION_MC, Some(RP)).unwrap();
        let req = request(b"user-ada");
        let att = c.make_credential(&req, Some(&token)).unwrap();
        assert_eq!(att.fmt, "packed");
        let auth = att.parsed().unwrap();
        assert_eq!(auth.aaguid, Some(batch.aaguid));
        assert_eq!(auth.flags & (UP | UV | AT), UP | UV | AT);
        let stmt: Value = ciborium::de::from_reader(att.att_stmt_raw()).unwrap();
        let stmt = stmt.as_map().unwrap();
        assert_eq!(text_key(stmt, "alg").and_then(Value::as_integer), Some((-7).into()));
        let x5c = text_key(stmt, "x5c").and_then(Value::as_array).expect("x5c");
        let x5c: Vec<&Vec<u8>> = x5c.iter().map(|c| c.as_bytes().unwrap()).collect();
        assert_eq!(x5c, [&batch.certificate_der]);
        let sig = text_key(stmt, "sig").and_then(Value::as_bytes).unwrap();
        verify(&batch.verifying_key(), &att.auth_data, &req.client_data_hash, sig);
        let credential_key = verifying_key(auth.public_key.as_ref().unwrap());
        let signed = [att.auth_data.as_slice(), &req.client_data_hash].concat();
        assert!(credential_key.verify(&signed, &Signature::from_der(sig).unwrap()).is_err());
    });
}

/// Credential management with tokens of each PIN protocol (protocol 1 truncates the
/// pinUvAuthParam to 16 bytes, protocol 2 does not).
#[test]
fn credential_management_enumerates_updates_and_deletes_with_both_pin_protocols() {
    for protocol in [PinProtocol::V2, PinProtocol::V1] {
        with_authenticator(|c, _| credential_management(c, protocol));
    }
}

fn credential_management<T: keyward_ctap::Transport>(mut c: keyward_ctap::Client<T>, protocol: PinProtocol) {
    c.force_pin_protocol(Some(protocol));
    c.set_pin(&pin(PIN)).unwrap();
    let mut ids = Vec::new();
    for user in [&b"user-ada"[..], b"user-bob"] {
        let token = c.get_pin_uv_auth_token(&pin(PIN), PERMISSION_MC, Some(RP)).unwrap();
        let att = c.make_credential(&request(user), Some(&token)).unwrap();
        ids.push(att.parsed().unwrap().credential_id.unwrap());
    }
    let token = c.get_pin_uv_auth_token(&pin(PIN), PERMISSION_CM, None).unwrap();
    assert_eq!(c.creds_metadata(&token).unwrap().existing, 2);
    let rps = c.enumerate_rps(&token).unwrap();
    assert_eq!(rps.len(), 1);
    assert_eq!(rps[0].id, RP);
    assert_eq!(rps[0].id_hash, Sha256::digest(RP).to_vec());
    let creds = c.enumerate_credentials(&token, &rps[0].id_hash).unwrap();
    let mut users: Vec<_> = creds.iter().map(|s| (s.id.clone(), s.user_id.clone())).collect();
    users.sort();
    let mut want = vec![(ids[0].clone(), b"user-ada".to_vec()), (ids[1].clone(), b"user-bob".to_vec())];
    want.sort();
    assert_eq!(users, want);
    assert!(creds.iter().all(|s| s.cred_protect == Some(2)));
    for s in &creds {
        verifying_key(&s.public_key);
    }

    // updateUserInformation replaces the names shown in enumeration.
    c.update_user_information(&token, &ids[1], b"user-bob", Some("bob@contoso.com"), Some("Bob B.")).unwrap();
    let creds = c.enumerate_credentials(&token, &rps[0].id_hash).unwrap();
    let bob = creds.iter().find(|s| s.id == ids[1]).unwrap();
    assert_eq!(
        (bob.user_name.as_deref(), bob.user_display_name.as_deref()),
        (Some("bob@contoso.com"), Some("Bob B."))
    );

    c.delete_credential(&token, &ids[0]).unwrap();
    let left = c.enumerate_credentials(&token, &rps[0].id_hash).unwrap();
    assert_eq!(left.iter().map(|s| s.id.clone()).collect::<Vec<_>>(), [ids[1].clone()]);
    assert_eq!(c.creds_metadata(&token).unwrap().existing, 1);
    let cdh = [0x11; 32];
    let err = c.get_assertion(RP, &cdh, std::slice::from_ref(&ids[0]), None).unwrap_err();
    assert_eq!(err.status(), Some(CtapStatus::NoCredentials), "{err}");
}

/// What the operator reads after each wrong PIN in a row on a fresh key (8 retries).
#[test]
fn wrong_pins_report_retries_left_then_ask_for_reinsertion() {
    with_authenticator(|mut c, _| {
        c.set_pin(&pin(PIN)).unwrap();
        let expected: [(&str, Result<u8, CtapStatus>); 3] = [
            ("first wrong PIN", Ok(7)),
            ("second wrong PIN", Ok(6)),
            ("third in a row", Err(CtapStatus::PinAuthBlocked)),
        ];
        for (what, want) in expected {
            let err = c.get_pin_uv_auth_token(&pin("000000"), PERMISSION_MC, Some(RP)).unwrap_err();
            match want {
                Ok(n) => {
                    assert!(
                        matches!(err, CtapError::PinInvalid { retries_left } if retries_left == n),
                        "{what}: {err}"
                    );
                    assert!(err.to_string().contains(&format!("{n} tries left")), "{what}: {err}");
                }
                Err(status) => {
                    assert_eq!(err.status(), Some(status), "{what}: {err}");
                    assert!(err.to_string().contains("remove and re-insert"), "{what}: {err}");
                }
            }
        }
        // Until re-insertion even the right PIN is refused, without costing a retry.
        let err = c.get_pin_token(&pin(PIN)).unwrap_err();
        assert_eq!(err.status(), Some(CtapStatus::PinAuthBlocked));
        assert_eq!(c.get_retries().unwrap(), 5);
    });
}

#[test]
fn change_pin_reports_a_wrong_current_pin_and_replaces_the_pin() {
    with_authenticator(|mut c, _| {
        c.set_pin(&pin(PIN)).unwrap();
        // A second setPIN must not replace the PIN: the client sees clientPin in getInfo and tells
        // the operator to change it instead. The old PIN still works and costs no retry.
        let err = c.set_pin(&pin("314159")).unwrap_err();
        assert!(matches!(err, CtapError::PinAlreadySet), "{err}");
        assert!(err.to_string().contains("change-pin"), "{err}");
        c.get_pin_token(&pin(PIN)).unwrap();
        assert_eq!(c.get_retries().unwrap(), 8);
        assert!(matches!(
            c.change_pin(&pin("000000"), &pin("314159")),
            Err(CtapError::PinInvalid { retries_left: 7 })
        ));
        c.change_pin(&pin(PIN), &pin("314159")).unwrap();
        assert!(matches!(c.get_pin_token(&pin(PIN)), Err(CtapError::PinInvalid { .. })));
        c.get_pin_uv_auth_token(&pin("314159"), PERMISSION_MC, Some(RP)).unwrap();
        assert_eq!(c.get_retries().unwrap(), 8);
    });
}

#[test]
fn reset_in_the_power_up_window_erases_pin_and_passkeys() {
    with_authenticator(|mut c, _| {
        c.set_pin(&pin(PIN)).unwrap();
        let token = c.get_pin_uv_auth_token(&pin(PIN), PERMISSION_MC, Some(RP)).unwrap();
        let cred_id = c.make_credential(&request(b"user-ada"), Some(&token)).unwrap();
        let cred_id = cred_id.parsed().unwrap().credential_id.unwrap();
        c.reset().unwrap();
        assert_eq!(c.get_info().unwrap().options.get("clientPin"), Some(&false));
        let err = c.get_assertion(RP, &[0x22; 32], &[cred_id], None).unwrap_err();
        assert_eq!(err.status(), Some(CtapStatus::NoCredentials), "{err}");
        // A new PIN can be set, as on a factory-new key.
        c.set_pin(&pin("314159")).unwrap();
    });
}

#[test]
fn reset_after_the_power_up_window_is_refused_with_advice() {
    with_authenticator(|mut c, uptime| {
        c.set_pin(&pin(PIN)).unwrap();
        uptime.add(Duration::from_secs(11));
        let err = c.reset().unwrap_err();
        assert_eq!(err.status(), Some(CtapStatus::NotAllowed), "{err}");
        let text = err.to_string();
        assert!(text.contains("re-insert") && text.contains("reset"), "{err}");
        // Nothing was erased.
        assert_eq!(c.get_info().unwrap().options.get("clientPin"), Some(&true));
    });
}

/// setMinPINLength rules as fido-authenticator applies them, one row each: (name, request,
/// expected status, minimum afterwards, forcePINChange afterwards). The PIN has 6 digits.
#[test]
fn set_min_pin_length_rules() {
    let req = |n: Option<u8>, rps: usize, force: bool| MinPinLength {
        new_min_pin_length: n,
        rp_ids: (0..rps).map(|i| format!("rp{i}.example")).collect(),
        force_change_pin: force,
    };
    let rows: [(&str, MinPinLength, Option<CtapStatus>, u8, bool); 6] = [
        ("raise below PIN length", req(Some(5), 0, false), None, 5, false),
        ("raise to PIN length", req(Some(6), 0, false), None, 6, false),
        ("raise above PIN length forces change", req(Some(8), 0, false), None, 8, true),
        ("lowering is refused", req(Some(3), 0, false), Some(CtapStatus::PinPolicyViolation), 4, false),
        ("explicit force", req(None, 0, true), None, 4, true),
        ("an rp id", req(None, 1, false), None, 4, false),
    ];
    for (name, request, want, min_after, force_after) in rows {
        with_authenticator(|mut c, _| {
            c.set_pin(&pin(PIN)).unwrap();
            let token = c.get_pin_uv_auth_token(&pin(PIN), PERMISSION_ACFG, None).unwrap();
            let got = c.set_min_pin_length(&token, &request).err().and_then(|e| e.status());
            assert_eq!(got, want, "{name}");
            let info = c.get_info().unwrap();
            assert_eq!((info.min_pin_length, info.force_pin_change), (min_after, force_after), "{name}");
        });
    }
}

#[test]
fn forced_pin_change_blocks_tokens_until_the_pin_is_changed_with_both_pin_protocols() {
    for protocol in [PinProtocol::V2, PinProtocol::V1] {
        with_authenticator(|c, _| forced_pin_change(c, protocol));
    }
}

fn forced_pin_change<T: keyward_ctap::Transport>(mut c: keyward_ctap::Client<T>, protocol: PinProtocol) {
    c.force_pin_protocol(Some(protocol));
    c.set_pin(&pin(PIN)).unwrap();
    let token = c.get_pin_uv_auth_token(&pin(PIN), PERMISSION_ACFG, None).unwrap();
    let force =
        MinPinLength { new_min_pin_length: Some(8), force_change_pin: true, ..MinPinLength::default() };
    c.set_min_pin_length(&token, &force).unwrap();
    let info = c.get_info().unwrap();
    assert_eq!((info.min_pin_length, info.force_pin_change), (8, true));
    let err = c.get_pin_uv_auth_token(&pin(PIN), PERMISSION_MC, Some(RP)).unwrap_err();
    assert_eq!(err.status(), Some(CtapStatus::PinPolicyViolation), "{err}");
    assert!(err.to_string().contains("choose a longer"), "{err}");
    // Our client refuses a too-short new PIN before sending it.
    assert!(matches!(c.change_pin(&pin(PIN), &pin("1234567")), Err(CtapError::PinLength { min: 8 })));
    c.change_pin(&pin(PIN), &pin("31415926")).unwrap();
    assert!(!c.get_info().unwrap().force_pin_change);
    c.get_pin_uv_auth_token(&pin("31415926"), PERMISSION_MC, Some(RP)).unwrap();
    // toggleAlwaysUv flips the option both ways.
    let token = c.get_pin_uv_auth_token(&pin("31415926"), PERMISSION_ACFG, None).unwrap();
    for want in [true, false] {
        c.toggle_always_uv(&token).unwrap();
        assert_eq!(c.get_info().unwrap().options.get("alwaysUv"), Some(&want));
    }
}

/// The harness limits the key to [`MAX_RESIDENT_CREDENTIALS`] passkeys; one more is refused
/// with advice, and deleting one through credential management makes room again.
#[test]
fn a_full_key_store_tells_the_operator_to_remove_passkeys() {
    with_authenticator(|mut c, _| {
        c.set_pin(&pin(PIN)).unwrap();
        let mut ids = Vec::new();
        let err = loop {
            let token = c.get_pin_uv_auth_token(&pin(PIN), PERMISSION_MC, Some(RP)).unwrap();
            let user = format!("user-{}", ids.len());
            match c.make_credential(&request(user.as_bytes()), Some(&token)) {
                Ok(att) => ids.push(att.parsed().unwrap().credential_id.unwrap()),
                Err(e) => break e,
            }
            assert!(ids.len() <= MAX_RESIDENT_CREDENTIALS, "the limit was not enforced");
        };
        assert_eq!(ids.len(), MAX_RESIDENT_CREDENTIALS);
        assert_eq!(err.status(), Some(CtapStatus::KeyStoreFull), "{err}");
        assert!(err.to_string().contains("remove unused passkeys"), "{err}");

        let token = c.get_pin_uv_auth_token(&pin(PIN), PERMISSION_CM, None).unwrap();
        c.delete_credential(&token, &ids[0]).unwrap();
        let token = c.get_pin_uv_auth_token(&pin(PIN), PERMISSION_MC, Some(RP)).unwrap();
        c.make_credential(&request(b"user-new"), Some(&token)).unwrap();
    });
}

/// hmac-secret end to end: our salts are encrypted with the PIN protocol's
/// shared secret, the key's outputs decrypted. Outputs are HMAC(CredRandom, salt), so they
/// must be stable across calls and PIN protocols, follow their salt, and differ with and
/// without UV (the key keeps one CredRandom for each).
#[test]
fn hmac_secret_outputs_are_stable_across_pin_protocols_and_follow_their_salts() {
    with_authenticator(|mut c, _| {
        c.set_pin(&pin(PIN)).unwrap();
        let token = c.get_pin_uv_auth_token(&pin(PIN), PERMISSION_MC, Some(RP)).unwrap();
        let att = c.make_credential(&request(b"user-ada"), Some(&token)).unwrap();
        let cred_id = att.parsed().unwrap().credential_id.unwrap();
        let (a, b) = ([0xA5; 32], [0x5A; 32]);
        let ask = |salt1: [u8; 32], salt2: Option<[u8; 32]>| GetAssertion {
            rp_id: RP.into(),
            client_data_hash: [0x33; 32],
            allow_list: vec![cred_id.clone()],
            hmac_secret: Some(HmacSecretInput {
                salt1: Zeroizing::new(salt1),
                salt2: salt2.map(Zeroizing::new),
            }),
        };
        let mut outputs = Vec::new();
        for protocol in [PinProtocol::V2, PinProtocol::V1, PinProtocol::V2] {
            c.force_pin_protocol(Some(protocol));
            let token = c.get_pin_uv_auth_token(&pin(PIN), PERMISSION_GA, Some(RP)).unwrap();
            let out = c.get_assertion_with(&ask(a, Some(b)), Some(&token)).unwrap().hmac_secret.unwrap();
            let swapped = c.get_assertion_with(&ask(b, Some(a)), Some(&token)).unwrap().hmac_secret.unwrap();
            let (oa, ob) = (*out.output1, *out.output2.expect("two salts, two outputs"));
            assert_ne!(oa, ob, "{protocol:?}: different salts");
            assert_eq!(
                (*swapped.output1, *swapped.output2.unwrap()),
                (ob, oa),
                "{protocol:?}: swapped salts"
            );
            outputs.push(oa);
        }
        assert!(outputs.iter().all(|o| *o == outputs[0]), "same salt, same output under protocols 2, 1, 2");
        // Without UV (credProtect 2 allows it with the credential id) the key uses its other
        // CredRandom.
        let no_uv = c.get_assertion_with(&ask(a, None), None).unwrap();
        let no_uv = no_uv.hmac_secret.unwrap();
        assert!(no_uv.output2.is_none());
        assert_ne!(*no_uv.output1, outputs[0]);
    });
}

/// Two discoverable credentials for one RP: getAssertion reports two, getNextAssertion returns
/// the other, and each signature verifies with its own credential key.
#[test]
fn get_next_assertion_walks_every_discoverable_credential_of_the_rp() {
    with_authenticator(|mut c, _| {
        c.set_pin(&pin(PIN)).unwrap();
        let mut keys = Vec::new();
        for user in [&b"user-ada"[..], b"user-bob"] {
            let token = c.get_pin_uv_auth_token(&pin(PIN), PERMISSION_MC, Some(RP)).unwrap();
            let auth = c.make_credential(&request(user), Some(&token)).unwrap().parsed().unwrap();
            keys.push((auth.credential_id.unwrap(), user.to_vec(), verifying_key(&auth.public_key.unwrap())));
        }
        let token = c.get_pin_uv_auth_token(&pin(PIN), PERMISSION_GA, Some(RP)).unwrap();
        let req = GetAssertion { rp_id: RP.into(), client_data_hash: [0x44; 32], ..GetAssertion::default() };
        let all = c.get_all_assertions(&req, Some(&token)).unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].number_of_credentials, Some(2));
        let mut users = Vec::new();
        for a in &all {
            let (_, user, key) =
                keys.iter().find(|(id, _, _)| *id == a.credential_id).expect("a known credential");
            assert_eq!(a.user_id.as_ref(), Some(user));
            verify(key, &a.auth_data, &req.client_data_hash, &a.signature);
            users.push(user.clone());
        }
        users.sort();
        assert_eq!(users, [b"user-ada".to_vec(), b"user-bob".to_vec()]);
    });
}
