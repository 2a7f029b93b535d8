//! The soft authenticator's state and command dispatch: getInfo, reset, power cycles.
//!
//! State is in memory only: the soft key is a test double and a demo device, so "re-insert"
//! is [`Authenticator::power_cycle`], which is what clears PIN_AUTH_BLOCKED, rotates the
//! key-agreement key and opens the reset window. User presence is delegated to a [`Presence`]
//! implementation so the HID layer can send keep-alives and honour CANCEL while "waiting".

use std::time::{Duration, Instant};

use ciborium::value::Value;
use p256::SecretKey;
use p256::ecdsa::SigningKey;

use crate::cbor::{Args, encode, imap, int, tmap};
use crate::status::{CtapResult, Status};
use crate::touch::TouchButton;

/// CTAP command bytes.
pub(crate) const CMD_MAKE_CREDENTIAL: u8 = 0x01;
pub(crate) const CMD_GET_ASSERTION: u8 = 0x02;
pub(crate) const CMD_GET_INFO: u8 = 0x04;
pub(crate) const CMD_CLIENT_PIN: u8 = 0x06;
pub(crate) const CMD_RESET: u8 = 0x07;
pub(crate) const CMD_GET_NEXT_ASSERTION: u8 = 0x08;
pub(crate) const CMD_SELECTION: u8 = 0x0B;
pub(crate) const CMD_CRED_MGMT: u8 = 0x0A;
pub(crate) const CMD_CONFIG: u8 = 0x0D;

/// PIN retries after a reset or a correct PIN.
pub const MAX_PIN_RETRIES: u8 = 8;
/// Consecutive wrong PINs before a power cycle is needed.
pub const MAX_CONSECUTIVE_MISMATCHES: u8 = 3;

/// How the simulated user answers a touch request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PresencePolicy {
    /// Touch after the given delay.
    Approve(Duration),
    /// Refuse after the given delay (OPERATION_DENIED).
    Deny(Duration),
    /// Never touch; time out after the given delay (USER_ACTION_TIMEOUT).
    Ignore(Duration),
    /// Wait up to the given time for a press of the key's [`TouchButton`]; USER_ACTION_TIMEOUT
    /// if nobody presses it.
    OnRequest(Duration),
}

/// Something that can ask the user to touch the key.
pub trait Presence {
    /// Waits for the touch; the error is the CTAP status to return.
    fn confirm(&mut self) -> Result<(), Status>;
}

/// A presence source that applies the policy without any transport (direct calls, tests).
#[derive(Debug)]
pub struct Immediate(pub PresencePolicy);

impl Presence for Immediate {
    fn confirm(&mut self) -> Result<(), Status> {
        match self.0 {
            PresencePolicy::Approve(_) => Ok(()),
            PresencePolicy::Deny(_) => Err(Status::OperationDenied),
            // Nobody can press a button when there is no device thread to wait on.
            PresencePolicy::Ignore(_) | PresencePolicy::OnRequest(_) => Err(Status::UserActionTimeout),
        }
    }
}

/// What attestation statement makeCredential produces.
#[derive(Clone)]
pub enum Attestation {
    /// fmt "none".
    None,
    /// fmt "packed", signed by the credential key itself.
    SelfSigned,
    /// fmt "packed" with an x5c chain: the leaf certificate's key and the DER chain, leaf first.
    Packed {
        /// Key of the leaf (batch) certificate.
        key: SigningKey,
        /// DER certificates, leaf first.
        x5c: Vec<Vec<u8>>,
    },
}

impl std::fmt::Debug for Attestation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::None => f.write_str("None"),
            Self::SelfSigned => f.write_str("SelfSigned"),
            Self::Packed { x5c, .. } => write!(f, "Packed({} certs)", x5c.len()),
        }
    }
}

/// Soft key settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// AAGUID reported in getInfo and authenticator data.
    pub aaguid: [u8; 16],
    /// Attestation to produce.
    pub attestation: Attestation,
    /// How the simulated user answers touch requests.
    pub presence: PresencePolicy,
    /// Room for discoverable credentials.
    pub max_resident_keys: usize,
    /// Minimum PIN length in code points.
    pub min_pin_length: u8,
    /// How long after a power cycle reset is allowed.
    pub reset_window: Duration,
    /// Require user verification for everything.
    pub always_uv: bool,
    /// Require a PIN change before a PIN token is issued.
    pub force_pin_change: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            aaguid: *b"keyward-softkey!",
            attestation: Attestation::SelfSigned,
            presence: PresencePolicy::Approve(Duration::ZERO),
            max_resident_keys: 25,
            min_pin_length: 4,
            reset_window: Duration::from_secs(10),
            always_uv: false,
            force_pin_change: false,
        }
    }
}

/// A pinUvAuthToken with its permissions.
#[derive(Debug)]
pub(crate) struct Token {
    pub value: zeroize::Zeroizing<[u8; 32]>,
    pub permissions: u8,
    pub rp_id: Option<String>,
}

/// One credential held by the key.
#[derive(Debug, Clone)]
pub(crate) struct Credential {
    pub id: Vec<u8>,
    pub rp_id: String,
    pub user_id: Vec<u8>,
    pub user_name: Option<String>,
    pub user_display_name: Option<String>,
    pub key: SigningKey,
    pub discoverable: bool,
    pub cred_protect: u8,
    pub cred_random: Option<[u8; 32]>,
    pub sign_count: u32,
}

/// A CTAP 2.1 software authenticator.
#[derive(Debug)]
pub struct Authenticator {
    pub(crate) config: Config,
    pub(crate) pin_hash: Option<[u8; 16]>,
    pub(crate) pin_retries: u8,
    pub(crate) mismatches: u8,
    pub(crate) key_agreement: SecretKey,
    pub(crate) token: Option<Token>,
    pub(crate) credentials: Vec<Credential>,
    /// Length in code points of the current PIN (for setMinPINLength).
    pub(crate) pin_length: u8,
    /// An unfinished credential-management enumeration.
    pub(crate) enumeration: Option<crate::cred_mgmt::Enumeration>,
    /// RP ids allowed to read minPINLength.
    pub(crate) min_pin_length_rp_ids: Vec<String>,
    /// Whether enterprise attestation was enabled.
    pub(crate) enterprise_attestation: bool,
    /// RP ids that get vendor-facilitated enterprise attestation (enterpriseAttestation 1).
    pub(crate) enterprise_rp_ids: Vec<String>,
    /// The rest of a getAssertion for getNextAssertion.
    pub(crate) next_assertions: Option<crate::credential::NextAssertions>,
    /// Behave like a CTAP 2.0 key (no protocol 2, no permissions, no 2.1 commands).
    pub(crate) ctap20_only: bool,
    /// The configured minimum PIN length, restored by reset.
    factory_min_pin_length: u8,
    powered_at: Instant,
    winks: u32,
    touch: TouchButton,
}

impl Authenticator {
    /// A factory-fresh key with the given settings.
    pub fn new(config: Config) -> Self {
        let min_pin_length = config.min_pin_length;
        Self {
            config,
            pin_hash: None,
            pin_retries: MAX_PIN_RETRIES,
            mismatches: 0,
            key_agreement: SecretKey::random(&mut rand::rngs::OsRng),
            token: None,
            credentials: Vec::new(),
            pin_length: 0,
            enumeration: None,
            min_pin_length_rp_ids: Vec::new(),
            enterprise_attestation: false,
            enterprise_rp_ids: Vec::new(),
            next_assertions: None,
            ctap20_only: false,
            factory_min_pin_length: min_pin_length,
            powered_at: Instant::now(),
            winks: 0,
            touch: TouchButton::default(),
        }
    }

    /// Simulates removing and re-inserting the key.
    pub fn power_cycle(&mut self) {
        self.mismatches = 0;
        self.token = None;
        self.regenerate_key_agreement();
        self.powered_at = Instant::now();
    }

    pub(crate) fn regenerate_key_agreement(&mut self) {
        self.key_agreement = SecretKey::random(&mut rand::rngs::OsRng);
    }

    /// The current touch policy.
    pub fn presence_policy(&self) -> PresencePolicy {
        self.config.presence
    }

    /// The key's touch sensor (pressed for [`PresencePolicy::OnRequest`]).
    pub fn touch_button(&self) -> TouchButton {
        self.touch.clone()
    }

    /// Changes the touch policy.
    pub fn set_presence_policy(&mut self, policy: PresencePolicy) {
        self.config.presence = policy;
    }

    /// Sets the RP ids that receive vendor-facilitated enterprise attestation.
    pub fn set_enterprise_rp_ids(&mut self, rp_ids: Vec<String>) {
        self.enterprise_rp_ids = rp_ids;
    }

    /// Makes the key behave like a CTAP 2.0 key: only FIDO_2_0 and PIN protocol 1 in getInfo,
    /// getPinToken only, and none of the CTAP 2.1 commands.
    pub fn set_ctap20_only(&mut self, on: bool) {
        self.ctap20_only = on;
    }

    /// Records a WINK.
    pub fn wink(&mut self) {
        self.winks += 1;
    }

    /// How many WINKs the key has seen.
    pub fn winks(&self) -> u32 {
        self.winks
    }

    /// PIN retries left.
    pub fn pin_retries(&self) -> u8 {
        self.pin_retries
    }

    /// Number of discoverable credentials stored.
    pub fn resident_count(&self) -> usize {
        self.credentials.iter().filter(|c| c.discoverable).count()
    }

    /// Whether the credential with this id exists and has hmac-secret enabled.
    pub fn hmac_secret_enabled(&self, credential_id: &[u8]) -> Option<bool> {
        self.credentials.iter().find(|c| c.id == credential_id).map(|c| c.cred_random.is_some())
    }

    /// Handles one CTAP request (command byte + CBOR) and returns status byte + CBOR.
    pub fn process(&mut self, request: &[u8], presence: &mut dyn Presence) -> Vec<u8> {
        let Some((&cmd, body)) = request.split_first() else {
            return vec![Status::InvalidLength as u8];
        };
        if cmd != CMD_CRED_MGMT {
            self.enumeration = None;
        }
        if cmd != CMD_GET_NEXT_ASSERTION {
            self.next_assertions = None;
        }
        let ctap21_only = [CMD_SELECTION, CMD_CRED_MGMT, CMD_CONFIG].contains(&cmd);
        if self.ctap20_only && ctap21_only {
            return vec![Status::InvalidCommand as u8];
        }
        let result = Args::parse(body).and_then(|args| match cmd {
            CMD_GET_INFO => Ok(Some(self.get_info())),
            CMD_CLIENT_PIN => self.client_pin(&args).map(Some),
            CMD_MAKE_CREDENTIAL => self.make_credential(&args, presence).map(Some),
            CMD_GET_ASSERTION => self.get_assertion(&args, presence).map(Some),
            CMD_GET_NEXT_ASSERTION => self.get_next_assertion().map(Some),
            CMD_RESET => self.reset(presence).map(|_| None),
            CMD_SELECTION => presence.confirm().map(|_| None),
            CMD_CRED_MGMT => self.credential_management(&args).map(Some),
            CMD_CONFIG => self.authenticator_config(&args).map(|_| None),
            _ => Err(Status::InvalidCommand),
        });
        match result {
            Ok(None) => vec![0],
            Ok(Some(v)) => {
                let mut out = vec![0];
                out.extend(encode(v));
                out
            }
            Err(s) => vec![s as u8],
        }
    }

    fn get_info(&self) -> Value {
        let t = |s: &str| Value::Text(s.into());
        let b = Value::Bool;
        let mut options = vec![("rk", b(true)), ("up", b(true)), ("clientPin", b(self.pin_hash.is_some()))];
        if self.ctap20_only {
            return imap(vec![
                (1, Value::Array(vec![t("FIDO_2_0")])),
                (2, Value::Array(vec![t("hmac-secret")])),
                (3, Value::Bytes(self.config.aaguid.to_vec())),
                (4, tmap(options)),
                (5, int(crate::hid::MAX_MESSAGE_LEN as i64)),
                (6, Value::Array(vec![int(1)])),
            ]);
        }
        options.extend([
            ("pinUvAuthToken", b(true)),
            ("alwaysUv", b(self.config.always_uv)),
            ("makeCredUvNotRqd", b(!self.config.always_uv)),
            ("credMgmt", b(true)),
            ("authnrCfg", b(true)),
            ("setMinPINLength", b(true)),
            ("ep", b(self.enterprise_attestation)),
        ]);
        imap(vec![
            (1, Value::Array(vec![t("FIDO_2_0"), t("FIDO_2_1")])),
            (2, Value::Array(vec![t("credProtect"), t("hmac-secret"), t("minPinLength")])),
            (3, Value::Bytes(self.config.aaguid.to_vec())),
            (4, tmap(options)),
            (5, int(crate::hid::MAX_MESSAGE_LEN as i64)),
            (6, Value::Array(vec![int(2), int(1)])),
            (7, int(crate::credential::MAX_CREDENTIALS_IN_LIST as i64)),
            (8, int(128)),
            (9, Value::Array(vec![t("usb")])),
            (10, Value::Array(vec![tmap(vec![("alg", int(-7)), ("type", t("public-key"))])])),
            (12, b(self.config.force_pin_change)),
            (13, int(self.config.min_pin_length.into())),
            (14, int(0x0001_0000)),
            (16, int(crate::config_cmd::MAX_RPIDS_FOR_MIN_PIN_LENGTH as i64)),
            (20, int(self.config.max_resident_keys.saturating_sub(self.resident_count()) as i64)),
        ])
    }

    fn reset(&mut self, presence: &mut dyn Presence) -> CtapResult<()> {
        if self.powered_at.elapsed() > self.config.reset_window {
            return Err(Status::NotAllowed);
        }
        presence.confirm()?;
        self.pin_hash = None;
        self.pin_retries = MAX_PIN_RETRIES;
        self.mismatches = 0;
        self.token = None;
        self.credentials.clear();
        self.pin_length = 0;
        self.enumeration = None;
        self.next_assertions = None;
        self.min_pin_length_rp_ids.clear();
        self.enterprise_attestation = false;
        self.config.min_pin_length = self.factory_min_pin_length;
        self.config.always_uv = false;
        self.config.force_pin_change = false;
        self.regenerate_key_agreement();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(a: &mut Authenticator, cmd: u8, body: Value) -> (u8, Option<Value>) {
        let mut req = vec![cmd];
        req.extend(encode(body));
        let resp = a.process(&req, &mut Immediate(PresencePolicy::Approve(Duration::ZERO)));
        let v = (resp.len() > 1).then(|| ciborium::de::from_reader(&resp[1..]).unwrap());
        (resp[0], v)
    }

    #[test]
    fn get_info_lists_versions_protocols_and_options() {
        let mut a = Authenticator::new(Config::default());
        let resp = a.process(&[CMD_GET_INFO], &mut Immediate(PresencePolicy::Approve(Duration::ZERO)));
        assert_eq!(resp[0], 0);
        let v: Value = ciborium::de::from_reader(&resp[1..]).unwrap();
        let m = v.as_map().unwrap();
        assert_eq!(m[0].0, int(1));
        assert_eq!(m[5].1, Value::Array(vec![int(2), int(1)]));
    }

    #[test]
    fn unknown_command_and_bad_cbor_are_reported() {
        let mut a = Authenticator::new(Config::default());
        let mut p = Immediate(PresencePolicy::Approve(Duration::ZERO));
        assert_eq!(a.process(&[0x55], &mut p), vec![Status::InvalidCommand as u8]);
        assert_eq!(a.process(&[CMD_CLIENT_PIN, 0xFF], &mut p), vec![Status::InvalidCbor as u8]);
        assert_eq!(call(&mut a, CMD_CLIENT_PIN, imap(vec![])).0, Status::MissingParameter as u8);
        assert_eq!(
            call(&mut a, CMD_CLIENT_PIN, imap(vec![(1, int(3)), (2, int(2))])).0,
            Status::InvalidParameter as u8
        );
        assert_eq!(
            call(&mut a, CMD_CLIENT_PIN, imap(vec![(1, int(2)), (2, int(0x20))])).0,
            Status::InvalidSubcommand as u8
        );
    }

    #[test]
    fn reset_only_within_window_and_with_touch() {
        let mut a = Authenticator::new(Config { reset_window: Duration::ZERO, ..Config::default() });
        std::thread::sleep(Duration::from_millis(2));
        assert_eq!(call(&mut a, CMD_RESET, imap(vec![])).0, Status::NotAllowed as u8);
        a.config.reset_window = Duration::from_secs(10);
        a.power_cycle();
        let resp = a.process(&[CMD_RESET], &mut Immediate(PresencePolicy::Deny(Duration::ZERO)));
        assert_eq!(resp, vec![Status::OperationDenied as u8]);
        assert_eq!(a.process(&[CMD_RESET], &mut Immediate(PresencePolicy::Approve(Duration::ZERO))), vec![0]);
    }
}
