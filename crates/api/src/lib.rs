//! opencm's HTTP surface: the MIM CM REST API v1.0 routes, their wire types, extractors and the one
//! error type every failure becomes. Handlers are thin: extract, call the service (which reads
//! through the store, decides with the domain, and writes back), convert.

pub mod auth;
mod error;
mod extract;
mod handlers;
pub mod issuance;
mod middleware;
mod router;
pub mod service;
mod wire;

pub use error::ApiError;
pub use router::{app, BASE_PATH};

use opencm_domain::Timestamp;
use opencm_store::Store;
use std::sync::Arc;

/// The clock is injected so tests can pin time.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> Timestamp;
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Timestamp::from_micros(d.as_micros() as i64)
    }
}

#[derive(Clone, Debug)]
pub struct ApiConfig {
    /// Largest request body accepted (SPEC §1: 1 MiB by default).
    pub max_body_bytes: usize,
    /// How long a resolved bearer token is cached in memory.
    pub token_cache_ttl: std::time::Duration,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            max_body_bytes: 1 << 20,
            token_cache_ttl: std::time::Duration::from_secs(10),
        }
    }
}

/// Everything a handler may use, built once in the binary and replaced piecewise in tests.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub ca: Arc<dyn opencm_ca::CertificateAuthority>,
    /// Seals archived private keys (server-generated keys kept for Recover).
    pub kek: Arc<opencm_ca::Kek>,
    pub clock: Arc<dyn Clock>,
    pub config: Arc<ApiConfig>,
    pub tokens: Arc<auth::TokenCache>,
}

impl AppState {
    pub fn new(
        store: Arc<dyn Store>,
        ca: Arc<dyn opencm_ca::CertificateAuthority>,
        kek: Arc<opencm_ca::Kek>,
        clock: Arc<dyn Clock>,
        config: ApiConfig,
    ) -> Self {
        let tokens = Arc::new(auth::TokenCache::new(config.token_cache_ttl));
        AppState {
            store,
            ca,
            kek,
            clock,
            config: Arc::new(config),
            tokens,
        }
    }
}
