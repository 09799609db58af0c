//! Kerberos sign-in (`Authorization: Negotiate`, RFC 4559): a GSSAPI acceptor (the
//! `opencm-kerberos` crate, MIT Kerberos) checks the SPNEGO token against the service's keytab and
//! names the client principal; this module decides which user that principal is. As on Windows,
//! `alice@EXAMPLE.COM` is the account `alice` of the realm's directory: the realm must be one the
//! configuration accepts, the name is looked up as a login (opencm's own users, then the
//! directory), and a principal with an instance (`host/pc1@…`, a machine or service) is nobody.

use crate::error::{AppError, ErrorCode};
use crate::App;
use async_trait::async_trait;
use opencm_domain::{Principal, Timestamp};
use std::sync::Arc;

/// What an acceptor made of one `Negotiate` token.
pub struct Negotiated {
    /// The client principal, `name@REALM`.
    pub client: String,
    /// The token for the client (mutual authentication), sent back in `WWW-Authenticate`.
    pub reply: Option<Vec<u8>>,
}

/// Accepts SPNEGO / Kerberos tokens. `None` when the token proves nothing (forged, replayed,
/// for another service, expired); the acceptor logs why. Errors are for the acceptor itself
/// failing, never for a bad token.
#[async_trait]
pub trait NegotiateAcceptor: Send + Sync + 'static {
    async fn accept(&self, token: &[u8]) -> Result<Option<Negotiated>, AppError>;
}

/// How client principals become logins.
#[derive(Clone, Debug)]
pub struct KerberosMapping {
    /// Realms whose principals may sign in (compared without regard to case). Others — a trusted
    /// realm nobody listed — are refused.
    pub realms: Vec<String>,
    /// `alice@REALM` → login `alice` (Active Directory's sAMAccountName), the default; when
    /// false the whole principal is the login (directories keyed by userPrincipalName).
    pub strip_realm: bool,
}

impl KerberosMapping {
    /// The login a client principal names, or why it names none.
    pub fn login(&self, client: &str) -> Result<String, &'static str> {
        let (name, realm) = client.rsplit_once('@').ok_or("principal without a realm")?;
        if name.is_empty() || name.contains('/') {
            return Err("not a user principal (it has an instance or no name)");
        }
        if !self.realms.iter().any(|r| r.eq_ignore_ascii_case(realm)) {
            return Err("realm not accepted by [kerberos] realms");
        }
        Ok(if self.strip_realm {
            name.to_string()
        } else {
            client.to_string()
        })
    }
}

pub(crate) struct Kerberos {
    pub acceptor: Arc<dyn NegotiateAcceptor>,
    pub mapping: KerberosMapping,
}

/// How long an accepted authenticator is remembered: twice Kerberos' default clock skew (five
/// minutes each way around the authenticator's time), after which the KDC's and acceptor's own
/// checks refuse it anyway.
const REPLAY_WINDOW_MICROS: i64 = 10 * 60 * 1_000_000;

fn refused() -> AppError {
    AppError::new(ErrorCode::Unauthorized,
        "The Kerberos ticket does not sign anyone in: not valid for this service, or an unknown, disabled or unaccepted principal.",
    )
}

impl App {
    /// Kerberos sign-in beside the other sources.
    pub fn with_kerberos(
        self,
        acceptor: Arc<dyn NegotiateAcceptor>,
        mapping: KerberosMapping,
    ) -> App {
        App {
            kerberos: Some(Arc::new(Kerberos { acceptor, mapping })),
            ..self
        }
    }

    /// Whether `Authorization: Negotiate` is accepted (and offered on a 401).
    pub fn accepts_kerberos(&self) -> bool {
        self.kerberos.is_some()
    }

    /// The user a `Negotiate` token signs in, and the acceptor's reply token.
    pub async fn authenticate_negotiate(
        &self,
        token: &[u8],
    ) -> Result<(Principal, Option<Vec<u8>>), AppError> {
        let r = self.authenticate_negotiate_unmetered(token).await;
        if matches!(&r, Err(e) if e.kind() == crate::ErrorKind::Unauthenticated) {
            crate::metrics::authentication_failed("negotiate");
        }
        r
    }

    async fn authenticate_negotiate_unmetered(
        &self,
        token: &[u8],
    ) -> Result<(Principal, Option<Vec<u8>>), AppError> {
        let Some(k) = &self.kerberos else {
            return Err(AppError::new(ErrorCode::Unauthorized,
                "Kerberos (Negotiate) is not configured on this server: send 'Authorization: Bearer <token>'.",
            ));
        };
        let Some(negotiated) = k.acceptor.accept(token).await? else {
            return Err(refused());
        };
        // The acceptor's replay cache is this node's; the cluster's is the database: a token
        // accepted by any node is refused by every other, for as long as it could be accepted
        // at all (the clock skew Kerberos allows around its authenticator).
        let now = self.clock.now();
        let until = Timestamp::from_micros(now.micros() + REPLAY_WINDOW_MICROS);
        if !self
            .identities
            .first_use(&crate::spnego::replay_key(token), until, now)
            .await?
        {
            tracing::info!(client = ?negotiated.client, "Kerberos token refused: a replay of one accepted before (by this node or another)");
            return Err(refused());
        }
        let login = match k.mapping.login(&negotiated.client) {
            Ok(l) => l,
            Err(why) => {
                tracing::info!(client = ?negotiated.client, why, "Kerberos principal refused");
                return Err(refused());
            }
        };
        match self.sign_in_users().user_by_login(&login).await? {
            Some(p) => Ok((p, negotiated.reply)),
            None => {
                tracing::info!(client = ?negotiated.client, "Kerberos principal names no user, or a disabled one");
                Err(refused())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapping(strip: bool) -> KerberosMapping {
        KerberosMapping {
            realms: vec!["OPENCM.TEST".into()],
            strip_realm: strip,
        }
    }

    #[test]
    fn principals_map_to_logins_of_accepted_realms_only() {
        let m = mapping(true);
        assert_eq!(m.login("alice@OPENCM.TEST").as_deref(), Ok("alice"));
        assert_eq!(m.login("alice@opencm.test").as_deref(), Ok("alice"));
        assert!(m.login("alice@OTHER.TEST").is_err());
        assert!(m.login("HTTP/pc1.opencm.test@OPENCM.TEST").is_err());
        assert!(m.login("alice").is_err());
        assert!(m.login("@OPENCM.TEST").is_err());
        assert_eq!(
            mapping(false).login("alice@OPENCM.TEST").as_deref(),
            Ok("alice@OPENCM.TEST")
        );
    }
}
