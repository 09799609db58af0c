//! `opencm notify`: a test e-mail through the configured SMTP server, and the outbox as
//! administrators see it (`GET /opencm/v1/outbox` over HTTP).

use clap::Subcommand;
use opencm::config::Config;
use opencm_app::Actor;

#[derive(Subcommand)]
pub enum NotifyCmd {
    /// Send a test e-mail to ADDRESS now (not through the outbox) and print what the SMTP server
    /// said.
    Test {
        address: String,
        /// en or es.
        #[arg(long, default_value = "en")]
        language: String,
    },
    /// List the outbox, newest first: pending, delivered or dead rows (all when not given).
    Outbox {
        #[arg(long)]
        state: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Make a dead outbox row due again.
    Replay { id: String },
}

pub async fn notify(cfg: &Config, c: NotifyCmd) -> anyhow::Result<()> {
    let app = opencm::open_app(cfg).await?;
    match c {
        NotifyCmd::Test { address, language } => {
            let reply = app.notify_test(&address, &language).await?;
            opencm::out!("sent to {address}; the SMTP server said: {reply}");
        }
        NotifyCmd::Outbox { state, limit } => {
            for r in app
                .outbox_list(Actor::Cli, state.as_deref(), Some(limit))
                .await?
            {
                opencm::out!(
                    "{}  {:<9}  {:<26}  {:<20}  tries {}  {}",
                    r.id,
                    r.state.name(),
                    r.event.name(),
                    r.channel,
                    r.attempts,
                    r.last_error.unwrap_or_default()
                );
            }
        }
        NotifyCmd::Replay { id } => {
            let id = id
                .parse::<opencm_domain::Guid>()
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let (row, _) = app.replay_outbox(Actor::Cli, id).await?;
            opencm::out!("{} is {} again", row.id, row.state.name());
        }
    }
    Ok(())
}
