-- opencm initial schema (SQLite). Identifiers are lowercase hyphenated GUID text; timestamps are
-- microseconds since the Unix epoch (UTC), NULL when unset.
CREATE TABLE users (
    uuid TEXT PRIMARY KEY,
    login TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    sid TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
);

CREATE TABLE directory_groups (
    sid TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
);

CREATE TABLE user_groups (
    user_uuid TEXT NOT NULL REFERENCES users(uuid),
    group_sid TEXT NOT NULL,
    PRIMARY KEY (user_uuid, group_sid)
) WITHOUT ROWID;

-- Only the SHA-256 of each token is kept.
CREATE TABLE api_tokens (
    token_hash TEXT PRIMARY KEY,
    user_uuid TEXT NOT NULL REFERENCES users(uuid),
    created_at INTEGER NOT NULL,
    expires_at INTEGER
);

CREATE TABLE profile_templates (
    uuid TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    body TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE requests (
    uuid TEXT PRIMARY KEY,
    request_type INTEGER NOT NULL,
    status INTEGER NOT NULL,
    flags INTEGER NOT NULL,
    data_collection TEXT NOT NULL,
    data_collection_flags INTEGER NOT NULL,
    originator_uuid TEXT NOT NULL,
    target_uuid TEXT NOT NULL,
    submitted INTEGER NOT NULL,
    completed INTEGER,
    new_profile_uuid TEXT NOT NULL,
    old_profile_uuid TEXT NOT NULL,
    new_smartcard_uuid TEXT NOT NULL,
    old_smartcard_uuid TEXT NOT NULL,
    priority INTEGER NOT NULL,
    comment TEXT NOT NULL,
    profile_template_uuid TEXT NOT NULL,
    security_descriptor TEXT NOT NULL,
    version INTEGER NOT NULL
);
CREATE INDEX requests_by_target ON requests (target_uuid, uuid);
CREATE INDEX requests_by_status ON requests (status, uuid);

-- SIDs granted Read by the request's descriptor: lets list queries pre-filter in SQL.
CREATE TABLE request_readers (
    sid TEXT NOT NULL,
    request_uuid TEXT NOT NULL,
    PRIMARY KEY (sid, request_uuid)
) WITHOUT ROWID;

CREATE TABLE approvals (
    request_uuid TEXT NOT NULL,
    approver_uuid TEXT NOT NULL,
    decision TEXT NOT NULL,
    comment TEXT NOT NULL,
    at INTEGER NOT NULL,
    PRIMARY KEY (request_uuid, approver_uuid)
) WITHOUT ROWID;

CREATE TABLE audit_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    request_uuid TEXT NOT NULL,
    at INTEGER NOT NULL,
    actor_uuid TEXT NOT NULL,
    action TEXT NOT NULL,
    from_status INTEGER NOT NULL,
    to_status INTEGER NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX audit_events_by_request ON audit_events (request_uuid, id);
