//! opencm's web portal: server-rendered pages for employees, approvers, the help desk and
//! administrators, in the same binary as the API and over the same use cases (`opencm_app::App`;
//! no HTTP calls to itself). Every page works without JavaScript; the one script only adds a copy
//! button. Pages, forms and errors speak English and Spanish (`i18n`).
//!
//! Security: sessions are server-side (`opencm_app::sessions`), their cookie `HttpOnly`,
//! `SameSite=Lax` and `Secure` under TLS; every state-changing form carries the session's CSRF
//! token and every POST must come from this origin; every page is sent with a strict
//! Content-Security-Policy (no inline script or style) and the headers of `headers.rs`; every
//! value is escaped by the templates.

mod assets;
mod forms;
mod headers;
pub mod i18n;
mod pages;
mod render;
mod visitor;

pub use visitor::ClientAddress;

use axum::routing::{get, post};
use axum::Router;
use opencm_app::App;
use std::sync::Arc;

/// The portal's settings, from the binary's configuration.
#[derive(Clone, Debug, Default)]
pub struct PortalConfig {
    /// Served over TLS: cookies are `Secure` and pages send HSTS.
    pub tls: bool,
    /// TLS asks browsers for a client certificate (a smart card): the sign-in page offers it.
    pub client_certificates: bool,
    /// The server's address as clients reach it (`public_url`), for the `opencm card` command a
    /// page hands off to; by default the request's own scheme and `Host`.
    pub public_url: Option<String>,
}

#[derive(Clone)]
pub(crate) struct Portal {
    pub app: Arc<App>,
    pub config: Arc<PortalConfig>,
}

/// The portal's routes, to be merged beside the API's (they share no path).
pub fn router(app: Arc<App>, config: PortalConfig) -> Router {
    use pages::{
        approvals, audit, cards, enrol, health, help_desk, home, requests, sign_in, single_sign_on,
        templates, users,
    };
    let state = Portal {
        app,
        config: Arc::new(config),
    };
    Router::new()
        .route("/", get(home::page))
        .route("/sign-in", get(sign_in::form).post(sign_in::submit))
        .route("/sign-in/oidc/start", get(single_sign_on::oidc_start))
        .route("/sign-in/oidc", get(single_sign_on::oidc_return))
        .route("/sign-in/kerberos", get(single_sign_on::kerberos))
        .route("/sign-in/certificate", get(single_sign_on::certificate))
        .route("/sign-out", post(sign_in::sign_out))
        .route("/language", get(sign_in::language))
        .route("/requests/new", get(requests::choose))
        .route(
            "/requests/new/{template}",
            get(requests::form).post(requests::create),
        )
        .route("/requests/{id}", get(requests::detail))
        .route("/requests/{id}/cancel", post(requests::cancel))
        .route("/requests/{id}/decision", post(approvals::decide))
        .route("/requests/{id}/certificate", post(enrol::issue))
        .route("/requests/{id}/certificates/{serial}", get(enrol::download))
        .route("/approvals", get(approvals::queue))
        .route("/people", get(help_desk::search))
        .route("/people/{login}", get(help_desk::person))
        .route("/cards", get(cards::inventory))
        .route("/cards/{id}", get(cards::card))
        .route("/cards/{id}/requests", post(cards::start))
        .route("/cards/{id}/offline-unblock", post(cards::offline_unblock))
        .route("/audit", get(audit::search))
        .route("/audit.csv", get(audit::export))
        .route("/users", get(users::page))
        .route("/templates", get(templates::page))
        .route("/health", get(health::page))
        .route("/users/{login}/enabled", post(users::set_enabled))
        .route("/tokens/{id}/revoke", post(users::revoke_token))
        .route("/static/portal.css", get(assets::css))
        .route("/static/portal.js", get(assets::js))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            headers::secure,
        ))
        .with_state(state)
}
