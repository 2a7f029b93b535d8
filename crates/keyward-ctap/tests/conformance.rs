//! Conformance: our CTAP client against the independent soft authenticator over CTAPHID on the
//! in-memory transport. A disagreement here means one side misreads the spec. This file covers
//! getInfo, clientPIN, makeCredential/getAssertion basics, config and credential management;
//! `extensions.rs`, `errors.rs` and `ctaphid.rs` cover the rest.

mod common;

use ciborium::value::Value;
use common::{RP, pin, request, setup, timeouts, verifying_key};
use keyward_ctap::client::{PERMISSION_ACFG, PERMISSION_CM, PERMISSION_GA, PERMISSION_MC};
use keyward_ctap::{
    AuthData, Client, CtapError, CtapStatus, HidDevice, MakeCredential, MinPinLength, PinProtocol,
};
use keyward_softkey::Config;
use p256::ecdsa::Signature;
use p256::ecdsa::signature::Verifier;
use sha2::{Digest, Sha256};

#[test]
fn get_info_ping_and_wink() {
    let (mut c, key) = setup(Config::default());
    assert!(c.hid().info().supports_cbor());
    c.hid().ping(&[0x5A; 300]).unwrap();
    c.hid().wink().unwrap();
    assert_eq!(key.state().winks(), 1);
    let info = c.get_info().unwrap();
    assert_eq!(info.versions, ["FIDO_2_0", "FIDO_2_1"]);
    assert!(
        info.extensions.contains(&"hmac-secret".into()) && info.extensions.contains(&"credProtect".into())
    );
    assert_eq!(info.pin_protocols, [2, 1]);
    assert_eq!(info.aaguid, *b"keyward-softkey!");
    assert_eq!(info.options.get("clientPin"), Some(&false));
    assert_eq!(c.pin_protocol().unwrap(), PinProtocol::V2);
}

#[test]
fn change_pin_and_policy() {
    let (mut c, _key) = setup(Config { min_pin_length: 6, ..Config::default() });
    assert_eq!(c.get_info().unwrap().min_pin_length, 6);
    c.set_pin(&pin("123456")).unwrap();
    assert!(matches!(
        c.change_pin(&pin("000000"), &pin("654321")),
        Err(CtapError::PinInvalid { retries_left: 7 })
    ));
    c.change_pin(&pin("123456"), &pin("654321")).unwrap();
    assert!(c.get_pin_token(&pin("123456")).is_err());
    c.get_pin_token(&pin("654321")).unwrap();
}

#[test]
fn make_credential_rk_uv_both_protocols_exclude_and_assert() {
    for protocol in [PinProtocol::V2, PinProtocol::V1] {
        let (mut c, key) = setup(Config::default());
        c.force_pin_protocol(Some(protocol));
        c.set_pin(&pin("1234")).unwrap();
        let req = request(b"user-1");
        // rk with a PIN set but no token → PUAT_REQUIRED.
        assert_eq!(c.make_credential(&req, None).unwrap_err().status(), Some(CtapStatus::PuatRequired));
        let token = c.get_pin_uv_auth_token(&pin("1234"), PERMISSION_MC | PERMISSION_GA, Some(RP)).unwrap();
        assert_eq!(token.protocol(), protocol);
        let att = c.make_credential(&req, Some(&token)).unwrap();
        assert_eq!(att.fmt, "packed");
        let auth = att.parsed().unwrap();
        assert_eq!(auth.rp_id_hash, <[u8; 32]>::from(Sha256::digest(RP)));
        assert_eq!(auth.flags & 0x45, 0x45, "UP, UV, AT");
        assert_eq!(auth.flags & 0x18, 0, "BE/BS must be 0");
        assert_eq!(auth.aaguid, Some(*b"keyward-softkey!"));
        let cred_id = auth.credential_id.clone().unwrap();
        assert_eq!(key.state().hmac_secret_enabled(&cred_id), Some(true));
        // The attestation object is canonical text-keyed CBOR with the same values.
        let obj: Value = ciborium::de::from_reader(att.attestation_object().as_slice()).unwrap();
        let m = obj.as_map().unwrap();
        assert_eq!(
            m.iter().map(|(k, _)| k.as_text().unwrap()).collect::<Vec<_>>(),
            ["fmt", "attStmt", "authData"]
        );
        assert_eq!(m[2].1.as_bytes().unwrap(), &att.auth_data);
        // Self attestation verifies with the credential key.
        let stmt = m[1].1.as_map().unwrap();
        let sig = stmt.iter().find(|(k, _)| k.as_text() == Some("sig")).unwrap().1.as_bytes().unwrap();
        let vk = verifying_key(&auth);
        vk.verify(
            &[att.auth_data.as_slice(), &req.client_data_hash].concat(),
            &Signature::from_der(sig).unwrap(),
        )
        .unwrap();
        // Token bound to another RP is refused.
        let mut other = request(b"user-2");
        other.rp_id = "evil.example".into();
        assert_eq!(
            c.make_credential(&other, Some(&token)).unwrap_err().status(),
            Some(CtapStatus::PinAuthInvalid)
        );
        // excludeList with the new credential → CREDENTIAL_EXCLUDED.
        let mut again = request(b"user-1");
        again.exclude_list = vec![vec![1; 16], cred_id.clone()];
        let err = c.make_credential(&again, Some(&token)).unwrap_err();
        assert_eq!(err.status(), Some(CtapStatus::CredentialExcluded));
        assert!(err.to_string().contains("already holds a passkey"));
        // getAssertion (discoverable, with UV) verifies against the public key from authData.
        let cdh: [u8; 32] = Sha256::digest(b"assert").into();
        let a = c.get_assertion(RP, &cdh, &[], Some(&token)).unwrap();
        assert_eq!(a.credential_id, cred_id);
        assert_eq!(a.user_id.as_deref(), Some(&b"user-1"[..]));
        let ad = AuthData::parse(&a.auth_data).unwrap();
        assert_eq!((ad.flags & 0x05, ad.sign_count), (0x05, 1));
        vk.verify(&[a.auth_data.as_slice(), &cdh].concat(), &Signature::from_der(&a.signature).unwrap())
            .unwrap();
        // credProtect 2: without UV and without an allow list the credential is invisible.
        assert_eq!(
            c.get_assertion(RP, &cdh, &[], None).unwrap_err().status(),
            Some(CtapStatus::NoCredentials)
        );
        assert!(c.get_assertion(RP, &cdh, &[cred_id], None).is_ok());
        // Reset right after re-insertion erases everything.
        key.reinsert();
        c.reset().unwrap();
        assert_eq!(key.state().resident_count(), 0);
        assert_eq!(c.get_info().unwrap().options.get("clientPin"), Some(&false));
    }
}

/// The same client over a real stream socket (tcp and unix), against the soft key's `serve`.
#[test]
fn socket_transport_against_served_soft_key() {
    let dir = std::env::temp_dir().join(format!("keyward-ctap-sock-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let unix = format!("unix:{}", dir.join("key.sock").display());
    for listen in ["tcp:127.0.0.1:0", unix.as_str()] {
        let served = keyward_softkey::serve(listen, Config::default()).unwrap();
        let t = keyward_ctap::SocketTransport::connect(served.address()).unwrap();
        let hid = HidDevice::open(t, timeouts()).unwrap();
        let mut c = Client::new(hid);
        c.hid().ping(&[0xA5; 200]).unwrap();
        assert_eq!(c.get_info().unwrap().aaguid, *b"keyward-softkey!");
        c.set_pin(&pin("1234")).unwrap();
        let token = c.get_pin_uv_auth_token(&pin("1234"), PERMISSION_MC, Some(RP)).unwrap();
        c.make_credential(&request(b"socket-user"), Some(&token)).unwrap();
        assert_eq!(served.state().resident_count(), 1, "{listen}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn get_info_advertises_config_and_credential_management() {
    let (mut c, _key) = setup(Config::default());
    let info = c.get_info().unwrap();
    for option in ["credMgmt", "authnrCfg", "setMinPINLength"] {
        assert_eq!(info.options.get(option), Some(&true), "{option}");
    }
}

/// setMinPINLength rules, one row each: (current min, PIN length, request, expected status,
/// min afterwards, forcePINChange afterwards).
#[test]
fn set_min_pin_length_rules() {
    let req = |n: Option<u8>, rps: usize, force: bool| MinPinLength {
        new_min_pin_length: n,
        rp_ids: (0..rps).map(|i| format!("rp{i}.example")).collect(),
        force_change_pin: force,
    };
    let rows: [(&str, MinPinLength, Option<CtapStatus>, u8, bool); 7] = [
        ("raise below PIN length", req(Some(5), 0, false), None, 5, false),
        ("raise to PIN length", req(Some(6), 0, false), None, 6, false),
        ("raise above PIN length forces change", req(Some(8), 0, false), None, 8, true),
        ("lowering is refused", req(Some(3), 0, false), Some(CtapStatus::PinPolicyViolation), 4, false),
        ("explicit force", req(None, 0, true), None, 4, true),
        ("rp ids within limit", req(None, 4, false), None, 4, false),
        ("too many rp ids", req(None, 5, false), Some(CtapStatus::InvalidParameter), 4, false),
    ];
    for (name, request, want, min_after, force_after) in rows {
        let (mut c, _key) = setup(Config::default());
        c.set_pin(&pin("123456")).unwrap();
        let token = c.get_pin_uv_auth_token(&pin("123456"), PERMISSION_ACFG, None).unwrap();
        let got = c.set_min_pin_length(&token, &request).err().and_then(|e| e.status());
        assert_eq!(got, want, "{name}");
        let info = c.get_info().unwrap();
        assert_eq!((info.min_pin_length, info.force_pin_change), (min_after, force_after), "{name}");
    }
}

#[test]
fn forced_pin_change_blocks_tokens_until_change_pin() {
    let (mut c, _key) = setup(Config::default());
    c.set_pin(&pin("1234")).unwrap();
    // A token without the acfg permission is refused.
    let mc = c.get_pin_uv_auth_token(&pin("1234"), PERMISSION_MC, Some(RP)).unwrap();
    let force = MinPinLength { force_change_pin: true, ..MinPinLength::default() };
    assert_eq!(c.set_min_pin_length(&mc, &force).unwrap_err().status(), Some(CtapStatus::PinAuthInvalid));
    let token = c.get_pin_uv_auth_token(&pin("1234"), PERMISSION_ACFG, None).unwrap();
    c.set_min_pin_length(&token, &MinPinLength { new_min_pin_length: Some(6), ..force.clone() }).unwrap();
    assert!(c.get_info().unwrap().force_pin_change);
    // The old token is gone and no new one is issued, even with the right PIN.
    assert_eq!(c.toggle_always_uv(&token).unwrap_err().status(), Some(CtapStatus::PinAuthInvalid));
    let err = c.get_pin_uv_auth_token(&pin("1234"), PERMISSION_MC, Some(RP)).unwrap_err();
    assert_eq!(err.status(), Some(CtapStatus::PinPolicyViolation));
    assert!(matches!(c.change_pin(&pin("1234"), &pin("12345")), Err(CtapError::PinLength { min: 6 })));
    c.change_pin(&pin("1234"), &pin("135790")).unwrap();
    assert!(!c.get_info().unwrap().force_pin_change);
    c.get_pin_uv_auth_token(&pin("135790"), PERMISSION_MC, Some(RP)).unwrap();
    // toggleAlwaysUv flips the option both ways.
    let token = c.get_pin_uv_auth_token(&pin("135790"), PERMISSION_ACFG, None).unwrap();
    c.toggle_always_uv(&token).unwrap();
    assert_eq!(c.get_info().unwrap().options.get("alwaysUv"), Some(&true));
    c.toggle_always_uv(&token).unwrap();
    assert_eq!(c.get_info().unwrap().options.get("alwaysUv"), Some(&false));
    c.enable_enterprise_attestation(&token).unwrap();
    assert_eq!(c.get_info().unwrap().options.get("ep"), Some(&true));
    // Raising the minimum above the current PIN's length forces a change by itself.
    let (mut fresh, _k) = setup(Config::default());
    fresh.set_pin(&pin("1234")).unwrap();
    let t = fresh.get_pin_uv_auth_token(&pin("1234"), PERMISSION_ACFG, None).unwrap();
    fresh
        .set_min_pin_length(&t, &MinPinLength { new_min_pin_length: Some(5), ..MinPinLength::default() })
        .unwrap();
    assert!(fresh.get_info().unwrap().force_pin_change, "PIN shorter than the new minimum");
}

#[test]
fn credential_management_enumerate_update_delete() {
    let (mut c, key) = setup(Config::default());
    c.set_pin(&pin("1234")).unwrap();
    let mut ids = Vec::new();
    for (rp, user) in [(RP, &b"ada"[..]), (RP, b"bob"), ("example.org", b"eve")] {
        let t = c.get_pin_uv_auth_token(&pin("1234"), PERMISSION_MC, Some(rp)).unwrap();
        let att = c.make_credential(&MakeCredential { rp_id: rp.into(), ..request(user) }, Some(&t)).unwrap();
        ids.push(att.parsed().unwrap().credential_id.unwrap());
    }
    // A token without the cm permission is refused.
    let ga = c.get_pin_uv_auth_token(&pin("1234"), PERMISSION_GA, Some(RP)).unwrap();
    assert_eq!(c.creds_metadata(&ga).unwrap_err().status(), Some(CtapStatus::PinAuthInvalid));
    let t = c.get_pin_uv_auth_token(&pin("1234"), PERMISSION_CM, None).unwrap();
    let meta = c.creds_metadata(&t).unwrap();
    assert_eq!((meta.existing, meta.remaining), (3, 22));
    let rps = c.enumerate_rps(&t).unwrap();
    assert_eq!(rps.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), [RP, "example.org"]);
    assert_eq!(rps[0].id_hash, Sha256::digest(RP.as_bytes()).to_vec());
    let creds = c.enumerate_credentials(&t, &rps[0].id_hash).unwrap();
    assert_eq!(creds.iter().map(|c| c.id.clone()).collect::<Vec<_>>(), ids[..2]);
    assert_eq!(creds[1].user_id, b"bob");
    assert_eq!(creds[0].cred_protect, Some(2));
    // The public key enumerated is the one makeCredential returned.
    let t2 = c.get_pin_uv_auth_token(&pin("1234"), PERMISSION_GA, Some(RP)).unwrap();
    let cdh: [u8; 32] = Sha256::digest(b"get").into();
    let a = c.get_assertion(RP, &cdh, &[ids[0].clone()], Some(&t2)).unwrap();
    let auth =
        AuthData { public_key: Some(creds[0].public_key.clone()), ..AuthData::parse(&a.auth_data).unwrap() };
    let sig = Signature::from_der(&a.signature).unwrap();
    verifying_key(&auth).verify(&[a.auth_data.as_slice(), &cdh].concat(), &sig).unwrap();
    // An RP-bound cm token sees only its RP's credentials and may not list RPs.
    let bound = c.get_pin_uv_auth_token(&pin("1234"), PERMISSION_CM, Some("example.org")).unwrap();
    assert_eq!(c.enumerate_rps(&bound).unwrap_err().status(), Some(CtapStatus::PinAuthInvalid));
    assert_eq!(c.delete_credential(&bound, &ids[0]).unwrap_err().status(), Some(CtapStatus::NoCredentials));
    let t = c.get_pin_uv_auth_token(&pin("1234"), PERMISSION_CM, None).unwrap();
    c.update_user_information(&t, &ids[0], b"ada", Some("ada.l@contoso.com"), None).unwrap();
    assert_eq!(
        c.update_user_information(&t, &ids[0], b"mallory", None, None).unwrap_err().status(),
        Some(CtapStatus::InvalidParameter)
    );
    let creds = c.enumerate_credentials(&t, &rps[0].id_hash).unwrap();
    assert_eq!(
        (creds[0].user_name.as_deref(), creds[0].user_display_name.as_deref()),
        (Some("ada.l@contoso.com"), None)
    );
    // Deleting the orphan of a failed registration.
    c.delete_credential(&t, &ids[0]).unwrap();
    assert_eq!(c.delete_credential(&t, &ids[0]).unwrap_err().status(), Some(CtapStatus::NoCredentials));
    assert_eq!(key.state().resident_count(), 2);
    c.delete_credential(&t, &ids[2]).unwrap();
    assert_eq!(c.enumerate_rps(&t).unwrap().len(), 1);
    assert!(c.enumerate_credentials(&t, &Sha256::digest(b"example.org")).unwrap().is_empty());
}
