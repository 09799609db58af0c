//! The embedded CA's certificate and sealed key, and the profile templates.

use super::Columns;
use opencm_app::ports::{StoreError, StoredCa};

pub(crate) const CA: &str =
    "SELECT cert_pem, chain_pem, sealed_key FROM certificate_authorities WHERE id = 'default'";

/// The first CA stored stays: a second node starting at the same moment keeps it.
pub(crate) const INIT_CA: &str =
    "INSERT INTO certificate_authorities (id, cert_pem, chain_pem, sealed_key, created_at) \
     VALUES ('default', $1, $2, $3, $4) ON CONFLICT (id) DO NOTHING";

pub(crate) const REPLACE_CA: &str =
    "INSERT INTO certificate_authorities (id, cert_pem, chain_pem, sealed_key, created_at) \
     VALUES ('default', $1, $2, $3, $4) ON CONFLICT (id) DO UPDATE SET cert_pem = excluded.cert_pem, \
     chain_pem = excluded.chain_pem, sealed_key = excluded.sealed_key, created_at = excluded.created_at";

pub(crate) fn decode_ca(r: &dyn Columns) -> Result<StoredCa, StoreError> {
    Ok(StoredCa {
        cert_pem: r.text("cert_pem")?,
        chain_pem: r.text("chain_pem")?,
        sealed_key: r.text("sealed_key")?,
    })
}

/// A template imported again replaces the stored one and increments its revision (caches
/// compare it).
pub(crate) const PUT_TEMPLATE: &str =
    "INSERT INTO profile_templates (uuid, name, body, updated_at) VALUES ($1, $2, $3, $4) \
     ON CONFLICT (uuid) DO UPDATE SET name = excluded.name, body = excluded.body, \
     updated_at = excluded.updated_at, revision = profile_templates.revision + 1";

pub(crate) const TEMPLATES: &str = "SELECT uuid, body FROM profile_templates ORDER BY name";

pub(crate) const TEMPLATE_REVISION: &str = "SELECT revision FROM profile_templates WHERE uuid = $1";

pub(crate) const TEMPLATE: &str = "SELECT revision, body FROM profile_templates WHERE uuid = $1";
