//! The lifecycle of an issued certificate: `CertificateStatus` with its transitions, and the
//! RFC 5280 `RevocationReason` recorded with a revocation.
//!
//! A revoked certificate never changes again; a held one (certificateHold) is either released or
//! revoked. `Expired` is never stored: a view derives it from `NotAfter` and the clock.

use crate::{ProfileId, RequestId, Timestamp, UserId};
use std::fmt;

/// Issued-certificate `Status` (docs/API.md, "Enumerations").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CertificateStatus {
    Valid,
    Revoked,
    OnHold,
    Expired,
}

impl CertificateStatus {
    pub const ALL: [CertificateStatus; 4] = [
        CertificateStatus::Valid,
        CertificateStatus::Revoked,
        CertificateStatus::OnHold,
        CertificateStatus::Expired,
    ];

    pub fn number(self) -> i64 {
        match self {
            CertificateStatus::Valid => 0,
            CertificateStatus::Revoked => 1,
            CertificateStatus::OnHold => 2,
            CertificateStatus::Expired => 3,
        }
    }

    pub fn from_number(n: i64) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.number() == n)
    }

    pub fn name(self) -> &'static str {
        match self {
            CertificateStatus::Valid => "Valid",
            CertificateStatus::Revoked => "Revoked",
            CertificateStatus::OnHold => "OnHold",
            CertificateStatus::Expired => "Expired",
        }
    }

    /// The status after `event`; `None` when the event does not apply to a certificate in this
    /// status (a profile-wide revocation passes over certificates already revoked).
    pub fn next(self, event: CertificateEvent) -> Option<CertificateStatus> {
        use CertificateStatus::*;
        match (self, event) {
            (Valid | OnHold, CertificateEvent::Revoke(_)) => Some(Revoked),
            (Valid, CertificateEvent::Hold) => Some(OnHold),
            (OnHold, CertificateEvent::Release) => Some(Valid),
            _ => None,
        }
    }

    /// The status a view shows at `now`: a valid certificate past its `NotAfter` is Expired.
    pub fn as_seen_at(self, not_after: crate::Timestamp, now: crate::Timestamp) -> Self {
        match self {
            CertificateStatus::Valid if now >= not_after => CertificateStatus::Expired,
            other => other,
        }
    }

    /// The statuses `event` applies to: what the store selects when it changes a profile's
    /// certificates.
    pub fn applies_to(event: CertificateEvent) -> Vec<CertificateStatus> {
        Self::ALL
            .into_iter()
            .filter(|s| s.next(event).is_some())
            .collect()
    }
}

impl fmt::Display for CertificateStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What happens to the certificates of a profile.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CertificateEvent {
    Revoke(RevocationReason),
    /// Suspension: revoked with reason certificateHold, reversible.
    Hold,
    /// Reinstatement: the hold is lifted and the certificate leaves the CRL.
    Release,
}

/// RFC 5280 CRLReason (§5.3.1); the number is the code written into the CRL.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RevocationReason {
    Unspecified,
    KeyCompromise,
    CaCompromise,
    AffiliationChanged,
    Superseded,
    CessationOfOperation,
    CertificateHold,
    PrivilegeWithdrawn,
    AaCompromise,
}

impl RevocationReason {
    pub const ALL: [RevocationReason; 9] = [
        RevocationReason::Unspecified,
        RevocationReason::KeyCompromise,
        RevocationReason::CaCompromise,
        RevocationReason::AffiliationChanged,
        RevocationReason::Superseded,
        RevocationReason::CessationOfOperation,
        RevocationReason::CertificateHold,
        RevocationReason::PrivilegeWithdrawn,
        RevocationReason::AaCompromise,
    ];

    pub fn code(self) -> i64 {
        match self {
            RevocationReason::Unspecified => 0,
            RevocationReason::KeyCompromise => 1,
            RevocationReason::CaCompromise => 2,
            RevocationReason::AffiliationChanged => 3,
            RevocationReason::Superseded => 4,
            RevocationReason::CessationOfOperation => 5,
            RevocationReason::CertificateHold => 6,
            // 7 is unused; 8 (removeFromCRL) is for delta CRLs, which opencm does not publish.
            RevocationReason::PrivilegeWithdrawn => 9,
            RevocationReason::AaCompromise => 10,
        }
    }

    pub fn from_code(n: i64) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.code() == n)
    }
}

/// The status a certificate is recorded with when its signing finishes while its request is in
/// `status`: valid while the request runs; revoked at once (cessationOfOperation) when the request
/// was canceled or abandoned meanwhile, so a signed certificate is never lost nor left valid.
pub fn status_at_issue(
    status: crate::RequestStatus,
) -> (CertificateStatus, Option<RevocationReason>) {
    match status {
        crate::RequestStatus::Executing => (CertificateStatus::Valid, None),
        _ => (
            CertificateStatus::Revoked,
            Some(RevocationReason::CessationOfOperation),
        ),
    }
}

/// A certificate opencm issued.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificateRecord {
    pub serial_hex: String,
    pub profile: ProfileId,
    pub request: RequestId,
    pub user: UserId,
    pub template_common_name: String,
    /// Base64 of the DER.
    pub der_b64: String,
    pub thumbprint: String,
    pub issuer: String,
    pub subject: String,
    pub not_before: Timestamp,
    pub not_after: Timestamp,
    /// Valid, Revoked or OnHold (Expired is derived, never stored).
    pub status: CertificateStatus,
    /// When it was revoked or put on hold.
    pub revoked_at: Option<Timestamp>,
    pub revocation_reason: Option<RevocationReason>,
    pub server_generated: bool,
    /// The archived private key, sealed under the KEK.
    pub sealed_key: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use CertificateStatus::*;

    #[test]
    fn transition_table() {
        let events = [
            CertificateEvent::Revoke(RevocationReason::Superseded),
            CertificateEvent::Hold,
            CertificateEvent::Release,
        ];
        #[rustfmt::skip]
        let table: &[(CertificateStatus, [Option<CertificateStatus>; 3])] = &[
            //         revoke         hold          release
            (Valid,   [Some(Revoked), Some(OnHold), None]),
            (Revoked, [None,          None,         None]),
            (OnHold,  [Some(Revoked), None,         Some(Valid)]),
            (Expired, [None,          None,         None]),
        ];
        assert_eq!(table.len(), CertificateStatus::ALL.len());
        for (from, row) in table {
            for (event, expected) in events.iter().zip(row) {
                assert_eq!(from.next(*event), *expected, "{from:?} + {event:?}");
            }
        }
        assert_eq!(
            CertificateStatus::applies_to(CertificateEvent::Revoke(RevocationReason::Unspecified)),
            vec![Valid, OnHold]
        );
    }

    #[test]
    fn numbers_match_spec_and_rfc_5280() {
        let n: Vec<i64> = CertificateStatus::ALL.iter().map(|s| s.number()).collect();
        assert_eq!(n, vec![0, 1, 2, 3]);
        let codes: Vec<i64> = RevocationReason::ALL.iter().map(|r| r.code()).collect();
        assert_eq!(codes, vec![0, 1, 2, 3, 4, 5, 6, 9, 10]);
        assert_eq!(RevocationReason::from_code(7), None);
    }
}
