//! `opencm user|group|token`: opencm's own users, their groups, explicit certificate mappings and
//! API tokens.

use super::said;
use clap::Subcommand;
use opencm::config::Config;
use opencm::{admin, open_app};
use opencm_app::ports::{Clock, NewUser, SystemClock};
use opencm_app::Actor;
use opencm_domain::{Guid, Timestamp};

#[derive(Subcommand)]
pub enum UserCmd {
    /// Add a user.
    Add {
        login: String,
        /// The user's account SID (S-1-5-21-…): written into their certificates for Windows logon.
        #[arg(long)]
        sid: String,
        #[arg(long)]
        uuid: Option<String>,
        #[arg(long)]
        display_name: Option<String>,
        /// A group SID the user belongs to (repeatable).
        #[arg(long = "group")]
        groups: Vec<String>,
        /// Where the user's notifications go (e-mail address).
        #[arg(long)]
        email: Option<String>,
        /// The language of the user's e-mails: en or es (the configured default when absent).
        #[arg(long)]
        language: Option<String>,
    },
    /// Set a user's portal password (argon2id; only the hash is stored) and end their open
    /// portal sessions. Asked twice at a terminal; otherwise read as the first line of stdin.
    Passwd { login: String },
    /// Disable a user: their tokens and portal sessions stop working on every node at the next
    /// request.
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
pub enum GroupCmd {
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
pub enum TokenCmd {
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

pub async fn user(cfg: &Config, cmd: UserCmd) -> anyhow::Result<()> {
    let app = open_app(cfg).await?;
    match cmd {
        UserCmd::Add {
            login,
            sid,
            uuid,
            display_name,
            groups,
            email,
            language,
        } => {
            let uuid = match uuid {
                Some(u) => u.parse::<Guid>().map_err(|e| anyhow::anyhow!("{e}"))?,
                None => Guid::new_random(),
            };
            let groups = groups
                .iter()
                .map(|g| admin::check_sid(g))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let user = NewUser {
                uuid: uuid.into(),
                display_name: display_name.unwrap_or_else(|| login.clone()),
                login,
                sid: admin::check_sid(&sid)?,
                groups,
                email,
                language,
            };
            app.add_user(&user).await?;
            opencm::out!("{}", user.uuid);
        }
        UserCmd::Passwd { login } => {
            let password = read_password(&login)?;
            app.set_password(Actor::Cli, &login, &password).await?;
            opencm::out!("{login}: password set; their portal sessions were ended");
        }
        UserCmd::Disable { login } => {
            let changed = app.set_user_enabled(Actor::Cli, &login, false).await?;
            said(&login, changed, "disabled", "was already disabled");
        }
        UserCmd::Enable { login } => {
            let changed = app.set_user_enabled(Actor::Cli, &login, true).await?;
            said(&login, changed, "enabled", "was already enabled");
        }
        UserCmd::MapCertificate { login, mapping } => {
            let changed = app
                .set_certificate_mapping(Actor::Cli, &login, &mapping, true)
                .await?;
            said(
                &login,
                changed,
                &format!("mapped to {mapping}"),
                &format!("was already mapped to {mapping}"),
            );
        }
        UserCmd::UnmapCertificate { login, mapping } => {
            let changed = app
                .set_certificate_mapping(Actor::Cli, &login, &mapping, false)
                .await?;
            said(
                &login,
                changed,
                &format!("no longer mapped to {mapping}"),
                &format!("was not mapped to {mapping}"),
            );
        }
    }
    Ok(())
}

pub async fn group(cfg: &Config, cmd: GroupCmd) -> anyhow::Result<()> {
    let app = open_app(cfg).await?;
    match cmd {
        GroupCmd::Add { name, sid } => app.add_group(&name, &admin::check_sid(&sid)?).await?,
        GroupCmd::AddMember { sid, login } => {
            let changed = app.set_member(Actor::Cli, &login, &sid, true).await?;
            said(
                &login,
                changed,
                &format!("added to {sid}"),
                &format!("was already in {sid}"),
            );
        }
        GroupCmd::RemoveMember { sid, login } => {
            let changed = app.set_member(Actor::Cli, &login, &sid, false).await?;
            said(
                &login,
                changed,
                &format!("removed from {sid}"),
                &format!("was not in {sid}"),
            );
        }
    }
    Ok(())
}

pub async fn token(cfg: &Config, cmd: TokenCmd) -> anyhow::Result<()> {
    let app = open_app(cfg).await?;
    match cmd {
        TokenCmd::Create { login, expires_in } => {
            let now = SystemClock.now();
            let expires = expires_in
                .map(|d| admin::parse_duration(&d))
                .transpose()?
                .map(|us| Timestamp::from_micros(now.micros() + us));
            let token = app.create_token(&login, expires).await?;
            opencm::out!("{token}");
            eprintln!(
                "token id {} (for `opencm token list` and `opencm token revoke`)",
                opencm_app::offboarding::token_id(&opencm_app::identity::hash_token(&token))
            );
        }
        TokenCmd::List { user } => {
            opencm::out!(
                "{:<12}  {:<20}  {:<27}  {:<27}  revoked",
                "id",
                "user",
                "created",
                "expires"
            );
            for t in app.tokens(Actor::Cli, user.as_deref()).await? {
                let r = &t.record;
                let when =
                    |t: Option<Timestamp>| t.map(|t| t.to_string()).unwrap_or_else(|| "-".into());
                opencm::out!(
                    "{:<12}  {:<20}  {:<27}  {:<27}  {}",
                    t.id,
                    r.login,
                    r.created.to_string(),
                    when(r.expires),
                    when(r.revoked)
                );
            }
        }
        TokenCmd::Revoke { id } => {
            let t = app.revoke_token(Actor::Cli, &id).await?;
            opencm::out!("revoked token {} of {}", t.id, t.record.login);
        }
    }
    Ok(())
}

/// A new password: asked twice, unechoed, at a terminal; else the first line of stdin (for
/// scripts: `printf '%s\n' "$PW" | opencm user passwd alice`).
fn read_password(login: &str) -> anyhow::Result<String> {
    use std::io::{BufRead, IsTerminal};
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password(format!("New portal password for {login}: "))?;
        let again = rpassword::prompt_password("Again: ")?;
        if first != again {
            anyhow::bail!("the two passwords differ; nothing was changed");
        }
        return Ok(first);
    }
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}
