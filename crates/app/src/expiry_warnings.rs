//! `certificate.expiring`: holders are warned before their certificates' NotAfter, once per
//! configured threshold (e.g. 30 and 7 days). Every node scans (`run_outbox`, every
//! `expiry_check`); the warning's row in `expiry_warnings` is written in the same transaction as
//! its outbox rows, and a warning already given writes nothing, so a cluster warns each
//! certificate once per threshold however many nodes scan and however often.

use crate::error::AppError;
use crate::outbox::rfc3339;
use crate::App;
use opencm_domain::notification::EventType;
use opencm_domain::Timestamp;

/// Certificates warned per threshold per scan at most (the rest at the next scan).
const PER_SCAN: u32 = 500;
const DAY_MICROS: i64 = 86_400 * 1_000_000;

impl App {
    /// One scan: warns every valid certificate within a threshold of its NotAfter that was not
    /// warned at that threshold or a nearer one. Answers how many warnings it gave.
    pub async fn warn_expiring(&self) -> Result<usize, AppError> {
        let Some(n) = &self.notifications else {
            return Ok(0);
        };
        let mut days = n.settings.expiry_days.clone();
        // The nearest threshold first: a certificate already within 7 days is warned at 7, and
        // the 30-day warning is not sent after it.
        days.sort_unstable();
        days.dedup();
        let now = self.clock.now();
        let mut given = 0;
        for d in days {
            let until = Timestamp::from_micros(now.micros() + d * DAY_MICROS);
            for c in self
                .certificates
                .expiring_certificates(now, until, d, PER_SCAN)
                .await?
            {
                let left = (c.not_after.micros() - now.micros()) / DAY_MICROS;
                let rows = n.rows(
                    EventType::CertificateExpiring,
                    serde_json::json!({
                        "serialNumber": c.serial_hex,
                        "subject": c.subject,
                        "notAfter": rfc3339(c.not_after),
                        "days": left,
                        "threshold": d,
                        "userUuid": c.user.to_string(),
                        "profileUuid": c.profile.to_string(),
                        "template": c.template_common_name,
                    }),
                    now,
                );
                if self
                    .outbox
                    .insert_outbox(Some((c.serial_hex.clone(), d)), rows, now)
                    .await?
                {
                    given += 1;
                }
            }
        }
        if given > 0 {
            tracing::info!(
                warnings = given,
                "certificates nearing expiry: holders warned"
            );
            self.wake_dispatcher();
        }
        Ok(given)
    }
}
