//! `opencm`: the server binary. CLI, configuration and wiring; the rules live in opencm-domain, the
//! data in opencm-store and the HTTP surface in opencm-api.

use anyhow::Context;
use clap::{Parser, Subcommand};
use opencm::config::{Config, Overrides};
use opencm::{admin, open_app, open_store, serve};
use opencm_app::ports::NewUser;
use opencm_app::ports::{Clock, SystemClock};
use opencm_app::Actor;
use opencm_domain::{Guid, Timestamp};

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
    /// Provision PIV smart cards over PC/SC (runs `opencm-card`, the card client: a binary of its
    /// own so the server never links the PC/SC library). `opencm card --help` lists its commands.
    #[command(disable_help_flag = true)]
    Card {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

#[derive(Subcommand)]
enum DirectoryCmd {
    /// What opencm sees for LOGIN — where it comes from, its GUID, SID, UPN, mail and group SIDs:
    /// the first thing to check when a user's rights are not what you expect.
    Test { login: String },
}

#[derive(Subcommand)]
enum CardMasterCmd {
    /// Add a new master secret version (sealed under the KEK): cards bound from now on get admin
    /// keys under it; cards personalised earlier keep answering to theirs.
    Rotate,
}

#[derive(Subcommand)]
enum UserCmd {
    /// Add a user.
    Add {
        login: String,
        #[arg(long)]
        sid: String,
        #[arg(long)]
        uuid: Option<String>,
        #[arg(long)]
        display_name: Option<String>,
        /// A group SID the user belongs to (repeatable).
        #[arg(long = "group")]
        groups: Vec<String>,
    },
    /// Disable a user: their tokens stop working on every node at the next request.
    Disable { login: String },
    /// Enable a disabled user again.
    Enable { login: String },
    /// Map a client certificate of an enterprise CA to a user explicitly, in Active Directory's
    /// altSecurityIdentities syntax: `X509:<I>issuer<SR>serial` (serial in reversed byte order)
    /// or `X509:<SKI>hex`. For certificates that carry no SID (strong mapping, KB5014754).
    MapCertificate { login: String, mapping: String },
    /// Remove an explicit certificate mapping.
    UnmapCertificate { login: String, mapping: String },
}

#[derive(Subcommand)]
enum GroupCmd {
    /// Add a group.
    Add {
        name: String,
        #[arg(long)]
        sid: String,
    },
    /// Make a user a member of the group with this SID.
    AddMember {
        #[arg(long)]
        sid: String,
        login: String,
    },
    /// Remove a user from the group with this SID.
    RemoveMember {
        #[arg(long)]
        sid: String,
        login: String,
    },
}

#[derive(Subcommand)]
enum TokenCmd {
    /// Create a token for a user and print it alone on stdout (it is stored only as a hash).
    Create {
        login: String,
        /// Lifetime such as 30d, 12h, 15m.
        #[arg(long)]
        expires_in: Option<String>,
    },
    /// List tokens (never the tokens themselves: their ids, owners and dates).
    List {
        /// Only this user's tokens.
        #[arg(long)]
        user: Option<String>,
    },
    /// Revoke a token by its id (or the first 8 or more characters of it).
    Revoke { id: String },
}

#[derive(Subcommand)]
enum CaCmd {
    /// Create the embedded CA if the database has none; print its certificate.
    Init {
        /// ecdsa-p256 (default), rsa-2048, rsa-3072 or rsa-4096.
        #[arg(long)]
        algorithm: Option<String>,
    },
    /// Make opencm a subordinate of an existing CA: its certificate (PEM, parents may follow) and
    /// unencrypted PKCS#8 key (PEM). Replaces the current CA.
    Import {
        #[arg(long)]
        cert: std::path::PathBuf,
        #[arg(long)]
        key: std::path::PathBuf,
        /// The issuing CA's parents (PEM), if not in --cert.
        #[arg(long)]
        chain: Option<std::path::PathBuf>,
        /// Replace the CA this database already has (what it issued no longer chains to it).
        #[arg(long)]
        replace: bool,
    },
}

#[derive(Subcommand)]
enum TemplateCmd {
    /// Import (insert or replace) the templates of a TOML file.
    Import { file: std::path::PathBuf },
    /// List templates.
    List,
}

fn init_logging(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("OPENCM_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    use std::io::IsTerminal;
    // Colour codes only for a person at a terminal, never in a file or a log shipper.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    if format == "json" {
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
    let now = SystemClock.now();
    match cli.command {
        Command::Serve { demo, .. } => {
            init_logging(&cfg.log_format);
            serve(cfg, demo).await
        }
        Command::Backup { file } => {
            let app = open_app(&cfg).await?;
            let started = std::time::Instant::now();
            app.backup(&file).await?;
            let size = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
            println!(
                "backed up {} to {} ({size} bytes, {:.1} s); the CA key in it is sealed: keep the KEK file {} too, stored apart",
                cfg.database_for_logs(),
                file.display(),
                started.elapsed().as_secs_f64(),
                cfg.ca_kek_file.display()
            );
            Ok(())
        }
        Command::Migrate => {
            open_store(&cfg).await?;
            println!("database {} is up to date", cfg.database_for_logs());
            Ok(())
        }
        Command::User(UserCmd::Add {
            login,
            sid,
            uuid,
            display_name,
            groups,
        }) => {
            let app = open_app(&cfg).await?;
            let uuid = match uuid {
                Some(u) => u.parse::<Guid>().map_err(|e| anyhow::anyhow!("{e}"))?,
                None => Guid::new_random(),
            };
            let groups = groups
                .iter()
                .map(|g| admin::check_sid(g))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let user = NewUser {
                uuid,
                display_name: display_name.unwrap_or_else(|| login.clone()),
                login,
                sid: admin::check_sid(&sid)?,
                groups,
            };
            app.add_user(&user).await?;
            println!("{}", user.uuid);
            Ok(())
        }
        Command::Group(GroupCmd::Add { name, sid }) => {
            let app = open_app(&cfg).await?;
            app.add_group(&name, &admin::check_sid(&sid)?).await?;
            Ok(())
        }
        Command::Token(TokenCmd::Create { login, expires_in }) => {
            let app = open_app(&cfg).await?;
            let expires = expires_in
                .map(|d| admin::parse_duration(&d))
                .transpose()?
                .map(|us| Timestamp::from_micros(now.micros() + us));
            let token = app.create_token(&login, expires).await?;
            println!("{token}");
            eprintln!(
                "token id {} (for `opencm token list` and `opencm token revoke`)",
                opencm_app::offboarding::token_id(&opencm_app::identity::hash_token(&token))
            );
            Ok(())
        }
        Command::Token(TokenCmd::List { user }) => {
            let app = open_app(&cfg).await?;
            println!(
                "{:<12}  {:<20}  {:<27}  {:<27}  revoked",
                "id", "user", "created", "expires"
            );
            for t in app.tokens(Actor::Cli, user.as_deref()).await? {
                let r = &t.record;
                let when =
                    |t: Option<Timestamp>| t.map(|t| t.to_string()).unwrap_or_else(|| "-".into());
                println!(
                    "{:<12}  {:<20}  {:<27}  {:<27}  {}",
                    t.id,
                    r.login,
                    r.created.to_string(),
                    when(r.expires),
                    when(r.revoked)
                );
            }
            Ok(())
        }
        Command::Token(TokenCmd::Revoke { id }) => {
            let app = open_app(&cfg).await?;
            let t = app.revoke_token(Actor::Cli, &id).await?;
            println!("revoked token {} of {}", t.id, t.record.login);
            Ok(())
        }
        Command::User(UserCmd::Disable { login }) => {
            let app = open_app(&cfg).await?;
            let changed = app.set_user_enabled(Actor::Cli, &login, false).await?;
            println!(
                "{login} {}",
                if changed {
                    "disabled"
                } else {
                    "was already disabled"
                }
            );
            Ok(())
        }
        Command::User(UserCmd::Enable { login }) => {
            let app = open_app(&cfg).await?;
            let changed = app.set_user_enabled(Actor::Cli, &login, true).await?;
            println!(
                "{login} {}",
                if changed {
                    "enabled"
                } else {
                    "was already enabled"
                }
            );
            Ok(())
        }
        Command::User(UserCmd::MapCertificate { login, mapping }) => {
            let app = open_app(&cfg).await?;
            let changed = app
                .set_certificate_mapping(Actor::Cli, &login, &mapping, true)
                .await?;
            println!(
                "{login} {} {mapping}",
                if changed {
                    "mapped to"
                } else {
                    "was already mapped to"
                }
            );
            Ok(())
        }
        Command::User(UserCmd::UnmapCertificate { login, mapping }) => {
            let app = open_app(&cfg).await?;
            let changed = app
                .set_certificate_mapping(Actor::Cli, &login, &mapping, false)
                .await?;
            println!(
                "{login} {} {mapping}",
                if changed {
                    "no longer mapped to"
                } else {
                    "was not mapped to"
                }
            );
            Ok(())
        }
        Command::Group(GroupCmd::AddMember { sid, login }) => {
            let app = open_app(&cfg).await?;
            let changed = app.set_member(Actor::Cli, &login, &sid, true).await?;
            println!(
                "{login} {} {sid}",
                if changed {
                    "added to"
                } else {
                    "was already in"
                }
            );
            Ok(())
        }
        Command::Group(GroupCmd::RemoveMember { sid, login }) => {
            let app = open_app(&cfg).await?;
            let changed = app.set_member(Actor::Cli, &login, &sid, false).await?;
            println!(
                "{login} {} {sid}",
                if changed {
                    "removed from"
                } else {
                    "was not in"
                }
            );
            Ok(())
        }
        Command::Template(TemplateCmd::Import { file }) => {
            let app = open_app(&cfg).await?;
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            for name in app.import_templates(&text).await? {
                println!("imported {name}");
            }
            Ok(())
        }
        Command::Template(TemplateCmd::List) => {
            let app = open_app(&cfg).await?;
            for t in app.list_templates().await? {
                let types: Vec<&str> = t
                    .policies
                    .iter()
                    .filter(|(_, p)| p.enabled)
                    .map(|(k, _)| k.0.name())
                    .collect();
                println!(
                    "{}  {:<18} v{}  {}  [{}]",
                    t.uuid,
                    t.kind.name(),
                    t.version,
                    t.name,
                    types.join(", ")
                );
            }
            Ok(())
        }
        Command::CardMaster(CardMasterCmd::Rotate) => {
            let store = open_store(&cfg).await?;
            let now = SystemClock.now();
            let (ca, kek) = opencm::ca::open_ca(&*store, &cfg, now).await?;
            let app = opencm_app::App::new(
                store,
                std::sync::Arc::new(SystemClock),
                opencm_app::Settings::default(),
            )
            .with_ca(std::sync::Arc::new(ca), std::sync::Arc::new(kek));
            let v = app.rotate_card_master().await?;
            println!("card master key version {v}: cards bound from now on get admin keys under it; earlier cards keep theirs");
            Ok(())
        }
        Command::Card { args } => card_client(&args),
        Command::Directory(DirectoryCmd::Test { login }) => {
            let app = open_app(&cfg).await?;
            // An operator's debugging command: the reason the directory failed is shown here.
            let found = app.look_up_user(&login).await.map_err(|e| {
                anyhow::anyhow!("{} ({})", e.message, e.internal.unwrap_or_default())
            })?;
            let Some((p, source)) = found else {
                anyhow::bail!(
                    "no user '{login}' (not in opencm's users, and not found or disabled in the directory)"
                );
            };
            let source = match source {
                opencm_app::UserSource::Local => "opencm's own users",
                opencm_app::UserSource::Directory => "the directory",
            };
            println!("{} (from {source})", p.login);
            println!("  uuid          {}", p.uuid);
            println!("  display name  {}", p.display_name);
            println!("  upn           {}", p.upn());
            println!("  mail          {}", p.email().unwrap_or("-"));
            println!("  sid           {}", p.sid);
            if p.groups.is_empty() {
                println!("  groups        -");
            }
            for (i, g) in p.groups.iter().enumerate() {
                println!(
                    "  {}  {g}",
                    if i == 0 {
                        "groups      "
                    } else {
                        "            "
                    }
                );
            }
            // Explicit certificate mappings (altSecurityIdentities): the strong ones map
            // certificates without a SID; weak ones are shown so an operator sees why not.
            for m in &p.certificate_mappings {
                let strength = if opencm_domain::certmap::is_strong_mapping(m) {
                    "strong"
                } else {
                    "weak, ignored"
                };
                println!("  certificate   {m} ({strength})");
            }
            Ok(())
        }
        Command::Ca(CaCmd::Init { algorithm }) => {
            let mut cfg = cfg;
            if let Some(a) = algorithm {
                opencm_ca::CaKeyAlgorithm::parse(&a).with_context(|| {
                    format!("unknown --algorithm '{a}' (ecdsa-p256, rsa-2048, rsa-3072, rsa-4096)")
                })?;
                cfg.ca_key_algorithm = a;
            }
            let store = open_store(&cfg).await?;
            let (ca, _) = opencm::ca::open_ca(&*store, &cfg, now).await?;
            print!("{}", ca.chain_pem());
            Ok(())
        }
        Command::Ca(CaCmd::Import {
            cert,
            key,
            chain,
            replace,
        }) => {
            let store = open_store(&cfg).await?;
            let read = |p: &std::path::Path| {
                std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))
            };
            let chain = chain.as_deref().map(read).transpose()?.unwrap_or_default();
            opencm::ca::import(
                &*store,
                &cfg,
                &read(&cert)?,
                &read(&key)?,
                &chain,
                now,
                replace,
            )
            .await?;
            println!("imported; opencm now issues as a subordinate CA");
            Ok(())
        }
    }
}
