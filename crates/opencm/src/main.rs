//! `opencm`: the server binary. CLI, configuration and wiring; the rules live in opencm-domain, the
//! data in opencm-store and the HTTP surface in opencm-api.

mod cli;

use clap::{Parser, Subcommand};
use cli::directory::DirectoryCmd;
use cli::identity::{GroupCmd, TokenCmd, UserCmd};
use cli::pki::{CaCmd, CardMasterCmd, TemplateCmd};
use opencm::config::{Config, Overrides};
use opencm::{open_app, open_store, serve};

/// mimalloc instead of glibc's allocator: allocation was a seventh of the server's CPU under load
/// (many small, short-lived allocations per request across threads), see docs/PERFORMANCE.md.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "opencm",
    version,
    about = "A certificate lifecycle server that speaks the MIM CM REST API v1.0"
)]
struct Cli {
    /// TOML configuration file (below OPENCM_* variables and flags).
    #[arg(long, global = true, env = "OPENCM_CONFIG")]
    config: Option<std::path::PathBuf>,
    /// Database URL: sqlite://FILE (default sqlite://opencm.db) or postgres://...
    #[arg(long, global = true)]
    database_url: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Migrate the database and serve the API.
    Serve {
        /// Address to listen on (default 127.0.0.1:8080).
        #[arg(long)]
        listen: Option<String>,
        /// On an empty database, create the demo realm and print a token per user.
        #[arg(long)]
        demo: bool,
        /// Serve HTTPS with a certificate the embedded CA issues at start for this DNS name or
        /// IP address (repeat for more names; or tls_cert_file/tls_key_file in the config).
        #[arg(long = "tls-name", value_name = "NAME")]
        tls_names: Vec<String>,
    },
    /// Create or upgrade the database schema.
    Migrate,
    /// Copy the SQLite database, consistent as of one moment, to a new FILE while servers keep
    /// running (PostgreSQL: use pg_dump). Keep the KEK file too, stored apart: see OPERATIONS.md.
    Backup { file: std::path::PathBuf },
    /// Users.
    #[command(subcommand)]
    User(UserCmd),
    /// Directory groups.
    #[command(subcommand)]
    Group(GroupCmd),
    /// API tokens.
    #[command(subcommand)]
    Token(TokenCmd),
    /// Profile templates.
    #[command(subcommand)]
    Template(TemplateCmd),
    /// The certificate authority.
    #[command(subcommand)]
    Ca(CaCmd),
    /// The master secret smart card admin keys are diversified from.
    #[command(subcommand)]
    CardMaster(CardMasterCmd),
    /// Users as opencm sees them: its own, then the configured LDAP / Active Directory.
    #[command(subcommand)]
    Directory(DirectoryCmd),
    /// Notifications: a test e-mail, the outbox.
    #[command(subcommand)]
    Notify(cli::notify::NotifyCmd),
    /// Provision PIV smart cards over PC/SC (runs `opencm-card`, the card client: a binary of its
    /// own so the server never links the PC/SC library). `opencm card --help` lists its commands.
    #[command(disable_help_flag = true)]
    Card {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

fn init_logging(format: opencm::config::LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("OPENCM_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    use std::io::IsTerminal;
    // Colour codes only for a person at a terminal, never in a file or a log shipper.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    if format == opencm::config::LogFormat::Json {
        builder.json().init();
    } else {
        builder.init();
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("opencm: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// `opencm card …`: runs `opencm-card` from beside this binary, or from the PATH.
fn card_client(args: &[String]) -> anyhow::Result<()> {
    let beside = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(|d| d.join("opencm-card")))
        .filter(|p| p.exists());
    let program = beside.unwrap_or_else(|| "opencm-card".into());
    let status = std::process::Command::new(&program)
        .args(args)
        .status()
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot run the card client {} ({e}); build it with `cargo build --release -p opencm-card` (needs libpcsclite-dev and pkg-config)",
                program.display()
            )
        })?;
    std::process::exit(status.code().unwrap_or(1));
}

async fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Command::Card { args } = &cli.command {
        return card_client(args);
    }
    let (listen, tls_names) = match &cli.command {
        Command::Serve {
            listen, tls_names, ..
        } => (
            listen.clone(),
            (!tls_names.is_empty()).then(|| tls_names.clone()),
        ),
        _ => (None, None),
    };
    let cfg = Config::load(&Overrides {
        config_file: cli.config.clone(),
        database_url: cli.database_url.clone(),
        listen,
        tls_names,
    })?;
    match cli.command {
        Command::Serve { demo, .. } => {
            init_logging(cfg.log_format);
            serve(cfg, demo).await
        }
        Command::Backup { file } => backup(&cfg, &file).await,
        Command::Migrate => {
            open_store(&cfg).await?;
            opencm::out!("database {} is up to date", cfg.database_url);
            Ok(())
        }
        Command::User(c) => cli::identity::user(&cfg, c).await,
        Command::Group(c) => cli::identity::group(&cfg, c).await,
        Command::Token(c) => cli::identity::token(&cfg, c).await,
        Command::Template(c) => cli::pki::template(&cfg, c).await,
        Command::CardMaster(c) => cli::pki::card_master(&cfg, c).await,
        Command::Ca(c) => cli::pki::ca(cfg, c).await,
        Command::Directory(c) => cli::directory::directory(&cfg, c).await,
        Command::Notify(c) => cli::notify::notify(&cfg, c).await,
        Command::Card { args } => card_client(&args),
    }
}

/// `opencm backup FILE`.
async fn backup(cfg: &Config, file: &std::path::Path) -> anyhow::Result<()> {
    let app = open_app(cfg).await?;
    let started = std::time::Instant::now();
    app.backup(file).await?;
    let size = std::fs::metadata(file).map(|m| m.len()).unwrap_or(0);
    opencm::out!(
        "backed up {} to {} ({size} bytes, {:.1} s); the CA key in it is sealed: keep the KEK file {} too, stored apart",
        cfg.database_url,
        file.display(),
        started.elapsed().as_secs_f64(),
        cfg.ca_kek_file.display()
    );
    Ok(())
}
