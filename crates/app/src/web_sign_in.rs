//! The portal's sign-in without a password: OpenID Connect (the authorization-code flow with
//! PKCE, RFC 7636, against the provider of `[oidc]`), Kerberos (`Negotiate`, single sign-on from
//! domain-joined machines) and client certificates (a smart card in the browser). Each proves the
//! user the way the API's own sign-in does — the same acceptor, the same certificate mapping, the
//! same lookup of users who may sign in — and then starts a portal session (`sessions.rs`).
//!
//! The OpenID flow keeps nothing on the server between its two legs: `begin_oidc_sign_in` makes
//! the attempt's `state`, `nonce` and PKCE verifier, which the portal keeps in a short-lived
//! `HttpOnly` cookie of the browser that started it; `finish_oidc_sign_in` requires the `state`
//! the provider sends back to equal that cookie's (so a code cannot be planted in someone
//! else's browser), redeems the code with the verifier (so a stolen code is worth nothing) and
//! requires the ID token to carry the nonce (so a token cannot be replayed). Any node of a
//! cluster finishes what another began.

use crate::error::{AppError, ErrorCode};
use crate::identity::generate_token;
use crate::sessions::SignIn;
use crate::App;
use async_trait::async_trait;
use opencm_domain::Principal;

/// The client certificate (DER) the TLS handshake of a request's connection verified, put in
/// the request's extensions by the server's accept loop (for the API and the portal alike).
#[derive(Clone, Debug)]
pub struct PeerCertificate(pub std::sync::Arc<Vec<u8>>);

/// The provider side of an OpenID Connect sign-in (the adapter knows the provider's endpoints,
/// opencm's client registration and how to check its ID tokens).
#[async_trait]
pub trait OidcSignOn: Send + Sync + 'static {
    /// The provider's authorization URL for this attempt (`code_challenge` is derived from
    /// `verifier` with S256).
    async fn authorization_url(
        &self,
        redirect_uri: &str,
        attempt: &OidcAttempt,
    ) -> Result<String, AppError>;
    /// Redeems the code at the token endpoint with the PKCE verifier and checks the ID token
    /// (signature, issuer, audience, expiry, nonce): the user it names, or `None` when the token
    /// names nobody who may sign in. Errors are for the provider failing or refusing the code.
    async fn redeem(
        &self,
        redirect_uri: &str,
        code: &str,
        attempt: &OidcAttempt,
    ) -> Result<Option<Principal>, AppError>;
}

/// One OpenID sign-in attempt's secrets, kept by the browser that began it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OidcAttempt {
    pub state: String,
    pub nonce: String,
    pub verifier: String,
}

/// The longest value of each part accepted back from the browser.
const MAX_PART: usize = 128;

impl OidcAttempt {
    fn new() -> OidcAttempt {
        // 256 random bits each, base64url: a PKCE verifier must be 43 to 128 characters of
        // that alphabet (RFC 7636 §4.1).
        let part = || generate_token().trim_start_matches("ocm_").to_string();
        OidcAttempt {
            state: part(),
            nonce: part(),
            verifier: part(),
        }
    }

    /// `state.nonce.verifier`, for the cookie.
    pub fn encode(&self) -> String {
        format!("{}.{}.{}", self.state, self.nonce, self.verifier)
    }

    /// Back from the cookie; `None` for anything this server did not make.
    pub fn decode(s: &str) -> Option<OidcAttempt> {
        let mut it = s.split('.');
        let (state, nonce, verifier) = (it.next()?, it.next()?, it.next()?);
        let ok = |p: &str| {
            (43..=MAX_PART).contains(&p.len())
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        (it.next().is_none() && ok(state) && ok(nonce) && ok(verifier)).then(|| OidcAttempt {
            state: state.into(),
            nonce: nonce.into(),
            verifier: verifier.into(),
        })
    }
}

/// Equal strings, compared in constant time.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

fn not_configured() -> AppError {
    AppError::new(
        ErrorCode::NotFound,
        "Signing in with OpenID Connect is not configured on this server ([oidc] client_id).",
    )
}

impl App {
    /// OpenID Connect sign-in for the portal.
    pub fn with_oidc_sign_on(self, sign_on: std::sync::Arc<dyn OidcSignOn>) -> App {
        App {
            oidc_sign_on: Some(sign_on),
            ..self
        }
    }

    /// Whether the portal offers OpenID Connect sign-in.
    pub fn offers_oidc_sign_in(&self) -> bool {
        self.oidc_sign_on.is_some()
    }

    /// A new attempt and the provider URL to send the browser to.
    pub async fn begin_oidc_sign_in(
        &self,
        redirect_uri: &str,
    ) -> Result<(String, OidcAttempt), AppError> {
        let sign_on = self.oidc_sign_on.as_ref().ok_or_else(not_configured)?;
        let attempt = OidcAttempt::new();
        let url = sign_on.authorization_url(redirect_uri, &attempt).await?;
        Ok((url, attempt))
    }

    /// The provider's answer: `state` and `code` from the redirect, `attempt` from the cookie of
    /// the browser that began it (absent when the browser did not begin one, or the cookie
    /// expired).
    pub async fn finish_oidc_sign_in(
        &self,
        redirect_uri: &str,
        state: &str,
        code: &str,
        attempt: Option<&OidcAttempt>,
    ) -> Result<SignIn, AppError> {
        let sign_on = self.oidc_sign_on.as_ref().ok_or_else(not_configured)?;
        let Some(attempt) = attempt.filter(|a| same(&a.state, state)) else {
            tracing::info!(
                "OpenID sign-in refused: the state does not match an attempt of this browser"
            );
            return Ok(SignIn::Refused);
        };
        if code.is_empty() || code.len() > 2048 {
            return Ok(SignIn::Refused);
        }
        let Some(user) = sign_on.redeem(redirect_uri, code, attempt).await? else {
            return Ok(SignIn::Refused);
        };
        let cookie = self.start_session(&user, "oidc").await?;
        Ok(SignIn::Session {
            cookie,
            user: Box::new(user),
        })
    }

    /// A portal session from a `Negotiate` token (Kerberos single sign-on): the session cookie,
    /// the user and the acceptor's reply token (mutual authentication).
    pub async fn sign_in_kerberos(
        &self,
        token: &[u8],
    ) -> Result<(String, Principal, Option<Vec<u8>>), AppError> {
        let (user, reply) = self.authenticate_negotiate(token).await?;
        let cookie = self.start_session(&user, "kerberos").await?;
        Ok((cookie, user, reply))
    }

    /// A portal session from the client certificate the TLS handshake verified (DER), mapped
    /// to its user as the API maps it.
    pub async fn sign_in_certificate(&self, der: &[u8]) -> Result<SignIn, AppError> {
        let Some(user) = self.certificate_principal(der).await? else {
            return Ok(SignIn::Refused);
        };
        let cookie = self.start_session(&user, "certificate").await?;
        Ok(SignIn::Session {
            cookie,
            user: Box::new(user),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_attempt_survives_its_cookie_and_nothing_else_passes_for_one() {
        let a = OidcAttempt::new();
        assert_eq!(OidcAttempt::decode(&a.encode()), Some(a.clone()));
        assert_ne!(OidcAttempt::new(), a);
        for bad in [
            "",
            "a.b.c",
            &format!("{}.{}", a.state, a.nonce),
            &format!("{}.x", a.encode()),
            &a.encode().replace(&a.nonce, &"é".repeat(30)),
            &a.encode().replace(&a.verifier, &"a".repeat(129)),
        ] {
            assert_eq!(OidcAttempt::decode(bad), None, "{bad}");
        }
        assert!(same(&a.state, &a.state.clone()));
        assert!(!same(&a.state, &a.nonce));
        assert!(!same("abc", "abcd"));
    }
}
