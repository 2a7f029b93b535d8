//! Reading an attestation object and the authenticator data inside it.
//!
//! The server checks a registration locally before it forwards it to Graph (challenge, rpIdHash,
//! UP/UV, AAGUID against policy), and `keyward inspect` shows what a body holds, so both need the
//! bytes taken apart. Only *parsing* lives here: whether an attestation statement's signature and
//! chain are valid is the emulator's job (through `webauthn-rs-core`), and Entra's for real.
//!
//! `webauthn-rs-core` was considered for this too and rejected here: its parsed types are built
//! for its own verification flow (they want a registration state and a challenge up front) and it
//! would drag its crypto stack into every crate that only needs the AAGUID and the flags. The
//! layout is fixed by WebAuthn §6.1 and takes a page with `ciborium`.

use ciborium::Value;

/// Why an attestation object or its authenticator data could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AttestationParseError {
    /// The bytes are not one CBOR map.
    #[error(
        "the attestation object is not valid CBOR: {0}; send the attestationObject exactly as the key returned it"
    )]
    Cbor(String),
    /// A required member is missing or has the wrong type.
    #[error("the attestation object has no valid `{0}`")]
    Member(&'static str),
    /// Authenticator data is shorter than its fields.
    #[error("the authenticator data is truncated ({0} bytes)")]
    Truncated(usize),
    /// The credential public key is not valid CBOR.
    #[error("the credential public key is not a valid COSE key")]
    PublicKey,
    /// Bytes left over after the authenticator data's last field.
    #[error("the authenticator data has {0} unexpected trailing bytes")]
    Trailing(usize),
}

/// A parsed attestation object: format, authenticator data and the statement.
#[derive(Debug, Clone)]
pub struct AttestationObject {
    /// Attestation statement format (`packed`, `fido-u2f`, `none`, …).
    pub fmt: String,
    /// The raw authenticator data bytes (what the statement signs).
    pub auth_data_raw: Vec<u8>,
    /// The parsed authenticator data.
    pub auth_data: AuthenticatorData,
    /// The attestation statement, as CBOR.
    pub att_stmt: Value,
}

impl AttestationObject {
    /// Parses the CBOR attestation object.
    pub fn parse(bytes: &[u8]) -> Result<Self, AttestationParseError> {
        let value: Value =
            ciborium::from_reader(bytes).map_err(|e| AttestationParseError::Cbor(e.to_string()))?;
        let Value::Map(entries) = value else { return Err(AttestationParseError::Member("map")) };
        let get = |name: &str| entries.iter().find(|(k, _)| k.as_text() == Some(name)).map(|(_, v)| v);
        let fmt = get("fmt").and_then(Value::as_text).ok_or(AttestationParseError::Member("fmt"))?.to_owned();
        let auth_data_raw = get("authData")
            .and_then(Value::as_bytes)
            .ok_or(AttestationParseError::Member("authData"))?
            .clone();
        let att_stmt = get("attStmt").cloned().ok_or(AttestationParseError::Member("attStmt"))?;
        if !att_stmt.is_map() {
            return Err(AttestationParseError::Member("attStmt"));
        }
        let auth_data = AuthenticatorData::parse(&auth_data_raw)?;
        Ok(Self { fmt, auth_data_raw, auth_data, att_stmt })
    }

    /// The statement's `x5c` certificates (DER), leaf first; empty for self and none.
    pub fn x5c(&self) -> Vec<Vec<u8>> {
        self.stmt_member("x5c")
            .and_then(Value::as_array)
            .map(|certs| certs.iter().filter_map(Value::as_bytes).cloned().collect())
            .unwrap_or_default()
    }

    /// The statement's `alg` (COSE algorithm of the attestation signature), if present.
    pub fn statement_alg(&self) -> Option<i64> {
        self.stmt_member("alg").and_then(Value::as_integer).and_then(|i| i64::try_from(i).ok())
    }

    fn stmt_member(&self, name: &str) -> Option<&Value> {
        self.att_stmt.as_map()?.iter().find(|(k, _)| k.as_text() == Some(name)).map(|(_, v)| v)
    }
}

/// Authenticator data flags (WebAuthn §6.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flags(pub u8);

impl Flags {
    /// User present.
    pub fn up(self) -> bool {
        self.0 & 0x01 != 0
    }
    /// User verified.
    pub fn uv(self) -> bool {
        self.0 & 0x04 != 0
    }
    /// Backup eligible (a synced passkey could be).
    pub fn be(self) -> bool {
        self.0 & 0x08 != 0
    }
    /// Backed up.
    pub fn bs(self) -> bool {
        self.0 & 0x10 != 0
    }
    /// Attested credential data included.
    pub fn at(self) -> bool {
        self.0 & 0x40 != 0
    }
    /// Extension data included.
    pub fn ed(self) -> bool {
        self.0 & 0x80 != 0
    }
}

/// The credential a registration creates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttestedCredential {
    /// The authenticator model's AAGUID.
    pub aaguid: [u8; 16],
    /// The credential id.
    pub credential_id: Vec<u8>,
    /// The COSE_Key bytes of the credential public key.
    pub public_key_cose: Vec<u8>,
    /// The COSE algorithm of the credential key (`3` in the COSE_Key).
    pub alg: Option<i64>,
}

/// Parsed authenticator data.
#[derive(Debug, Clone, PartialEq)]
pub struct AuthenticatorData {
    /// SHA-256 of the RP id the authenticator scoped the credential to.
    pub rp_id_hash: [u8; 32],
    /// Flags byte.
    pub flags: Flags,
    /// Signature counter.
    pub sign_count: u32,
    /// Attested credential data (present at registration).
    pub attested: Option<AttestedCredential>,
    /// Extension outputs, when the ED flag is set.
    pub extensions: Option<Value>,
}

impl AuthenticatorData {
    /// Parses authenticator data bytes.
    pub fn parse(b: &[u8]) -> Result<Self, AttestationParseError> {
        if b.len() < 37 {
            return Err(AttestationParseError::Truncated(b.len()));
        }
        let rp_id_hash: [u8; 32] = b[..32].try_into().expect("length checked");
        let flags = Flags(b[32]);
        let sign_count = u32::from_be_bytes(b[33..37].try_into().expect("length checked"));
        let mut rest = &b[37..];
        let mut attested = None;
        if flags.at() {
            if rest.len() < 18 {
                return Err(AttestationParseError::Truncated(b.len()));
            }
            let aaguid: [u8; 16] = rest[..16].try_into().expect("length checked");
            let id_len = u16::from_be_bytes([rest[16], rest[17]]) as usize;
            rest = &rest[18..];
            if rest.len() < id_len {
                return Err(AttestationParseError::Truncated(b.len()));
            }
            let credential_id = rest[..id_len].to_vec();
            rest = &rest[id_len..];
            let (key, used) = read_one_cbor(rest).ok_or(AttestationParseError::PublicKey)?;
            let alg = key.as_map().and_then(|m| {
                m.iter()
                    .find(|(k, _)| k.as_integer() == Some(3.into()))
                    .and_then(|(_, v)| v.as_integer())
                    .and_then(|i| i64::try_from(i).ok())
            });
            attested = Some(AttestedCredential {
                aaguid,
                credential_id,
                public_key_cose: rest[..used].to_vec(),
                alg,
            });
            rest = &rest[used..];
        }
        let mut extensions = None;
        if flags.ed() {
            let (ext, used) = read_one_cbor(rest).ok_or(AttestationParseError::Member("extensions"))?;
            extensions = Some(ext);
            rest = &rest[used..];
        }
        if !rest.is_empty() {
            return Err(AttestationParseError::Trailing(rest.len()));
        }
        Ok(Self { rp_id_hash, flags, sign_count, attested, extensions })
    }

    /// The AAGUID as Graph writes it (lower-case hyphenated), if credential data is present.
    pub fn aaguid_string(&self) -> Option<String> {
        self.attested.as_ref().map(|a| format_aaguid(&a.aaguid))
    }
}

/// Formats 16 AAGUID bytes as a lower-case hyphenated UUID.
pub fn format_aaguid(a: &[u8; 16]) -> String {
    let h: String = a.iter().map(|b| format!("{b:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
}

/// Reads one CBOR item from the front of `b`, returning it and how many bytes it took.
fn read_one_cbor(b: &[u8]) -> Option<(Value, usize)> {
    let mut cursor = std::io::Cursor::new(b);
    let value: Value = ciborium::from_reader(&mut cursor).ok()?;
    Some((value, cursor.position() as usize))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth_data(flags: u8, with_cred: bool, ext: bool) -> Vec<u8> {
        let mut b = vec![7u8; 32];
        b.push(flags);
        b.extend_from_slice(&5u32.to_be_bytes());
        if with_cred {
            b.extend_from_slice(&[0xAA; 16]);
            b.extend_from_slice(&3u16.to_be_bytes());
            b.extend_from_slice(&[1, 2, 3]);
            let key = Value::Map(vec![
                (Value::Integer(1.into()), Value::Integer(2.into())),
                (Value::Integer(3.into()), Value::Integer((-7).into())),
            ]);
            ciborium::into_writer(&key, &mut b).unwrap();
        }
        if ext {
            let e = Value::Map(vec![(Value::Text("credProtect".into()), Value::Integer(2.into()))]);
            ciborium::into_writer(&e, &mut b).unwrap();
        }
        b
    }

    #[test]
    fn registration_authenticator_data_is_read_field_by_field() {
        let raw = auth_data(0x01 | 0x04 | 0x40 | 0x80, true, true);
        let d = AuthenticatorData::parse(&raw).unwrap();
        assert_eq!(d.rp_id_hash, [7; 32]);
        assert!(d.flags.up() && d.flags.uv() && d.flags.at() && d.flags.ed() && !d.flags.be());
        assert_eq!(d.sign_count, 5);
        let c = d.attested.as_ref().unwrap();
        assert_eq!(c.credential_id, [1, 2, 3]);
        assert_eq!(c.alg, Some(-7));
        assert_eq!(d.aaguid_string().unwrap(), "aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa");
        assert!(d.extensions.is_some());
    }

    #[test]
    fn malformed_authenticator_data_is_refused_with_the_reason() {
        let good = auth_data(0x45, true, false);
        let cases: Vec<(Vec<u8>, AttestationParseError)> = vec![
            (good[..20].to_vec(), AttestationParseError::Truncated(20)),
            (good[..50].to_vec(), AttestationParseError::Truncated(50)),
            (good[..good.len() - 1].to_vec(), AttestationParseError::PublicKey),
            ([good.clone(), vec![0]].concat(), AttestationParseError::Trailing(1)),
            (auth_data(0x85, false, false), AttestationParseError::Member("extensions")),
        ];
        for (bytes, want) in cases {
            assert_eq!(AuthenticatorData::parse(&bytes).unwrap_err(), want);
        }
    }

    #[test]
    fn attestation_object_members_are_required() {
        let ad = auth_data(0x45, true, false);
        let obj = |fmt: Option<&str>, stmt: Value| {
            let mut m = vec![];
            if let Some(f) = fmt {
                m.push((Value::Text("fmt".into()), Value::Text(f.into())));
            }
            m.push((Value::Text("attStmt".into()), stmt));
            m.push((Value::Text("authData".into()), Value::Bytes(ad.clone())));
            let mut out = vec![];
            ciborium::into_writer(&Value::Map(m), &mut out).unwrap();
            out
        };
        let stmt = Value::Map(vec![
            (Value::Text("alg".into()), Value::Integer((-7).into())),
            (Value::Text("x5c".into()), Value::Array(vec![Value::Bytes(vec![0x30, 0])])),
        ]);
        let parsed = AttestationObject::parse(&obj(Some("packed"), stmt)).unwrap();
        assert_eq!(parsed.fmt, "packed");
        assert_eq!(parsed.statement_alg(), Some(-7));
        assert_eq!(parsed.x5c(), vec![vec![0x30, 0]]);
        assert_eq!(parsed.auth_data_raw, ad);
        assert!(matches!(
            AttestationObject::parse(&obj(None, Value::Map(vec![]))),
            Err(AttestationParseError::Member("fmt"))
        ));
        assert!(matches!(
            AttestationObject::parse(&obj(Some("none"), Value::Null)),
            Err(AttestationParseError::Member("attStmt"))
        ));
        assert!(matches!(AttestationObject::parse(b"\xff\x00"), Err(AttestationParseError::Cbor(_))));
    }
}
