-- Kerberos authenticators already accepted, by every node of the cluster: a SPNEGO token accepted
-- by one node is refused as a replay by the others (each node's MIT replay cache sees only its
-- own). An entry is kept until the authenticator could no longer be accepted anyway (the clock
-- skew after it), then removed by the next insert.
CREATE TABLE kerberos_replay (
    authenticator TEXT PRIMARY KEY,
    expires_at BIGINT NOT NULL
);
CREATE INDEX kerberos_replay_by_expiry ON kerberos_replay (expires_at);
