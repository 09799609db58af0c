-- The embedded CA (one row: 'default'); its private key is sealed with AES-256-GCM under the
-- key-encryption key, which is never stored in the database.
CREATE TABLE certificate_authorities (
    id TEXT PRIMARY KEY,
    cert_pem TEXT NOT NULL,
    chain_pem TEXT NOT NULL,
    sealed_key TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- Software profiles (MIM "Profile").
CREATE TABLE profiles (
    uuid TEXT PRIMARY KEY,
    status BIGINT NOT NULL,
    flags BIGINT NOT NULL,
    parent_profile_uuid TEXT NOT NULL,
    primary_profile_uuid TEXT NOT NULL,
    assigned_user_uuid TEXT NOT NULL,
    profile_template_uuid TEXT NOT NULL,
    profile_template_version BIGINT NOT NULL,
    comment TEXT NOT NULL,
    request_uuid TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX profiles_by_user ON profiles (assigned_user_uuid, uuid);

-- Certificates issued by opencm. status: 0 valid, 1 revoked, 2 on hold (SPEC §2).
CREATE TABLE certificates (
    serial TEXT PRIMARY KEY,
    profile_uuid TEXT NOT NULL,
    request_uuid TEXT NOT NULL,
    user_uuid TEXT NOT NULL,
    template_common_name TEXT NOT NULL,
    der TEXT NOT NULL,
    thumbprint TEXT NOT NULL,
    issuer TEXT NOT NULL,
    subject TEXT NOT NULL,
    not_before BIGINT NOT NULL,
    not_after BIGINT NOT NULL,
    status BIGINT NOT NULL,
    revoked_at BIGINT,
    revocation_reason BIGINT,
    server_generated BIGINT NOT NULL,
    sealed_key TEXT
);
CREATE INDEX certificates_by_profile ON certificates (profile_uuid, serial);
CREATE INDEX certificates_by_user ON certificates (user_uuid, serial);
CREATE INDEX certificates_revoked ON certificates (status) WHERE status <> 0;
