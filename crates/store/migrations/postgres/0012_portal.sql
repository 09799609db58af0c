-- The web portal: local users' passwords (argon2id PHC strings, never the password) and signed-in
-- browser sessions, kept in the database so that any node of a cluster serves any session. A
-- session is stored by the SHA-256 of its cookie, ends at its absolute expiry or after being idle
-- too long, and is deleted when its user is disabled or signs out.
CREATE TABLE user_passwords (
    user_uuid TEXT PRIMARY KEY REFERENCES users(uuid),
    phc TEXT NOT NULL,
    set_at BIGINT NOT NULL
);

CREATE TABLE portal_sessions (
    session_hash TEXT PRIMARY KEY,
    user_uuid TEXT NOT NULL,
    method TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_seen BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX portal_sessions_by_user ON portal_sessions (user_uuid);
CREATE INDEX portal_sessions_by_expiry ON portal_sessions (expires_at);

-- The approval queue: what an approver has decided.
CREATE INDEX approvals_by_approver ON approvals (approver_uuid, request_uuid);
