//! The service checks its caller's permission itself, whoever calls it: the HTTP layer refuses
//! early from its route table, but the web views, the CLI's host commands and the jobs call the
//! service directly. Each row calls one operation as a caller without its permission and
//! expects `Forbidden` naming the permission, with nothing changed; the scheduler's grant list
//! allows sync and reconcile and nothing it does not need.

use keyward_core::{ApiTokenId, EnrollmentMode, Permission, PinRules, Role};
use keyward_server::service::issuance::{NewIssuance, PersonRef};
use keyward_server::service::people::LinkChange;
use keyward_server::service::policies::PolicyChange;
use keyward_server::{Caller, ServerConfig, Service, ServiceError};

fn token(role: Role) -> Caller {
    Caller::token(ApiTokenId::new(), format!("{role}-token"), role)
}

fn forbidden<T: std::fmt::Debug>(what: &str, result: Result<T, ServiceError>, permission: Permission) {
    match result {
        Err(ServiceError::Forbidden { permission: p, .. }) => assert_eq!(p, permission, "{what}"),
        other => panic!("{what}: expected Forbidden for {permission}, got {other:?}"),
    }
}

#[tokio::test]
async fn every_operation_checks_its_callers_permission() {
    let dir = tempfile::tempdir().unwrap();
    let config = ServerConfig { data_dir: dir.path().to_owned(), ..ServerConfig::default() };
    let service = Service::open(config).await.unwrap();
    let auditor = token(Role::Auditor);
    let helpdesk = token(Role::Helpdesk);
    let operator = token(Role::Operator);
    let ada = PersonRef::Upn("ada@contoso.example".into());

    forbidden(
        "create a token",
        service.create_token(&operator, "x", Role::Admin).await,
        Permission::TokensManage,
    );
    forbidden("list tokens", service.tokens(&auditor, None, None).await, Permission::TokensManage);
    forbidden("revoke a token", service.revoke_token(&helpdesk, "x", false).await, Permission::TokensManage);
    forbidden("read the connector", service.connector_settings(&helpdesk).await, Permission::ConnectorRead);
    forbidden("test the connector", service.test_connector(&operator).await, Permission::ConnectorManage);
    let change = PolicyChange {
        mode: EnrollmentMode::Optional,
        pin: PinRules::default(),
        allowed_aaguids: vec![],
        max_passkeys_per_person: None,
    };
    forbidden("set a policy", service.set_policy(&operator, "staff", change).await, Permission::PolicyManage);
    forbidden("delete a policy", service.delete_policy(&auditor, "staff").await, Permission::PolicyManage);
    forbidden("sync people", service.sync_people(&helpdesk, None).await, Permission::PeopleSync);
    let link = LinkChange::default();
    forbidden("link a person", service.link_person(&auditor, &ada, &link).await, Permission::PeopleLink);
    let relink = LinkChange { revoke_existing: true, ..LinkChange::default() };
    forbidden(
        "relink a person",
        service.link_person(&helpdesk, &ada, &relink).await,
        Permission::PeopleRelink,
    );
    let other = LinkChange { allow_other_upn: true, ..LinkChange::default() };
    forbidden(
        "link to another UPN",
        service.link_person(&operator, &ada, &other).await,
        Permission::PeopleRelink,
    );
    forbidden("issue a TAP", service.issue_tap(&auditor, &ada, None, None).await, Permission::TapIssue);
    let new = NewIssuance { person: ada.clone(), channel: keyward_core::Channel::Operator, serial: None };
    forbidden(
        "create an issuance",
        service.create_issuance(&helpdesk, new).await,
        Permission::IssuanceCreate,
    );
    forbidden(
        "revoke passkeys",
        service.revoke_person_passkeys(&auditor, &ada, "x").await,
        Permission::PasskeysRevoke,
    );
    forbidden(
        "read the audit trail",
        service.audit_events(&operator, None, None, None, None).await,
        Permission::AuditRead,
    );
    forbidden("export the audit trail", service.export_audit(&helpdesk).await, Permission::AuditExport);
    forbidden("run reconcile", service.reconcile(&helpdesk, None).await, Permission::JobsRun);
    forbidden("run a bulk job", service.create_bulk_job(&helpdesk, vec![]).await, Permission::JobsRun);

    // Nothing above changed anything: no token, no policy, an empty audit trail.
    let admin = Caller::host("test");
    assert!(service.tokens(&admin, None, None).await.unwrap().items.is_empty());
    assert!(service.policies(&admin, None, None).await.unwrap().items.is_empty());
    assert!(service.audit_events(&admin, None, None, None, None).await.unwrap().items.is_empty());

    // The scheduler may sync and reconcile (here: refused only because no connector is set),
    // and nothing else.
    let scheduler = Caller::system("scheduler", keyward_server::service::caller::SCHEDULER);
    assert!(matches!(service.sync_people(&scheduler, None).await, Err(ServiceError::NotConfigured(_))));
    assert!(matches!(service.reconcile(&scheduler, None).await, Err(ServiceError::NotConfigured(_))));
    forbidden(
        "scheduler tokens",
        service.create_token(&scheduler, "x", Role::Admin).await,
        Permission::TokensManage,
    );
    forbidden("scheduler TAP", service.issue_tap(&scheduler, &ada, None, None).await, Permission::TapIssue);
}
