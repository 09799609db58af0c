//! Certificates and profiles on the wire, as on the MIM CM reference pages "Get Certificate
//! Request Generation Options", "Get Certificate Responses", "Get Profile Data" and "Get User
//! Certificates".

use base64::Engine;
use opencm_app::ports::CertificateRecord;
use opencm_app::GenerationOption;
use opencm_domain::Guid;
use serde::Serialize;

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GenerationOptionView {
    pub subject: String,
    pub key_algorithm_name: &'static str,
    pub key_size: u32,
    pub friendly_name: String,
    pub hash_algorithm_name: String,
    pub key_storage_provider_names: Vec<String>,
    pub exportable: u8,
    pub key_protection_level: u8,
    pub key_usages: i64,
    /// opencm: the PIV slot the key goes to, on templates that name one (absent otherwise, so
    /// other templates keep MIM's exact shape).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub piv_slot: Option<String>,
}

impl From<&GenerationOption> for GenerationOptionView {
    fn from(o: &GenerationOption) -> Self {
        let t = &o.certificate;
        GenerationOptionView {
            piv_slot: o.piv_slot.clone(),
            subject: String::new(),
            key_algorithm_name: t.key_algorithm.mim_name(),
            key_size: t.key_bits(),
            friendly_name: t.friendly_name.clone(),
            hash_algorithm_name: t.hash_algorithm.clone(),
            key_storage_provider_names: t.key_storage_providers.clone(),
            exportable: u8::from(t.exportable),
            key_protection_level: t.key_protection_level,
            key_usages: t.mim_key_usages(),
        }
    }
}

/// Base64 in 64-character lines joined by CRLF, as the MIM reference responses show.
fn wrapped_base64(der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    b64.as_bytes()
        .chunks(64)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join("\r\n")
}

/// `Flags`: 0x10000 the response is PKCS#7, 0x20000 it is a PFX (docs/API.md, "Enumerations").
pub const FLAG_PKCS7: i64 = 0x10000;
pub const FLAG_PFX: i64 = 0x20000;

#[derive(Serialize)]
pub struct CertificateResponseView {
    #[serde(rename = "TemplateCommonName")]
    pub template_common_name: String,
    #[serde(rename = "CertificateId")]
    pub certificate_id: i64,
    #[serde(rename = "Flags")]
    pub flags: i64,
    #[serde(rename = "UseLocalMachineStore")]
    pub use_local_machine_store: bool,
    #[serde(rename = "Error")]
    pub error: Option<String>,
    #[serde(rename = "Pkcs7")]
    pub pkcs7: Option<String>,
    #[serde(rename = "Pfx")]
    pub pfx: Option<String>,
    #[serde(rename = "IsExternal")]
    pub is_external: bool,
    #[serde(rename = "isServerGenerated")]
    pub is_server_generated: bool,
    #[serde(rename = "isPfx")]
    pub is_pfx: bool,
    #[serde(rename = "isPkcs7")]
    pub is_pkcs7: bool,
    #[serde(rename = "isKeyHistory")]
    pub is_key_history: bool,
}

impl From<&opencm_app::Delivered> for CertificateResponseView {
    fn from(d: &opencm_app::Delivered) -> Self {
        CertificateResponseView {
            template_common_name: d.template_common_name.clone(),
            certificate_id: 0,
            flags: if d.pfx.is_some() {
                FLAG_PFX
            } else {
                FLAG_PKCS7
            },
            use_local_machine_store: false,
            error: None,
            pkcs7: d.pkcs7.as_deref().map(wrapped_base64),
            pfx: d.pfx.as_deref().map(wrapped_base64),
            is_external: false,
            is_server_generated: d.pfx.is_some(),
            is_pfx: d.pfx.is_some(),
            is_pkcs7: d.pkcs7.is_some(),
            is_key_history: false,
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ProfileView {
    pub uuid: Guid,
    pub status: i64,
    pub flags: i64,
    pub parent_profile_uuid: Guid,
    pub primary_profile_uuid: Guid,
    pub assigned_user_uuid: Guid,
    pub profile_template_uuid: Guid,
    pub profile_template_version: i64,
    pub comment: String,
    pub profile_operations: Vec<&'static str>,
}

impl From<&opencm_app::ProfileView> for ProfileView {
    fn from(v: &opencm_app::ProfileView) -> Self {
        let (p, operations) = (&v.profile, v.operations.clone());
        ProfileView {
            uuid: p.uuid.into(),
            status: p.status.number(),
            flags: p.flags,
            parent_profile_uuid: super::nullable(p.parent),
            primary_profile_uuid: super::nullable(p.primary),
            assigned_user_uuid: p.assigned_user.into(),
            profile_template_uuid: p.template.into(),
            profile_template_version: p.template_version,
            comment: p.comment.clone(),
            profile_operations: operations,
        }
    }
}

/// The issued-certificate view: the short form for `/profiles/{id}/certificates`, the long form
/// (with dates, issuer, requester and status) for `/certificates`.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct IssuedCertificateView {
    pub is_key_history: bool,
    pub archived_on_ca: bool,
    pub certificate_type: i64,
    pub template_common_name: String,
    pub serial_number: String,
    pub thumbprint: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_after: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_before: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requester_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<i64>,
}

/// MIM writes these dates without fraction or `Z` ("2016-07-13T09:10:31").
fn plain_date(t: opencm_domain::Timestamp) -> String {
    let s = t.to_string();
    s.split(['.', 'Z']).next().unwrap_or(&s).to_string()
}

impl IssuedCertificateView {
    pub fn short(c: &CertificateRecord) -> Self {
        IssuedCertificateView {
            is_key_history: false,
            archived_on_ca: c.sealed_key.is_some(),
            certificate_type: 1,
            template_common_name: c.template_common_name.clone(),
            serial_number: c.serial_hex.clone(),
            thumbprint: c.thumbprint.clone(),
            not_after: None,
            not_before: None,
            issuer: None,
            requester_name: None,
            status: None,
        }
    }

    /// `now` decides whether a valid certificate shows as Expired.
    pub fn long(c: &CertificateRecord, requester: &str, now: opencm_domain::Timestamp) -> Self {
        IssuedCertificateView {
            not_after: Some(plain_date(c.not_after)),
            not_before: Some(plain_date(c.not_before)),
            issuer: Some(c.issuer.clone()),
            requester_name: Some(requester.to_string()),
            status: Some(c.status.as_seen_at(c.not_after, now).number()),
            ..Self::short(c)
        }
    }
}
