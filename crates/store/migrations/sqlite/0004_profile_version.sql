-- Profiles carry a version like requests: a write that decided on a profile's state is refused if
-- the profile changed since (two Renew requests on one profile, a Renew racing a Revoke).
ALTER TABLE profiles ADD COLUMN version BIGINT NOT NULL DEFAULT 0;
