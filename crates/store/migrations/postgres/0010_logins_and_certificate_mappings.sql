-- Logins match without regard to case, as Active Directory matches sAMAccountName and
-- userPrincipalName: `WREN` and `wren` are one account, so two logins may not differ in case only.
CREATE UNIQUE INDEX users_login_nocase ON users (lower(login));

-- Explicit certificate mappings of opencm's own users, in Active Directory's altSecurityIdentities
-- syntax (`X509:<I>issuer<SR>serial`, `X509:<SKI>hex`): a client certificate of an enterprise CA
-- that carries no SID signs its user in only when one of them names it.
CREATE TABLE user_certificate_mappings (
    user_uuid TEXT NOT NULL REFERENCES users(uuid),
    mapping TEXT NOT NULL,
    PRIMARY KEY (user_uuid, mapping)
);
