//! OpenID Connect / OAuth access tokens (ADFS, Entra ID, Keycloak, any OpenID provider) as an
//! `Authenticator`: a JWT bearer token is checked against the issuer's discovery document and
//! JWKS — signature with an allowed algorithm only (never `none`, never an HMAC, whose key would be
//! public), `iss`, `aud`, `exp` and `nbf` with a small leeway — and its login claim (`upn` for ADFS
//! and Entra) names the user, resolved like any login: opencm's own users, then the directory.
//! The JWKS is cached and fetched again for a key id it does not hold, at most once a minute, so
//! forged key ids cannot make opencm hammer the provider.

use async_trait::async_trait;
use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Validation};
use opencm_app::ports::Directory;
use opencm_app::{AppError, Authenticator, Credential, ErrorCode};
use opencm_domain::Principal;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Clone, Debug)]
pub struct OidcSettings {
    /// The issuer exactly as tokens carry it in `iss`; discovery is at
    /// `{issuer}/.well-known/openid-configuration`.
    pub issuer: String,
    /// Accepted `aud` values (the API's identifier at the provider).
    pub audiences: Vec<String>,
    /// Accepted signature algorithms (asymmetric only).
    pub algorithms: Vec<Algorithm>,
    /// The claim naming the user's login (`upn` on ADFS and Entra ID).
    pub login_claim: String,
    pub leeway: Duration,
    /// When no directory is configured, a login opencm does not know becomes a user from the
    /// token's own claims: `uuid_claim` (a GUID: Entra's `oid`), the first of `sid_claims` that
    /// holds a SID (`onprem_sid`, `primarysid`), `name`, and the SIDs among `groups_claim`. With a
    /// directory, the directory is the only source of users.
    pub users_from_claims: bool,
    pub uuid_claim: String,
    pub sid_claims: Vec<String>,
    pub groups_claim: String,
}

impl OidcSettings {
    /// Entra ID's and ADFS's claim names.
    pub fn new(issuer: &str, audiences: Vec<String>, algorithms: Vec<Algorithm>) -> Self {
        OidcSettings {
            issuer: issuer.into(),
            audiences,
            algorithms,
            login_claim: "upn".into(),
            leeway: Duration::from_secs(60),
            users_from_claims: false,
            uuid_claim: "oid".into(),
            sid_claims: vec!["onprem_sid".into(), "primarysid".into()],
            groups_claim: "groups".into(),
        }
    }
}

/// A user made from a token's claims, when it carries a GUID and a SID.
fn principal_from_claims(s: &OidcSettings, login: &str, claims: &Value) -> Option<Principal> {
    let uuid: opencm_domain::Guid = claims[&s.uuid_claim].as_str()?.parse().ok()?;
    let sid = s.sid_claims.iter().find_map(|c| {
        claims[c]
            .as_str()
            .and_then(|v| opencm_domain::Sid::parse(v).ok())
    })?;
    let groups = match &claims[&s.groups_claim] {
        Value::Array(v) => v
            .iter()
            .filter_map(|g| g.as_str().and_then(|g| opencm_domain::Sid::parse(g).ok()))
            .collect(),
        _ => Vec::new(),
    };
    Some(Principal {
        uuid: uuid.into(),
        login: login.to_string(),
        display_name: claims["name"].as_str().unwrap_or(login).to_string(),
        sid,
        groups,
        upn: Some(login.to_string()),
        email: claims["email"].as_str().map(str::to_string),
        certificate_mappings: Vec::new(),
        language: None,
    })
}

/// How often the JWKS may be fetched again for an unknown key id, at most.
const REFETCH_FLOOR: Duration = Duration::from_secs(60);

struct Keys {
    by_kid: HashMap<String, DecodingKey>,
    fetched: Option<Instant>,
}

pub struct OidcAuthenticator {
    settings: OidcSettings,
    directory: Arc<dyn Directory>,
    http: reqwest::Client,
    keys: Mutex<Keys>,
}

fn unavailable(detail: String) -> AppError {
    AppError::unavailable(
        ErrorCode::IdentityProviderUnavailable,
        "The OpenID provider is unreachable or answers no usable keys; try again shortly.",
        detail,
    )
}

/// Whether a string is the alg of an asymmetric signature opencm accepts.
pub fn parse_algorithm(name: &str) -> Option<Algorithm> {
    let a: Algorithm = name.parse().ok()?;
    match a {
        Algorithm::RS256
        | Algorithm::RS384
        | Algorithm::RS512
        | Algorithm::PS256
        | Algorithm::PS384
        | Algorithm::PS512
        | Algorithm::ES256
        | Algorithm::ES384
        | Algorithm::EdDSA => Some(a),
        _ => None,
    }
}

impl OidcAuthenticator {
    pub fn new(settings: OidcSettings, directory: Arc<dyn Directory>) -> Result<Self, String> {
        if settings.algorithms.is_empty() {
            return Err("[oidc] needs at least one algorithm".into());
        }
        if settings.audiences.is_empty() {
            return Err("[oidc] needs the audience tokens are issued for".into());
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(OidcAuthenticator {
            settings,
            directory,
            http,
            keys: Mutex::new(Keys {
                by_kid: HashMap::new(),
                fetched: None,
            }),
        })
    }

    /// The provider's discovery document, checked to name the configured issuer.
    pub(crate) async fn discovery(&self) -> Result<Value, AppError> {
        let issuer = self.settings.issuer.trim_end_matches('/');
        let discovery: Value = self
            .http
            .get(format!("{issuer}/.well-known/openid-configuration"))
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| unavailable(format!("discovery: {e}")))?
            .json()
            .await
            .map_err(|e| unavailable(format!("discovery: {e}")))?;
        if discovery["issuer"].as_str() != Some(&self.settings.issuer) {
            return Err(unavailable(format!(
                "the discovery document names issuer {} instead of {}",
                discovery["issuer"], self.settings.issuer
            )));
        }
        Ok(discovery)
    }

    async fn fetch_keys(&self) -> Result<HashMap<String, DecodingKey>, AppError> {
        let discovery = self.discovery().await?;
        let jwks_uri = discovery["jwks_uri"]
            .as_str()
            .ok_or_else(|| unavailable("the discovery document has no jwks_uri".into()))?;
        let jwks: jsonwebtoken::jwk::JwkSet = self
            .http
            .get(jwks_uri)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| unavailable(format!("JWKS: {e}")))?
            .json()
            .await
            .map_err(|e| unavailable(format!("JWKS: {e}")))?;
        let mut out = HashMap::new();
        for k in &jwks.keys {
            if let (Some(kid), Ok(key)) = (k.common.key_id.clone(), DecodingKey::from_jwk(k)) {
                out.insert(kid, key);
            }
        }
        Ok(out)
    }

    /// The key for `kid`: cached, or fetched again when the cache lacks it and the floor allows.
    pub(crate) async fn key(&self, kid: &str) -> Result<Option<DecodingKey>, AppError> {
        {
            let keys = self
                .keys
                .lock()
                .map_err(|_| AppError::internal("JWKS cache poisoned"))?;
            if let Some(k) = keys.by_kid.get(kid) {
                return Ok(Some(k.clone()));
            }
            if keys.fetched.is_some_and(|t| t.elapsed() < REFETCH_FLOOR) {
                return Ok(None);
            }
        }
        let fetched = self.fetch_keys().await?;
        let mut keys = self
            .keys
            .lock()
            .map_err(|_| AppError::internal("JWKS cache poisoned"))?;
        keys.by_kid = fetched;
        keys.fetched = Some(Instant::now());
        Ok(keys.by_kid.get(kid).cloned())
    }

    /// The claims of a JWT signed by the provider with an allowed algorithm, issued by it, for
    /// one of `audiences`, within its validity; `None` (and why, in the log) for any other.
    pub(crate) async fn verified_claims(
        &self,
        token: &str,
        audiences: &[String],
    ) -> Result<Option<Value>, AppError> {
        let Ok(header) = decode_header(token) else {
            return Ok(None);
        };
        if !self.settings.algorithms.contains(&header.alg) {
            tracing::info!(alg = ?header.alg, "OIDC token refused: algorithm not allowed");
            return Ok(None);
        }
        let Some(kid) = header.kid else {
            tracing::info!("OIDC token refused: no key id");
            return Ok(None);
        };
        let Some(key) = self.key(&kid).await? else {
            tracing::info!(%kid, "OIDC token refused: unknown key id");
            return Ok(None);
        };
        let mut v = Validation::new(header.alg);
        v.set_issuer(&[&self.settings.issuer]);
        v.set_audience(audiences);
        v.leeway = self.settings.leeway.as_secs();
        v.validate_nbf = true;
        v.set_required_spec_claims(&["exp", "iss", "aud"]);
        match decode::<Value>(token, &key, &v) {
            Ok(d) => Ok(Some(d.claims)),
            Err(e) => {
                tracing::info!(reason = %e, "OIDC token refused");
                Ok(None)
            }
        }
    }

    /// The user a token's claims name (its login claim), resolved like any login: opencm's own
    /// users, then the directory; without a directory, from the claims themselves when allowed.
    pub(crate) async fn user_of(&self, claims: &Value) -> Result<Option<Principal>, AppError> {
        let Some(login) = claims[&self.settings.login_claim].as_str() else {
            tracing::info!(claim = %self.settings.login_claim, "OIDC token refused: no login claim");
            return Ok(None);
        };
        let user = self
            .directory
            .user_by_login(login)
            .await
            .map_err(AppError::from)?;
        let user = match user {
            Some(u) => Some(u),
            None if self.settings.users_from_claims => {
                let u = principal_from_claims(&self.settings, login, claims);
                if u.is_none() {
                    tracing::info!(%login, "OIDC token for an unknown user, without the GUID and SID claims to describe one");
                }
                u
            }
            None => {
                tracing::info!(%login, "OIDC token for an unknown or disabled user");
                None
            }
        };
        Ok(user)
    }
}

#[async_trait]
impl Authenticator for OidcAuthenticator {
    async fn authenticate(&self, c: &Credential<'_>) -> Result<Option<Principal>, AppError> {
        let Credential::Bearer(token) = c else {
            return Ok(None);
        };
        match self
            .verified_claims(token, &self.settings.audiences)
            .await?
        {
            Some(claims) => self.user_of(&claims).await,
            None => Ok(None),
        }
    }
}
