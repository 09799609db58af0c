//! The administrators' view of the server's health: the database answers (and how fast), the
//! CA's certificate and how long it has left, what the CRL holds, and how users may sign in.

use crate::error::AppError;
use crate::App;
use opencm_domain::Timestamp;
use std::time::Instant;

pub struct Health {
    pub engine: &'static str,
    /// One round trip to the database, measured now.
    pub database_micros: u128,
    pub ca_subject: String,
    pub ca_expires: Timestamp,
    pub revoked: usize,
    pub oidc: bool,
    pub kerberos: bool,
    pub version: &'static str,
}

impl App {
    /// The server's health, for administrators (`actor` is checked like every administration).
    pub async fn health(&self, actor: crate::Actor<'_>) -> Result<Health, AppError> {
        actor.authorize()?;
        let started = Instant::now();
        let engine = self.ready().await?;
        let database_micros = started.elapsed().as_micros();
        let der = self.ca_der()?;
        let (ca_subject, expires) = opencm_ca::subject_and_expiry(&der)
            .ok_or_else(|| AppError::internal("the CA certificate does not parse"))?;
        Ok(Health {
            engine,
            database_micros,
            ca_subject,
            ca_expires: Timestamp::from_micros((expires.unix_timestamp_nanos() / 1000) as i64),
            revoked: self.certificates.revoked_certificates().await?.len(),
            oidc: self.offers_oidc_sign_in(),
            kerberos: self.accepts_kerberos(),
            version: env!("CARGO_PKG_VERSION"),
        })
    }
}
