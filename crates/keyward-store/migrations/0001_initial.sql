-- Keyward schema v1, one file for SQLite and PostgreSQL: portable types only (TEXT, BIGINT; booleans as 0/1, times as Unix microseconds).

CREATE TABLE person (
    id               TEXT PRIMARY KEY,
    display_name     TEXT NOT NULL,
    upn              TEXT NOT NULL,
    ext_ref_1        TEXT,
    ext_ref_2        TEXT,
    ext_ref_3        TEXT,
    link_method      TEXT,
    enabled          BIGINT NOT NULL DEFAULT 1,
    deleted_in_entra BIGINT NOT NULL DEFAULT 0,
    source           TEXT NOT NULL,
    groups_json      TEXT NOT NULL DEFAULT '[]',
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);
CREATE UNIQUE INDEX person_upn ON person (lower(upn));
CREATE INDEX person_ext_ref_1 ON person (ext_ref_1);
CREATE INDEX person_ext_ref_2 ON person (ext_ref_2);
CREATE INDEX person_ext_ref_3 ON person (ext_ref_3);
CREATE INDEX person_name ON person (lower(display_name));

CREATE TABLE security_key (
    id         TEXT PRIMARY KEY,
    serial     TEXT UNIQUE,
    aaguid     TEXT NOT NULL,
    model      TEXT,
    firmware   TEXT,
    state      TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE passkey (
    id              TEXT PRIMARY KEY,
    entra_method_id TEXT,
    credential_id   TEXT NOT NULL UNIQUE,
    person_id       TEXT NOT NULL REFERENCES person (id),
    security_key_id TEXT REFERENCES security_key (id),
    aaguid          TEXT NOT NULL,
    model           TEXT,
    display_name    TEXT NOT NULL,
    state           TEXT NOT NULL,
    origin          TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
CREATE INDEX passkey_person ON passkey (person_id);
CREATE INDEX passkey_key ON passkey (security_key_id);
CREATE INDEX passkey_method ON passkey (entra_method_id);

CREATE TABLE issuance (
    id                   TEXT PRIMARY KEY,
    person_id            TEXT NOT NULL REFERENCES person (id),
    requester            TEXT NOT NULL,
    channel              TEXT NOT NULL,
    approval_required    BIGINT NOT NULL,
    approved_by          TEXT,
    security_key_id      TEXT REFERENCES security_key (id),
    collection_code_hash TEXT UNIQUE,
    challenge_expires_at BIGINT,
    state                TEXT NOT NULL,
    failure_reason       TEXT,
    created_at           BIGINT NOT NULL,
    updated_at           BIGINT NOT NULL
);
CREATE INDEX issuance_person ON issuance (person_id);
CREATE INDEX issuance_state ON issuance (state);

CREATE TABLE enrollment_policy (
    id                  TEXT PRIMARY KEY,
    group_name          TEXT NOT NULL UNIQUE,
    mode                TEXT NOT NULL,
    pin_min_length      BIGINT NOT NULL,
    pin_force_change    BIGINT NOT NULL,
    allowed_aaguids     TEXT NOT NULL DEFAULT '[]',
    max_passkeys        BIGINT,
    updated_at          BIGINT NOT NULL
);

CREATE TABLE audit_event (
    seq       BIGINT PRIMARY KEY,
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    subject   TEXT NOT NULL,
    outcome   TEXT NOT NULL,
    detail    TEXT NOT NULL,
    at        BIGINT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL UNIQUE
);
CREATE INDEX audit_event_subject ON audit_event (subject);

CREATE TABLE api_token (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL UNIQUE,
    role         TEXT NOT NULL,
    token_hash   TEXT NOT NULL UNIQUE,
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT,
    revoked_at   BIGINT
);

CREATE TABLE connector_settings (
    id                      BIGINT PRIMARY KEY CHECK (id = 1),
    enabled                 BIGINT NOT NULL,
    http_debug              BIGINT NOT NULL,
    tenant_id               TEXT NOT NULL,
    client_id               TEXT NOT NULL,
    client_secret_enc       TEXT,
    certificate_pem         TEXT,
    private_key_enc         TEXT,
    challenge_timeout_min   BIGINT NOT NULL,
    graph_version           TEXT NOT NULL,
    authority_url           TEXT NOT NULL,
    graph_url               TEXT NOT NULL,
    external_ref_slot       BIGINT NOT NULL,
    updated_at              BIGINT NOT NULL
);

CREATE TABLE job (
    id         TEXT PRIMARY KEY,
    kind       TEXT NOT NULL,
    created_by TEXT NOT NULL,
    params     TEXT NOT NULL DEFAULT '{}',
    created_at BIGINT NOT NULL
);

CREATE TABLE job_unit (
    id          TEXT PRIMARY KEY,
    job_id      TEXT NOT NULL REFERENCES job (id),
    seq         BIGINT NOT NULL,
    payload     TEXT NOT NULL,
    state       TEXT NOT NULL,
    attempts    BIGINT NOT NULL DEFAULT 0,
    lease_token TEXT,
    lease_until BIGINT,
    result      TEXT,
    updated_at  BIGINT NOT NULL,
    UNIQUE (job_id, seq)
);
CREATE INDEX job_unit_claim ON job_unit (job_id, state, seq);
