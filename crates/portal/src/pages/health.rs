//! Administrators: the server's health, and the CA certificate, chain and CRL to download.

use crate::render::{html, respond, Chrome};
use crate::visitor::SignedIn;
use crate::Portal;
use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use opencm_app::Actor;

#[derive(Template)]
#[template(path = "health.html")]
struct HealthPage {
    c: Chrome,
    engine: &'static str,
    database: String,
    ca_subject: String,
    ca_expires: String,
    revoked: usize,
    sign_in: String,
    version: &'static str,
}

pub async fn page(State(portal): State<Portal>, s: SignedIn) -> Response {
    let r = async {
        let t = s.v.t;
        let h = portal.app.health(Actor::User(&s.user)).await?;
        let now = portal.app.clock().now();
        let days = (h.ca_expires.micros() - now.micros()) / 86_400_000_000;
        let mut ways = vec![t.password_label];
        if h.oidc {
            ways.push("OpenID Connect");
        }
        if h.kerberos {
            ways.push("Kerberos");
        }
        if portal.config.client_certificates {
            ways.push(t.sign_in_certificate);
        }
        let page = HealthPage {
            c: Chrome::signed_in(&portal, &s).await?,
            engine: h.engine,
            database: format!("{:.1} ms", h.database_micros as f64 / 1000.0),
            ca_subject: h.ca_subject,
            ca_expires: format!(
                "{} ({})",
                t.datetime(&h.ca_expires),
                t.fill(t.days_left, &days.to_string())
            ),
            revoked: h.revoked,
            sign_in: ways.join(" · "),
            version: h.version,
        };
        Ok(html(StatusCode::OK, &page))
    }
    .await;
    respond(&s.v, r)
}
