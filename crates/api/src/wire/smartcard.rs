//! The Smartcard object (docs/API.md, "Objects"), in the published example's order.

use opencm_app::ports::SmartcardRecord;
use serde::Serialize;

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct SmartcardView {
    pub uuid: String,
    pub status: i64,
    pub flags: i64,
    pub parent_smartcard_uuid: String,
    pub primary_smartcard_uuid: String,
    pub permanent_smartcard_uuid: String,
    pub assigned_user_uuid: String,
    pub profile_template_uuid: String,
    pub profile_template_version: i64,
    pub comment: String,
    /// The card id in braces, as MIM writes it for Base CSP cards.
    pub serial_number: String,
    pub middleware: String,
    pub atr: String,
    /// opencm: when a temporary card stops working (MIM's date format); absent on permanent
    /// cards, so their shape is exactly MIM's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expiration_date: Option<String>,
}

impl From<&SmartcardRecord> for SmartcardView {
    fn from(c: &SmartcardRecord) -> Self {
        SmartcardView {
            uuid: c.uuid.to_string(),
            status: c.status.number(),
            flags: c.flags,
            parent_smartcard_uuid: super::nullable(c.parent).to_string(),
            primary_smartcard_uuid: super::nullable(c.primary).to_string(),
            permanent_smartcard_uuid: super::nullable(c.permanent).to_string(),
            assigned_user_uuid: c.assigned_user.to_string(),
            profile_template_uuid: c.template.to_string(),
            profile_template_version: c.template_version,
            comment: c.comment.clone(),
            serial_number: format!("{{{}}}", c.card_id),
            middleware: c.middleware.clone(),
            atr: c.atr.clone(),
            expiration_date: c.expires.map(|t| t.to_string()),
        }
    }
}
