//! Signing in to the portal with OpenID Connect: the authorization-code flow with PKCE (S256)
//! against the provider of `[oidc]` (OpenID Connect Core 1.0 §3.1, RFC 7636). The `oauth2` crate
//! builds the authorization URL and redeems the code (client authentication, PKCE, the token
//! endpoint's errors); the ID token it returns is checked by the same JWKS cache and rules as
//! access tokens (`OidcAuthenticator`), with opencm's client id as its audience and the attempt's
//! nonce, and names its user by the same login claim.

use crate::oidc::OidcAuthenticator;
use async_trait::async_trait;
use oauth2::basic::{
    BasicErrorResponse, BasicRevocationErrorResponse, BasicTokenIntrospectionResponse,
    BasicTokenType,
};
use oauth2::{
    AuthUrl, AuthorizationCode, Client, ClientId, ClientSecret, CsrfToken, EndpointNotSet,
    EndpointSet, ExtraTokenFields, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope,
    StandardRevocableToken, StandardTokenResponse, TokenUrl,
};
use opencm_app::{AppError, ErrorCode, OidcAttempt, OidcSignOn};
use opencm_domain::Principal;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// opencm's registration at the provider.
#[derive(Clone, Debug)]
pub struct OidcClientSettings {
    pub client_id: String,
    /// Absent for a public client (PKCE alone protects the code).
    pub client_secret: Option<String>,
    /// Requested scopes; `openid` is always among them.
    pub scopes: Vec<String>,
}

/// The token endpoint's answer: OAuth's fields and the ID token.
#[derive(Clone, Debug, Deserialize, Serialize)]
struct IdTokenField {
    id_token: Option<String>,
}
impl ExtraTokenFields for IdTokenField {}

type TokenResponse = StandardTokenResponse<IdTokenField, BasicTokenType>;
type OAuthClient = Client<
    BasicErrorResponse,
    TokenResponse,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;

pub struct OidcSignOnClient {
    tokens: Arc<OidcAuthenticator>,
    settings: OidcClientSettings,
    /// For the token endpoint: never follows a redirect (a redirected code exchange could be
    /// steered to another host).
    http: reqwest::Client,
    /// Built from the discovery document on first use.
    client: Mutex<Option<Arc<OAuthClient>>>,
}

fn unavailable(detail: String) -> AppError {
    AppError::unavailable(
        ErrorCode::IdentityProviderUnavailable,
        "The OpenID provider is unreachable or its answer is unusable; try again shortly.",
        detail,
    )
}

impl OidcSignOnClient {
    pub fn new(
        tokens: Arc<OidcAuthenticator>,
        settings: OidcClientSettings,
    ) -> Result<Self, String> {
        if settings.client_id.trim().is_empty() {
            return Err("[oidc] client_id is empty".into());
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| e.to_string())?;
        Ok(OidcSignOnClient {
            tokens,
            settings,
            http,
            client: Mutex::new(None),
        })
    }

    async fn client(&self) -> Result<Arc<OAuthClient>, AppError> {
        if let Some(c) = self.client.lock().ok().and_then(|c| c.clone()) {
            return Ok(c);
        }
        let d = self.tokens.discovery().await?;
        let endpoint = |name: &str| {
            d[name]
                .as_str()
                .map(str::to_string)
                .ok_or_else(|| unavailable(format!("the discovery document has no {name}")))
        };
        let auth = AuthUrl::new(endpoint("authorization_endpoint")?)
            .map_err(|e| unavailable(format!("authorization_endpoint: {e}")))?;
        let token = TokenUrl::new(endpoint("token_endpoint")?)
            .map_err(|e| unavailable(format!("token_endpoint: {e}")))?;
        let mut client: OAuthClient = Client::new(ClientId::new(self.settings.client_id.clone()))
            .set_auth_uri(auth)
            .set_token_uri(token);
        if let Some(secret) = &self.settings.client_secret {
            client = client.set_client_secret(ClientSecret::new(secret.clone()));
        }
        let client = Arc::new(client);
        if let Ok(mut c) = self.client.lock() {
            *c = Some(client.clone());
        }
        Ok(client)
    }
}

fn redirect(uri: &str) -> Result<RedirectUrl, AppError> {
    RedirectUrl::new(uri.to_string())
        .map_err(|e| AppError::internal(format!("redirect URI {uri:?}: {e}")))
}

#[async_trait]
impl OidcSignOn for OidcSignOnClient {
    async fn authorization_url(
        &self,
        redirect_uri: &str,
        attempt: &OidcAttempt,
    ) -> Result<String, AppError> {
        let client = self.client().await?;
        let challenge = PkceCodeChallenge::from_code_verifier_sha256(&PkceCodeVerifier::new(
            attempt.verifier.clone(),
        ));
        let state = attempt.state.clone();
        let mut req = client
            .authorize_url(move || CsrfToken::new(state))
            .set_redirect_uri(Cow::Owned(redirect(redirect_uri)?))
            .set_pkce_challenge(challenge)
            .add_extra_param("nonce", attempt.nonce.clone())
            .add_scope(Scope::new("openid".into()));
        for s in self.settings.scopes.iter().filter(|s| *s != "openid") {
            req = req.add_scope(Scope::new(s.clone()));
        }
        Ok(req.url().0.to_string())
    }

    async fn redeem(
        &self,
        redirect_uri: &str,
        code: &str,
        attempt: &OidcAttempt,
    ) -> Result<Option<Principal>, AppError> {
        let client = self.client().await?;
        let answer = client
            .exchange_code(AuthorizationCode::new(code.to_string()))
            .set_redirect_uri(Cow::Owned(redirect(redirect_uri)?))
            .set_pkce_verifier(PkceCodeVerifier::new(attempt.verifier.clone()))
            .request_async(&self.http)
            .await;
        let answer = match answer {
            Ok(a) => a,
            // The provider refused the code (used, expired, another client's, a verifier that
            // does not match): no sign-in, and no outage either.
            Err(oauth2::RequestTokenError::ServerResponse(e)) => {
                tracing::info!(error = %e.error(), "OpenID sign-in refused by the provider's token endpoint");
                return Ok(None);
            }
            Err(e) => return Err(unavailable(format!("token endpoint: {e}"))),
        };
        let Some(id_token) = answer.extra_fields().id_token.as_deref() else {
            tracing::info!("OpenID sign-in refused: the token endpoint returned no ID token");
            return Ok(None);
        };
        let Some(claims) = self
            .tokens
            .verified_claims(id_token, std::slice::from_ref(&self.settings.client_id))
            .await?
        else {
            return Ok(None);
        };
        if claims["nonce"].as_str() != Some(attempt.nonce.as_str()) {
            tracing::info!(
                "OpenID sign-in refused: the ID token does not carry this attempt's nonce"
            );
            return Ok(None);
        }
        // With several audiences, the token must say it was issued to opencm (OIDC Core §2).
        if claims["aud"].as_array().is_some_and(|a| a.len() > 1)
            && claims["azp"].as_str() != Some(self.settings.client_id.as_str())
        {
            tracing::info!("OpenID sign-in refused: an ID token for several audiences, not authorized for opencm");
            return Ok(None);
        }
        self.tokens.user_of(&claims).await
    }
}
