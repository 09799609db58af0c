//! English and Spanish: every string of the portal is a field of `Msg`, and each language is one
//! value of it (`en.rs`, `es.rs`), so a string missing in one language does not compile. The
//! language is the `opencm_lang` cookie (set by the switch in every page), else the first
//! language of `Accept-Language` the portal speaks, else English.

mod en;
mod es;

use opencm_domain::profile::ProfileStatus;
use opencm_domain::smartcard::SmartcardStatus;
use opencm_domain::{RequestStatus, RequestType, Timestamp};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    En,
    Es,
}

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Es => "es",
        }
    }

    pub fn msg(self) -> &'static Msg {
        match self {
            Lang::En => &en::MSG,
            Lang::Es => &es::MSG,
        }
    }

    pub fn parse(code: &str) -> Option<Lang> {
        let primary = code.trim().split(['-', '_']).next()?;
        if primary.eq_ignore_ascii_case("es") {
            Some(Lang::Es)
        } else if primary.eq_ignore_ascii_case("en") {
            Some(Lang::En)
        } else {
            None
        }
    }

    /// The language for a request: the cookie's, else the best of `Accept-Language` by its
    /// q-values (RFC 9110 §12.5.4), else English.
    pub fn negotiate(cookie: Option<&str>, accept_language: Option<&str>) -> Lang {
        if let Some(l) = cookie.and_then(Lang::parse) {
            return l;
        }
        let mut best: Option<(u32, Lang)> = None;
        for item in accept_language.unwrap_or("").split(',').take(20) {
            let mut parts = item.split(';');
            let Some(lang) = parts.next().and_then(Lang::parse) else {
                continue;
            };
            let q = parts
                .find_map(|p| p.trim().strip_prefix("q="))
                .and_then(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            let q = (q.clamp(0.0, 1.0) * 1000.0) as u32;
            if q > 0 && best.is_none_or(|(b, _)| q > b) {
                best = Some((q, lang));
            }
        }
        best.map_or(Lang::En, |(_, l)| l)
    }
}

/// Every string of the portal in one language.
pub struct Msg {
    pub lang: &'static str,
    pub other_lang: &'static str,
    pub other_lang_name: &'static str,
    pub months: [&'static str; 12],
    pub skip_to_content: &'static str,
    pub nav_label: &'static str,
    pub nav_home: &'static str,
    pub nav_new_request: &'static str,
    pub nav_approvals: &'static str,
    pub nav_audit: &'static str,
    pub waiting_for_you: &'static str,
    pub sign_out: &'static str,
    pub signed_in_as: &'static str,
    pub footer: &'static str,
    pub language: &'static str,

    pub sign_in_title: &'static str,
    pub sign_in_intro: &'static str,
    pub login_label: &'static str,
    pub password_label: &'static str,
    pub sign_in_button: &'static str,
    pub sign_in_failed: &'static str,
    pub sign_in_throttled: &'static str,
    pub signed_out: &'static str,
    pub session_ended: &'static str,
    pub nav_help_desk: &'static str,
    pub people_title: &'static str,
    pub people_intro: &'static str,
    pub people_none: &'static str,
    pub user_cards: &'static str,
    pub user_profiles: &'static str,
    pub user_requests: &'static str,
    pub request_for_user: &'static str,
    pub cards_title: &'static str,
    pub cards_intro: &'static str,
    pub col_holder: &'static str,
    pub label_card_id: &'static str,
    pub label_holder: &'static str,
    pub any_status: &'static str,
    pub cards_none: &'static str,
    pub bad_card_id: &'static str,
    pub card_title: &'static str,
    pub card_operations: &'static str,
    pub card_start: &'static str,
    pub reason_label: &'static str,
    pub reason_help: &'static str,
    pub offline_title: &'static str,
    pub offline_intro: &'static str,
    pub challenge_label: &'static str,
    pub key_legend: &'static str,
    pub key_own: &'static str,
    pub key_factory: &'static str,
    pub offline_button: &'static str,
    pub offline_response: &'static str,
    pub offline_done: &'static str,
    pub response_hex: &'static str,
    pub op_suspend: &'static str,
    pub op_reinstate: &'static str,
    pub nav_health: &'static str,
    pub health_title: &'static str,
    pub health_database: &'static str,
    pub health_revoked: &'static str,
    pub health_sign_in: &'static str,
    pub health_version: &'static str,
    pub health_downloads: &'static str,
    pub health_chain: &'static str,
    pub their_cards_none: &'static str,
    pub their_profiles_none: &'static str,
    pub their_requests_none: &'static str,
    pub sign_in_other: &'static str,
    pub sign_in_oidc: &'static str,
    pub sign_in_kerberos: &'static str,
    pub sign_in_certificate: &'static str,
    pub sign_in_sso_failed: &'static str,
    pub sign_in_no_certificate: &'static str,
    pub sign_in_no_kerberos: &'static str,

    pub home_title: &'static str,
    pub hello: &'static str,
    pub my_requests: &'static str,
    pub no_requests: &'static str,
    pub more: &'static str,
    pub my_profiles: &'static str,
    pub no_profiles: &'static str,
    pub my_cards: &'static str,
    pub no_cards: &'static str,
    pub days_left: &'static str,
    pub expired: &'static str,
    pub col_request: &'static str,
    pub col_type: &'static str,
    pub col_template: &'static str,
    pub col_status: &'static str,
    pub col_submitted: &'static str,
    pub col_for: &'static str,
    pub col_by: &'static str,
    pub col_actions: &'static str,
    pub col_expires: &'static str,
    pub col_card: &'static str,
    pub col_when: &'static str,
    pub col_action: &'static str,
    pub col_detail: &'static str,
    pub col_decision: &'static str,
    pub col_approver: &'static str,
    /// The history's main actions (the rest keep the audit trail's name): Create, Approve, Deny,
    /// Complete, Cancel, Abandon, Execute, Issue.
    pub actions: [&'static str; 8],
    pub col_comment: &'static str,
    pub what_you_can_do: &'static str,
    pub nothing_to_do: &'static str,
    pub start: &'static str,

    pub new_request_title: &'static str,
    pub new_request_intro: &'static str,
    pub no_templates: &'static str,
    pub kind_software: &'static str,
    pub kind_smartcard: &'static str,
    pub kind_virtual_smartcard: &'static str,
    pub needs_approval: &'static str,
    pub no_approval: &'static str,
    pub request_form_title: &'static str,
    pub required: &'static str,
    pub optional: &'static str,
    pub comment_label: &'static str,
    pub comment_help: &'static str,
    pub submit_request: &'static str,
    pub for_user_label: &'static str,
    pub for_user_help: &'static str,

    pub request_title: &'static str,
    pub request_created: &'static str,
    pub waiting_approval: &'static str,
    pub approved_next: &'static str,
    pub card_handoff: &'static str,
    pub get_certificate: &'static str,
    pub csr_label: &'static str,
    pub csr_help: &'static str,
    pub pfx_help: &'static str,
    pub pfx_password: &'static str,
    pub pfx_password_again: &'static str,
    pub download_pfx: &'static str,
    pub issue_certificate: &'static str,
    pub issued_certificates: &'static str,
    pub certificates_issued: &'static str,
    pub serial: &'static str,
    pub download: &'static str,
    pub copy: &'static str,
    pub copied: &'static str,
    pub details: &'static str,
    pub data_items: &'static str,
    pub timeline: &'static str,
    pub approvals_title: &'static str,
    pub no_approvals_yet: &'static str,
    pub approvals_needed: &'static str,
    pub cancel_request: &'static str,
    pub cancel_confirm: &'static str,
    pub requester: &'static str,
    pub target: &'static str,
    pub template: &'static str,
    pub submitted: &'static str,
    pub completed: &'static str,
    pub priority: &'static str,
    pub comment: &'static str,
    pub none: &'static str,

    pub queue_title: &'static str,
    pub queue_needs_me: &'static str,
    pub queue_waiting: &'static str,
    pub queue_decided: &'static str,
    pub queue_empty: &'static str,
    pub review: &'static str,
    pub decide_title: &'static str,
    pub decision_comment: &'static str,
    pub approve: &'static str,
    pub deny: &'static str,
    pub decision_approve: &'static str,
    pub decision_deny: &'static str,
    pub decided_by_you: &'static str,
    pub already_decided: &'static str,

    pub nav_users: &'static str,
    pub nav_templates: &'static str,
    pub templates_title: &'static str,
    pub templates_intro: &'static str,
    pub who_may_use: &'static str,
    pub policies_title: &'static str,
    pub self_service: &'static str,
    pub approvers: &'static str,
    pub initiators: &'static str,
    pub agents: &'static str,
    pub agent_required: &'static str,
    pub comment_required: &'static str,
    pub only_for_groups: &'static str,
    pub certificates_title: &'static str,
    pub days: &'static str,
    pub server_key: &'static str,
    pub archived: &'static str,
    pub templates_change: &'static str,
    pub nobody: &'static str,
    pub yes: &'static str,
    pub no: &'static str,
    pub users_title: &'static str,
    pub source: &'static str,
    pub source_local: &'static str,
    pub source_directory: &'static str,
    pub user_enabled: &'static str,
    pub user_disabled: &'static str,
    pub groups: &'static str,
    pub disable_user: &'static str,
    pub disable_help: &'static str,
    pub enable_user: &'static str,
    pub no_such_user: &'static str,
    pub tokens_title: &'static str,
    pub col_created: &'static str,
    pub col_revoked: &'static str,
    pub revoke: &'static str,
    pub saved: &'static str,
    pub ca_certificate: &'static str,
    pub crl: &'static str,
    pub audit_title: &'static str,
    pub audit_intro: &'static str,
    pub audit_user: &'static str,
    pub audit_request: &'static str,
    pub audit_action: &'static str,
    pub audit_any_action: &'static str,
    pub audit_from: &'static str,
    pub audit_until: &'static str,
    pub search: &'static str,
    pub export_csv: &'static str,
    pub audit_none: &'static str,
    pub unknown_user: &'static str,

    pub error_title: &'static str,
    pub error_not_found: &'static str,
    pub error_forbidden: &'static str,
    pub error_invalid: &'static str,
    pub error_conflict: &'static str,
    pub error_unavailable: &'static str,
    pub error_internal: &'static str,
    pub error_csrf: &'static str,
    pub error_reference: &'static str,
    pub back_home: &'static str,

    /// Plain names of the request types, and MIM's name in small print.
    pub request_types: [(&'static str, &'static str); 14],
    pub request_statuses: [&'static str; 8],
    pub profile_statuses: [&'static str; 5],
    pub card_statuses: [&'static str; 6],
}

fn index_of<T: PartialEq + Copy>(all: &[T], x: T) -> usize {
    all.iter().position(|a| *a == x).unwrap_or(0)
}

impl Msg {
    pub fn request_type(&self, t: &RequestType) -> &'static str {
        self.request_types[index_of(&RequestType::ALL, *t)].0
    }

    /// MIM's own name for the type, shown in small print where users know it.
    pub fn request_type_mim(&self, t: &RequestType) -> &'static str {
        self.request_types[index_of(&RequestType::ALL, *t)].1
    }

    pub fn request_status(&self, s: &RequestStatus) -> &'static str {
        self.request_statuses[index_of(&RequestStatus::ALL, *s)]
    }

    pub fn profile_status(&self, s: &ProfileStatus) -> &'static str {
        self.profile_statuses[index_of(&ProfileStatus::ALL, *s)]
    }

    pub fn card_status(&self, s: &SmartcardStatus) -> &'static str {
        self.card_statuses[index_of(&SmartcardStatus::ALL, *s)]
    }

    /// An operation as `profile::operations` and `smartcard::operations` name it (MIM's
    /// lowercase names and aliases: "disable" is Revoke; "suspend" and "reinstate" share one
    /// request type, SuspendOrReinstate, but not a name).
    pub fn operation(&self, op: &str) -> &'static str {
        match op {
            "suspend" => self.op_suspend,
            "reinstate" => self.op_reinstate,
            _ => RequestType::parse(op).map_or("", |t| self.request_type(&t)),
        }
    }

    /// A date and time in UTC, in this language: "7 Dec 2026, 14:05 UTC" / "7 dic 2026, 14:05 UTC".
    pub fn datetime(&self, t: &Timestamp) -> String {
        let d = t.to_offset_date_time();
        format!(
            "{} {} {}, {:02}:{:02} UTC",
            d.day(),
            self.months[usize::from(u8::from(d.month())) - 1],
            d.year(),
            d.hour(),
            d.minute()
        )
    }

    pub fn opt_datetime(&self, t: &Option<Timestamp>) -> String {
        t.as_ref()
            .map_or_else(|| self.none.to_string(), |t| self.datetime(t))
    }

    /// An action of a request's history, in this language where it is one of the main ones.
    pub fn action(&self, name: &str) -> String {
        const MAIN: [&str; 8] = [
            "Create", "Approve", "Deny", "Complete", "Cancel", "Abandon", "Execute", "Issue",
        ];
        MAIN.iter()
            .position(|m| *m == name)
            .map_or_else(|| name.to_string(), |i| self.actions[i].to_string())
    }

    /// `{}` in a message, filled.
    pub fn fill(&self, message: &str, value: &str) -> String {
        message.replacen("{}", value, 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_a_page_offers_has_a_name_in_both_languages() {
        for op in [
            "renew",
            "disable",
            "recover",
            "retire",
            "suspend",
            "reinstate",
            "duplicate",
            "onlineupdate",
            "unblock",
            "offlineunblock",
        ] {
            for lang in [Lang::En, Lang::Es] {
                assert!(!lang.msg().operation(op).is_empty(), "{op} in {lang:?}");
            }
        }
        assert_eq!(
            Lang::En.msg().operation("disable"),
            Lang::En.msg().request_type(&RequestType::Revoke)
        );
        assert_ne!(
            Lang::Es.msg().operation("suspend"),
            Lang::Es.msg().operation("reinstate")
        );
    }

    #[test]
    fn the_cookie_wins_then_the_best_accept_language_then_english() {
        assert_eq!(Lang::negotiate(Some("es"), Some("en")), Lang::Es);
        assert_eq!(
            Lang::negotiate(None, Some("es-ES,es;q=0.9,en;q=0.8")),
            Lang::Es
        );
        assert_eq!(
            Lang::negotiate(None, Some("en;q=0.5, es-MX;q=0.7")),
            Lang::Es
        );
        assert_eq!(Lang::negotiate(None, Some("fr, de;q=0.9")), Lang::En);
        assert_eq!(Lang::negotiate(None, Some("es;q=0")), Lang::En);
        assert_eq!(Lang::negotiate(Some("xx"), None), Lang::En);
    }

    #[test]
    fn both_languages_name_every_type_and_status_and_differ() {
        for l in [Lang::En, Lang::Es] {
            let m = l.msg();
            for t in RequestType::ALL {
                assert!(!m.request_type(&t).is_empty());
                assert_eq!(m.request_type_mim(&t), t.name(), "{t:?}");
            }
        }
        assert_ne!(Lang::En.msg().sign_in_title, Lang::Es.msg().sign_in_title);
        assert_eq!(
            Lang::Es
                .msg()
                .datetime(&Timestamp::from_micros(1_796_652_300_000_000)),
            "7 dic 2026, 14:05 UTC"
        );
    }
}
