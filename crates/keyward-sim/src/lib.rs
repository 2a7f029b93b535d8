//! `keyward-sim`: an emulator of the Entra ID login and Microsoft Graph endpoints Keyward
//! uses, so that every test, the demo and every benchmark can run without Microsoft — and
//! a client that passes it would pass the real service.
//!
//! The wire format follows `docs/entra-graph-api.md`. By default the emulator
//! behaves as Entra was observed to behave wherever a public source documents it (a doc
//! page, the error-code reference, a public client's change after failing against
//! production); `--strict` ([`SimOptions::strict`]) keeps the stricter readings, for a
//! client that wants to stay inside what every reading allows. Where no source says,
//! the emulator takes the stricter reading in both modes. The choices, in one place, each
//! with its source or marked unknown:
//!
//! * **Origin** `https://login.microsoft.com`, also with a trailing slash (DSInternals.Passkeys'
//!   live test: .NET's UriBuilder writes the slash; accepted). `--strict`: exactly without.
//!   `https://login.microsoftonline.com` is refused (unknown; stricter).
//! * **Challenges** are bound to the user they were issued for; an expired, foreign or
//!   forged one is refused (400 `badRequest`; unknown, stricter). Two credentials from one
//!   set of creation options are accepted (DSInternals.Passkeys' live test). `--strict`:
//!   single use. A challenge is base64url of a compact JWE's text, about 6 900 characters
//!   (DSInternals.Passkeys' test fixture, docs/entra-graph-api.md §1.3); what is inside the
//!   real JWE is unknown, so the emulator's holds its own sealed claims.
//! * **Duplicate credential id** for the same user → 409 `conflict` (unknown).
//! * **displayName** is required on v1.0 and beta, with the observed error text ("…a
//!   displayName and publicKeyCredential…", msgraph-beta-sdk-dotnet #941); longer than 30
//!   characters → 400 (DSInternals, powershellYK, KeyEnroll); counting unit unknown.
//! * **`rawId`, `type`, `authenticatorAttachment`**, and `response.transports`, `publicKey`,
//!   `authenticatorData` in the POST body → 400 (DSInternals.Passkeys "Fix passkey cloud
//!   registration issues": only `id`, `response`, `clientExtensionResults` are accepted).
//!   `@odata.type` is ignored (docs/entra-graph-api.md §2.2). Stored transports are therefore empty (what
//!   Entra lists in `excludeCredentials.transports`: unknown).
//! * **`excludeCredentials` ids** are base64url without padding by default (the v1.0 doc);
//!   the seed's `excludeCredentialEncoding` picks another observed form: `padDigit`,
//!   `base64`, `base64NoPad`, or `mixed`, forms taken in turn within one list as Entra was
//!   seen to do (docs/entra-graph-api.md §1.4). Which form a tenant uses when: unknown.
//! * **Self-service setting off** → 403 `accessDenied` naming the known issue (Graph
//!   known issue).
//! * **Guest user** → 400 naming the rule; **disabled method, user not targeted or
//!   excluded** → 403 `accessDenied` (status and text unknown).
//! * **TAP policy targets**: a pass for a user outside `includeTargets` or inside
//!   `excludeTargets` → 403 `accessDenied` (the policy has both lists like FIDO2's; Graph's
//!   answer unknown).
//! * **EdDSA (-8)** and any algorithm not offered → 400 (unknown; stricter).
//! * **Unknown AAGUID model** → `model` is `null`; `attestationLevel` is `attested` only
//!   when the chain verified to a trusted root, `notAttested` otherwise (also for
//!   self-attested `packed`). `passkeyType` is `synced` when the backup-eligible flag is
//!   set, else `deviceBound` (unknown).
//! * **Self-signed attestation CA, certificate outside the §8.2.1 profile** (wrong OU,
//!   critical AAGUID extension) with attestation not enforced: accepted as `notAttested`
//!   when the ES256 signature verifies with the leaf (DSInternals.Passkeys' "Passkeys" test
//!   CA). `--strict`: refused. Enforced attestation needs a chain to a trusted root; FIDO
//!   certification status and declared capabilities are not yet read (issue 18).
//! * **Method id** is the credential id in base64url with a padding digit (indirect
//!   evidence only: a doc example; do not depend on it). `--method-ids opaque` makes them
//!   random GUIDs, found only by that id, for clients that must not depend on the form.
//! * **Directory roles**: `GET /directoryRoles` lists the built-in roles someone holds (only
//!   activated roles appear, as in Graph), with Microsoft's template ids;
//!   `/directoryRoles/{id}/members` lists the holders; both need
//!   `RoleManagement.Read.Directory` or a broader directory permission (permission reference).
//!   A role's object id in the tenant is the emulator's own (derived from tenant and template).
//! * **v1.0 creationOptions** refuses a `challengeTimeoutInMinutes` parameter (400);
//!   beta accepts 5–43 200 in all three URL spellings (spec).
//! * **Throttling** applies the identity quotas to authentication-method calls too
//!   (unknown: the throttling page and field reports disagree).
//! * **Unknown user on creationOptions** → 404 `Request_ResourceNotFound` (spec).
//! * **creationOptions** applies the policy checks that do not depend on the credential
//!   (method disabled, self-service off, guest, not targeted, excluded) already, so a client
//!   learns before it touches a key (unknown; stricter).
//! * **Attestation enforced but not met, an AAGUID blocked or not allowed, a synced key
//!   refused by `passkeyTypes`** → 400 `badRequest` (the spec's hints).
//! * **Unknown attestation formats** are refused even when attestation is not enforced
//!   (the vendor doc allows custom formats up to 32 characters; stricter); `tpm`,
//!   `android-key` and `apple` are accepted when not enforced.
//! * **`crossOrigin: true`**, and backup-state without backup-eligible → 400 (WebAuthn).
//! * **`clientDataJSON.challenge`** must be base64url without padding, as browsers write
//!   it; only `id`, `clientDataJSON` and `attestationObject` are decoded leniently (spec
//!   §2.2 for the lenient fields; the rest unknown).
//! * **Replaying an accepted body** → 409 (the duplicate check comes first).
//! * **Policy check order**: disabled, self-service off, guest, excluded, not included.
//!   With passkey profiles the legacy fields are ignored; a key must satisfy at least one
//!   profile the user is scoped to, else the default profile (`defaultPasskeyProfile`, or
//!   the first) (unknown order).
//! * **`attestationLevel`** is `attested` whenever a chain (packed or fido-u2f) reaches a
//!   trusted root; `attestationCertificates` are SHA-1 thumbprints of the statement's x5c.
//! * **Users**: `$search` without `ConsistencyLevel: eventual` → 400
//!   `Request_UnsupportedQuery` (text from microsoft-graph-toolkit #3028); `$count` → 400
//!   `Request_BadRequest` "$count is not currently supported." (microsoft-graph-docs-contrib
//!   #2716); `$orderby` with `$filter` → 400 (Graph advanced-query docs; body unknown, the
//!   emulator's own text). Plain `$orderby` on displayName or userPrincipalName needs no
//!   header.
//! * **Token endpoint**: a client-credentials scope without `/.default` → 400
//!   `invalid_scope` AADSTS1002012 (public issue reports); another resource's `/.default`
//!   → AADSTS70011 (the emulator serves only Graph). Client assertions with fractional
//!   `exp`/`nbf`/`iat` are accepted (RFC 7519 NumericDate; MSAL Python sends them).
//!   `--strict`: integers only (AADSTS50013).
//! * **Passkey sign-in** (unknown, emulator's own shape: Microsoft's sign-in page does not
//!   publish one; `--no-sign-in` removes it, with TAP sign-in and security-info registration, so
//!   a client can be tested against a tenant that offers none, like Entra): `POST /{tenant}/passkey/signin/options` with `{clientId, loginHint?}` gives
//!   WebAuthn request options (`challenge`, `rpId` `login.microsoft.com`, `timeout` 300 000,
//!   `userVerification: required`, empty `allowCredentials`: discoverable credentials);
//!   `POST /{tenant}/passkey/signin` with `{clientId, scope?, credential: {id, response:
//!   {clientDataJSON, authenticatorData, signature, userHandle}}}` gives a token response
//!   (shapes in `keyward_webauthn::signin`). No client authentication (a person signs in, as in
//!   a browser). The challenge is sealed, bound to the client and hint, valid 5 minutes and
//!   single use (unknown; stricter). Checked: `webauthn.get`, origin as at registration
//!   (trailing slash accepted unless `--strict`), rp id hash, UP and UV, a credential
//!   registered through Graph and not deleted, the user handle of its owner (required when no
//!   `loginHint` named the user; WebAuthn §7.2), the signature with the registered key
//!   (webauthn-rs-core's COSE key), a signature counter that grows unless the key keeps none
//!   (WebAuthn §7.2 step 21; refusing rather than flagging is the stricter reading), account
//!   enabled, Conditional Access. Refusals are 400 `invalid_grant` AADSTS50012 with a message
//!   naming the rule (the code is the emulator's choice; Entra's codes here are unknown),
//!   AADSTS50057 for a disabled account, AADSTS53003 for Conditional Access.
//! * **TAP sign-in** (unknown, emulator's own shape): `POST /{tenant}/tap/signin` with
//!   `{clientId, username, temporaryAccessPass, scope?}`. The emulator keeps a SHA-256 of the
//!   method id and the pass, never the pass. Refused with AADSTS50126 and the reason when the
//!   pass is wrong, not yet valid, expired, disabled by policy, or one-time and already used
//!   (a spent pass then lists `methodUsabilityReason: OneTimeUsed`, a documented value). The
//!   code for these cases is unknown.
//! * **Tokens of a signed-in person**: an access token with `amr` `fido` or `tap` (Entra's
//!   `amr` for a TAP: unknown) and `scp`; for the scope
//!   `https://mysignins.microsoft.com/.default` its audience is `https://mysignins.microsoft.com`
//!   (unknown), the only token the emulator's security-info registration takes
//!   (`GET /{tenant}/securityinfo/passkey/creationOptions`, `POST /{tenant}/securityinfo/passkey`,
//!   Graph's bodies and verification; paths are the emulator's own, as My Sign-Ins uses private
//!   APIs). Other scopes give a Graph token without roles (delegated Graph permissions are not
//!   emulated). The sign-in page's ID token now carries `amr: ["pwd"]`.
//! * **Conditional Access**: the seed's `conditionalAccessPolicies` (Graph v1.0 shape, listed at
//!   `/identity/conditionalAccess/policies` with `Policy.Read.All`) are enforced at sign-in:
//!   enabled policies only (report-only is not enforced), users/groups with exclusions; a
//!   policy names either `All` applications (every resource) or the user action
//!   `urn:user:registersecurityinfo`, never both (the emulator's model; other applications,
//!   locations, platforms, devices and session controls are not judged). A sign-in must meet
//!   the authentication strength's `allowedCombinations` of every policy that applies (`fido2`
//!   for a passkey, `temporaryAccessPassOneTime`/`MultiUse` for a TAP, `password` for the
//!   sign-in page, which stands for a password sign-in); `block` refuses all. A refusal is
//!   AADSTS53003 (BlockedByConditionalAccess, error-code reference). Whether an all-resources
//!   policy also governs registering security info in Entra: unknown; in the emulator's model
//!   it does not (only user-action policies do), so the seed scenario's TAP registration works
//!   with or without the user-action policy.
//! * **Login** choices (assertion clock skew, replay and time-range AADSTS codes, code
//!   lifetimes, PKCE `S256` only, `response_mode=query` only) are listed in [`login`].

pub mod auth;
pub mod faults;
pub mod graph;
pub mod keys;
pub mod login;
pub mod registration;
pub mod seed;
pub mod server;
pub mod tenant;
pub mod throttle;

use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::{Next, from_fn, from_fn_with_state};
use axum::response::{IntoResponse, Response};

use crate::auth::Caller;
use crate::faults::{FaultSpec, Faults};
use crate::graph::{ApiVersion, GraphFailure};
use crate::keys::LoadedKeys;
use crate::seed::Seed;
use crate::tenant::TenantState;
use crate::throttle::{Throttle, ThrottleProfile};

/// How the emulator runs, beyond the tenant it holds.
#[derive(Debug, Clone, Default)]
pub struct SimOptions {
    /// Service time added to every call.
    pub latency: Duration,
    /// Throttling quotas.
    pub throttle: ThrottleProfile,
    /// Injected faults.
    pub faults: FaultSpec,
    /// Where state is persisted, if anywhere.
    pub state_file: Option<PathBuf>,
    /// Keep the stricter readings where observed Entra behaviour is looser (see the list of
    /// choices at the top of this crate).
    pub strict: bool,
    /// Serve no passkey or TAP sign-in (and no security-info registration), as real Entra
    /// publishes none: the paths answer 404.
    pub no_sign_in: bool,
    /// How method ids are formed (`--method-ids`).
    pub method_ids: MethodIds,
}

/// How the emulator forms a passkey's method id.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum MethodIds {
    /// The credential id in base64url with Entra's padding digit (the form public samples show).
    #[default]
    FromCredentialId,
    /// A random GUID unrelated to the credential id: no source confirms the derived form, so a
    /// client must not depend on it. A method is then found only by its own id.
    Opaque,
}

/// A running emulator's shared state; cheap to clone.
#[derive(Clone)]
pub struct Sim(Arc<SimInner>);

/// What [`Sim`] holds.
pub struct SimInner {
    state: Mutex<TenantState>,
    keys: LoadedKeys,
    options: SimOptions,
    throttle: Throttle,
    faults: Faults,
    base_url: OnceLock<String>,
    router: OnceLock<Router>,
}

impl Sim {
    /// An emulator for `seed`, or for the state in `options.state_file` if that exists.
    pub fn new(seed: Seed, options: SimOptions) -> Result<Self, String> {
        let state = match &options.state_file {
            Some(path) if path.exists() => TenantState::load(path)?,
            _ => TenantState::from_seed(seed)?,
        };
        Self::from_state(state, options)
    }

    /// An emulator for an existing state.
    pub fn from_state(state: TenantState, options: SimOptions) -> Result<Self, String> {
        let keys = LoadedKeys::load(&state.keys)?;
        if let Some(path) = &options.state_file {
            state.save(path)?;
        }
        let throttle = Throttle::new(options.throttle.clone(), state.users.len());
        let faults = Faults::new(options.faults.clone());
        Ok(Self(Arc::new(SimInner {
            state: Mutex::new(state),
            keys,
            options,
            throttle,
            faults,
            base_url: OnceLock::new(),
            router: OnceLock::new(),
        })))
    }

    /// Reads the tenant state.
    pub fn read<R>(&self, f: impl FnOnce(&TenantState) -> R) -> R {
        let guard = self.0.state.lock().unwrap_or_else(|p| p.into_inner());
        f(&guard)
    }

    /// Changes the tenant state and, with `--state`, writes it through before returning.
    pub fn write<R>(&self, f: impl FnOnce(&mut TenantState) -> R) -> R {
        let mut guard = self.0.state.lock().unwrap_or_else(|p| p.into_inner());
        let out = f(&mut guard);
        if let Some(path) = &self.0.options.state_file
            && let Err(e) = guard.save(path)
        {
            tracing::error!("{e}");
        }
        out
    }

    /// The emulator's keys.
    pub fn keys(&self) -> &LoadedKeys {
        &self.0.keys
    }

    /// Run options.
    pub fn options(&self) -> &SimOptions {
        &self.0.options
    }

    /// The fault dice.
    pub fn faults(&self) -> &Faults {
        &self.0.faults
    }

    /// Changes the injected faults of a running emulator.
    pub fn set_faults(&self, spec: FaultSpec) {
        self.0.faults.set(spec);
    }

    /// The base URL clients reach this emulator at (set once serving starts).
    pub fn base_url(&self) -> String {
        self.0.base_url.get().cloned().unwrap_or_else(|| "http://127.0.0.1".into())
    }

    /// Records the base URL (called by the server when it binds).
    pub fn set_base_url(&self, url: String) {
        let _ = self.0.base_url.set(url);
    }

    /// The whole HTTP application: login at `/{tenant}/…`, Graph at `/v1.0` and `/beta`.
    pub fn router(&self) -> Router {
        self.0.router.get_or_init(|| build_router(self.clone())).clone()
    }
}

fn build_router(sim: Sim) -> Router {
    let graph = || {
        graph::routes()
            .fallback(unknown_segment)
            .layer(from_fn_with_state(sim.clone(), throttle_layer))
            .layer(from_fn_with_state(sim.clone(), auth::require_token))
    };
    let graph = Router::new()
        .nest("/v1.0", graph().layer(axum::Extension(ApiVersion::V1)))
        .nest("/beta", graph().layer(axum::Extension(ApiVersion::Beta)))
        .layer(from_fn(graph::conventions));
    let login = if sim.options().no_sign_in {
        login::routes()
    } else {
        login::routes().merge(login::sign_in_routes())
    };
    Router::new()
        .merge(graph)
        .merge(login)
        .layer(axum::extract::DefaultBodyLimit::max(4 * 1024 * 1024))
        .with_state(sim)
}

async fn unknown_segment(request: Request) -> GraphFailure {
    let segment = request.uri().path().rsplit('/').next().unwrap_or("").to_owned();
    GraphFailure::new(
        StatusCode::BAD_REQUEST,
        "BadRequest",
        format!("Resource not found for the segment '{segment}'."),
    )
}

async fn throttle_layer(State(sim): State<Sim>, request: Request, next: Next) -> Response {
    let Some(caller) = request.extensions().get::<Caller>().cloned() else {
        return next.run(request).await;
    };
    let path = request.uri().path().to_owned();
    let query = request.uri().query().unwrap_or("").to_owned();
    if path.ends_with("/$batch") {
        // A batch is charged per inner request, when each is dispatched.
        return next.run(request).await;
    }
    let cost = throttle::cost_of(request.method(), &path, &query);
    match sim.0.throttle.charge(&caller.app_id, cost) {
        Ok(admitted) => {
            let mut response = next.run(request).await;
            let headers = response.headers_mut();
            if let Ok(v) = HeaderValue::from_str(&admitted.resource_units.to_string()) {
                headers.insert("x-ms-resource-unit", v);
            }
            if let Some(p) = admitted.limit_percentage
                && let Ok(v) = HeaderValue::from_str(&format!("{p:.1}"))
            {
                headers.insert("x-ms-throttle-limit-percentage", v);
            }
            response
        }
        Err(throttled) => {
            let scope =
                format!("Tenant_Application/{}/{}/{}", throttled.kind, caller.app_id, caller.tenant_id);
            GraphFailure::new(StatusCode::TOO_MANY_REQUESTS, "TooManyRequests", "Please retry again later.")
                .with_header(axum::http::header::RETRY_AFTER, format!("{:.3}", throttled.retry_after))
                .with_header(axum::http::HeaderName::from_static("x-ms-throttle-scope"), scope)
                .with_header(
                    axum::http::HeaderName::from_static("x-ms-throttle-information"),
                    throttled.information,
                )
                .into_response()
        }
    }
}
