//! The opencm binary's library half: configuration, administration commands, the demo realm, the
//! server wiring and the benchmark, so integration tests can drive them in-process.

pub mod admin;
pub mod bench;
pub mod ca;
pub mod config;
pub mod demo;

use anyhow::Context;
use config::Config;
use opencm_api::{ApiConfig, AppState, Clock, SystemClock};
use opencm_store::Store;
use std::sync::Arc;

pub async fn open_store(cfg: &Config) -> anyhow::Result<Arc<dyn Store>> {
    let store = opencm_store::connect(&cfg.database_url, cfg.store_options())
        .await
        .with_context(|| format!("opening {}", cfg.database_for_logs()))?;
    store.migrate().await?;
    Ok(store)
}

pub async fn serve(cfg: Config, demo: bool) -> anyhow::Result<()> {
    let store = open_store(&cfg).await?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let listener = tokio::net::TcpListener::bind(&cfg.listen)
        .await
        .with_context(|| format!("listening on {}", cfg.listen))?;
    let addr = listener.local_addr()?;
    if demo {
        match demo::seed(&*store, clock.now()).await? {
            Some(users) => {
                println!("Demo realm created. Tokens (shown once; only their hashes are stored):");
                for u in &users {
                    println!("  {:<6} {:<48} {}", u.login, u.token, u.role);
                }
                let alice = &users[0].token;
                println!("\nTry:\n  curl -s -H 'Authorization: Bearer {alice}' http://{addr}/CertificateManagement/api/v1.0/profiletemplates\n");
            }
            None => println!("The database already has users; --demo left it unchanged (use the tokens printed when it was created)."),
        }
    }
    let ca = Arc::new(ca::open_ca(&*store, &cfg, clock.now()).await?);
    let api = ApiConfig {
        max_body_bytes: cfg.max_body_bytes,
        ..Default::default()
    };
    let app = opencm_api::app(AppState::new(store.clone(), ca, clock, api));
    tracing::info!(%addr, database = %cfg.database_for_logs(), "opencm listening");
    println!("opencm listening on http://{addr}");
    axum::serve(
        listener,
        axum::ServiceExt::<axum::extract::Request>::into_make_service(app),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await?;
    store.close().await;
    tracing::info!("opencm stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutdown requested; finishing in-flight requests");
}
