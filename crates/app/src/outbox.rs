//! Notifications: the transactional outbox and its dispatcher.
//!
//! **Written with the change.** A change of a request that raises events (the domain's
//! `notification::of_change`) writes one outbox row per channel that wants each event — e-mail
//! for the events people are told of, each webhook whose subscription takes it — as effects of
//! the change itself (`Effect::Outbox`, `Write::Create::outbox`): one transaction with the
//! request, its audit event and its other effects. A change that loses its race writes none;
//! nothing is sent for a change that did not happen, and no change happens without its rows.
//!
//! **Delivered apart.** `run_outbox` (one task per node) claims due rows under a lease, delivers
//! them through the `Notifier` port (SMTP, webhooks: `crates/notify`), and records every try in
//! the delivery log. A failed try is retried with exponential backoff and jitter; after
//! `max_attempts` tries, or at once for a failure retrying cannot mend (a template that does not
//! render, a channel no longer configured), the row is dead, and administrators hear of it
//! (`outbox.dead_letter`). Delivery is at least once: a node that dies mid-delivery leaves its
//! rows leased until the lease runs out, then another node delivers them under the same event
//! id (receivers deduplicate by it). Nothing here runs inside a request: SMTP being slow or down
//! costs the caller nothing.

use crate::error::{AppError, ErrorCode};
use crate::ports::{Finished, OutboxAttempt};
use crate::App;
use async_trait::async_trait;
use opencm_domain::decided::{AuditAction, Effect};
use opencm_domain::notification::{self, Event, EventType, OutboxRow, OutboxState, Subject};
use opencm_domain::offboarding::Actor;
use opencm_domain::request::Request;
use opencm_domain::{Guid, RequestStatus, Timestamp};
use std::sync::Arc;
use std::time::Duration;

/// The events people are told of by e-mail (the others go to webhooks only).
pub const EMAIL_EVENTS: [EventType; 8] = [
    EventType::RequestPendingApproval,
    EventType::RequestApproved,
    EventType::RequestDenied,
    EventType::RequestCanceled,
    EventType::RequestFailed,
    EventType::RequestCompleted,
    EventType::CertificateExpiring,
    EventType::OutboxDeadLetter,
];

/// The e-mail channel's name in outbox rows.
pub const EMAIL: &str = "email";
/// A webhook's channel is `webhook:NAME`.
pub const WEBHOOK: &str = "webhook:";

/// A webhook and the events it takes (`*`, a name, or a family such as `request.*`).
#[derive(Clone, Debug)]
pub struct WebhookSubscription {
    pub name: String,
    pub events: Vec<String>,
}

/// How notifications go, from `[notifications]`.
#[derive(Clone, Debug)]
pub struct NotificationSettings {
    /// An SMTP server is configured: e-mails are written to the outbox.
    pub email: bool,
    pub webhooks: Vec<WebhookSubscription>,
    /// The portal's address, for links in e-mails.
    pub portal_url: Option<String>,
    /// The language of e-mails to people whose directory entry names none: "en" or "es".
    pub default_language: String,
    /// Who hears of dead letters by e-mail.
    pub admin_addresses: Vec<String>,
    pub max_attempts: u32,
    /// The first retry's delay; each next one doubles, up to `max_backoff`.
    pub backoff: Duration,
    pub max_backoff: Duration,
    /// How long a claimed row is a node's before another may deliver it.
    pub lease: Duration,
    /// How often a node looks for due rows when nothing woke it.
    pub poll: Duration,
    /// Days before NotAfter at which holders are warned, each once per certificate.
    pub expiry_days: Vec<i64>,
    /// How often a node scans for certificates nearing expiry.
    pub expiry_check: Duration,
    /// How long a one-time password works, and how many tries it allows.
    pub secret_lifetime: Duration,
    pub secret_attempts: i64,
    /// This node's name in leases and the delivery log.
    pub node: String,
}

impl Default for NotificationSettings {
    fn default() -> Self {
        NotificationSettings {
            email: false,
            webhooks: Vec::new(),
            portal_url: None,
            default_language: "en".into(),
            admin_addresses: Vec::new(),
            max_attempts: 8,
            backoff: Duration::from_secs(30),
            max_backoff: Duration::from_secs(3600),
            lease: Duration::from_secs(60),
            poll: Duration::from_secs(2),
            expiry_days: vec![30, 7],
            expiry_check: Duration::from_secs(3600),
            secret_lifetime: crate::secrets::DEFAULT_LIFETIME,
            secret_attempts: crate::secrets::DEFAULT_ATTEMPTS,
            node: format!("node-{}", Guid::new_random()),
        }
    }
}

/// Who an e-mail goes to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recipient {
    pub address: String,
    pub name: String,
    /// "en" or "es".
    pub language: String,
}

/// One e-mail to render and send.
#[derive(Clone, Debug)]
pub struct Mail {
    /// `None` for `opencm notify test`.
    pub event: Option<EventType>,
    /// The workflow policy's own templates (`TEMPLATE-NAME/RequestType`), tried first.
    pub policy: Option<String>,
    pub to: Recipient,
    /// What templates may say: the event, the request, the people, links.
    pub context: serde_json::Value,
}

/// Why a delivery failed: `permanent` when trying again cannot help.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliveryError {
    pub permanent: bool,
    pub message: String,
}

impl DeliveryError {
    pub fn transient(message: impl Into<String>) -> Self {
        DeliveryError {
            permanent: false,
            message: message.into(),
        }
    }
    pub fn permanent(message: impl Into<String>) -> Self {
        DeliveryError {
            permanent: true,
            message: message.into(),
        }
    }
}

/// The channels' transport: rendering and SMTP, webhook requests (`crates/notify`).
#[async_trait]
pub trait Notifier: Send + Sync + 'static {
    /// Renders and sends one e-mail; answers what the SMTP server said.
    async fn email(&self, mail: &Mail) -> Result<String, DeliveryError>;
    /// POSTs the row's event to webhook `endpoint`, signed; answers the receiver's status.
    async fn webhook(&self, endpoint: &str, row: &OutboxRow) -> Result<String, DeliveryError>;
}

pub(crate) struct Notifications {
    pub settings: NotificationSettings,
    pub notifier: Arc<dyn Notifier>,
    /// Wakes this node's dispatcher when a change wrote rows.
    pub wake: tokio::sync::Notify,
}

impl Notifications {
    /// The channels that want `event`.
    fn channels(&self, event: EventType) -> Vec<String> {
        let mut out = Vec::new();
        if self.settings.email && EMAIL_EVENTS.contains(&event) {
            out.push(EMAIL.to_string());
        }
        for w in &self.settings.webhooks {
            if w.events.iter().any(|p| event.matches(p)) {
                out.push(format!("{WEBHOOK}{}", w.name));
            }
        }
        out
    }

    /// One row per channel that wants `event`, sharing its id and payload.
    pub fn rows(
        &self,
        event: EventType,
        data: serde_json::Value,
        now: Timestamp,
    ) -> Vec<OutboxRow> {
        let channels = self.channels(event);
        if channels.is_empty() {
            return Vec::new();
        }
        let id = Guid::new_time_ordered();
        let payload = serde_json::json!({
            "type": event.name(),
            "id": id.to_string(),
            "timestamp": rfc3339(now),
            "data": data,
        })
        .to_string();
        channels
            .into_iter()
            .map(|c| OutboxRow::new(id, event, c, payload.clone(), now))
            .collect()
    }

    /// The delay before try `attempts + 1`: `backoff` doubled per try so far, at most
    /// `max_backoff`, drawn at random from its upper half (jitter: rows that failed together do
    /// not all come back together).
    fn backoff(&self, attempts: i64) -> Duration {
        use rand::Rng;
        let s = &self.settings;
        let doubled = s
            .backoff
            .saturating_mul(1u32 << attempts.clamp(0, 20) as u32)
            .min(s.max_backoff);
        let half = doubled / 2;
        half + Duration::from_micros(rand::thread_rng().gen_range(0..=half.as_micros() as u64))
    }
}

/// RFC 3339 in UTC (`2026-12-07T19:03:37.123456Z`).
pub(crate) fn rfc3339(t: Timestamp) -> String {
    t.to_offset_date_time()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// What every event of a request says of it.
fn request_data(r: &Request, subject: &Subject) -> serde_json::Value {
    let mut data = serde_json::json!({
        "requestUuid": r.uuid.to_string(),
        "requestType": r.request_type.name(),
        "status": r.status.name(),
        "profileTemplateUuid": r.profile_template.to_string(),
        "originatorUuid": r.originator.to_string(),
        "targetUuid": r.target.to_string(),
    });
    let extra = match subject {
        Subject::Request => None,
        Subject::Profile(p) => Some(("profileUuid", p.to_string())),
        Subject::Smartcard(c) => Some(("smartcardUuid", c.to_string())),
        Subject::Certificate { serial_hex, .. } => Some(("serialNumber", serial_hex.clone())),
    };
    if let (Some((k, v)), Some(map)) = (extra, data.as_object_mut()) {
        map.insert(k.into(), v.into());
    }
    if let (Subject::Certificate { profile, .. }, Some(map)) = (subject, data.as_object_mut()) {
        map.insert("profileUuid".into(), profile.to_string().into());
    }
    data
}

/// A row's tries so far that reached a recipient (an e-mail row retried does not write twice to
/// those it reached).
fn reached(log: &[OutboxAttempt]) -> Vec<String> {
    log.iter()
        .filter(|a| a.outcome == "sent" || a.outcome == "refused")
        .map(|a| a.detail.clone())
        .collect()
}

impl App {
    /// Notifications: the settings and the transport; the dispatcher is started apart
    /// (`run_outbox`).
    pub fn with_notifications(
        self,
        settings: NotificationSettings,
        notifier: Arc<dyn Notifier>,
    ) -> App {
        App {
            notifications: Some(Arc::new(Notifications {
                settings,
                notifier,
                wake: tokio::sync::Notify::new(),
            })),
            ..self
        }
    }

    /// The outbox rows of a request's change (none when no channel is configured).
    pub(crate) fn outbox_rows(
        &self,
        before: Option<RequestStatus>,
        next: &Request,
        action: AuditAction,
        effects: &[Effect],
        now: Timestamp,
    ) -> Vec<OutboxRow> {
        let Some(n) = &self.notifications else {
            return Vec::new();
        };
        notification::of_change(before, next, action, effects)
            .into_iter()
            .flat_map(|Event { kind, subject }| n.rows(kind, request_data(next, &subject), now))
            .collect()
    }

    /// After a write that carried rows: this node's dispatcher looks now rather than at its
    /// next poll.
    pub(crate) fn wake_dispatcher(&self) {
        if let Some(n) = &self.notifications {
            n.wake.notify_one();
        }
    }

    /// Delivers due rows until none is left, then waits for a change or the poll interval;
    /// forever (the binary aborts it at shutdown: an abort mid-delivery is a node dying, which
    /// the lease covers).
    pub async fn run_outbox(self: Arc<Self>) {
        let Some(n) = self.notifications.clone() else {
            return;
        };
        let mut next_scan = tokio::time::Instant::now();
        loop {
            if tokio::time::Instant::now() >= next_scan {
                next_scan += n.settings.expiry_check;
                if let Err(e) = self.warn_expiring().await {
                    tracing::warn!(error = %e, "could not scan for certificates nearing expiry");
                }
            }
            match self.dispatch_outbox().await {
                Ok(0) => {}
                Ok(_) => continue,
                Err(e) => tracing::warn!(error = %e, "outbox: could not claim due notifications"),
            }
            let _ = tokio::time::timeout(n.settings.poll, n.wake.notified()).await;
        }
    }

    /// One round: claims up to 16 due rows and delivers them; answers how many.
    pub async fn dispatch_outbox(&self) -> Result<usize, AppError> {
        let Some(n) = &self.notifications else {
            return Ok(0);
        };
        let now = self.clock.now();
        let until = Timestamp::from_micros(now.micros() + n.settings.lease.as_micros() as i64);
        let rows = self
            .outbox
            .claim_outbox(&n.settings.node, now, until, 16)
            .await?;
        let count = rows.len();
        // Each webhook's rows one after the other, oldest first, so a receiver hears of a
        // request's events in the order they happened (unless one is retried); e-mails, whose
        // order no one sees, all at once (one SMTP exchange each: one at a time, a burst of
        // completions would be mailed at the SMTP server's pace of one message).
        let mut channels: Vec<Vec<OutboxRow>> = Vec::new();
        for row in rows {
            if row.channel == EMAIL {
                channels.push(vec![row]);
                continue;
            }
            match channels.iter_mut().find(|c| c[0].channel == row.channel) {
                Some(c) => c.push(row),
                None => channels.push(vec![row]),
            }
        }
        // A row is begun only while at least half its lease is left (a try takes at most half):
        // behind a slow peer, the rest of a channel's rows are left to a later claim rather
        // than tried after their lease ran out, when another node may hold them.
        let last_start =
            Timestamp::from_micros(until.micros() - (n.settings.lease / 2).as_micros() as i64);
        futures::future::join_all(channels.into_iter().map(|rows| async move {
            for row in rows {
                if self.clock.now() > last_start {
                    break;
                }
                self.deliver(n, row).await;
            }
        }))
        .await;
        Ok(count)
    }

    async fn deliver(&self, n: &Notifications, row: OutboxRow) {
        // However a channel behaves, one try ends within half the lease: a peer that accepts and
        // never answers cannot hold this node's rows (nor, past its lease, anyone's).
        let (sent, result) =
            match tokio::time::timeout(n.settings.lease / 2, self.try_row(n, &row)).await {
                Ok(tried) => tried,
                Err(_) => (
                    Vec::new(),
                    Err(DeliveryError::transient(format!(
                        "no answer within {} s",
                        (n.settings.lease / 2).as_secs()
                    ))),
                ),
            };
        let at = self.clock.now();
        let attempt = row.attempts + 1;
        let outcome = match result {
            Ok(detail) => {
                tracing::info!(row = %row.id, event = %row.event, channel = %row.channel, attempt, %detail, "outbox: delivered");
                Finished::Delivered { detail }
            }
            Err(e) if e.permanent || attempt >= i64::from(n.settings.max_attempts) => {
                tracing::error!(row = %row.id, event = %row.event, channel = %row.channel, attempt, error = %e.message, "outbox: notification given up (dead letter); an administrator may replay it");
                let follow = if row.event == EventType::OutboxDeadLetter {
                    Vec::new()
                } else {
                    n.rows(
                        EventType::OutboxDeadLetter,
                        serde_json::json!({
                            "outboxId": row.id.to_string(),
                            "eventId": row.event_id.to_string(),
                            "event": row.event.name(),
                            "channel": row.channel,
                            "attempts": attempt,
                            "error": e.message,
                        }),
                        at,
                    )
                };
                Finished::Dead {
                    error: e.message,
                    follow,
                }
            }
            Err(e) => {
                let delay = n.backoff(row.attempts);
                let next_at = Timestamp::from_micros(at.micros() + delay.as_micros() as i64);
                tracing::warn!(row = %row.id, event = %row.event, channel = %row.channel, attempt, error = %e.message, retry_in_ms = delay.as_millis() as u64, "outbox: notification not delivered; will retry");
                Finished::Retry {
                    next_at,
                    error: e.message,
                }
            }
        };
        match self
            .outbox
            .finish_outbox(&n.settings.node, row.id, at, sent, outcome)
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(row = %row.id, "outbox: the row's lease ran out during delivery; another node may deliver it again (same event id)")
            }
            Err(e) => {
                tracing::warn!(row = %row.id, error = %e, "outbox: could not record a delivery; the row will be tried again when its lease runs out")
            }
        }
    }

    /// Tries a row once: the recipients it reached (e-mail), and the outcome.
    async fn try_row(
        &self,
        n: &Notifications,
        row: &OutboxRow,
    ) -> (Vec<(String, String)>, Result<String, DeliveryError>) {
        if let Some(name) = row.channel.strip_prefix(WEBHOOK) {
            return (Vec::new(), n.notifier.webhook(name, row).await);
        }
        if row.channel != EMAIL {
            return (
                Vec::new(),
                Err(DeliveryError::permanent(format!(
                    "channel '{}' is not configured on this node",
                    row.channel
                ))),
            );
        }
        let mails = match self.mails_of(n, row).await {
            Ok(m) => m,
            Err(e) => return (Vec::new(), Err(e)),
        };
        let before = if row.attempts > 0 {
            match self.outbox.outbox_attempts(row.id).await {
                Ok(log) => reached(&log),
                Err(e) => return (Vec::new(), Err(DeliveryError::transient(e.to_string()))),
            }
        } else {
            Vec::new()
        };
        // Each recipient is tried once per try: one the server refuses for good (a 5xx for that
        // address) is recorded and not tried again, and does not keep the others from theirs;
        // a temporary failure ends the try, and the next one goes on where it stopped.
        let mut lines: Vec<(String, String)> = Vec::new();
        let mut replies = Vec::new();
        let mut refused = Vec::new();
        let done = |lines: &[(String, String)], a: &str| lines.iter().any(|(_, d)| d == a);
        for mail in mails {
            let address = mail.to.address.clone();
            if before.contains(&address) || done(&lines, &address) {
                continue;
            }
            match n.notifier.email(&mail).await {
                Ok(reply) => {
                    replies.push(format!("{address}: {reply}"));
                    lines.push(("sent".into(), address));
                }
                Err(e) if e.permanent => {
                    tracing::warn!(row = %row.id, to = %address, error = %e.message, "outbox: a recipient was refused for good");
                    refused.push(format!("{address}: {}", e.message));
                    lines.push(("refused".into(), address));
                }
                Err(e) => return (lines, Err(e)),
            }
        }
        if !refused.is_empty() {
            // The others have theirs; the row is dead so that administrators hear of it.
            return (
                lines,
                Err(DeliveryError::permanent(format!(
                    "refused for good: {}{}",
                    refused.join("; "),
                    if replies.is_empty() {
                        String::new()
                    } else {
                        format!(" (sent: {})", replies.join("; "))
                    }
                ))),
            );
        }
        let detail = if replies.is_empty() && before.is_empty() {
            "nobody to tell (no recipient has an e-mail address)".to_string()
        } else if replies.is_empty() {
            "every recipient was reached by an earlier try".to_string()
        } else {
            replies.join("; ")
        };
        (lines, Ok(detail))
    }

    /// `GET /opencm/v1/outbox`: rows newest first, in one state or all (administrators).
    pub async fn outbox_list(
        &self,
        actor: Actor<'_>,
        state: Option<&str>,
        limit: Option<u32>,
    ) -> Result<Vec<OutboxRow>, AppError> {
        actor.authorize()?;
        let state = match state {
            None => None,
            Some(s) => Some(OutboxState::parse(s).ok_or_else(|| {
                AppError::new(
                    ErrorCode::InvalidQuery,
                    format!("'{s}' is not an outbox state: pending, delivered or dead."),
                )
            })?),
        };
        let limit = limit.unwrap_or(100);
        if !(1..=1000).contains(&limit) {
            return Err(AppError::new(
                ErrorCode::InvalidQuery,
                "limit is a whole number from 1 to 1000.",
            ));
        }
        Ok(self.outbox.outbox(state, None, limit).await?)
    }

    /// One row and its delivery log (administrators).
    pub async fn outbox_entry(
        &self,
        actor: Actor<'_>,
        id: Guid,
    ) -> Result<(OutboxRow, Vec<OutboxAttempt>), AppError> {
        actor.authorize()?;
        let row = self
            .outbox
            .outbox_row(id)
            .await?
            .ok_or_else(|| not_found(id))?;
        Ok((row, self.outbox.outbox_attempts(id).await?))
    }

    /// Makes a dead row due again, its tries counted afresh (administrators; in its log).
    pub async fn replay_outbox(
        &self,
        actor: Actor<'_>,
        id: Guid,
    ) -> Result<(OutboxRow, Vec<OutboxAttempt>), AppError> {
        actor.authorize()?;
        let by = match actor {
            Actor::Cli => "the command line".to_string(),
            Actor::User(p) => p.login.clone(),
        };
        let row = self
            .outbox
            .outbox_row(id)
            .await?
            .ok_or_else(|| not_found(id))?;
        if !self.outbox.replay_outbox(id, self.clock.now(), &by).await? {
            return Err(AppError::new(
                ErrorCode::InvalidTransition,
                format!(
                    "Outbox row {id} is {}: only a dead row can be replayed.",
                    row.state.name()
                ),
            ));
        }
        tracing::info!(row = %id, by = %by, "outbox: dead row replayed");
        self.wake_dispatcher();
        self.outbox_entry(actor, id).await
    }

    /// `opencm notify test ADDRESS`: one e-mail sent now (not through the outbox), and what the
    /// SMTP server said.
    pub async fn notify_test(&self, address: &str, language: &str) -> Result<String, AppError> {
        let n = self
            .notifications
            .as_ref()
            .filter(|n| n.settings.email)
            .ok_or_else(|| {
                AppError::new(
                ErrorCode::InvalidRequest,
                "No SMTP server is configured ([notifications.smtp] in the configuration file).",
            )
            })?;
        let mail = Mail {
            event: None,
            policy: None,
            to: Recipient {
                address: address.to_string(),
                name: address.to_string(),
                language: language.to_string(),
            },
            context: serde_json::json!({"portal_url": n.settings.portal_url}),
        };
        n.notifier
            .email(&mail)
            .await
            .map_err(|e| AppError::new(ErrorCode::InvalidRequest, e.message))
    }
}

fn not_found(id: Guid) -> AppError {
    AppError::new(ErrorCode::NotFound, format!("There is no outbox row {id}."))
}
