//! opencm's HTTP surface: the MIM CM REST API v1.0 routes, their wire types, extractors and the one
//! error type every failure becomes. Handlers are thin: extract, call a use case of `opencm-app`,
//! convert to wire JSON. No handler reaches a store.

mod error;
mod extract;
mod handlers;
mod middleware;
mod router;
mod wire;

pub use error::ApiError;
pub use extract::PeerCertificate;
pub use router::{app, metrics_only, BASE_PATH};

use opencm_app::App;
use std::sync::Arc;

#[derive(Clone, Debug)]
pub struct ApiConfig {
    /// Largest request body accepted (docs/API.md, "Errors": 1 MiB by default).
    pub max_body_bytes: usize,
    /// How long a client may take to send a whole request body (408 after it).
    pub body_timeout: std::time::Duration,
    /// Who may read `/metrics` on this router.
    pub metrics: MetricsAccess,
}

/// `/metrics` on a router: served or not (a separate metrics listener takes it off the main
/// one), and the bearer token a scraper must send, if any.
#[derive(Clone, Debug)]
pub struct MetricsAccess {
    pub served: bool,
    pub token: Option<String>,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            max_body_bytes: 1 << 20,
            body_timeout: std::time::Duration::from_secs(30),
            metrics: MetricsAccess {
                served: true,
                token: None,
            },
        }
    }
}

/// What every handler gets: the application and the HTTP settings.
#[derive(Clone)]
pub struct AppState {
    pub app: Arc<App>,
    pub config: Arc<ApiConfig>,
}

impl AppState {
    pub fn new(app: Arc<App>, config: ApiConfig) -> Self {
        AppState {
            app,
            config: Arc::new(config),
        }
    }
}
