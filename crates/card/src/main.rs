//! `opencm-card` (also run as `opencm card`): provisions PIV smart cards — YubiKey, Nitrokey and
//! other PIV tokens — through opencm's MIM CM REST API, over PC/SC, as MIM's Windows client does
//! for minidriver cards. The client never holds a master secret: the server answers the card's
//! admin challenges and hands out the card's own diversified key and PIN only for the request
//! being executed, each release written in the request's history.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod apdu;
mod csr;
mod enroll;
mod piv;
mod retire;
mod server;
mod session;
mod unblock;
mod update;

use anyhow::{anyhow, Context, Result};
use clap::{Parser, Subcommand};
use std::ffi::CString;

#[derive(Parser)]
#[command(
    name = "opencm-card",
    version,
    about = "Provision PIV smart cards through opencm (MIM CM REST API)"
)]
struct Cli {
    /// The opencm server (`https://cm.example.com`).
    #[arg(
        long,
        env = "OPENCM_SERVER",
        global = true,
        default_value = "http://127.0.0.1:8080"
    )]
    server: String,
    /// A bearer token of the user who executes the request.
    #[arg(long, env = "OPENCM_TOKEN", global = true, hide_env_values = true)]
    token: Option<String>,
    /// The PC/SC reader (a name or the start of one); the first reader with a card by default.
    #[arg(long, env = "OPENCM_READER", global = true)]
    reader: Option<String>,
    /// The request's one-time password, when its workflow policy sends one (by e-mail, or shown
    /// to the originator): presented before anything else is done.
    #[arg(
        long,
        env = "OPENCM_ONE_TIME_PASSWORD",
        global = true,
        hide_env_values = true
    )]
    one_time_password: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The readers, the card in each (card id, ATR), and what opencm knows of it.
    List,
    /// The card in the reader as opencm has it: status, certificates, and the operations you may
    /// start on it now.
    Status,
    /// Enrol the card in the reader for an approved smart card request: bind it, authenticate as
    /// its administrator through the server, make the keys on the card, have them certified,
    /// rotate the admin key to the card's own, set the server's PIN, complete.
    Enroll {
        /// The request's id.
        #[arg(long)]
        request: String,
        /// The card's current PIN (the factory PIN of a new card: the template's default).
        #[arg(long, env = "OPENCM_CARD_PIN", hide_env_values = true)]
        pin: Option<String>,
    },
    /// Put the template's current certificates on the card for an approved OnlineUpdate (or a
    /// Renew that stays on the card): new keys on the card, the old certificates superseded.
    Update {
        /// The request's id.
        #[arg(long)]
        request: String,
        /// The card's PIN (the card signs the new certificate requests).
        #[arg(long, env = "OPENCM_CARD_PIN", hide_env_values = true)]
        pin: String,
    },
    /// Retire the card for an approved Retire request: Retired on the server, its certificates
    /// revoked, and its PIV application reset when the template asks.
    Retire {
        /// The Retire request's id.
        #[arg(long)]
        request: String,
    },
    /// Unblock the card's PIN for an approved Unblock request: the server releases the card's
    /// PUK and a new PIN to the request's executor.
    Unblock {
        /// The Unblock request's id.
        #[arg(long)]
        request: String,
    },
}

/// The card in the chosen reader.
pub struct Inserted {
    pub reader: String,
    pub card: pcsc::Card,
    pub atr: Vec<u8>,
}

fn readers(ctx: &pcsc::Context) -> Result<Vec<CString>> {
    match ctx.list_readers_owned() {
        Ok(r) => Ok(r),
        Err(pcsc::Error::NoReadersAvailable) => Ok(Vec::new()),
        Err(e) => Err(anyhow!(
            "PC/SC cannot list readers ({e}); is pcscd running?"
        )),
    }
}

fn connect(ctx: &pcsc::Context, reader: &CString) -> Result<Option<Inserted>> {
    match ctx.connect(reader, pcsc::ShareMode::Shared, pcsc::Protocols::ANY) {
        Ok(card) => {
            let atr = card
                .status2_owned()
                .context("read the card's ATR")?
                .atr()
                .to_vec();
            Ok(Some(Inserted {
                reader: reader.to_string_lossy().into_owned(),
                card,
                atr,
            }))
        }
        Err(pcsc::Error::NoSmartcard | pcsc::Error::RemovedCard) => Ok(None),
        Err(e) => Err(anyhow!(
            "cannot connect to '{}': {e}",
            reader.to_string_lossy()
        )),
    }
}

/// The card to work on: in the named reader, or in the first reader holding one.
pub fn insert(ctx: &pcsc::Context, wanted: Option<&str>) -> Result<Inserted> {
    let all = readers(ctx)?;
    for r in &all {
        let name = r.to_string_lossy();
        if wanted.is_some_and(|w| !name.starts_with(w)) {
            continue;
        }
        if let Some(card) = connect(ctx, r)? {
            return Ok(card);
        }
    }
    Err(match wanted {
        Some(w) => anyhow!("no card in a reader named '{w}'"),
        None if all.is_empty() => anyhow!("no PC/SC reader found"),
        None => anyhow!("no card in any reader"),
    })
}

fn server(cli: &Cli) -> Result<server::Server> {
    let token = cli
        .token
        .clone()
        .ok_or_else(|| anyhow!("a token is needed: --token or OPENCM_TOKEN"))?;
    server::Server::new(&cli.server, token)
}

/// The server to talk to and the card to work on, for the commands that change a card.
fn server_and_card(cli: &Cli) -> Result<(server::Server, Inserted)> {
    let srv = server(cli)?;
    let ctx = pcsc::Context::establish(pcsc::Scope::User)
        .context("PC/SC is not available; is pcscd running?")?;
    Ok((srv, insert(&ctx, cli.reader.as_deref())?))
}

/// `server_and_card`, then the request's one-time password presented when one was given.
async fn ready_for(cli: &Cli, request: &str) -> Result<(server::Server, Inserted)> {
    let (srv, card) = server_and_card(cli)?;
    if let Some(password) = &cli.one_time_password {
        srv.present_secret(request, password)
            .await
            .context("the one-time password was refused")?;
        println!("one-time password accepted for request {request}");
    }
    Ok((srv, card))
}

async fn list(cli: &Cli) -> Result<()> {
    let ctx = pcsc::Context::establish(pcsc::Scope::User)
        .context("PC/SC is not available; is pcscd running?")?;
    let srv = cli.token.as_ref().map(|_| server(cli)).transpose()?;
    let all = readers(&ctx)?;
    if all.is_empty() {
        println!("no PC/SC reader found");
    }
    for r in all {
        let name = r.to_string_lossy().into_owned();
        let Some(inserted) = connect(&ctx, &r)? else {
            println!("{name}: no card");
            continue;
        };
        let atr = hex::encode(&inserted.atr);
        let id = piv::Piv::select(apdu::Transport::new(inserted.card)).and_then(|p| p.card_id());
        match id {
            Err(e) => println!("{name}: ATR {atr}, not a PIV card ({e:#})"),
            Ok(id) => {
                println!("{name}: PIV card {id}, ATR {atr}");
                if let Some(s) = &srv {
                    match s.card_by_card_id(&id).await? {
                        Some(c) => println!(
                            "  opencm: smart card {} status {} ({}), template {}",
                            c["Uuid"].as_str().unwrap_or("?"),
                            c["Status"],
                            status_name(c["Status"].as_i64().unwrap_or(-1)),
                            c["ProfileTemplateUuid"].as_str().unwrap_or("?")
                        ),
                        None => println!("  opencm: not known"),
                    }
                }
            }
        }
    }
    Ok(())
}

async fn status(srv: &server::Server, inserted: Inserted) -> Result<()> {
    let piv = piv::Piv::select(apdu::Transport::new(inserted.card))?;
    let id = piv.card_id()?;
    println!(
        "{}: PIV card {id}, ATR {}",
        inserted.reader,
        hex::encode(&inserted.atr)
    );
    let Some(c) = srv.card_by_card_id(&id).await? else {
        println!("opencm does not know this card (or you may not see it)");
        return Ok(());
    };
    let uuid = c["Uuid"].as_str().unwrap_or_default();
    println!(
        "smart card {uuid}: status {} ({}), template {} version {}",
        c["Status"],
        status_name(c["Status"].as_i64().unwrap_or(-1)),
        c["ProfileTemplateUuid"].as_str().unwrap_or("?"),
        c["ProfileTemplateVersion"]
    );
    for cert in srv.card_certificates(uuid).await? {
        println!(
            "  certificate {} serial {} thumbprint {}",
            cert["TemplateCommonName"].as_str().unwrap_or("?"),
            cert["SerialNumber"].as_str().unwrap_or("?"),
            cert["Thumbprint"].as_str().unwrap_or("?")
        );
    }
    let ops = srv.card_operations(uuid).await?;
    let names: Vec<&str> = ops.iter().filter_map(|o| o.as_str()).collect();
    println!(
        "  you may start: {}",
        if names.is_empty() {
            "nothing".into()
        } else {
            names.join(", ")
        }
    );
    Ok(())
}

pub fn status_name(n: i64) -> &'static str {
    match n {
        0 => "New",
        1 => "Assigned",
        2 => "Active",
        3 => "Disabled",
        4 => "Suspended",
        6 => "Retired",
        _ => "unknown",
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::List => list(&cli).await,
        Command::Status => match server_and_card(&cli) {
            Ok((srv, card)) => status(&srv, card).await,
            Err(e) => Err(e),
        },
        Command::Enroll { request, pin } => match ready_for(&cli, request).await {
            Ok((srv, card)) => enroll::enroll(&srv, card, request, pin.as_deref()).await,
            Err(e) => Err(e),
        },
        Command::Update { request, pin } => match ready_for(&cli, request).await {
            Ok((srv, card)) => update::update(&srv, card, request, pin).await,
            Err(e) => Err(e),
        },
        Command::Retire { request } => match ready_for(&cli, request).await {
            Ok((srv, card)) => retire::retire(&srv, card, request).await,
            Err(e) => Err(e),
        },
        Command::Unblock { request } => match ready_for(&cli, request).await {
            Ok((srv, card)) => unblock::unblock(&srv, card, request).await,
            Err(e) => Err(e),
        },
    };
    if let Err(e) = result {
        eprintln!("opencm-card: {e:#}");
        std::process::exit(1);
    }
}
