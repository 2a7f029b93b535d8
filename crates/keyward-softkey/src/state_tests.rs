//! Tests of the encrypted state file: round trip, change detection, wrong passphrase and every
//! kind of damage a user could meet.

use super::*;
use crate::ca::AttestationCa;

const FAST: KdfParams = KdfParams { m_cost_kib: 64, t_cost: 1, p_cost: 1 };

fn pass(s: &str) -> SecretString {
    SecretString::from(s.to_owned())
}

fn populated() -> Authenticator {
    let ca = AttestationCa::generate().unwrap();
    let aaguid = *b"state-file-test!";
    let attestation = ca.issue_batch(&aaguid).unwrap().into_attestation();
    let mut a = Authenticator::new(Config { aaguid, attestation, min_pin_length: 5, ..Config::default() });
    a.pin_hash = Some([7; 16]);
    a.pin_length = 8;
    a.pin_retries = 5;
    a.config.min_pin_length = 8;
    a.config.force_pin_change = true;
    a.config.always_uv = true;
    a.enterprise_attestation = true;
    a.min_pin_length_rp_ids = vec!["login.microsoft.com".into()];
    a.credentials.push(Credential {
        id: vec![1, 2, 3],
        rp_id: "login.microsoft.com".into(),
        user_id: b"user-handle".to_vec(),
        user_name: Some("alice@contoso.example".into()),
        user_display_name: Some("Alice".into()),
        key: SigningKey::random(&mut rand::rngs::OsRng),
        discoverable: true,
        cred_protect: 2,
        cred_random: Some([9; 32]),
        sign_count: 41,
    });
    a
}

#[test]
fn whole_device_state_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("key.kws");
    let before = populated();
    StateFile::create(&path, &pass("correct horse"), FAST, &before).unwrap();
    let raw = fs::read(&path).unwrap();
    assert!(!raw.windows(5).any(|w| w == b"alice"), "user names must be encrypted");

    let (_, after) = StateFile::open(&path, &pass("correct horse"), Config::default()).unwrap();
    assert_eq!(*snapshot(&after, 5), *snapshot(&before, 5));
    assert_eq!(after.pin_retries(), 5);
    assert_eq!(after.credentials[0].sign_count, 41);
    assert_eq!(after.credentials[0].key.to_bytes(), before.credentials[0].key.to_bytes());
    assert_eq!(after.config.aaguid, *b"state-file-test!");
    match (&after.config.attestation, &before.config.attestation) {
        (Attestation::Packed { key: k1, x5c: c1 }, Attestation::Packed { key: k2, x5c: c2 }) => {
            assert_eq!(k1.to_bytes(), k2.to_bytes());
            assert_eq!(c1, c2);
        }
        other => panic!("attestation not restored: {other:?}"),
    }
}

#[test]
fn factory_minimum_pin_length_is_kept_for_reset() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("key.kws");
    let fresh = Authenticator::new(Config { min_pin_length: 6, ..Config::default() });
    let file = StateFile::create(&path, &pass("pw"), FAST, &fresh).unwrap();
    let mut raised = fresh;
    raised.config.min_pin_length = 10;
    file.save(&raised).unwrap();
    let (reopened, a) = StateFile::open(&path, &pass("pw"), Config::default()).unwrap();
    assert_eq!(a.config.min_pin_length, 10);
    assert_eq!(reopened.factory_min_pin_length, 6);
}

#[test]
fn saves_only_on_change_and_leaves_no_temporary_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("key.kws");
    let mut a = Authenticator::new(Config::default());
    let file = StateFile::create(&path, &pass("pw"), FAST, &a).unwrap();
    assert!(!file.save(&a).unwrap(), "nothing changed");
    a.power_cycle(); // volatile state only
    assert!(!file.save(&a).unwrap(), "a power cycle is not a state change");
    a.pin_retries = 7;
    assert!(file.save(&a).unwrap());
    let names: Vec<_> = fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, vec![std::ffi::OsString::from("key.kws")]);
    let (_, b) = StateFile::open(&path, &pass("pw"), Config::default()).unwrap();
    assert_eq!(b.pin_retries(), 7);
}

#[test]
fn wrong_passphrase_is_reported_and_nothing_is_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("key.kws");
    StateFile::create(&path, &pass("right"), FAST, &populated()).unwrap();
    let before = fs::read(&path).unwrap();
    let e = StateFile::open(&path, &pass("wrong"), Config::default()).unwrap_err();
    assert!(matches!(e, StateError::WrongPassphrase(_)), "{e:?}");
    assert!(e.to_string().contains("wrong passphrase"), "{e}");
    assert_eq!(fs::read(&path).unwrap(), before);
}

#[test]
fn damaged_files_are_reported_by_kind() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("key.kws");
    StateFile::create(&path, &pass("pw"), FAST, &populated()).unwrap();
    let good = fs::read(&path).unwrap();
    let flip = |at: usize| {
        let mut b = good.clone();
        b[at] ^= 0x01;
        b
    };
    let mut newer = good.clone();
    newer[MAGIC.len()] = FORMAT_VERSION + 1;
    #[allow(clippy::type_complexity)]
    let cases: Vec<(&str, Vec<u8>, fn(&StateError) -> bool)> = vec![
        ("empty", vec![], |e| matches!(e, StateError::Corrupt { .. })),
        ("magic only", MAGIC.to_vec(), |e| matches!(e, StateError::Corrupt { .. })),
        ("cut in the header", good[..HEADER_LEN - 3].to_vec(), |e| matches!(e, StateError::Corrupt { .. })),
        ("last byte missing", good[..good.len() - 1].to_vec(), |e| matches!(e, StateError::Corrupt { .. })),
        ("half the ciphertext", good[..HEADER_LEN + (good.len() - HEADER_LEN) / 2].to_vec(), |e| {
            matches!(e, StateError::Corrupt { .. })
        }),
        ("ciphertext bit flip", flip(HEADER_LEN + 10), |e| matches!(e, StateError::Corrupt { .. })),
        ("nonce bit flip", flip(NONCE_AT), |e| matches!(e, StateError::Corrupt { .. })),
        ("tag bit flip", flip(good.len() - 1), |e| matches!(e, StateError::Corrupt { .. })),
        (
            "unknown kdf",
            {
                let mut b = good.clone();
                b[MAGIC.len() + 1] = 9;
                b
            },
            |e| matches!(e, StateError::Corrupt { .. }),
        ),
        (
            "huge memory cost",
            {
                let mut b = good.clone();
                b[PARAMS_AT..PARAMS_AT + 4].copy_from_slice(&u32::MAX.to_be_bytes());
                b
            },
            |e| matches!(e, StateError::Corrupt { .. }),
        ),
        ("newer version", newer, |e| matches!(e, StateError::Version { version: 2, .. })),
        ("another file", b"{\"users\": []}".to_vec(), |e| matches!(e, StateError::NotStateFile(_))),
    ];
    for (name, bytes, expected) in cases {
        fs::write(&path, &bytes).unwrap();
        let e = StateFile::open(&path, &pass("pw"), Config::default()).unwrap_err();
        assert!(expected(&e), "{name}: got {e:?}");
        assert!(e.to_string().contains(&path.display().to_string()), "{name}: message names the file: {e}");
        assert_eq!(fs::read(&path).unwrap(), bytes, "{name}: the file was not touched");
    }
}

#[test]
fn create_and_open_guard_against_mistakes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("key.kws");
    let a = Authenticator::new(Config::default());
    let e = StateFile::open(&path, &pass("pw"), Config::default()).unwrap_err();
    assert!(matches!(e, StateError::Missing(_)) && e.to_string().contains("--init"), "{e}");
    assert!(matches!(StateFile::create(&path, &pass(""), FAST, &a), Err(StateError::EmptyPassphrase)));
    StateFile::create(&path, &pass("pw"), FAST, &a).unwrap();
    let before = fs::read(&path).unwrap();
    let e = StateFile::create(&path, &pass("other"), FAST, &a).unwrap_err();
    assert!(matches!(e, StateError::Exists(_)), "{e:?}");
    assert_eq!(fs::read(&path).unwrap(), before);
}

#[test]
fn debug_output_hides_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("key.kws");
    let file = StateFile::create(&path, &pass("pw"), FAST, &Authenticator::new(Config::default())).unwrap();
    let text = format!("{file:?}");
    assert!(text.contains("redacted") && !text.contains("key: ["), "{text}");
}

#[test]
fn the_temporary_file_is_exclusive_and_unpredictable() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("key.kws");
    let a = temp_path(dir.path(), &path);
    let b = temp_path(dir.path(), &path);
    assert_ne!(a, b, "a fresh name per save");
    let name = a.file_name().unwrap().to_string_lossy().into_owned();
    assert!(!name.contains(&std::process::id().to_string()), "the process id is guessable: {name}");
    assert!(name.starts_with(".key.kws.") && name.ends_with(".tmp"), "{name}");

    // Whatever is already at the name, a symlink above all, is refused and left alone.
    let victim = dir.path().join("victim");
    fs::write(&victim, b"precious").unwrap();
    let planted = dir.path().join("planted.tmp");
    std::os::unix::fs::symlink(&victim, &planted).unwrap();
    let err = create_exclusive(&planted).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists);
    let dangling = dir.path().join("dangling.tmp");
    std::os::unix::fs::symlink(dir.path().join("would-be-created"), &dangling).unwrap();
    assert_eq!(create_exclusive(&dangling).unwrap_err().kind(), ErrorKind::AlreadyExists);
    assert!(!dir.path().join("would-be-created").exists());
    assert_eq!(fs::read(&victim).unwrap(), b"precious");
}

#[test]
fn a_symlink_at_the_old_predictable_temporary_path_is_not_followed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("key.kws");
    let victim = dir.path().join("victim");
    fs::write(&victim, b"precious").unwrap();
    // Before: `.key.kws.<pid>.tmp`, opened with O_TRUNC and no O_EXCL, so this symlink made the
    // save overwrite the victim.
    let old_name = dir.path().join(format!(".key.kws.{}.tmp", std::process::id()));
    std::os::unix::fs::symlink(&victim, &old_name).unwrap();
    let file = StateFile::create(&path, &pass("pw"), FAST, &populated()).unwrap();
    let mut changed = populated();
    changed.pin_retries = 3;
    assert!(file.save(&changed).unwrap());
    assert_eq!(fs::read(&victim).unwrap(), b"precious");
    let (_, reopened) = StateFile::open(&path, &pass("pw"), Config::default()).unwrap();
    assert_eq!(reopened.pin_retries(), 3);
}

#[test]
fn new_vaults_use_64_mib_and_old_ones_open_with_their_own_parameters() {
    let dir = tempfile::tempdir().unwrap();
    let new = dir.path().join("new.kws");
    StateFile::create(&new, &pass("pw"), KdfParams::default(), &populated()).unwrap();
    let raw = fs::read(&new).unwrap();
    let m_cost = u32::from_be_bytes(raw[PARAMS_AT..PARAMS_AT + 4].try_into().unwrap());
    assert!(m_cost >= 64 * 1024, "new vaults get at least 64 MiB, not {m_cost} KiB");
    assert!(StateFile::open(&new, &pass("pw"), Config::default()).is_ok());

    // A vault from before (OWASP's 19 MiB, 2 passes) still opens: the header says how.
    let old = dir.path().join("old.kws");
    let before = KdfParams { m_cost_kib: 19 * 1024, t_cost: 2, p_cost: 1 };
    StateFile::create(&old, &pass("pw"), before, &populated()).unwrap();
    let (file, a) = StateFile::open(&old, &pass("pw"), Config::default()).unwrap();
    assert_eq!(a.pin_retries(), 5);
    // Saving keeps the file's own parameters (the key stays the one they derive).
    let mut changed = populated();
    changed.pin_retries = 4;
    file.save(&changed).unwrap();
    let raw = fs::read(&old).unwrap();
    assert_eq!(u32::from_be_bytes(raw[PARAMS_AT..PARAMS_AT + 4].try_into().unwrap()), 19 * 1024);
    assert_eq!(StateFile::open(&old, &pass("pw"), Config::default()).unwrap().1.pin_retries(), 4);
}
