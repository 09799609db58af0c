//! `GET /opencm/v1/whoami` (opencm): who the server takes the caller for — identity, the SIDs its
//! access checks use, and how it signed in (read off the credential it sent). The first thing to
//! look at when a right is missing.

use crate::error::ApiError;
use crate::extract::Caller;
use axum::Json;
use serde::Serialize;

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct WhoAmI {
    pub uuid: String,
    pub login: String,
    pub display_name: String,
    pub user_principal_name: String,
    pub mail: Option<String>,
    pub sid: String,
    /// The user's groups, from the directory.
    pub group_sids: Vec<String>,
    /// Every SID access checks see: the user, the groups, Everyone, Authenticated Users.
    pub token_sids: Vec<String>,
    pub authenticated_by: &'static str,
}

pub async fn get_whoami(
    headers: axum::http::HeaderMap,
    Caller(caller): Caller,
) -> Result<Json<WhoAmI>, ApiError> {
    // Without a token, only a client certificate can have signed the caller in; `Negotiate` is
    // Kerberos; opencm's own tokens carry their prefix, any other bearer token was a provider's.
    let credential = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .map(|(scheme, t)| (scheme, t.trim()));
    let authenticated_by = match credential {
        None => "client certificate",
        Some((scheme, _)) if scheme.eq_ignore_ascii_case("negotiate") => "Kerberos (Negotiate)",
        Some((_, t)) if t.starts_with(opencm_app::identity::TOKEN_PREFIX) => "opencm bearer token",
        Some(_) => "OpenID Connect access token",
    };
    Ok(Json(WhoAmI {
        uuid: caller.uuid.to_string(),
        login: caller.login.clone(),
        display_name: caller.display_name.clone(),
        user_principal_name: caller.upn().to_string(),
        mail: caller.email().map(str::to_string),
        sid: caller.sid.to_string(),
        group_sids: caller.groups.iter().map(|g| g.to_string()).collect(),
        token_sids: caller.token_sids().iter().map(|g| g.to_string()).collect(),
        authenticated_by,
    }))
}
