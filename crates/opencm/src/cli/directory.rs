//! `opencm directory test LOGIN`: what opencm sees for a user, and where it comes from.

use clap::Subcommand;
use opencm::config::Config;
use opencm::open_app;

#[derive(Subcommand)]
pub enum DirectoryCmd {
    /// What opencm sees for LOGIN — where it comes from, its GUID, SID, UPN, mail and group SIDs:
    /// the first thing to check when a user's rights are not what you expect.
    Test { login: String },
}

pub async fn directory(cfg: &Config, cmd: DirectoryCmd) -> anyhow::Result<()> {
    let DirectoryCmd::Test { login } = cmd;
    let app = open_app(cfg).await?;
    // An operator's debugging command: the reason the directory failed is shown here.
    let found = app
        .look_up_user(&login)
        .await
        .map_err(|e| anyhow::anyhow!("{} ({})", e.message, e.internal.unwrap_or_default()))?;
    let Some((p, source)) = found else {
        anyhow::bail!(
            "no user '{login}' (not in opencm's users, and not found or disabled in the directory)"
        );
    };
    let source = match source {
        opencm_app::UserSource::Local => "opencm's own users",
        opencm_app::UserSource::Directory => "the directory",
    };
    opencm::out!("{} (from {source})", p.login);
    opencm::out!("  uuid          {}", p.uuid);
    opencm::out!("  display name  {}", p.display_name);
    opencm::out!("  upn           {}", p.upn());
    opencm::out!("  mail          {}", p.email().unwrap_or("-"));
    opencm::out!("  sid           {}", p.sid);
    if p.groups.is_empty() {
        opencm::out!("  groups        -");
    }
    for (i, g) in p.groups.iter().enumerate() {
        let label = if i == 0 {
            "groups      "
        } else {
            "            "
        };
        opencm::out!("  {label}  {g}");
    }
    // Explicit certificate mappings (altSecurityIdentities): the strong ones map certificates
    // without a SID; weak ones are shown so an operator sees why not.
    for m in &p.certificate_mappings {
        let strength = if opencm_domain::certmap::is_strong_mapping(m) {
            "strong"
        } else {
            "weak, ignored"
        };
        opencm::out!("  certificate   {m} ({strength})");
    }
    Ok(())
}
