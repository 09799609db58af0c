-- Offboarding: tokens are revoked (kept, for the record) rather than deleted, users can be
-- disabled, and every such change moves a single epoch that caches of who-is-who compare against,
-- so a change made on one node takes effect on every node at the next request.
ALTER TABLE api_tokens ADD COLUMN revoked_at INTEGER;
ALTER TABLE users ADD COLUMN disabled_at INTEGER;
CREATE TABLE identity_epoch (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    epoch INTEGER NOT NULL
);
INSERT INTO identity_epoch (id, epoch) VALUES (1, 0);
-- Administrative changes to identities, with who made them.
CREATE TABLE admin_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at INTEGER NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    subject TEXT NOT NULL
);
