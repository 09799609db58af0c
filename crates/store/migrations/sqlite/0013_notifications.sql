-- Notifications: the transactional outbox. A request's change writes one row per channel that
-- wants its event (e-mail, each webhook) in the same transaction as the change and its audit
-- event; a dispatcher on any node claims due rows with a lease (lease_owner, lease_until), delivers
-- them at least once and records each try in outbox_attempts. state: 0 pending, 1 delivered,
-- 2 dead (tried max_attempts times; an administrator may replay it). event_id is the idempotency
-- key receivers see: the same for every channel of one event and for every retry.
CREATE TABLE outbox (
    id TEXT PRIMARY KEY,
    event_id TEXT NOT NULL,
    event TEXT NOT NULL,
    channel TEXT NOT NULL,
    payload TEXT NOT NULL,
    created INTEGER NOT NULL,
    state INTEGER NOT NULL,
    attempts INTEGER NOT NULL,
    next_at INTEGER NOT NULL,
    lease_owner TEXT,
    lease_until INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    finished INTEGER
) WITHOUT ROWID;
CREATE INDEX outbox_due ON outbox (state, next_at);
CREATE INDEX outbox_by_created ON outbox (created);

CREATE TABLE outbox_attempts (
    outbox_id TEXT NOT NULL,
    at INTEGER NOT NULL,
    node TEXT NOT NULL,
    outcome TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX outbox_attempts_by_row ON outbox_attempts (outbox_id, at);

-- Certificates warned of their expiry, once per threshold (days before NotAfter), found by the
-- valid ones' NotAfter.
CREATE INDEX certificates_by_expiry ON certificates (not_after) WHERE status = 0;
CREATE TABLE expiry_warnings (
    serial TEXT NOT NULL,
    days INTEGER NOT NULL,
    at INTEGER NOT NULL,
    PRIMARY KEY (serial, days)
) WITHOUT ROWID;

-- Where a local user's e-mails go, and the language they speak (BCP 47, e.g. "es"); NULL: no
-- e-mail, and the configured default language. Directory users have theirs in the directory
-- (mail, preferredLanguage).
ALTER TABLE users ADD COLUMN email TEXT;
ALTER TABLE users ADD COLUMN language TEXT;

-- One-time passwords (a workflow policy's one_time_password_policy): a request approved under
-- such a policy waits (secret_required) until its executor presents the secret; only its argon2id
-- hash is kept, with its expiry and the tries left, and — for the originator to be shown once —
-- the secret sealed under the KEK until shown.
ALTER TABLE requests ADD COLUMN secret_required INTEGER NOT NULL DEFAULT 0;
CREATE TABLE request_secrets (
    request_uuid TEXT PRIMARY KEY,
    hash TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    attempts_left INTEGER NOT NULL,
    for_originator TEXT,
    created INTEGER NOT NULL
) WITHOUT ROWID;
