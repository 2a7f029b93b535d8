//! Conformance, extensions and CTAP 2.1 additions: hmac-secret (both PIN protocols),
//! getNextAssertion, minPinLength, enterprise attestation, credProtect levels, alwaysUv, and a
//! key that only speaks CTAP 2.0.

mod common;

use common::{RP, pin, request, setup, verifying_key};
use keyward_ctap::client::{PERMISSION_ACFG, PERMISSION_GA, PERMISSION_MC};
use keyward_ctap::{CtapStatus, GetAssertion, HmacSecretInput, MakeCredential, MinPinLength, PinProtocol};
use keyward_softkey::Config;
use p256::ecdsa::Signature;
use p256::ecdsa::signature::Verifier;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

const CDH: [u8; 32] = [0xCD; 32];

fn salts(a: u8, b: Option<u8>) -> HmacSecretInput {
    HmacSecretInput { salt1: Zeroizing::new([a; 32]), salt2: b.map(|b| Zeroizing::new([b; 32])) }
}

fn ga(allow: &[Vec<u8>], hmac: Option<HmacSecretInput>) -> GetAssertion {
    GetAssertion { rp_id: RP.into(), client_data_hash: CDH, allow_list: allow.to_vec(), hmac_secret: hmac }
}

#[test]
fn hmac_secret_outputs_are_stable_per_uv_and_independent_of_pin_protocol() {
    let (mut c, _key) = setup(Config::default());
    c.set_pin(&pin("1234")).unwrap();
    let t = c.get_pin_uv_auth_token(&pin("1234"), PERMISSION_MC | PERMISSION_GA, Some(RP)).unwrap();
    let att = c.make_credential(&request(b"ada"), Some(&t)).unwrap();
    let auth = att.parsed().unwrap();
    assert_eq!(auth.extension_outputs().hmac_secret, Some(true));
    let id = auth.credential_id.unwrap();
    let mut with_uv = Vec::new();
    for protocol in [PinProtocol::V2, PinProtocol::V1, PinProtocol::V2] {
        c.force_pin_protocol(Some(protocol));
        let t = c.get_pin_uv_auth_token(&pin("1234"), PERMISSION_GA, Some(RP)).unwrap();
        let a = c.get_assertion_with(&ga(&[], Some(salts(1, Some(2)))), Some(&t)).unwrap();
        let out = a.hmac_secret.expect("hmac-secret output");
        assert_ne!(out.output1, out.output2.clone().unwrap(), "two salts, two outputs");
        assert_eq!(format!("{out:?}"), "HmacSecretOutput([redacted])");
        with_uv.push(out);
    }
    assert!(with_uv.windows(2).all(|w| w[0] == w[1]), "same salt + UV → same secret, whatever the protocol");
    // Without UV (allow list, credProtect 2 permits it) the key uses its other CredRandom.
    c.force_pin_protocol(None);
    let a = c.get_assertion_with(&ga(std::slice::from_ref(&id), Some(salts(1, None))), None).unwrap();
    let no_uv = a.hmac_secret.unwrap();
    assert_eq!(no_uv.output2, None);
    assert_ne!(no_uv.output1, with_uv[0].output1);
    // Another salt gives another secret.
    let a = c.get_assertion_with(&ga(&[id], Some(salts(3, None))), None).unwrap();
    assert_ne!(a.hmac_secret.unwrap().output1, no_uv.output1);
    // A credential made without hmac-secret yields no output.
    let t = c.get_pin_uv_auth_token(&pin("1234"), PERMISSION_MC, Some(RP)).unwrap();
    let plain =
        c.make_credential(&MakeCredential { hmac_secret: false, ..request(b"bob") }, Some(&t)).unwrap();
    let plain_id = plain.parsed().unwrap().credential_id.unwrap();
    let a = c.get_assertion_with(&ga(&[plain_id], Some(salts(1, None))), None).unwrap();
    assert!(a.hmac_secret.is_none());
}

#[test]
fn get_next_assertion_walks_every_discoverable_credential() {
    let (mut c, _key) = setup(Config::default());
    c.set_pin(&pin("1234")).unwrap();
    let mut made = Vec::new();
    for user in [&b"ada"[..], b"bob", b"eve"] {
        let t = c.get_pin_uv_auth_token(&pin("1234"), PERMISSION_MC, Some(RP)).unwrap();
        let auth = c.make_credential(&request(user), Some(&t)).unwrap().parsed().unwrap();
        made.push((user.to_vec(), auth));
    }
    let t = c.get_pin_uv_auth_token(&pin("1234"), PERMISSION_GA, Some(RP)).unwrap();
    let all = c.get_all_assertions(&ga(&[], Some(salts(9, None))), Some(&t)).unwrap();
    assert_eq!(all[0].number_of_credentials, Some(3));
    let users: Vec<_> = all.iter().map(|a| a.user_id.clone().unwrap()).collect();
    assert_eq!(users, [b"eve".to_vec(), b"bob".to_vec(), b"ada".to_vec()], "newest first");
    for a in &all {
        let (_, auth) =
            made.iter().find(|(_, m)| m.credential_id.as_ref() == Some(&a.credential_id)).unwrap();
        let sig = Signature::from_der(&a.signature).unwrap();
        verifying_key(auth).verify(&[a.auth_data.as_slice(), &CDH].concat(), &sig).unwrap();
        assert!(a.hmac_secret.is_some(), "getNextAssertion answers decrypt with the same secret");
    }
    // Nothing left: NOT_ALLOWED; an allow list never reports a count.
    assert_eq!(c.get_next_assertion().unwrap_err().status(), Some(CtapStatus::NotAllowed));
    let id = all[0].credential_id.clone();
    let t = c.get_pin_uv_auth_token(&pin("1234"), PERMISSION_GA, Some(RP)).unwrap();
    assert_eq!(c.get_assertion_with(&ga(&[id], None), Some(&t)).unwrap().number_of_credentials, None);
}

#[test]
fn min_pin_length_extension_only_for_allowed_rp_ids() {
    let (mut c, _key) = setup(Config::default());
    c.set_pin(&pin("123456")).unwrap();
    let req = MakeCredential { min_pin_length: true, ..request(b"ada") };
    let t = c.get_pin_uv_auth_token(&pin("123456"), PERMISSION_MC, Some(RP)).unwrap();
    let out = c.make_credential(&req, Some(&t)).unwrap().parsed().unwrap().extension_outputs();
    assert_eq!(out.min_pin_length, None, "RP not allowed to read it yet");
    let t = c.get_pin_uv_auth_token(&pin("123456"), PERMISSION_ACFG, None).unwrap();
    let set = MinPinLength { new_min_pin_length: Some(6), rp_ids: vec![RP.into()], force_change_pin: false };
    c.set_min_pin_length(&t, &set).unwrap();
    let t = c.get_pin_uv_auth_token(&pin("123456"), PERMISSION_MC, Some(RP)).unwrap();
    let out = c.make_credential(&req, Some(&t)).unwrap().parsed().unwrap().extension_outputs();
    assert_eq!(out.min_pin_length, Some(6));
    assert_eq!((out.cred_protect, out.hmac_secret), (Some(2), Some(true)));
}

#[test]
fn enterprise_attestation_when_enabled_and_asked() {
    let (mut c, key) = setup(Config::default());
    c.set_pin(&pin("1234")).unwrap();
    let ea = |level| MakeCredential { enterprise_attestation: Some(level), ..request(b"ada") };
    let mc = |c: &mut keyward_ctap::Client<_>, level| {
        let t = c.get_pin_uv_auth_token(&pin("1234"), PERMISSION_MC, Some(RP)).unwrap();
        c.make_credential(&ea(level), Some(&t))
    };
    assert_eq!(mc(&mut c, 2).unwrap_err().status(), Some(CtapStatus::InvalidParameter), "not enabled");
    let t = c.get_pin_uv_auth_token(&pin("1234"), PERMISSION_ACFG, None).unwrap();
    c.enable_enterprise_attestation(&t).unwrap();
    // (level, RP configured for vendor-facilitated EA, expected epAtt)
    for (level, listed, want) in [(2, false, true), (1, false, false), (1, true, true)] {
        if listed {
            key.state().set_enterprise_rp_ids(vec![RP.into()]);
        }
        let att = mc(&mut c, level).unwrap();
        assert_eq!(att.ep_att, want, "level {level}, listed {listed}");
        assert_eq!(att.fmt, "packed");
    }
    assert_eq!(mc(&mut c, 3).unwrap_err().status(), Some(CtapStatus::InvalidOption));
    let t = c.get_pin_uv_auth_token(&pin("1234"), PERMISSION_MC, Some(RP)).unwrap();
    assert!(!c.make_credential(&request(b"bob"), Some(&t)).unwrap().ep_att, "not asked, not given");
}

/// credProtect (§12.1): (level, found discoverably without UV, found by id without UV,
/// excluded by id without UV). With UV every level is found.
#[test]
fn cred_protect_levels() {
    let rows = [(1u8, true, true, true), (2, false, true, true), (3, false, false, false)];
    for (level, discoverable, by_id, excluded) in rows {
        let (mut c, _key) = setup(Config::default());
        c.set_pin(&pin("1234")).unwrap();
        let t = c.get_pin_uv_auth_token(&pin("1234"), PERMISSION_MC | PERMISSION_GA, Some(RP)).unwrap();
        let req = MakeCredential { cred_protect: Some(level), ..request(b"ada") };
        let auth = c.make_credential(&req, Some(&t)).unwrap().parsed().unwrap();
        assert_eq!(auth.extension_outputs().cred_protect, Some(level));
        let id = auth.credential_id.unwrap();
        let found = |r: Result<keyward_ctap::Assertion, keyward_ctap::CtapError>| match r {
            Ok(_) => true,
            Err(e) if e.status() == Some(CtapStatus::NoCredentials) => false,
            Err(e) => panic!("level {level}: {e}"),
        };
        assert_eq!(found(c.get_assertion(RP, &CDH, &[], None)), discoverable, "level {level} discoverable");
        assert_eq!(
            found(c.get_assertion(RP, &CDH, std::slice::from_ref(&id), None)),
            by_id,
            "level {level} by id"
        );
        assert!(found(c.get_assertion(RP, &CDH, &[], Some(&t))), "level {level} with UV");
        let non_rk =
            MakeCredential { resident_key: false, exclude_list: vec![id.clone()], ..request(b"bob") };
        let got = c.make_credential(&non_rk, None).err().and_then(|e| e.status());
        assert_eq!(got == Some(CtapStatus::CredentialExcluded), excluded, "level {level} excluded");
        let with_uv =
            c.make_credential(&MakeCredential { exclude_list: vec![id], ..request(b"bob") }, Some(&t));
        assert_eq!(with_uv.unwrap_err().status(), Some(CtapStatus::CredentialExcluded), "level {level} + UV");
    }
}

#[test]
fn always_uv_requires_a_token_for_everything() {
    let (mut c, _key) = setup(Config::default());
    c.set_pin(&pin("1234")).unwrap();
    let non_rk = MakeCredential { resident_key: false, cred_protect: None, ..request(b"ada") };
    let id = c.make_credential(&non_rk, None).unwrap().parsed().unwrap().credential_id.unwrap();
    let t = c.get_pin_uv_auth_token(&pin("1234"), PERMISSION_ACFG, None).unwrap();
    c.toggle_always_uv(&t).unwrap();
    assert_eq!(c.get_info().unwrap().options.get("alwaysUv"), Some(&true));
    assert_eq!(c.make_credential(&non_rk, None).unwrap_err().status(), Some(CtapStatus::PuatRequired));
    let err = c.get_assertion(RP, &CDH, std::slice::from_ref(&id), None).unwrap_err();
    assert_eq!(err.status(), Some(CtapStatus::PuatRequired));
    assert!(err.to_string().contains("enter the PIN"));
    let t = c.get_pin_uv_auth_token(&pin("1234"), PERMISSION_MC | PERMISSION_GA, Some(RP)).unwrap();
    c.make_credential(&non_rk, Some(&t)).unwrap();
    assert_eq!(c.get_assertion(RP, &CDH, &[id], Some(&t)).unwrap().auth_data[32] & 0x04, 0x04, "UV");
}

/// A CTAP 2.0 key: protocol 1 is chosen by itself and getPinToken replaces the 2.1 token call.
#[test]
fn ctap_2_0_key_gets_protocol_1_and_get_pin_token() {
    let (mut c, key) = setup(Config::default());
    key.state().set_ctap20_only(true);
    let info = c.get_info().unwrap();
    assert_eq!((info.versions, info.pin_protocols), (vec!["FIDO_2_0".to_owned()], vec![1]));
    assert_eq!(c.pin_protocol().unwrap(), PinProtocol::V1);
    c.set_pin(&pin("1234")).unwrap();
    let t = c.get_pin_uv_auth_token(&pin("1234"), PERMISSION_MC, Some(RP)).unwrap();
    assert_eq!(t.protocol(), PinProtocol::V1);
    let req = MakeCredential { cred_protect: None, ..request(b"ada") };
    let auth = c.make_credential(&req, Some(&t)).unwrap().parsed().unwrap();
    assert_eq!(auth.flags & 0x05, 0x05, "UP and UV");
    assert_eq!(auth.rp_id_hash, <[u8; 32]>::from(Sha256::digest(RP)));
    let a = c.get_assertion_with(&ga(&[], Some(salts(4, None))), Some(&t)).unwrap();
    assert!(a.hmac_secret.is_some(), "hmac-secret over protocol 1");
    assert_eq!(c.selection().unwrap_err().status(), Some(CtapStatus::InvalidCommand));
}
