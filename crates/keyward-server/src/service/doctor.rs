//! `doctor`: every reason a registration would fail, found before any key is touched.
//!
//! A refused registration is expensive: the key has already made a credential (which must be
//! deleted again), Graph spends a write from the tenant's quota, and the operator gets a terse
//! Graph error at the end of a hardware ceremony. Peers leave the operator to discover the causes
//! one at a time (peer tools report it; see docs/architecture.md). Doctor runs the same checks up front, in the order a registration
//! meets them — connector and permissions, the tenant's FIDO2 method policy (state, the
//! self-service switch Graph requires, targets, attestation, AAGUID rules and passkey profiles),
//! the person (Keyward record, Entra link, account, guest), the Conditional Access policies that
//! would stop the person from using the passkey or onboarding with a TAP ([`conditional_access`];
//! group targets are judged with the groups the FIDO2 policy targets, the only memberships doctor
//! reads) and Keyward's own rules (enrollment
//! policy and its key limit, the key's lifecycle state) — and reports each as a [`Finding`] with
//! a fix. The tenant-policy checks (method, targets, and whether the rules that apply to the user
//! accept the key model) are `keyward_webauthn::entra_rules`, the same function the check before
//! the POST and `keyward inspect` use, so the three cannot disagree.
//!
//! Group targets are resolved by listing the members of each targeted group (one call per group),
//! not with `/users/{id}/memberOf`, which the connector's permissions do not promise and the
//! emulator does not serve. Whether a key's attestation would chain to an MDS root is judged from
//! its model: only models in the embedded FIDO MDS carry the roots Entra trusts.

use keyward_core::{EnrollmentMode, PasskeyState, Person, SecurityKey};
use keyward_entra::Connector;
use keyward_entra::ops::{USER_SELECT, User};
use keyward_store::{keys, passkeys};
use keyward_webauthn::entra_rules::{self, Subject};
use keyward_webauthn::mds;
use keyward_webauthn::policy::Fido2Policy;
use uuid::Uuid;

use super::issuance::PersonRef;
use super::{Caller, Service, ServiceError};

mod conditional_access;
mod rules;

use conditional_access::Who;
use rules::model_findings;

pub use keyward_proto::doctor::{DoctorReport, Finding, Severity};

/// What to examine: a person, a key model, a key.
#[derive(Debug, Clone, Default)]
pub struct DoctorQuery {
    /// Keyward id or UPN of the person to provision.
    pub person: Option<String>,
    /// The key model (from the key's getInfo or given by the operator).
    pub aaguid: Option<Uuid>,
    /// The key's serial.
    pub serial: Option<String>,
}

/// The model name of an AAGUID from the embedded FIDO MDS.
pub fn model_name(aaguid: Uuid) -> Option<String> {
    mds::embedded().entry(&aaguid.to_string()).map(|e| e.description.clone())
}

impl Service {
    /// Runs every check that applies to `q`; the answer is a report even when checks fail.
    pub async fn doctor(&self, caller: &Caller, q: &DoctorQuery) -> Result<DoctorReport, ServiceError> {
        caller.require(keyward_core::Permission::PeopleRead)?;
        let mut r = DoctorReport::default();
        let key = match &q.serial {
            Some(serial) => keys::get_by_serial(&self.store, serial).await?,
            None => None,
        };
        let aaguid = q.aaguid.or(key.as_ref().map(|k| k.aaguid));
        if let Some(aaguid) = aaguid {
            match model_name(aaguid) {
                Some(model) => r.ok("model", format!("key model {aaguid}: {model}")),
                None => r.ok("model", format!("key model {aaguid} is not in the FIDO metadata (MDS)")),
            }
        }
        // Entra first: connector, then the tenant's method policy.
        let connector = self.doctor_connector(&mut r).await;
        let policy = match &connector {
            Some(c) => match c.get_fido2_policy().await {
                Ok(p) => {
                    method_findings(&p, &mut r);
                    Some(p)
                }
                Err(e) => {
                    r.block(
                        "policy.read",
                        format!("cannot read the tenant's FIDO2 method policy: {e}"),
                        "grant the app Policy.ReadWrite.AuthenticationMethod with admin consent",
                    );
                    None
                }
            },
            None => None,
        };
        // The person: Keyward's record, then their Entra account and the method's targets.
        let person = match &q.person {
            Some(who) => self.doctor_person_record(who, &mut r).await?,
            None => None,
        };
        let user = match (&connector, &q.person) {
            (Some(c), Some(who)) => {
                // By object id when linked, else by the person's (or the given) UPN.
                let lookup = person.as_ref().map(|p| self.oid(p).unwrap_or_else(|| p.upn.clone()));
                entra_user(c, &lookup.unwrap_or_else(|| who.clone()), &mut r).await
            }
            _ => None,
        };
        let groups = match (&connector, &policy, &user) {
            (Some(c), Some(policy), Some(u)) => {
                user_findings(u, &mut r);
                let groups = member_groups(c, policy, &u.id, &mut r).await;
                target_findings(policy, &Subject { user_id: &u.id, groups: &groups }, &mut r);
                Some(groups)
            }
            _ => None,
        };
        if let Some(c) = &connector {
            let who = Who {
                user_id: user.as_ref().map(|u| u.id.as_str()),
                groups: groups.as_deref().unwrap_or(&[]),
            };
            conditional_access::findings(c, &who, &mut r).await;
        }
        // Keyward's own rules, then the key model against the tenant's rules.
        if let Some(person) = &person {
            self.doctor_enrollment(person, aaguid, &mut r).await?;
        }
        if let Some(serial) = &q.serial {
            self.doctor_key(serial, key.as_ref(), person.as_ref(), &mut r).await?;
        }
        if let Some(policy) = &policy {
            let subject =
                user.as_ref().zip(groups.as_ref()).map(|(u, groups)| Subject { user_id: &u.id, groups });
            model_findings(policy, subject.as_ref(), aaguid, &mut r);
        }
        Ok(r)
    }

    fn oid(&self, person: &Person) -> Option<String> {
        person.entra_object_id(self.slot).map(str::to_owned)
    }

    async fn doctor_person_record(
        &self,
        who: &str,
        r: &mut DoctorReport,
    ) -> Result<Option<Person>, ServiceError> {
        let reference = match who.parse() {
            Ok(id) => PersonRef::Id(id),
            Err(_) => PersonRef::Upn(who.to_owned()),
        };
        let person = match self.find_person(&reference).await {
            Ok(p) => p,
            Err(ServiceError::NotFound(_) | ServiceError::UnknownPerson(_)) => {
                r.block(
                    "user.keyward",
                    format!("{who} is not a person in Keyward"),
                    "run `keyward people sync` (or check the UPN's spelling)",
                );
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        r.ok("user.keyward", format!("{} is a person in Keyward", person.upn));
        match person.entra_object_id(self.slot) {
            Some(oid) => r.ok("user.link", format!("linked to Entra object {oid}")),
            None => r.block(
                "user.link",
                format!("{} is not linked to an Entra account", person.upn),
                format!("link them: `keyward people link {} --upn UPN` (or by --object-id)", person.upn),
            ),
        }
        if !person.enabled {
            r.block(
                "user.keyward-disabled",
                format!("Keyward recorded {}'s account as disabled at the last sync", person.upn),
                "re-enable the account in Entra, then `keyward people sync`",
            );
        }
        if person.deleted_in_entra {
            r.block(
                "user.deleted",
                format!("{} was not found in Entra at the last sync", person.upn),
                "restore the account in Entra (or link the person to their new account) and sync again",
            );
        }
        Ok(Some(person))
    }

    async fn doctor_enrollment(
        &self,
        person: &Person,
        aaguid: Option<Uuid>,
        r: &mut DoctorReport,
    ) -> Result<(), ServiceError> {
        let Some(policy) = self.effective_policy(person).await? else {
            r.ok("enrollment", "no enrollment policy applies to this person's groups (server default)");
            return Ok(());
        };
        if policy.mode == EnrollmentMode::Disabled {
            r.block(
                "enrollment.disabled",
                format!("enrollment is disabled for {}'s groups by the enrollment policy", person.upn),
                "set the group's enrollment policy to optional or mandatory (`keyward policy`)",
            );
        } else {
            r.ok("enrollment", format!("enrollment policy mode: {}", policy.mode));
        }
        let all = passkeys::list_by_person(&self.store, person.id).await?;
        let registered = all.iter().filter(|p| p.state == PasskeyState::Registered).count() as u32;
        match policy.max_passkeys_per_person {
            Some(max) if !policy.allows_another(registered) => r.block(
                "enrollment.limit",
                format!(
                    "{} has {registered} registered passkeys; the enrollment policy allows {max}",
                    person.upn
                ),
                format!("revoke one of their passkeys first (`keyward passkeys list --user {}`)", person.upn),
            ),
            Some(max) => r.ok("enrollment.limit", format!("{registered} of {max} passkeys registered")),
            None => r.ok("enrollment.limit", format!("{registered} passkeys registered, no limit")),
        }
        if let Some(aaguid) = aaguid {
            if policy.allows_aaguid(&aaguid) {
                r.ok("enrollment.model", "the enrollment policy allows this key model");
            } else {
                r.block(
                    "enrollment.model",
                    format!(
                        "the enrollment policy of this person's groups does not allow key model {aaguid}"
                    ),
                    "use a key model the enrollment policy lists, or add this AAGUID to it",
                );
            }
        }
        Ok(())
    }

    async fn doctor_key(
        &self,
        serial: &str,
        key: Option<&SecurityKey>,
        person: Option<&Person>,
        r: &mut DoctorReport,
    ) -> Result<(), ServiceError> {
        let Some(key) = key else {
            r.ok("key.state", format!("key {serial} is not in the inventory yet; issuing adds it"));
            return Ok(());
        };
        match key.ensure_issuable() {
            Ok(()) => r.ok("key.state", format!("key {serial} is {}", key.state)),
            Err(e) => {
                r.block("key.state", format!("key {serial}: {e}"), "take another key from the inventory");
                return Ok(());
            }
        }
        let holders = passkeys::list_by_key(&self.store, key.id).await?;
        let other = holders
            .iter()
            .find(|p| p.state == PasskeyState::Registered && person.is_none_or(|me| p.person_id != me.id));
        if let (Some(other), Some(_)) = (other, person) {
            r.block(
                "key.holder",
                format!("key {serial} already carries passkey {} of another person", other.id),
                "revoke that passkey (`keyward keys revoke-passkeys`) or use another key",
            );
        }
        Ok(())
    }

    async fn doctor_connector(&self, r: &mut DoctorReport) -> Option<Connector> {
        let connector = match self.connector.get(&self.store).await {
            Ok(c) => c,
            Err(e) => {
                r.block("connector", e.to_string(), "configure the connector (`keyward connector set`)");
                return None;
            }
        };
        let report = connector.connection_report().await;
        if let Err(e) = &report.token {
            r.block(
                "connector.token",
                format!("the connector cannot get a token: {e}"),
                "check the tenant id, client id and client secret or certificate in the connector settings",
            );
            return None;
        }
        r.ok("connector.token", "the connector gets a token from Entra");
        match &report.graph_read {
            Ok(()) => r.ok("connector.graph", "Microsoft Graph answers"),
            Err(e) => r.block(
                "connector.graph",
                format!("a Graph read failed: {e}"),
                "grant the app User.Read.All with admin consent and check the Graph URL",
            ),
        }
        if report.missing.is_empty() {
            r.ok("connector.permission", "every application permission Keyward needs is granted");
        }
        for m in &report.missing {
            r.block(
                "connector.permission",
                format!("the app lacks the application permission {} (needed to {})", m.permission, m.purpose),
                format!(
                    "add {} under API permissions > Microsoft Graph > Application permissions and grant admin consent",
                    m.permission
                ),
            );
        }
        Some(connector)
    }
}

/// The method's state and the self-service switch.
fn method_findings(policy: &Fido2Policy, r: &mut DoctorReport) {
    let refusals = entra_rules::method_refusals(policy);
    let refused = |check: &str| refusals.iter().find(|f| f.check() == check);
    match refused("policy.state") {
        Some(refusal) => rules::block(r, refusal),
        None => r.ok("policy.state", "the Passkey (FIDO2) method is enabled"),
    }
    match refused("policy.self-service") {
        Some(refusal) => rules::block(r, refusal),
        None => r.ok("policy.self-service", "self-service setup is allowed"),
    }
}

async fn entra_user(connector: &Connector, lookup: &str, r: &mut DoctorReport) -> Option<User> {
    match connector.get_user(lookup, USER_SELECT).await {
        Ok(u) => Some(u),
        Err(e) if e.status() == Some(404) => {
            r.block(
                "user.entra",
                format!("{lookup} does not exist in Entra"),
                "check the UPN, or re-link the person to their current account and sync",
            );
            None
        }
        Err(e) => {
            r.warn("user.entra", format!("cannot read {lookup} from Entra: {e}"), "run doctor again later");
            None
        }
    }
}

fn user_findings(u: &User, r: &mut DoctorReport) {
    let name = u.user_principal_name.as_deref().unwrap_or(&u.id);
    if u.account_enabled == Some(false) {
        r.block(
            "user.disabled",
            format!("{name}'s account is disabled in Entra"),
            "re-enable the account in Entra, then `keyward people sync`",
        );
    } else {
        r.ok("user.disabled", format!("{name}'s account is enabled"));
    }
    if u.user_type.as_deref().is_some_and(|t| t.eq_ignore_ascii_case("Guest")) {
        r.block(
            "user.guest",
            format!("{name} is a guest; guests cannot register passkeys in this tenant"),
            "register the passkey in the guest's home tenant instead",
        );
    }
}

/// The groups the policy targets (include or exclude) that have the user as a member, and the
/// groups whose members could not be read, with the error.
async fn targeted_membership(
    connector: &Connector,
    policy: &Fido2Policy,
    user_id: &str,
) -> (Vec<String>, Vec<(String, keyward_entra::GraphError)>) {
    let mut member_of = Vec::new();
    let mut unread = Vec::new();
    for id in entra_rules::targeted_groups(policy) {
        match connector.list_group_members(id, &["id"]).await {
            Ok(members) if members.iter().any(|m| m.id.eq_ignore_ascii_case(user_id)) => {
                member_of.push(id.to_owned());
            }
            Ok(_) => {}
            Err(e) => unread.push((id.to_owned(), e)),
        }
    }
    (member_of, unread)
}

/// The user's targeted groups for the check before the POST (one read per targeted group, none
/// when the policy targets only all users); a group that cannot be read fails the check.
pub(crate) async fn targeted_groups_of(
    connector: &Connector,
    policy: &Fido2Policy,
    user_id: &str,
) -> Result<Vec<String>, ServiceError> {
    match targeted_membership(connector, policy, user_id).await {
        (groups, unread) if unread.is_empty() => Ok(groups),
        (_, unread) => Err(ServiceError::Entra(format!(
            "cannot read the members of target group {}: {}; the FIDO2 policy cannot be applied to this user, \
             try again (or grant GroupMember.Read.All)",
            unread[0].0, unread[0].1
        ))),
    }
}

/// Doctor's view of [`targeted_membership`]: a group it cannot read is a warning.
async fn member_groups(
    connector: &Connector,
    policy: &Fido2Policy,
    user_id: &str,
    r: &mut DoctorReport,
) -> Vec<String> {
    let (member_of, unread) = targeted_membership(connector, policy, user_id).await;
    for (id, e) in unread {
        r.warn(
            "user.targets",
            format!("cannot read the members of target group {id}: {e}"),
            "grant GroupMember.Read.All, or check that the group still exists",
        );
    }
    member_of
}

fn target_findings(policy: &Fido2Policy, user: &Subject<'_>, r: &mut DoctorReport) {
    let refusals = entra_rules::target_refusals(policy, user);
    refusals.iter().filter(|f| f.check() == "user.excluded").for_each(|f| rules::block(r, f));
    match refusals.iter().find(|f| f.check() == "user.not-targeted") {
        Some(refusal) => rules::block(r, refusal),
        None => r.ok("user.targets", "the method's include targets cover the user"),
    }
}
