//! Proof of sign-in after a registration: the client asks for the tenant's challenge, the key
//! answers it, and the tenant signs the person in with the new passkey (or says it does not
//! offer this). A proof is audited (`passkey.sign-in-proved`) in its own transaction; a tenant
//! without the endpoint is reported to the client, not an error, since Entra publishes none.
//!
//! The tenant learns which person is expected (`loginHint`), so a key answering with another
//! person's passkey is refused by the tenant, not only by Keyward.

use keyward_core::{AuditDraft, IssuanceId, IssuanceState, Permission};
use keyward_entra::signin::{SignInError, SignInOffer};
use keyward_proto::issuances::{SignInChallengeView, SignInProofRequest, SignInProofView};
use keyward_store::issuances;
use keyward_webauthn::signin::{AssertionCredential, AssertionResponse};

use super::{Caller, Service, ServiceError};

fn entra(e: SignInError) -> ServiceError {
    match e {
        SignInError::Refused(m) => ServiceError::Refused(format!("the tenant refused the sign-in: {m}")),
        other => ServiceError::Entra(other.to_string()),
    }
}

impl Service {
    /// The person of a registered issuance and the login hint the tenant knows them by.
    async fn registered_person(&self, id: IssuanceId) -> Result<(String, String), ServiceError> {
        let (issuance, person) = self.issuance_with_person(id).await?;
        if issuance.state != IssuanceState::Registered {
            return Err(ServiceError::Conflict(format!(
                "issuance {id} is {}: a sign-in is proved after the passkey is registered",
                issuance.state
            )));
        }
        let hint = person.entra_object_id(self.slot).map(str::to_owned).unwrap_or_else(|| person.upn.clone());
        Ok((hint, person.upn))
    }

    /// The tenant's sign-in challenge for the person of a registered issuance, or why none.
    pub async fn sign_in_challenge(
        &self,
        caller: &Caller,
        id: IssuanceId,
    ) -> Result<SignInChallengeView, ServiceError> {
        caller.require(Permission::IssuanceCreate)?;
        let (hint, _) = self.registered_person(id).await?;
        let connector = self.connector.get(&self.store).await?;
        Ok(match connector.passkey_sign_in_options(&hint).await.map_err(entra)? {
            SignInOffer::Offered(options) => {
                SignInChallengeView { offered: true, challenge: Some(options.challenge), note: None }
            }
            SignInOffer::NotOffered(note) => {
                SignInChallengeView { offered: false, challenge: None, note: Some(note) }
            }
        })
    }

    /// Hands the key's answer to the tenant; audits the proof when the tenant signed the
    /// issuance's person in.
    pub async fn prove_sign_in(
        &self,
        caller: &Caller,
        id: IssuanceId,
        proof: SignInProofRequest,
    ) -> Result<SignInProofView, ServiceError> {
        caller.require(Permission::IssuanceCreate)?;
        let (hint, upn) = self.registered_person(id).await?;
        let credential = AssertionCredential {
            id: proof.credential_id.clone(),
            response: AssertionResponse {
                client_data_json: proof.client_data_json,
                authenticator_data: proof.authenticator_data,
                signature: proof.signature,
                user_handle: proof.user_handle,
            },
        };
        let connector = self.connector.get(&self.store).await?;
        let signed = connector.passkey_sign_in(credential).await.map_err(entra)?;
        let same = signed.object_id.eq_ignore_ascii_case(&hint) || signed.upn.eq_ignore_ascii_case(&upn);
        if !same {
            return Err(ServiceError::Refused(format!(
                "the tenant signed in {} instead of {upn}: the key answered with another person's passkey",
                signed.upn
            )));
        }
        let detail = serde_json::json!({
            "upn": signed.upn, "objectId": signed.object_id, "method": signed.method,
            "credentialId": proof.credential_id,
        });
        let draft =
            AuditDraft::new(caller.actor(), "passkey.sign-in-proved", issuances::subject(id)).detail(&detail);
        let mut tx = self.store.begin().await?;
        keyward_store::audit::append(&mut tx, draft);
        tx.commit().await?;
        Ok(SignInProofView { upn: signed.upn, object_id: signed.object_id, method: signed.method })
    }
}
