//! What people and systems hear of: the events a change of a request raises (named after MIM CM's
//! notification types where MIM has one), and the outbox rows that carry them to a channel. Which
//! events a change raises is decided here, without IO, from what the change decided; the app
//! writes one outbox row per channel that wants the event, in the change's own transaction.

use crate::decided::{AuditAction, Effect};
use crate::issued::CertificateEvent;
use crate::profile::ProfileStatus;
use crate::request::Request;
use crate::smartcard::SmartcardStatus;
use crate::{Guid, ProfileId, RequestStatus, SmartcardId, Timestamp};

/// An event type, by its wire name (`request.approved`, …).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventType {
    RequestCreated,
    /// A request waits for approvers (MIM: "request pending approval").
    RequestPendingApproval,
    RequestApproved,
    RequestDenied,
    RequestCanceled,
    /// Abandoned by its executor (MIM's Failed status).
    RequestFailed,
    RequestCompleted,
    ProfileCreated,
    ProfileDisabled,
    ProfileSuspended,
    SmartcardBound,
    SmartcardRetired,
    CertificateIssued,
    CertificateRevoked,
    /// Secrets (a PIN the server proposed, one-time passwords) went to the people who need them.
    SecretsDistributed,
    /// A certificate's NotAfter is within one of the configured thresholds.
    CertificateExpiring,
    /// An outbox row was tried as often as allowed and given up (for administrators).
    OutboxDeadLetter,
}

impl EventType {
    pub const ALL: [EventType; 17] = [
        Self::RequestCreated,
        Self::RequestPendingApproval,
        Self::RequestApproved,
        Self::RequestDenied,
        Self::RequestCanceled,
        Self::RequestFailed,
        Self::RequestCompleted,
        Self::ProfileCreated,
        Self::ProfileDisabled,
        Self::ProfileSuspended,
        Self::SmartcardBound,
        Self::SmartcardRetired,
        Self::CertificateIssued,
        Self::CertificateRevoked,
        Self::SecretsDistributed,
        Self::CertificateExpiring,
        Self::OutboxDeadLetter,
    ];

    pub fn name(self) -> &'static str {
        use EventType as E;
        match self {
            E::RequestCreated => "request.created",
            E::RequestPendingApproval => "request.pending_approval",
            E::RequestApproved => "request.approved",
            E::RequestDenied => "request.denied",
            E::RequestCanceled => "request.canceled",
            E::RequestFailed => "request.failed",
            E::RequestCompleted => "request.completed",
            E::ProfileCreated => "profile.created",
            E::ProfileDisabled => "profile.disabled",
            E::ProfileSuspended => "profile.suspended",
            E::SmartcardBound => "smartcard.bound",
            E::SmartcardRetired => "smartcard.retired",
            E::CertificateIssued => "certificate.issued",
            E::CertificateRevoked => "certificate.revoked",
            E::SecretsDistributed => "secrets.distributed",
            E::CertificateExpiring => "certificate.expiring",
            E::OutboxDeadLetter => "outbox.dead_letter",
        }
    }

    pub fn parse(s: &str) -> Option<EventType> {
        Self::ALL.into_iter().find(|e| e.name() == s)
    }

    /// Whether a subscription pattern takes this event: `*`, an exact name, or a family
    /// (`request.*`).
    pub fn matches(self, pattern: &str) -> bool {
        let name = self.name();
        pattern == "*"
            || pattern == name
            || pattern
                .strip_suffix(".*")
                .is_some_and(|family| name.split('.').next() == Some(family))
    }

    /// Whether `pattern` can take any event (configuration is checked with it).
    pub fn is_pattern(pattern: &str) -> bool {
        Self::ALL.iter().any(|e| e.matches(pattern))
    }
}

impl std::fmt::Display for EventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What an event is about besides its request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Subject {
    Request,
    Profile(ProfileId),
    Smartcard(SmartcardId),
    Certificate {
        serial_hex: String,
        profile: ProfileId,
    },
}

/// One event of a change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub kind: EventType,
    pub subject: Subject,
}

impl Event {
    fn of(kind: EventType, subject: Subject) -> Self {
        Event { kind, subject }
    }
}

/// The events a request's change raises: `before` is the status it had (`None` when the change
/// creates it), `next` the request as written, `effects` what the change does besides.
pub fn of_change(
    before: Option<RequestStatus>,
    next: &Request,
    action: AuditAction,
    effects: &[Effect],
) -> Vec<Event> {
    use EventType as E;
    let mut out = Vec::new();
    let request = |k| Event::of(k, Subject::Request);
    if before.is_none() {
        out.push(request(E::RequestCreated));
    }
    if before != Some(next.status) {
        let kind = match next.status {
            RequestStatus::Pending => Some(E::RequestPendingApproval),
            // Approved by approvers; a request that needs none is created Approved and says so
            // by `request.created` alone.
            RequestStatus::Approved if action == AuditAction::Approve => Some(E::RequestApproved),
            RequestStatus::Denied => Some(E::RequestDenied),
            RequestStatus::Canceled => Some(E::RequestCanceled),
            RequestStatus::Failed => Some(E::RequestFailed),
            RequestStatus::Completed => Some(E::RequestCompleted),
            _ => None,
        };
        out.extend(kind.map(request));
    }
    let secret_made = effects.iter().any(|e| {
        matches!(
            e,
            Effect::Secret(crate::request::secrets::SecretChange::Put(_))
        )
    });
    if action == AuditAction::DistributePin || secret_made {
        out.push(request(E::SecretsDistributed));
    }
    for e in effects {
        match e {
            Effect::InsertProfile(p) => {
                out.push(Event::of(E::ProfileCreated, Subject::Profile(p.uuid)))
            }
            Effect::InsertSmartcard(c) => {
                out.push(Event::of(E::SmartcardBound, Subject::Smartcard(c.uuid)))
            }
            Effect::InsertCertificate(c) => out.push(Event::of(
                E::CertificateIssued,
                Subject::Certificate {
                    serial_hex: c.serial_hex.clone(),
                    profile: c.profile,
                },
            )),
            Effect::Profile(c) => {
                let subject = Subject::Profile(c.profile);
                if c.from != c.to {
                    match c.to {
                        ProfileStatus::Disabled => {
                            out.push(Event::of(E::ProfileDisabled, subject.clone()))
                        }
                        ProfileStatus::Suspended => {
                            out.push(Event::of(E::ProfileSuspended, subject.clone()))
                        }
                        _ => {}
                    }
                }
                if matches!(c.certificates, Some(CertificateEvent::Revoke(_))) {
                    out.push(Event::of(E::CertificateRevoked, subject));
                }
            }
            Effect::Smartcard(c) => {
                if c.from != c.to && c.to == SmartcardStatus::Retired {
                    out.push(Event::of(E::SmartcardRetired, Subject::Smartcard(c.card)));
                }
            }
            Effect::SealPin { .. } | Effect::Outbox(_) | Effect::Secret(_) => {}
        }
    }
    out
}

/// Where an outbox row is in its delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutboxState {
    Pending,
    Delivered,
    /// Tried as often as allowed, or refused for good; an administrator may replay it.
    Dead,
}

impl OutboxState {
    pub const ALL: [OutboxState; 3] = [Self::Pending, Self::Delivered, Self::Dead];

    pub fn number(self) -> i64 {
        match self {
            Self::Pending => 0,
            Self::Delivered => 1,
            Self::Dead => 2,
        }
    }
    pub fn from_number(n: i64) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.number() == n)
    }
    pub fn name(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Dead => "dead",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|st| st.name().eq_ignore_ascii_case(s))
    }
}

/// One event on its way to one channel (`email`, or `webhook:NAME`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboxRow {
    pub id: Guid,
    /// The idempotency key receivers see: the same for every channel of one event and every try.
    pub event_id: Guid,
    pub event: EventType,
    pub channel: String,
    /// The event as JSON (`{"type", "id", "timestamp", "data"}`).
    pub payload: String,
    pub created: Timestamp,
    pub state: OutboxState,
    pub attempts: i64,
    pub next_at: Timestamp,
    pub last_error: Option<String>,
    /// When it was delivered or given up.
    pub finished: Option<Timestamp>,
}

impl OutboxRow {
    /// A new row, due now.
    pub fn new(
        event_id: Guid,
        event: EventType,
        channel: String,
        payload: String,
        now: Timestamp,
    ) -> Self {
        OutboxRow {
            id: Guid::new_time_ordered(),
            event_id,
            event,
            channel,
            payload,
            created: now,
            state: OutboxState::Pending,
            attempts: 0,
            next_at: now,
            last_error: None,
            finished: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_take_families_and_names() {
        assert!(EventType::RequestApproved.matches("request.*"));
        assert!(EventType::RequestApproved.matches("request.approved"));
        assert!(EventType::RequestApproved.matches("*"));
        assert!(!EventType::RequestApproved.matches("request.denied"));
        assert!(!EventType::RequestApproved.matches("requests.*"));
        assert!(!EventType::CertificateIssued.matches("request.*"));
        assert!(EventType::is_pattern("certificate.*"));
        assert!(!EventType::is_pattern("certificate.renewed"));
        for e in EventType::ALL {
            assert_eq!(EventType::parse(e.name()), Some(e));
        }
    }
}
