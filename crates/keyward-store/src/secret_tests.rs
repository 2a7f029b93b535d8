//! Tests of the key file format, the subkeys and the ciphertexts.

use super::*;

fn temp_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("kw-key-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[cfg(unix)]
fn write_private(path: &Path, data: &[u8]) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, data).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

#[test]
fn round_trip_and_binding() {
    let key = SecretKey::generate();
    let stored = key.encrypt(b"row-a", &SecretString::from("s3cr3t-value"));
    assert!(!stored.contains("s3cr3t"));
    assert!(stored.starts_with(&format!("v2:{}:", key.id())), "{stored}");
    assert_eq!(key.decrypt("c", b"row-a", &stored).unwrap().expose_secret(), "s3cr3t-value");
    assert!(matches!(key.decrypt("c", b"row-b", &stored), Err(SecretError::Decrypt(_))));
    assert!(matches!(
        SecretKey::generate().decrypt("c", b"row-a", &stored),
        Err(SecretError::WrongKey { .. })
    ));
    let again = key.encrypt(b"row-a", &SecretString::from("s3cr3t-value"));
    assert_ne!(stored, again, "fresh nonce each time");
}

#[test]
fn first_release_values_still_decrypt() {
    // A `v1` value as the first release wrote it: the raw key, the column name as associated data.
    let raw = [3u8; 32];
    let nonce = [4u8; 12];
    let ct = Aes256Gcm::new(&raw.into())
        .encrypt(&Nonce::from(nonce), Payload { msg: b"old-secret", aad: b"client_secret_enc" })
        .unwrap();
    let stored = format!("v1:{}", B64.encode([nonce.as_slice(), &ct].concat()));
    let key = SecretKey::from_bytes(raw);
    assert_eq!(key.decrypt("client_secret_enc", b"ignored", &stored).unwrap().expose_secret(), "old-secret");
    assert!(key.decrypt("private_key_enc", b"ignored", &stored).is_err());
}

#[test]
fn subkeys_differ_from_each_other_and_from_the_key() {
    let key = SecretKey::from_bytes([7; 32]);
    let chain = key.audit_mac_key();
    let anchor = key.anchor_mac_key();
    assert_eq!(chain.id(), key.id());
    assert_ne!(chain.mac(b"x"), anchor.mac(b"x"));
    assert_ne!(chain.mac(b"x"), MacKey::new("raw", [7; 32]).mac(b"x"));
    assert_eq!(key.id().len(), 16);
    assert_ne!(key.id(), SecretKey::from_bytes([8; 32]).id());
    assert_eq!(format!("{key:?}"), format!("SecretKey({}, [redacted])", key.id()));
}

#[test]
fn key_text_forms() {
    let b64 = B64.encode([7u8; 32]);
    let hexed = hex::encode([7u8; 32]);
    let a = SecretKey::from_text(&format!("{b64}\n")).unwrap();
    let b = SecretKey::from_text(&hexed).unwrap();
    let stored = a.encrypt(b"c", &SecretString::from("x"));
    assert_eq!(b.decrypt("c", b"c", &stored).unwrap().expose_secret(), "x");
    assert!(matches!(SecretKey::from_text("c2hvcnQ="), Err(SecretError::BadKey(_))));
}

#[cfg(unix)]
#[test]
fn key_files_new_old_and_refused() {
    let dir = temp_dir();
    let new = dir.join("secret.key");
    let key = SecretKey::generate();
    key.write_new_file(&new).unwrap();
    let text = std::fs::read_to_string(&new).unwrap();
    assert!(text.starts_with("keyward-secret-key v1\nid: "), "{text}");
    let read = SecretKey::from_file(&new).unwrap();
    assert_eq!(read.id(), key.id());
    assert!(!read.is_legacy_file());
    assert!(key.write_new_file(&new).is_err(), "never overwritten");

    // What earlier releases wrote: base64 text of 32 bytes.
    let old = dir.join("old.key");
    write_private(&old, B64.encode([9u8; 32]).as_bytes());
    let legacy = SecretKey::from_file(&old).unwrap();
    assert!(legacy.is_legacy_file());
    assert_eq!(legacy.id(), SecretKey::from_bytes([9; 32]).id());

    // A 32-character passphrase is not a key.
    let pass = dir.join("pass.key");
    write_private(&pass, b"correct horse battery staple 123");
    assert!(matches!(SecretKey::from_file(&pass), Err(SecretError::BadKey(_))));

    // Lines from two files, a missing line, a short key.
    let other = SecretKey::generate();
    let cases = [
        ("mixed", format!("{KEY_FILE_HEADER}\nid: {}\nkey: {}\n", other.id(), B64.encode([9u8; 32]))),
        ("no id", format!("{KEY_FILE_HEADER}\nkey: {}\n", B64.encode([9u8; 32]))),
        ("short", format!("{KEY_FILE_HEADER}\nid: x\nkey: {}\n", B64.encode([9u8; 16]))),
        ("junk", format!("{KEY_FILE_HEADER}\npassword hunter2\n")),
    ];
    for (what, text) in cases {
        let p = dir.join(what);
        write_private(&p, text.as_bytes());
        assert!(matches!(SecretKey::from_file(&p), Err(SecretError::BadKey(_))), "{what}");
    }
    assert!(matches!(SecretKey::from_file(&dir.join("missing")), Err(SecretError::ReadFile { .. })));
    assert!(matches!(SecretKey::from_env("KEYWARD_TEST_SURELY_UNSET_VAR"), Err(SecretError::MissingEnv(_))));
    std::fs::remove_dir_all(dir).unwrap();
}

#[cfg(unix)]
#[test]
fn a_key_file_others_can_read_is_refused_with_the_fix() {
    use std::os::unix::fs::PermissionsExt;
    let dir = temp_dir();
    let path = dir.join("secret.key");
    SecretKey::generate().write_new_file(&path).unwrap();
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    for mode in [0o640, 0o604, 0o644] {
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        let err = SecretKey::from_file(&path).unwrap_err();
        assert!(matches!(err, SecretError::LoosePermissions { .. }), "{mode:o}: {err}");
        assert!(err.to_string().contains(&format!("chmod 600 {}", path.display())), "{err}");
    }
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o400)).unwrap();
    assert!(SecretKey::from_file(&path).is_ok());
    std::fs::remove_dir_all(dir).unwrap();
}

#[cfg(unix)]
#[test]
fn older_keys_are_found_beside_the_key_file() {
    let dir = temp_dir();
    let path = dir.join("secret.key");
    let old = SecretKey::generate();
    old.write_new_file(&dir.join(format!("secret.key.old-{}", old.id()))).unwrap();
    SecretKey::generate().write_new_file(&dir.join("unrelated.key.old-x")).unwrap();
    let found = SecretKey::older_keys(&path);
    assert_eq!(found.iter().map(SecretKey::id).collect::<Vec<_>>(), [old.id()]);
    std::fs::remove_dir_all(dir).unwrap();
}
