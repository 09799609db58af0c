//! Administrative changes to who may do what — API tokens revoked, users disabled and enabled,
//! group membership, explicit certificate mappings — decided without IO. Each use case asks
//! `authorize` before it loads anything (so a caller without the right learns nothing, not even
//! whether a user exists), then decides over what it loaded and answers the change with the
//! audit event recorded beside it in one transaction.

use crate::identity::{Principal, Sid};
use crate::limits::excerpt;
use crate::{Timestamp, UserId};

/// Characters of a token's hash shown as its id (48 bits: unique in practice, and nothing about
/// the token itself can be learnt from a hash prefix).
pub const TOKEN_ID_LEN: usize = 12;
/// The shortest id prefix `revoke` accepts.
pub const TOKEN_ID_MIN: usize = 8;
/// How every opencm bearer token begins.
pub const TOKEN_PREFIX: &str = "ocm_";

/// An API token as stored (only its hash), with its user and lifetime.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenRecord {
    pub hash: String,
    pub user: UserId,
    pub login: String,
    pub created: Timestamp,
    pub expires: Option<Timestamp>,
    pub revoked: Option<Timestamp>,
}

/// The id shown for a token: the first characters of its hash.
pub fn token_id(hash: &str) -> String {
    hash.chars().take(TOKEN_ID_LEN).collect()
}

/// An administrative change to who may do what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IdentityChange {
    RevokeToken {
        hash: String,
        at: Timestamp,
    },
    DisableUser {
        user: UserId,
        at: Timestamp,
    },
    EnableUser {
        user: UserId,
    },
    AddMember {
        user: UserId,
        group_sid: String,
    },
    RemoveMember {
        user: UserId,
        group_sid: String,
    },
    /// An explicit certificate mapping (altSecurityIdentities syntax) of a local user.
    MapCertificate {
        user: UserId,
        mapping: String,
    },
    UnmapCertificate {
        user: UserId,
        mapping: String,
    },
}

/// Who made an administrative change, what, and to whom; recorded with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdminEvent {
    pub at: Timestamp,
    pub actor: String,
    pub action: &'static str,
    pub subject: String,
}

/// Who makes an administrative change, as recorded in `admin_events`.
pub enum Actor<'a> {
    /// The `opencm` command line (whoever can open the database or its configuration).
    Cli,
    User(&'a Principal),
}

/// A change decided, and its audit event.
pub type Decided = (IdentityChange, AdminEvent);

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OffboardingError {
    #[error("Only administrators (BUILTIN\\Administrators) may manage users, tokens and the notification outbox.")]
    NotAdministrator,
    #[error(
        "Give the token's id (shown by `opencm token list` and at creation), not the token itself."
    )]
    TokenGiven,
    #[error("A token id is at least {TOKEN_ID_MIN} hexadecimal characters.")]
    TokenIdMalformed,
    #[error("No token has an id starting with '{0}'.")]
    TokenNotFound(String),
    #[error("More than one token has an id starting with '{0}'; give more of it.")]
    TokenAmbiguous(String),
    #[error("Token {0} is already revoked.")]
    AlreadyRevoked(String),
    #[error("'{0}' is not a SID: {1}")]
    NotASid(String, String),
    #[error(
        "{sid} is the SID of user '{owner}', not a group: a member of it would act as that user."
    )]
    SidOfAUser { sid: String, owner: String },
    #[error("'{0}' is not a strong certificate mapping: give X509:<I>issuer<SR>serial (the serial in reversed byte order, as Active Directory writes it) or X509:<SKI>hex.")]
    NotStrongMapping(String),
}

impl Actor<'_> {
    /// Whether this actor may make administrative changes: the command line (whoever can open
    /// the database and its KEK), or an administrator. Every use case asks first, so no front end
    /// can skip it.
    pub fn authorize(&self) -> Result<(), OffboardingError> {
        match self {
            Actor::Cli => Ok(()),
            Actor::User(p) if p.is_administrator() => Ok(()),
            Actor::User(_) => Err(OffboardingError::NotAdministrator),
        }
    }

    pub fn name(&self) -> String {
        match self {
            Actor::Cli => "cli".to_string(),
            Actor::User(p) => format!("{} ({})", p.login, p.uuid),
        }
    }

    fn event(&self, at: Timestamp, action: &'static str, subject: String) -> AdminEvent {
        AdminEvent {
            at,
            actor: self.name(),
            action,
            subject,
        }
    }
}

/// The token id prefix as given, normalised, before any token is read.
pub fn token_prefix(id: &str) -> Result<String, OffboardingError> {
    let id = id.trim().to_ascii_lowercase();
    if id.starts_with(TOKEN_PREFIX) {
        return Err(OffboardingError::TokenGiven);
    }
    if id.len() < TOKEN_ID_MIN || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(OffboardingError::TokenIdMalformed);
    }
    Ok(id)
}

/// Revokes the one token whose id starts with `prefix` (from `token_prefix`). Never takes the
/// token itself: a secret pasted into a command line or URL would be one more copy of it.
pub fn revoke_token(
    actor: &Actor<'_>,
    prefix: &str,
    tokens: &[TokenRecord],
    now: Timestamp,
) -> Result<(TokenRecord, Decided), OffboardingError> {
    let mut matching = tokens.iter().filter(|t| t.hash.starts_with(prefix));
    let token = match (matching.next(), matching.next()) {
        (None, _) => return Err(OffboardingError::TokenNotFound(excerpt(prefix))),
        (Some(one), None) => one,
        (Some(_), Some(_)) => return Err(OffboardingError::TokenAmbiguous(excerpt(prefix))),
    };
    if token.revoked.is_some() {
        return Err(OffboardingError::AlreadyRevoked(token_id(&token.hash)));
    }
    let change = IdentityChange::RevokeToken {
        hash: token.hash.clone(),
        at: now,
    };
    let event = actor.event(
        now,
        "token revoked",
        format!("token {} of {}", token_id(&token.hash), token.login),
    );
    Ok((token.clone(), (change, event)))
}

/// Disables (`enabled` false) or enables a user: a disabled user's tokens stop working at once.
pub fn set_user_enabled(
    actor: &Actor<'_>,
    user: &Principal,
    enabled: bool,
    now: Timestamp,
) -> Decided {
    let (change, action) = if enabled {
        (
            IdentityChange::EnableUser { user: user.uuid },
            "user enabled",
        )
    } else {
        (
            IdentityChange::DisableUser {
                user: user.uuid,
                at: now,
            },
            "user disabled",
        )
    };
    let subject = format!("user {} ({})", user.login, user.uuid);
    (change, actor.event(now, action, subject))
}

/// The group a membership names, parsed, before the user whose SID it may be is looked up.
pub fn group_sid(sid: &str) -> Result<Sid, OffboardingError> {
    Sid::parse(sid).map_err(|e| OffboardingError::NotASid(excerpt(sid), e.to_string()))
}

/// Adds `user` to, or removes them from, `group`. `sid_owner`: the login of the user whose own
/// SID `group` is, if any — not a group: a member of it would act as that user in every access
/// check.
pub fn set_member(
    actor: &Actor<'_>,
    user: &Principal,
    group: &Sid,
    member: bool,
    sid_owner: Option<&str>,
    now: Timestamp,
) -> Result<Decided, OffboardingError> {
    let group_sid = group.to_string();
    if let (true, Some(owner)) = (member, sid_owner) {
        return Err(OffboardingError::SidOfAUser {
            sid: group_sid,
            owner: excerpt(owner),
        });
    }
    let subject = format!("user {} group {group_sid}", user.login);
    let (change, action) = if member {
        (
            IdentityChange::AddMember {
                user: user.uuid,
                group_sid,
            },
            "member added",
        )
    } else {
        (
            IdentityChange::RemoveMember {
                user: user.uuid,
                group_sid,
            },
            "member removed",
        )
    };
    Ok((change, actor.event(now, action, subject)))
}

/// Adds (`mapped`) or removes an explicit certificate mapping of a local user, in Active
/// Directory's altSecurityIdentities syntax: only the strong forms (`X509:<I>issuer<SR>serial`,
/// `X509:<SKI>hex`) are taken, stored in one spelling so that any way of writing it finds it
/// again.
pub fn set_certificate_mapping(
    actor: &Actor<'_>,
    user: &Principal,
    mapping: &str,
    mapped: bool,
    now: Timestamp,
) -> Result<Decided, OffboardingError> {
    let canonical = crate::certmap::canonical_mapping(mapping);
    let mapping = canonical.as_deref().unwrap_or(mapping.trim()).to_string();
    if mapped && canonical.is_none() {
        return Err(OffboardingError::NotStrongMapping(excerpt(&mapping)));
    }
    let subject = format!("user {} mapping {mapping}", user.login);
    let (change, action) = if mapped {
        (
            IdentityChange::MapCertificate {
                user: user.uuid,
                mapping,
            },
            "certificate mapped",
        )
    } else {
        (
            IdentityChange::UnmapCertificate {
                user: user.uuid,
                mapping,
            },
            "certificate unmapped",
        )
    };
    Ok((change, actor.event(now, action, subject)))
}

#[cfg(test)]
mod tests;
