//! The opencm binary's library half: configuration, administration commands, the demo realm, the
//! server wiring, so integration tests can drive them in-process.

pub mod admin;
pub mod ca;
pub mod config;
pub mod demo;

use anyhow::Context;
use config::Config;
use opencm_api::{ApiConfig, AppState};
use opencm_app::ports::{Clock, Storage, SystemClock};
use opencm_app::{App, Settings};
use std::sync::Arc;

pub async fn open_store(cfg: &Config) -> anyhow::Result<Arc<dyn Storage>> {
    let store = opencm_store::connect(&cfg.database_url, cfg.store_options())
        .await
        .with_context(|| format!("opening {}", cfg.database_for_logs()))?;
    store.migrate().await?;
    Ok(store)
}

/// The application over the configured database, for commands that issue nothing.
pub async fn open_app(cfg: &Config) -> anyhow::Result<App> {
    Ok(App::new(
        open_store(cfg).await?,
        Arc::new(SystemClock),
        Settings::default(),
    ))
}

/// The SQLite file a URL names, if it names one that does not exist yet.
fn new_sqlite_file(url: &str) -> Option<std::path::PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = std::path::PathBuf::from(rest.split('?').next().unwrap_or(rest));
    (!path.exists()).then_some(path)
}

fn absolute(p: &std::path::Path) -> std::path::PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

pub async fn serve(cfg: Config, demo: bool) -> anyhow::Result<()> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    // A server started where it finds no database says so, with absolute paths, before it
    // makes a new database, CA and key-encryption key: a wrong working directory is then obvious.
    if let Some(db) = new_sqlite_file(&cfg.database_url) {
        println!(
            "No database at {}: creating a new database there, a new CA, and its key-encryption key in {} (keep that file, and back it up apart from the database).",
            absolute(&db).display(),
            absolute(&cfg.ca_kek_file).display()
        );
    }
    let app = App::new(open_store(&cfg).await?, clock.clone(), Settings::default());
    let listener = tokio::net::TcpListener::bind(&cfg.listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {} (choose another address with --listen or OPENCM_LISTEN)",
                cfg.listen
            )
        })?;
    let addr = listener.local_addr()?;
    if demo {
        match demo::seed(&app).await? {
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
    let (ca, kek) = ca::open_ca(app.ca_store(), &cfg, clock.now()).await?;
    let app = Arc::new(app.with_ca(Arc::new(ca), Arc::new(kek)));
    let api = ApiConfig {
        max_body_bytes: cfg.max_body_bytes,
    };
    let router = opencm_api::app(AppState::new(app.clone(), api));
    let shutdown = shutdown_signal()?;
    tracing::info!(%addr, database = %cfg.database_for_logs(), "opencm listening");
    println!("opencm listening on http://{addr}");
    axum::serve(
        listener,
        axum::ServiceExt::<axum::extract::Request>::into_make_service(router),
    )
    .with_graceful_shutdown(shutdown)
    .await?;
    app.close().await;
    tracing::info!("opencm stopped");
    Ok(())
}

/// Resolves on SIGTERM or Ctrl-C. The handlers are registered when this is called, not when the
/// future is first polled, so a signal sent as soon as the server says it is listening is not lost.
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    #[cfg(unix)]
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    #[cfg(unix)]
    let mut int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
    Ok(async move {
        #[cfg(unix)]
        tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutdown requested; finishing in-flight requests");
    })
}
