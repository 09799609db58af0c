//! `opencm ca|card-master|template`: the CA, the card master secret, profile templates.

use anyhow::Context;
use clap::Subcommand;
use opencm::config::Config;
use opencm::{open_app, open_store};
use opencm_app::ports::{Clock, SystemClock};

#[derive(Subcommand)]
pub enum CaCmd {
    /// Create the embedded CA if the database has none; print its certificate.
    Init {
        /// ecdsa-p256 (default), rsa-2048, rsa-3072 or rsa-4096.
        #[arg(long, conflicts_with = "pkcs11")]
        algorithm: Option<String>,
        /// Make the CA's key (P-256) on a token, or use the one it holds by that label:
        /// 'pkcs11:token=LABEL;object=KEY?module-path=/usr/lib/softhsm/libsofthsm2.so'. The PIN
        /// comes from OPENCM_PKCS11_PIN or OPENCM_PKCS11_PIN_FILE (or pin-source=file:… in the URI).
        #[arg(long)]
        pkcs11: Option<String>,
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
pub enum CardMasterCmd {
    /// Add a new master secret version (sealed under the KEK): cards bound from now on get admin
    /// keys under it; cards personalised earlier keep answering to theirs.
    Rotate,
}

#[derive(Subcommand)]
pub enum TemplateCmd {
    /// Import (insert or replace) the templates of a TOML file.
    Import { file: std::path::PathBuf },
    /// List templates.
    List,
}

pub async fn ca(cfg: Config, cmd: CaCmd) -> anyhow::Result<()> {
    let now = SystemClock.now();
    match cmd {
        CaCmd::Init {
            pkcs11: Some(uri), ..
        } => {
            let store = open_store(&cfg).await?;
            let ca = opencm::ca::init_on_token(&*store, &cfg, &uri, now).await?;
            print!("{}", ca.chain_pem());
        }
        CaCmd::Init { algorithm, .. } => {
            let mut cfg = cfg;
            if let Some(a) = algorithm {
                cfg.ca_key_algorithm = opencm_ca::CaKeyAlgorithm::parse(&a).with_context(|| {
                    format!("unknown --algorithm '{a}' (ecdsa-p256, rsa-2048, rsa-3072, rsa-4096)")
                })?;
            }
            let store = open_store(&cfg).await?;
            let (ca, _) = opencm::ca::open_ca(&*store, &cfg, now).await?;
            print!("{}", ca.chain_pem());
        }
        CaCmd::Import {
            cert,
            key,
            chain,
            replace,
        } => {
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
            opencm::out!("imported; opencm now issues as a subordinate CA");
        }
    }
    Ok(())
}

pub async fn card_master(cfg: &Config, cmd: CardMasterCmd) -> anyhow::Result<()> {
    let CardMasterCmd::Rotate = cmd;
    let store = open_store(cfg).await?;
    let (ca, kek) = opencm::ca::open_ca(&*store, cfg, SystemClock.now()).await?;
    let app = opencm_app::App::new(
        store,
        std::sync::Arc::new(SystemClock),
        opencm_app::Settings::default(),
    )
    .with_ca(std::sync::Arc::new(ca), std::sync::Arc::new(kek));
    let v = app.rotate_card_master().await?;
    opencm::out!("card master key version {v}: cards bound from now on get admin keys under it; earlier cards keep theirs");
    Ok(())
}

pub async fn template(cfg: &Config, cmd: TemplateCmd) -> anyhow::Result<()> {
    let app = open_app(cfg).await?;
    match cmd {
        TemplateCmd::Import { file } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            for name in app.import_templates(&text).await? {
                opencm::out!("imported {name}");
            }
        }
        TemplateCmd::List => {
            for t in app.list_templates().await? {
                let types: Vec<&str> = t
                    .policies
                    .iter()
                    .filter(|(_, p)| p.enabled)
                    .map(|(k, _)| k.0.name())
                    .collect();
                opencm::out!(
                    "{}  {:<18} v{}  {}  [{}]",
                    t.uuid,
                    t.kind.name(),
                    t.version,
                    t.name,
                    types.join(", ")
                );
            }
        }
    }
    Ok(())
}
