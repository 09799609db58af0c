//! Profiles and their certificates as a caller may see them, and what relying parties fetch (the
//! CA chain and the CRL). A profile is visible to the user it is assigned to and to
//! administrators (BA).

use crate::error::{AppError, ErrorCode};
use crate::ports::{CertificateRecord, ProfileQuery, ProfileRecord};
use crate::requests::{Page, Paged, MAX_PAGE};
use crate::App;
use opencm_domain::profile::{self, ProfileStatus};
use opencm_domain::{Principal, ProfileId, RequestId};

/// A profile with the operations the caller may start on it now (lowercase MIM names).
pub struct ProfileView {
    pub profile: ProfileRecord,
    pub operations: Vec<&'static str>,
}

impl App {
    async fn visible_profile(
        &self,
        caller: &Principal,
        id: ProfileId,
    ) -> Result<ProfileRecord, AppError> {
        let not_found = || {
            AppError::new(
                ErrorCode::ProfileNotFound,
                format!("Profile {id} was not found."),
            )
        };
        let p = self.profiles.profile(id).await?.ok_or_else(not_found)?;
        if p.assigned_user != caller.uuid && !caller.is_administrator() {
            return Err(not_found());
        }
        Ok(p)
    }

    async fn view(&self, caller: &Principal, p: ProfileRecord) -> Result<ProfileView, AppError> {
        let operations = match self.templates.get(p.template).await? {
            Some(t) => profile::operations(&t, p.status, caller, p.assigned_user == caller.uuid),
            None => Vec::new(),
        };
        Ok(ProfileView {
            profile: p,
            operations,
        })
    }

    async fn views(
        &self,
        caller: &Principal,
        list: Vec<ProfileRecord>,
    ) -> Result<Vec<ProfileView>, AppError> {
        let mut out = Vec::with_capacity(list.len());
        for p in list {
            out.push(self.view(caller, p).await?);
        }
        Ok(out)
    }

    /// The caller's profiles, optionally of one status, a page at a time by uuid.
    pub async fn profiles(
        &self,
        caller: &Principal,
        status: Option<ProfileStatus>,
        page: Page,
    ) -> Result<Paged<ProfileView>, AppError> {
        let limit = page.limit()?;
        let list = self
            .profiles
            .profiles(&ProfileQuery {
                user: Some(caller.uuid),
                status,
                after: page.after.map(ProfileId::from),
                limit,
            })
            .await?;
        let next_after = Page::next_after(limit, &list, |p| p.uuid.guid());
        Ok(Paged {
            items: self.views(caller, list).await?,
            next_after,
        })
    }

    pub async fn profile(
        &self,
        caller: &Principal,
        id: ProfileId,
    ) -> Result<ProfileView, AppError> {
        let p = self.visible_profile(caller, id).await?;
        self.view(caller, p).await
    }

    /// The profiles a request created or acts on; visible with the request.
    pub async fn profiles_of_request(
        &self,
        caller: &Principal,
        id: RequestId,
    ) -> Result<Vec<ProfileView>, AppError> {
        self.request(caller, id).await?;
        let list = self.profiles.profiles_of_request(id).await?;
        self.views(caller, list).await
    }

    pub async fn profile_certificates(
        &self,
        caller: &Principal,
        id: ProfileId,
    ) -> Result<Vec<CertificateRecord>, AppError> {
        let p = self.visible_profile(caller, id).await?;
        Ok(self.certificates.certificates_of_profile(p.uuid).await?)
    }

    /// The caller's certificates, newest first, those of retired profiles left out; at most
    /// `limit`.
    pub async fn certificates(
        &self,
        caller: &Principal,
        limit: Option<u32>,
    ) -> Result<Vec<CertificateRecord>, AppError> {
        let limit = Page { after: None, limit }.limit()? as usize;
        let certs = self.certificates.certificates_of_user(caller.uuid).await?;
        let retired: std::collections::HashSet<ProfileId> = self
            .profiles
            .profiles(&ProfileQuery {
                user: Some(caller.uuid),
                status: Some(ProfileStatus::Retired),
                after: None,
                limit: MAX_PAGE,
            })
            .await?
            .into_iter()
            .map(|p| p.uuid)
            .collect();
        Ok(certs
            .into_iter()
            .filter(|c| !retired.contains(&c.profile))
            .take(limit)
            .collect())
    }

    /// The CA's certificate and its parents, PEM.
    pub fn ca_chain_pem(&self) -> Result<String, AppError> {
        Ok(self
            .issuing()?
            .ca
            .chain_der()
            .iter()
            .map(|c| opencm_ca::pem("CERTIFICATE", c))
            .collect())
    }

    /// The issuing CA's own certificate, DER.
    pub fn ca_der(&self) -> Result<Vec<u8>, AppError> {
        self.issuing()?
            .ca
            .chain_der()
            .first()
            .cloned()
            .ok_or_else(|| AppError::internal("the CA has no certificate"))
    }

    /// The CRL (DER), signed now from committed state, so a revocation is in it as soon as its
    /// transaction has committed.
    pub async fn crl(&self) -> Result<Vec<u8>, AppError> {
        let revoked = self.certificates.revoked_certificates().await?;
        let entries = revoked
            .iter()
            .map(|r| opencm_ca::Revocation {
                serial: hex_bytes(&r.serial_hex),
                at: r.revoked_at.to_offset_date_time(),
                reason: r.reason,
            })
            .collect::<Vec<_>>();
        let now = self.clock.now().to_offset_date_time();
        // The CRL number only has to grow: the signing time in seconds does.
        let number = now.unix_timestamp().max(1) as u64;
        let ca = self.issuing()?.ca.clone();
        crate::signing(ca.slow_signatures(), move || {
            ca.crl(&entries, number, now, now + time::Duration::days(1))
        })
        .await
        .map_err(|e| AppError::from_ca("CRL signing", e))
    }
}

impl App {
    /// The CRL in PEM, for `/pki/crl.pem`.
    pub async fn crl_pem(&self) -> Result<String, AppError> {
        Ok(opencm_ca::pem("X509 CRL", &self.crl().await?))
    }
}

fn hex_bytes(h: &str) -> Vec<u8> {
    (0..h.len() / 2)
        .filter_map(|i| u8::from_str_radix(&h[2 * i..2 * i + 2], 16).ok())
        .collect()
}
