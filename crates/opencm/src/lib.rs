//! The opencm binary's library half: configuration, administration commands, the demo realm, the
//! server wiring, so integration tests can drive them in-process.

pub mod admin;
pub mod ca;
pub mod client_auth;
pub mod config;
pub mod demo;
pub mod server;
pub mod tls;

/// `println!` for the command line's output. A reader that went away (`opencm token list | head
/// -1`) ends the process as it ends any Unix tool — exit status 141, SIGPIPE's — instead of a
/// panic; another write error is said once on stderr.
#[macro_export]
macro_rules! out {
    () => {
        $crate::write_out(format_args!(""))
    };
    ($($arg:tt)*) => {
        $crate::write_out(format_args!($($arg)*))
    };
}

#[doc(hidden)]
pub fn write_out(line: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = writeln!(stdout, "{line}").and_then(|()| stdout.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(141);
        }
        eprintln!("opencm: cannot write the output: {e}");
        std::process::exit(1);
    }
}

use anyhow::Context;
use config::Config;
use opencm_api::{ApiConfig, AppState};
use opencm_app::ports::{Clock, Storage, SystemClock};
use opencm_app::{App, Settings};
use std::sync::Arc;

pub async fn open_store(cfg: &Config) -> anyhow::Result<Arc<dyn Storage>> {
    let store = opencm_store::connect(cfg.database_url.expose(), cfg.store_options())
        .await
        .with_context(|| format!("opening {}", cfg.database_url))?;
    store.migrate().await?;
    Ok(store)
}

/// The application over the configured database, for commands that issue nothing.
pub async fn open_app(cfg: &Config) -> anyhow::Result<App> {
    let app = with_directory(
        App::new(
            open_store(cfg).await?,
            Arc::new(SystemClock),
            Settings::default(),
        ),
        cfg,
    )?;
    with_notifications(app, cfg)
}

/// `[notifications]`: the channels, when configured (the dispatcher is started by `serve`).
pub fn with_notifications(app: App, cfg: &Config) -> anyhow::Result<App> {
    let Some(n) = &cfg.notifications else {
        return Ok(app);
    };
    let (settings, channels) = n.build(cfg.public_url.clone())?;
    Ok(app.with_notifications(settings, Arc::new(channels)))
}

/// The configured identity sources beside opencm's own users and tokens: an LDAP / Active
/// Directory, and OpenID Connect access tokens (resolved through both).
pub fn with_directory(app: App, cfg: &Config) -> anyhow::Result<App> {
    with_sources(app, identity_sources(cfg)?, cfg)
}

/// The identity sources the configuration names, built — and so checked — before anything is
/// created: the directory (its CA file, its bind password), the OpenID provider's settings, the
/// Kerberos keytab and realms.
pub struct IdentitySources {
    ldap: Option<Arc<dyn opencm_app::ports::Directory>>,
    oidc: Option<(
        opencm_directory::OidcSettings,
        Option<opencm_directory::OidcClientSettings>,
    )>,
    kerberos: Option<Kerberos>,
}

#[cfg(feature = "kerberos")]
type Kerberos = (
    Arc<dyn opencm_app::NegotiateAcceptor>,
    opencm_app::KerberosMapping,
);
#[cfg(not(feature = "kerberos"))]
type Kerberos = std::convert::Infallible;

pub fn identity_sources(cfg: &Config) -> anyhow::Result<IdentitySources> {
    let ldap: Option<Arc<dyn opencm_app::ports::Directory>> = match &cfg.directory {
        None => None,
        Some(d) => Some(Arc::new(
            opencm_directory::LdapDirectory::new(d.settings()?)
                .map_err(|e| anyhow::anyhow!("[directory]: {e}"))?,
        )),
    };
    let oidc = match &cfg.oidc {
        None => None,
        Some(o) => Some((o.settings(cfg.directory.is_some())?, o.client()?)),
    };
    let kerberos = match &cfg.kerberos {
        None => None,
        Some(k) => Some(kerberos_acceptor(k)?),
    };
    Ok(IdentitySources {
        ldap,
        oidc,
        kerberos,
    })
}

fn with_sources(app: App, s: IdentitySources, cfg: &Config) -> anyhow::Result<App> {
    let app = match s.ldap {
        None => app,
        Some(ldap) => app.with_directory(ldap),
    };
    let app = match s.oidc {
        None => app,
        Some((settings, client)) => {
            let oidc = Arc::new(
                opencm_directory::OidcAuthenticator::new(settings, app.sign_in_users())
                    .map_err(|e| anyhow::anyhow!("[oidc]: {e}"))?,
            );
            let app = app.with_authenticator(oidc.clone());
            match client {
                None => app,
                Some(c) => app.with_oidc_sign_on(Arc::new(
                    opencm_directory::OidcSignOnClient::new(oidc, c)
                        .map_err(|e| anyhow::anyhow!("[oidc]: {e}"))?,
                )),
            }
        }
    };
    let app = app.with_weak_certificate_mapping(cfg.client_certificate_weak_mapping);
    Ok(match s.kerberos {
        None => app,
        #[cfg(feature = "kerberos")]
        Some((acceptor, mapping)) => app.with_kerberos(acceptor, mapping),
        #[cfg(not(feature = "kerberos"))]
        Some(never) => match never {},
    })
}

#[cfg(feature = "kerberos")]
fn kerberos_acceptor(k: &config::KerberosConfig) -> anyhow::Result<Kerberos> {
    let mapping = k.mapping()?;
    let acceptor =
        opencm_kerberos::GssAcceptor::new(k.keytab.as_deref(), k.service_principal.as_deref())
            .map_err(|e| anyhow::anyhow!("[kerberos]: {e}"))?;
    Ok((Arc::new(acceptor), mapping))
}

#[cfg(not(feature = "kerberos"))]
fn kerberos_acceptor(k: &config::KerberosConfig) -> anyhow::Result<Kerberos> {
    k.mapping()?;
    anyhow::bail!(
        "[kerberos] is configured, but this opencm was built without Kerberos: build it with `cargo build --release --features kerberos` (needs libkrb5-dev and libclang)"
    )
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
    // Everything the configuration names is read and checked before anything is created: a
    // refused configuration leaves no database, CA or key-encryption key behind.
    let sources = identity_sources(&cfg)?;
    // Notifications too: secrets read, templates compiled, addresses and webhook URLs checked.
    let notifications = match &cfg.notifications {
        Some(n) => Some(n.build(cfg.public_url.clone())?),
        None => None,
    };
    tls::check(&cfg)?;
    // /metrics: its token read and its own listener bound now, so a mistake creates nothing.
    let metrics_main = cfg.metrics.access(true)?;
    let metrics_apart = match (&cfg.metrics.listen, cfg.metrics.enabled) {
        (Some(addr), true) => {
            let l = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("[metrics] cannot listen on {addr}"))?;
            Some((l, cfg.metrics.access(false)?))
        }
        _ => None,
    };
    ca::check_kek(&cfg)?;
    // The address too: a server that cannot listen creates nothing either.
    let listener = tokio::net::TcpListener::bind(&cfg.listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {} (choose another address with --listen or OPENCM_LISTEN)",
                cfg.listen
            )
        })?;
    if let Some(dir) = &cfg.data_dir {
        create_private_dir(dir)?;
    }
    // A server started where it finds no database says so, with absolute paths, before it
    // makes a new database, CA and key-encryption key: a wrong working directory is then obvious.
    if let Some(db) = new_sqlite_file(cfg.database_url.expose()) {
        crate::out!(
            "No database at {}: creating a new database there, a new CA, and its key-encryption key in {} (keep that file, and back it up apart from the database).",
            absolute(&db).display(),
            absolute(&cfg.ca_kek_file).display()
        );
    }

    let app = with_sources(
        App::new(open_store(&cfg).await?, clock.clone(), Settings::default()),
        sources,
        &cfg,
    )?;
    let addr = listener.local_addr()?;
    let (ca, kek) = ca::open_ca(app.ca_store(), &cfg, clock.now()).await?;
    let https = cfg.tls_cert_file.is_some() || !cfg.tls_names.is_empty();
    let base = match (https, cfg.tls_names.first()) {
        (true, Some(name)) => format!("https://{}:{}", url_host(name), addr.port()),
        (true, None) => format!("https://{addr}"),
        (false, _) => format!("http://{addr}"),
    };
    // Every certificate names where its CRL and its issuer's certificate are published.
    let published = cfg.public_url.clone().unwrap_or_else(|| base.clone());
    let ca = ca.with_public_url(&published);
    let ca = if cfg.ocsp.enabled {
        ca.with_ocsp_url(&cfg.ocsp.url_for(&published))
    } else {
        ca
    };
    let tls = tls::from_config(&cfg, &ca, clock.now().to_offset_date_time())?;
    if demo {
        match demo::seed(&app).await? {
            Some(users) => {
                crate::out!("Demo realm created. API tokens and portal passwords (shown once; only their hashes are stored):");
                for u in &users {
                    crate::out!("  {:<6} {:<48} {:<17} {}", u.login, u.token, u.password, u.role);
                }
                let alice = &users[0].token;
                let cacert = match tls.as_ref().and_then(|t| t.ca_file.as_ref()) {
                    Some(f) => format!("--cacert {} ", f.display()),
                    None => String::new(),
                };
                crate::out!("\nTry:\n  curl -s {cacert}-H 'Authorization: Bearer {alice}' {base}/CertificateManagement/api/v1.0/profiletemplates\n  or open {base}/ in a browser and sign in as alice with her password.\n");
            }
            None => crate::out!("The database already has users; --demo left it unchanged (use the tokens printed when it was created)."),
        }
    }
    let mut app = app
        .with_ca(Arc::new(ca), Arc::new(kek))
        .with_session_limits(cfg.portal.limits());
    if cfg.ocsp.enabled {
        app = app.with_ocsp(cfg.ocsp.settings())?;
    }
    if let Some((mut settings, channels)) = notifications {
        // E-mails link to the portal where people reach this server.
        settings.portal_url.get_or_insert(published.clone());
        tracing::info!(
            email = settings.email,
            webhooks = %settings.webhooks.iter().map(|w| w.name.as_str()).collect::<Vec<_>>().join(", "),
            node = %settings.node,
            "notifications on"
        );
        app = app.with_notifications(settings, Arc::new(channels));
    }
    let app = Arc::new(app);
    let api = ApiConfig {
        max_body_bytes: cfg.max_body_bytes,
        body_timeout: std::time::Duration::from_secs(cfg.body_timeout_secs),
        metrics: metrics_main,
    };
    if let Some((listener, access)) = metrics_apart {
        let state = AppState::new(
            app.clone(),
            ApiConfig {
                metrics: access,
                ..api.clone()
            },
        );
        tracing::info!(addr = %listener.local_addr()?, "metrics on their own listener");
        // The main listener's timeouts, and a connection budget of its own: a scraper needs a
        // few connections, and a flood of silent ones here must not take the process's files.
        let limits = server::Limits {
            max_connections: 64,
            header_timeout: std::time::Duration::from_secs(cfg.header_timeout_secs),
            idle_timeout: std::time::Duration::from_secs(cfg.idle_timeout_secs),
            max_header_bytes: 16 * 1024,
        };
        tokio::spawn(server::run(
            listener,
            None,
            opencm_api::metrics_only(state),
            limits,
            std::future::pending::<()>(),
        ));
    }
    // Each request's reads share a read transaction per stretch between its writes (SQLite;
    // see opencm_store::sqlite::snapshot_scope).
    let portal = opencm_portal::router(
        app.clone(),
        opencm_portal::PortalConfig {
            tls: tls.is_some(),
            client_certificates: tls.is_some() && cfg.client_certificate_auth,
            public_url: cfg.public_url.clone(),
        },
    );
    let router = tower::ServiceExt::map_future(
        opencm_api::app(AppState::new(app.clone(), api), portal),
        opencm_store::sqlite::snapshot_scope,
    );
    let limits = server::Limits {
        max_connections: server::fit_connection_cap(cfg.max_connections),
        header_timeout: std::time::Duration::from_secs(cfg.header_timeout_secs),
        idle_timeout: std::time::Duration::from_secs(cfg.idle_timeout_secs),
        max_header_bytes: 64 * 1024,
    };
    // The outbox's dispatcher: aborted at shutdown, which the lease covers like a node dying.
    let dispatcher = tokio::spawn(app.clone().run_outbox());
    let shutdown = shutdown_signal()?;
    match &tls {
        Some(t) => tracing::info!(tls = %t.description, "HTTPS"),
        None if !addr.ip().is_loopback() => {
            tracing::warn!(%addr, "listening without TLS on a non-loopback address: bearer tokens cross the network in clear text (set tls_names, or tls_cert_file and tls_key_file)");
            eprintln!("warning: {addr} is reachable from other hosts and TLS is off: tokens would cross the network in clear text. Set --tls-name or tls_cert_file/tls_key_file.");
        }
        None => {}
    }
    tracing::info!(%addr, database = %cfg.database_url, "opencm listening");
    crate::out!("opencm listening on {base}");
    server::run(listener, tls.map(|t| t.acceptor), router, limits, shutdown).await;
    dispatcher.abort();
    app.close().await;
    tracing::info!("opencm stopped");
    Ok(())
}

/// A host name or IP address as it goes in a URL (IPv6 in brackets).
fn url_host(name: &str) -> String {
    match name.parse::<std::net::Ipv6Addr>() {
        Ok(_) => format!("[{name}]"),
        Err(_) => name.to_string(),
    }
}

/// The data directory, created readable by its owner only when it does not exist.
fn create_private_dir(dir: &std::path::Path) -> anyhow::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(dir)
        .with_context(|| format!("creating the data directory {}", absolute(dir).display()))
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
