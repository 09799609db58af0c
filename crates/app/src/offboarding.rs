//! Offboarding: listing and revoking API tokens, disabling and enabling users, changing group
//! membership — from the CLI (`opencm token|user|group`) or, for administrators, over HTTP. Each
//! change is one transaction with its audit event that moves the identity epoch, so it takes
//! effect on every node at the next request (see `TokenAuthenticator`).

use crate::error::{AppError, ErrorCode};
use crate::ports::{AdminEvent, IdentityChange, TokenRecord};
use crate::App;
use opencm_domain::{Principal, Sid};

/// Characters of a token's hash shown as its id (48 bits: unique in practice, and nothing about
/// the token itself can be learnt from a hash prefix).
pub const TOKEN_ID_LEN: usize = 12;
/// The shortest id prefix `revoke` accepts.
pub const TOKEN_ID_MIN: usize = 8;

/// Who makes an administrative change, as recorded in `admin_events`.
pub enum Actor<'a> {
    /// The `opencm` command line (whoever can open the database or its configuration).
    Cli,
    User(&'a Principal),
}

impl Actor<'_> {
    /// Whether this actor may make administrative changes: the command line (whoever can open
    /// the database and its KEK), or an administrator. Every use case here asks first, so no
    /// front end can skip it.
    fn authorize(&self) -> Result<(), AppError> {
        match self {
            Actor::Cli => Ok(()),
            Actor::User(p) => admin_only(p),
        }
    }

    fn name(&self) -> String {
        match self {
            Actor::Cli => "cli".to_string(),
            Actor::User(p) => format!("{} ({})", p.login, p.uuid),
        }
    }
}

/// A token as administrators see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenInfo {
    pub id: String,
    pub record: TokenRecord,
}

impl From<TokenRecord> for TokenInfo {
    fn from(record: TokenRecord) -> Self {
        TokenInfo {
            id: token_id(&record.hash),
            record,
        }
    }
}

/// The id shown for a token: the first characters of its hash.
pub fn token_id(hash: &str) -> String {
    hash.chars().take(TOKEN_ID_LEN).collect()
}

fn admin_only(caller: &Principal) -> Result<(), AppError> {
    if caller.token_sids().contains(&Sid::administrators()) {
        Ok(())
    } else {
        Err(AppError::new(
            ErrorCode::AccessDenied,
            "Only administrators (BUILTIN\\Administrators) may manage users and tokens.",
        ))
    }
}

impl App {
    /// Every token, or a user's; revoked and expired ones included.
    pub async fn tokens(
        &self,
        actor: Actor<'_>,
        login: Option<&str>,
    ) -> Result<Vec<TokenInfo>, AppError> {
        actor.authorize()?;
        let all = self.identities.tokens().await?;
        Ok(all
            .into_iter()
            .filter(|t| login.is_none_or(|l| t.login.eq_ignore_ascii_case(l)))
            .map(TokenInfo::from)
            .collect())
    }

    /// Revokes the one token whose id starts with `id` (at least 8 hex characters). Never takes
    /// the token itself: a secret pasted into a command line or URL would be one more copy of it.
    pub async fn revoke_token(&self, actor: Actor<'_>, id: &str) -> Result<TokenInfo, AppError> {
        actor.authorize()?;
        let id = id.trim().to_ascii_lowercase();
        if id.starts_with(crate::identity::TOKEN_PREFIX) {
            return Err(AppError::new(
                ErrorCode::InvalidRequest,
                "Give the token's id (shown by `opencm token list` and at creation), not the token itself.",
            ));
        }
        if id.len() < TOKEN_ID_MIN || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(AppError::new(
                ErrorCode::InvalidRequest,
                format!("A token id is at least {TOKEN_ID_MIN} hexadecimal characters."),
            ));
        }
        let matching: Vec<TokenRecord> = self
            .identities
            .tokens()
            .await?
            .into_iter()
            .filter(|t| t.hash.starts_with(&id))
            .collect();
        let token = match matching.as_slice() {
            [] => {
                return Err(AppError::new(
                    ErrorCode::TokenNotFound,
                    format!(
                        "No token has an id starting with '{}'.",
                        opencm_domain::limits::excerpt(&id)
                    ),
                ))
            }
            [one] => one.clone(),
            _ => {
                return Err(AppError::new(
                    ErrorCode::InvalidRequest,
                    format!(
                        "More than one token has an id starting with '{}'; give more of it.",
                        opencm_domain::limits::excerpt(&id)
                    ),
                ))
            }
        };
        let now = self.clock.now();
        let changed = self
            .record(
                &actor,
                now,
                IdentityChange::RevokeToken {
                    hash: token.hash.clone(),
                    at: now,
                },
                "token revoked",
                format!("token {} of {}", token_id(&token.hash), token.login),
            )
            .await?;
        if !changed {
            return Err(AppError::new(
                ErrorCode::AlreadyRevoked,
                format!("Token {} is already revoked.", token_id(&token.hash)),
            ));
        }
        let mut info = TokenInfo::from(token);
        info.record.revoked = Some(now);
        Ok(info)
    }

    /// Disables (`enabled` false) or enables a user: a disabled user's tokens stop working at
    /// once. Returns whether anything changed.
    pub async fn set_user_enabled(
        &self,
        actor: Actor<'_>,
        login: &str,
        enabled: bool,
    ) -> Result<bool, AppError> {
        actor.authorize()?;
        let user = self.user_named(login).await?;
        let now = self.clock.now();
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
        self.record(&actor, now, change, action, subject).await
    }

    /// Adds `login` to, or removes it from, a group given by SID. Returns whether anything
    /// changed.
    pub async fn set_member(
        &self,
        actor: Actor<'_>,
        login: &str,
        group_sid: &str,
        member: bool,
    ) -> Result<bool, AppError> {
        actor.authorize()?;
        let user = self.user_named(login).await?;
        let sid = Sid::parse(group_sid).map_err(|e| {
            AppError::new(
                ErrorCode::InvalidRequest,
                format!(
                    "'{}' is not a SID: {e}",
                    opencm_domain::limits::excerpt(group_sid)
                ),
            )
        })?;
        let group_sid = sid.to_string();
        // A user's own SID is not a group: membership in it would let the member act as that
        // user in every access check.
        if member {
            if let Some(owner) = self.identities.user_with_sid(&group_sid).await? {
                return Err(AppError::new(
                    ErrorCode::InvalidRequest,
                    format!(
                        "{group_sid} is the SID of user '{}', not a group: a member of it would act as that user.",
                        opencm_domain::limits::excerpt(&owner)
                    ),
                ));
            }
        }
        let (change, action) = if member {
            (
                IdentityChange::AddMember {
                    user: user.uuid,
                    group_sid: group_sid.clone(),
                },
                "member added",
            )
        } else {
            (
                IdentityChange::RemoveMember {
                    user: user.uuid,
                    group_sid: group_sid.clone(),
                },
                "member removed",
            )
        };
        let subject = format!("user {} group {group_sid}", user.login);
        self.record(&actor, self.clock.now(), change, action, subject)
            .await
    }

    /// Adds (`mapped`) or removes an explicit certificate mapping of a local user, in Active
    /// Directory's altSecurityIdentities syntax: only the strong forms
    /// (`X509:<I>issuer<SR>serial`, `X509:<SKI>hex`) are taken. Returns whether anything changed.
    pub async fn set_certificate_mapping(
        &self,
        actor: Actor<'_>,
        login: &str,
        mapping: &str,
        mapped: bool,
    ) -> Result<bool, AppError> {
        actor.authorize()?;
        let user = self.user_named(login).await?;
        // Stored in one spelling, so that any way of writing it finds it again.
        let canonical = opencm_domain::certmap::canonical_mapping(mapping);
        let mapping = canonical.as_deref().unwrap_or(mapping.trim());
        if mapped && canonical.is_none() {
            return Err(AppError::new(
                ErrorCode::InvalidRequest,
                format!(
                    "'{}' is not a strong certificate mapping: give X509:<I>issuer<SR>serial (the serial in reversed byte order, as Active Directory writes it) or X509:<SKI>hex.",
                    opencm_domain::limits::excerpt(mapping)
                ),
            ));
        }
        let (change, action) = if mapped {
            (
                IdentityChange::MapCertificate {
                    user: user.uuid,
                    mapping: mapping.to_string(),
                },
                "certificate mapped",
            )
        } else {
            (
                IdentityChange::UnmapCertificate {
                    user: user.uuid,
                    mapping: mapping.to_string(),
                },
                "certificate unmapped",
            )
        };
        let subject = format!("user {} mapping {mapping}", user.login);
        self.record(&actor, self.clock.now(), change, action, subject)
            .await
    }

    /// One administrative change with its audit event, in one transaction; whether it changed
    /// anything.
    async fn record(
        &self,
        actor: &Actor<'_>,
        at: opencm_domain::Timestamp,
        change: IdentityChange,
        action: &'static str,
        subject: String,
    ) -> Result<bool, AppError> {
        let event = AdminEvent {
            at,
            actor: actor.name(),
            action,
            subject,
        };
        Ok(self.identities.change_identity(&change, &event).await?)
    }

    async fn user_named(&self, login: &str) -> Result<Principal, AppError> {
        self.local_user(login).await
    }
}
