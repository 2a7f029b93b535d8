-- Fewer index writes per commit (each b-tree a commit touches is a page written to SQLite's WAL).
--
-- 1. The audit chain's order and its guard against forks are `seq` (the primary key: two writers
--    appending after the same event collide on it); `hash` needed no index of its own, and as a
--    random value its UNIQUE index touched a random page with every event. The table is rebuilt
--    without it (neither SQLite nor PostgreSQL can drop an inline UNIQUE in the same words).
CREATE TABLE audit_event_next (
    seq       BIGINT PRIMARY KEY,
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    subject   TEXT NOT NULL,
    outcome   TEXT NOT NULL,
    detail    TEXT NOT NULL,
    at        BIGINT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL
);
INSERT INTO audit_event_next (seq, actor, action, subject, outcome, detail, at, prev_hash, hash)
    SELECT seq, actor, action, subject, outcome, detail, at, prev_hash, hash FROM audit_event;
DROP TABLE audit_event;
ALTER TABLE audit_event_next RENAME TO audit_event;
CREATE INDEX audit_event_subject ON audit_event (subject);

-- 2. Issuances are listed newest first, optionally filtered by person or state; no query could
--    use the index on `state` (the filter is optional), yet every transition rewrote it. An index
--    on `created_at`, which never changes, serves the listing's order instead.
DROP INDEX issuance_state;
CREATE INDEX issuance_created ON issuance (created_at, id);
