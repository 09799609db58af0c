//! MIM CM enumerations with their wire numbers (docs/API.md, "Enumerations").
//!
//! Mirrors the MIM CM REST API v1.0 reference ("Request", "Get Request"): the numbers are the contract;
//! names are accepted case-insensitively where a client sends them.

use std::fmt;

/// `RequestStatus` (MIM). There is no Abandoned status: abandoning ends in `Failed`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RequestStatus {
    None,
    Approved,
    Denied,
    Completed,
    Failed,
    Pending,
    Canceled,
    Executing,
}

impl RequestStatus {
    pub const ALL: [RequestStatus; 8] = [
        Self::None,
        Self::Approved,
        Self::Denied,
        Self::Completed,
        Self::Failed,
        Self::Pending,
        Self::Canceled,
        Self::Executing,
    ];

    pub fn number(self) -> i64 {
        match self {
            Self::None => 0,
            Self::Approved => 3,
            Self::Denied => 4,
            Self::Completed => 8,
            Self::Failed => 9,
            Self::Pending => 16,
            Self::Canceled => 17,
            Self::Executing => 18,
        }
    }

    pub fn from_number(n: i64) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.number() == n)
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::None => "None",
            Self::Approved => "Approved",
            Self::Denied => "Denied",
            Self::Completed => "Completed",
            Self::Failed => "Failed",
            Self::Pending => "Pending",
            Self::Canceled => "Canceled",
            Self::Executing => "Executing",
        }
    }

    /// Case-insensitive name, or the number written as text (`status=8`).
    pub fn parse(s: &str) -> Option<Self> {
        let t = s;
        if let Ok(n) = t.parse::<i64>() {
            return Self::from_number(n);
        }
        Self::ALL
            .into_iter()
            .find(|v| v.name().eq_ignore_ascii_case(t))
    }

    /// A request in this status will not change any more.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Self::Denied | Self::Completed | Self::Failed | Self::Canceled
        )
    }
}

impl fmt::Display for RequestStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `RequestType` (MIM numbers 1–11; opencm numbers 12–14, MIM's are unpublished).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RequestType {
    Enroll,
    Recover,
    Renew,
    Revoke,
    Unblock,
    Duplicate,
    Retire,
    RecoverOnBehalf,
    SuspendOrReinstate,
    OnlineUpdate,
    TemporaryCards,
    OfflineUnblock,
    TemporaryCardDisable,
    TemporaryCardRetire,
}

impl RequestType {
    pub const ALL: [RequestType; 14] = [
        Self::Enroll,
        Self::Recover,
        Self::Renew,
        Self::Revoke,
        Self::Unblock,
        Self::Duplicate,
        Self::Retire,
        Self::RecoverOnBehalf,
        Self::SuspendOrReinstate,
        Self::OnlineUpdate,
        Self::TemporaryCards,
        Self::OfflineUnblock,
        Self::TemporaryCardDisable,
        Self::TemporaryCardRetire,
    ];

    pub fn number(self) -> i64 {
        match self {
            Self::Enroll => 1,
            Self::Recover => 2,
            Self::Renew => 3,
            Self::Revoke => 4,
            Self::Unblock => 5,
            Self::Duplicate => 6,
            Self::Retire => 7,
            Self::RecoverOnBehalf => 8,
            Self::SuspendOrReinstate => 9,
            Self::OnlineUpdate => 10,
            Self::TemporaryCards => 11,
            Self::OfflineUnblock => 12,
            Self::TemporaryCardDisable => 13,
            Self::TemporaryCardRetire => 14,
        }
    }

    pub fn from_number(n: i64) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.number() == n)
    }

    /// The canonical name, as used in workflow-policy URLs and the TOML import.
    pub fn name(self) -> &'static str {
        match self {
            Self::Enroll => "Enroll",
            Self::Recover => "Recover",
            Self::Renew => "Renew",
            Self::Revoke => "Revoke",
            Self::Unblock => "Unblock",
            Self::Duplicate => "Duplicate",
            Self::Retire => "Retire",
            Self::RecoverOnBehalf => "RecoverOnBehalf",
            Self::SuspendOrReinstate => "SuspendOrReinstate",
            Self::OnlineUpdate => "OnlineUpdate",
            Self::TemporaryCards => "TemporaryCards",
            Self::OfflineUnblock => "OfflineUnblock",
            Self::TemporaryCardDisable => "TemporaryCardDisable",
            Self::TemporaryCardRetire => "TemporaryCardRetire",
        }
    }

    /// Case-insensitive; accepts MIM's aliases (`Disable` for Revoke, `Suspend`/`Reinstate` for
    /// SuspendOrReinstate, `TemporaryEnroll` for TemporaryCards) and the number as text.
    pub fn parse(s: &str) -> Option<Self> {
        let t = s;
        if let Ok(n) = t.parse::<i64>() {
            return Self::from_number(n);
        }
        let alias = [
            ("Disable", Self::Revoke),
            ("Suspend", Self::SuspendOrReinstate),
            ("Reinstate", Self::SuspendOrReinstate),
            ("TemporaryEnroll", Self::TemporaryCards),
        ];
        Self::ALL
            .into_iter()
            .map(|v| (v.name(), v))
            .chain(alias)
            .find(|(n, _)| n.eq_ignore_ascii_case(t))
            .map(|(_, v)| v)
    }

    pub fn names() -> String {
        Self::ALL
            .iter()
            .map(|t| t.name())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl fmt::Display for RequestType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Request `Flags` bits (MIM): EnrollmentAgent 1, Smartcard 2.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct RequestFlags(pub i64);

impl RequestFlags {
    pub const ENROLLMENT_AGENT: i64 = 1;
    pub const SMARTCARD: i64 = 2;

    pub fn is_smartcard(self) -> bool {
        self.0 & Self::SMARTCARD != 0
    }
    pub fn is_enrollment_agent(self) -> bool {
        self.0 & Self::ENROLLMENT_AGENT != 0
    }
}

/// `DataCollectionFlags` bits: SubscriberDataComplete 16, ManagerDataComplete 32.
pub mod data_collection_flags {
    pub const SUBSCRIBER_COMPLETE: i64 = 16;
    pub const MANAGER_COMPLETE: i64 = 32;
    pub const BOTH: i64 = SUBSCRIBER_COMPLETE | MANAGER_COMPLETE;
}

/// Profile `Flags` (docs/API.md, "Enumerations").
pub mod profile_flags {
    pub const PRIMARY: i64 = 1;
    pub const DUPLICATE: i64 = 2;
    pub const TEMPORARY: i64 = 4;
    pub const SUPERSEDED: i64 = 32;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_match_spec() {
        let s: Vec<i64> = RequestStatus::ALL.iter().map(|s| s.number()).collect();
        assert_eq!(s, vec![0, 3, 4, 8, 9, 16, 17, 18]);
        let t: Vec<i64> = RequestType::ALL.iter().map(|s| s.number()).collect();
        assert_eq!(t, (1..=14).collect::<Vec<_>>());
    }

    #[test]
    fn names_parse_case_insensitively_with_aliases() {
        assert_eq!(RequestType::parse("enroll"), Some(RequestType::Enroll));
        assert_eq!(RequestType::parse("DISABLE"), Some(RequestType::Revoke));
        assert_eq!(
            RequestType::parse("temporaryenroll"),
            Some(RequestType::TemporaryCards)
        );
        assert_eq!(RequestType::parse("4"), Some(RequestType::Revoke));
        assert_eq!(RequestType::parse("Enrol"), None);
        assert_eq!(
            RequestStatus::parse("pending"),
            Some(RequestStatus::Pending)
        );
        assert_eq!(RequestStatus::parse("17"), Some(RequestStatus::Canceled));
        assert_eq!(RequestStatus::parse("Abandoned"), None);
    }
}
