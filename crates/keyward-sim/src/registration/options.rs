//! `fido2Methods/creationOptions`: the URL spellings, the timeout rules per version and
//! the `webauthnCredentialCreationOptions` body (docs/entra-graph-api.md §1, §13).
//!
//! The body mirrors every real capture rather than the synthetic doc examples: not
//! wrapped in `value`, rp `login.microsoft.com`, algorithms -7 and -257, `timeout: 0`,
//! cross-platform / resident key / UV required, `direct` attestation and the three
//! observed extensions. `excludeCredentials` ids use the seed's encoding so clients are
//! exercised against every form Entra has been seen to emit.

use base64::Engine;
use keyward_webauthn::graph::{
    AuthenticatorSelection, CredentialCreationOptions, CredentialDescriptor, CredentialParameters,
    ExtensionInputs, PublicKeyCreationOptions, RpEntity, UserEntity,
};

use crate::graph::{ApiVersion, GraphFailure};
use crate::keys::LoadedKeys;
use crate::seed::{IdEncoding, SeedUser};
use crate::tenant::StoredFido2Method;

/// The fixed v1.0 challenge timeout and the beta default, in minutes.
pub const DEFAULT_TIMEOUT_MINUTES: i64 = 5;
/// The largest beta `challengeTimeoutInMinutes` (30 days).
pub const MAX_TIMEOUT_MINUTES: i64 = 43_200;
const PARAM: &str = "challengeTimeoutInMinutes";

/// Whether a path segment is a spelling of the `creationOptions` function; if so, the
/// inline parameter value, if any (`creationOptions(challengeTimeoutInMinutes=10)`).
pub fn parse_segment(segment: &str) -> Option<Option<String>> {
    const NAME: &str = "creationOptions";
    let head = segment.get(..NAME.len())?;
    if !head.eq_ignore_ascii_case(NAME) {
        return None;
    }
    let rest = &segment[NAME.len()..];
    if rest.is_empty() {
        return Some(None);
    }
    let inner = rest.strip_prefix('(')?.strip_suffix(')')?.trim();
    if inner.is_empty() {
        return Some(None);
    }
    Some(Some(inner.to_owned()))
}

fn query_value(query: &str, name: &str) -> Option<String> {
    url::form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

/// The challenge timeout in minutes for a request, or the 400 naming the rule it breaks.
pub fn timeout_minutes(version: ApiVersion, inline: Option<&str>, query: &str) -> Result<i64, GraphFailure> {
    // The inline form is `challengeTimeoutInMinutes=N` or `…=@alias` resolved from the query.
    let from_inline = match inline {
        None => None,
        Some(inner) => {
            let (name, value) = inner.split_once('=').ok_or_else(|| {
                GraphFailure::bad_request(format!(
                    "creationOptions accepts only the parameter {PARAM} (got '{inner}')."
                ))
            })?;
            if name.trim() != PARAM {
                return Err(GraphFailure::bad_request(format!(
                    "creationOptions accepts only the parameter {PARAM} (got '{}').",
                    name.trim()
                )));
            }
            let value = value.trim();
            match value.strip_prefix('@') {
                Some(alias) => Some(
                    query_value(query, &format!("@{alias}"))
                        .or_else(|| query_value(query, alias))
                        .ok_or_else(|| {
                            GraphFailure::bad_request(format!(
                                "The parameter alias '@{alias}' of {PARAM} has no value in the query string."
                            ))
                        })?,
                ),
                None => Some(value.to_owned()),
            }
        }
    };
    let value = from_inline.or_else(|| query_value(query, PARAM));
    let Some(value) = value else { return Ok(DEFAULT_TIMEOUT_MINUTES) };
    if version == ApiVersion::V1 {
        return Err(GraphFailure::bad_request(format!(
            "{PARAM} is not supported in v1.0: the challenge timeout is fixed at 5 minutes (custom values \
             are a beta feature)."
        )));
    }
    let minutes: i64 = value.trim().parse().map_err(|_| {
        GraphFailure::bad_request(format!("{PARAM} must be an integer number of minutes (got '{value}')."))
    })?;
    if !(DEFAULT_TIMEOUT_MINUTES..=MAX_TIMEOUT_MINUTES).contains(&minutes) {
        return Err(GraphFailure::bad_request(format!(
            "{PARAM} must be between {DEFAULT_TIMEOUT_MINUTES} and {MAX_TIMEOUT_MINUTES} minutes (got {minutes})."
        )));
    }
    Ok(minutes)
}

/// An ISO 8601 UTC timestamp with seconds precision and `Z`, as Graph writes them.
pub fn iso_seconds(unix: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(unix).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// Encodes a credential id the way the tenant's `excludeCredentials` does; `index` is the
/// id's place in the list (the mixed encoding changes form from one id to the next).
pub fn encode_id(bytes: &[u8], encoding: IdEncoding, index: usize) -> String {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
    match encoding {
        IdEncoding::Base64url => keyward_webauthn::b64::encode(bytes),
        IdEncoding::PadDigit => keyward_webauthn::b64::encode_with_pad_digit(bytes),
        IdEncoding::Base64 => STANDARD.encode(bytes),
        IdEncoding::Base64NoPad => STANDARD_NO_PAD.encode(bytes),
        IdEncoding::Mixed => {
            let forms = [IdEncoding::Base64, IdEncoding::PadDigit, IdEncoding::Base64NoPad];
            encode_id(bytes, forms[index % forms.len()], index)
        }
    }
}

/// The creation options for `user`, with a fresh challenge expiring `minutes` after `now`.
pub fn build(
    keys: &LoadedKeys,
    user: &SeedUser,
    existing: &[StoredFido2Method],
    encoding: IdEncoding,
    minutes: i64,
    now: i64,
) -> CredentialCreationOptions {
    let expires = now + minutes * 60;
    let exclude_credentials = existing
        .iter()
        .filter_map(|m| keyward_webauthn::b64::decode_lenient(&m.credential_id).ok().map(|raw| (m, raw)))
        .enumerate()
        .map(|(index, (m, raw))| CredentialDescriptor {
            kind: "public-key".into(),
            id: encode_id(&raw, encoding, index),
            transports: m.transports.clone(),
        })
        .collect();
    CredentialCreationOptions {
        challenge_timeout_date_time: iso_seconds(expires),
        public_key: PublicKeyCreationOptions {
            rp: RpEntity { id: keyward_webauthn::ENTRA_RP_ID.into(), name: "Microsoft".into() },
            user: UserEntity {
                id: keyward_webauthn::b64::encode(&keys.user_handle(&user.id)),
                name: user.user_principal_name.clone(),
                display_name: user.display_name.clone(),
            },
            challenge: super::challenge::issue(keys, &user.id, expires),
            pub_key_cred_params: [-7, -257]
                .into_iter()
                .map(|alg| CredentialParameters { kind: "public-key".into(), alg })
                .collect(),
            timeout: Some(0),
            exclude_credentials,
            authenticator_selection: Some(AuthenticatorSelection {
                authenticator_attachment: Some("cross-platform".into()),
                require_resident_key: true,
                user_verification: Some("required".into()),
            }),
            attestation: Some("direct".into()),
            extensions: Some(ExtensionInputs {
                hmac_create_secret: Some(true),
                enforce_credential_protection_policy: Some(true),
                credential_protection_policy: Some("userVerificationOptional".into()),
            }),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_id_encoding_has_its_form_and_mixed_takes_them_in_turn() {
        // 32 bytes: standard base64 needs one `=`; bytes 0xfb 0xff make `+` and `/` appear.
        let id: Vec<u8> = [0xfb, 0xff].iter().copied().cycle().take(32).collect();
        let cases = [
            (IdEncoding::Base64url, 0, "-_"),
            (IdEncoding::PadDigit, 0, "-_"),
            (IdEncoding::Base64, 0, "+/"),
            (IdEncoding::Base64NoPad, 0, "+/"),
            (IdEncoding::Mixed, 0, "+/"),
            (IdEncoding::Mixed, 1, "-_"),
            (IdEncoding::Mixed, 2, "+/"),
        ];
        let ends = |text: &str| text.chars().last().unwrap();
        for (encoding, index, alphabet) in cases {
            let text = encode_id(&id, encoding, index);
            assert!(text.contains(alphabet), "{encoding:?} #{index}: {text}");
            assert!(
                keyward_webauthn::b64::credential_id_matches(&text, &id),
                "{encoding:?} #{index}: {text}"
            );
            let expected_end = match (encoding, index) {
                (IdEncoding::Base64, _) | (IdEncoding::Mixed, 0) => Some('='),
                (IdEncoding::PadDigit, _) | (IdEncoding::Mixed, 1) => Some('1'),
                _ => None,
            };
            match expected_end {
                Some(c) => assert_eq!(ends(&text), c, "{encoding:?} #{index}: {text}"),
                None => assert!(!"=012".contains(ends(&text)), "{encoding:?} #{index}: {text}"),
            }
        }
    }

    #[test]
    fn every_spelling_is_recognised() {
        assert_eq!(parse_segment("creationOptions"), Some(None));
        assert_eq!(parse_segment("creationOptions()"), Some(None));
        assert_eq!(
            parse_segment("creationOptions(challengeTimeoutInMinutes=10)"),
            Some(Some("challengeTimeoutInMinutes=10".into()))
        );
        assert_eq!(parse_segment("abc123"), None);
        assert_eq!(parse_segment("creationOptionsX"), None);
    }

    #[test]
    fn beta_bounds_and_v1_refusal() {
        let beta = ApiVersion::Beta;
        assert_eq!(timeout_minutes(beta, None, "").unwrap(), 5);
        assert_eq!(timeout_minutes(beta, Some("challengeTimeoutInMinutes=10"), "").unwrap(), 10);
        assert_eq!(timeout_minutes(beta, None, "challengeTimeoutInMinutes=60").unwrap(), 60);
        assert_eq!(
            timeout_minutes(
                beta,
                Some("challengeTimeoutInMinutes=@challengeTimeoutInMinutes"),
                "challengeTimeoutInMinutes=43200"
            )
            .unwrap(),
            43_200
        );
        for bad in ["4", "43201", "x"] {
            assert!(timeout_minutes(beta, None, &format!("challengeTimeoutInMinutes={bad}")).is_err());
        }
        let err = timeout_minutes(ApiVersion::V1, None, "challengeTimeoutInMinutes=10").unwrap_err();
        assert!(err.message.contains("not supported in v1.0"));
        assert_eq!(timeout_minutes(ApiVersion::V1, None, "").unwrap(), 5);
    }
}
