//! Every route of opencm, in one place.

use crate::handlers::{
    admin, approvals, certificates, health, metrics, ocsp, outbox, pki, profiles, requests,
    secrets, smartcards, templates, whoami,
};
use crate::middleware::{catch_panics, correlate, fallback, normalize_path};
use crate::AppState;
use axum::extract::Request;
use axum::routing::{get, post};
use axum::Router;
use tower::util::MapRequestLayer;
use tower::Layer;

/// The MIM CM base path, as written in `Location` headers.
pub const BASE_PATH: &str = "/CertificateManagement/api/v1.0";

/// Routes are registered lowercase; `normalize_path` lowercases incoming paths before routing.
fn routes() -> Router<AppState> {
    let api = Router::new()
        .route("/profiletemplates", get(templates::list_profile_templates))
        .route(
            "/profiletemplates/{id}/policies/{type}",
            get(templates::get_workflow_policy),
        )
        .route(
            "/profiletemplates/{id}/policy/workflow/{type}",
            get(templates::get_workflow_policy),
        )
        .route(
            "/profiletemplates/{id}/configuration/smartcards",
            get(templates::get_smartcard_configuration),
        )
        .route(
            "/requests",
            get(requests::list_requests).post(requests::create_request),
        )
        .route(
            "/requests/{id}",
            get(requests::get_request).put(requests::set_request_status),
        )
        .route(
            "/requests/{id}/approvals",
            get(approvals::list_approvals).post(approvals::create_approval),
        )
        .route(
            "/requests/{id}/history",
            get(requests::list_request_history),
        )
        .route(
            "/requests/{id}/certificaterequestgenerationoptions",
            get(certificates::get_generation_options),
        )
        .route(
            "/requests/{id}/certificatedata",
            post(certificates::create_certificate_data),
        )
        .route(
            "/requests/{id}/profiles",
            get(profiles::list_request_profiles),
        )
        .route("/profiles", get(profiles::list_profiles))
        .route("/profiles/{id}", get(profiles::get_profile))
        .route(
            "/profiles/{id}/operations",
            get(profiles::list_profile_operations),
        )
        .route(
            "/profiles/{id}/certificates",
            get(certificates::list_profile_certificates),
        )
        .route("/certificates", get(certificates::list_certificates))
        .route(
            "/smartcards",
            get(smartcards::list_smartcards).post(smartcards::bind_smartcard),
        )
        .route("/smartcards/{id}", get(smartcards::get_smartcard))
        .route(
            "/smartcards/{id}/operations",
            get(smartcards::list_smartcard_operations),
        )
        .route(
            "/smartcards/{id}/certificates",
            get(smartcards::list_smartcard_certificates),
        )
        .route(
            "/smartcards/{id}/serverproposedpin",
            get(smartcards::get_proposed_pin).head(smartcards::head_card_secret),
        )
        .route(
            "/requests/{reqid}/smartcards/{scid}",
            axum::routing::put(smartcards::set_smartcard_status),
        )
        .route(
            "/requests/{reqid}/smartcards/{scid}/diversifiedkey",
            get(smartcards::get_diversified_key).head(smartcards::head_card_secret),
        )
        .route(
            "/requests/{reqid}/smartcards/{scid}/authenticationresponse",
            get(smartcards::get_authentication_response).head(smartcards::head_card_secret),
        )
        .route(
            "/requests/{reqid}/smartcards/{scid}/serverproposedpin",
            get(smartcards::get_request_proposed_pin).head(smartcards::head_card_secret),
        )
        .route(
            "/requests/{reqid}/smartcards/{scid}/puk",
            get(smartcards::get_puk).head(smartcards::head_card_secret),
        );
    let opencm = Router::new()
        .route("/tokens", get(admin::list_tokens))
        .route("/tokens/{id}", axum::routing::delete(admin::revoke_token))
        .route("/users/disable", post(admin::disable_user))
        .route("/users/enable", post(admin::enable_user))
        .route("/groups/members", post(admin::add_member))
        .route("/groups/members/remove", post(admin::remove_member))
        .route("/whoami", get(whoami::get_whoami))
        .route("/outbox", get(outbox::list_outbox))
        .route("/outbox/{id}", get(outbox::get_outbox_row))
        .route("/outbox/{id}/replay", post(outbox::replay_outbox_row))
        .route(
            "/requests/{id}/onetimepassword",
            get(secrets::show).post(secrets::present),
        )
        .route(
            "/requests/{id}/onetimepassword/resend",
            post(secrets::resend),
        );
    Router::new()
        .nest("/certificatemanagement/api/v1.0", api)
        .nest("/opencm/v1", opencm)
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(metrics::get_metrics))
        .route("/pki/ca.pem", get(pki::get_ca_chain))
        .route("/pki/ca.cer", get(pki::get_ca_der))
        .route("/pki/crl", get(pki::get_crl_der))
        .route("/pki/crl.pem", get(pki::get_crl_pem))
        .route("/ocsp", post(ocsp::post_ocsp))
        .route("/ocsp/{*request}", get(ocsp::get_ocsp))
        .fallback(fallback)
}

/// `/metrics` alone, for a separate metrics listener.
pub fn metrics_only(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics::get_metrics))
        .with_state(state)
}

/// The complete service: path normalisation in front of routing, the correlation/error layer
/// around everything, panics caught inside it. `pages` are routes served beside the API (the
/// portal's), under the same layers; they share no path with it.
pub fn app(
    state: AppState,
    pages: Router,
) -> impl tower::Service<
    Request,
    Response = axum::response::Response,
    Error = std::convert::Infallible,
    Future = impl std::future::Future<
        Output = Result<axum::response::Response, std::convert::Infallible>,
    > + Send,
> + Clone
       + Send
       + 'static {
    let router = routes()
        .with_state(state.clone())
        .merge(pages)
        .layer(axum::middleware::from_fn(catch_panics))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            correlate,
        ));
    MapRequestLayer::new(normalize_path).layer(router)
}
