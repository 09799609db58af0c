//! Certificate templates inside a profile template (the TOML `[[template.certificates]]` tables):
//! what the client must generate, or what the server generates and archives, for each certificate
//! of a profile. Mirrors the MIM CM "certificate request generation options" (docs/API.md, "Enumerations" enums).

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyAlgorithmName {
    #[serde(rename = "RSA")]
    Rsa,
    #[serde(rename = "ECDSA_P256")]
    EcdsaP256,
    #[serde(rename = "ECDSA_P384")]
    EcdsaP384,
}

impl KeyAlgorithmName {
    /// The WinRT `KeyAlgorithmNames` value MIM clients expect.
    pub fn mim_name(self) -> &'static str {
        match self {
            Self::Rsa => "RSA",
            Self::EcdsaP256 => "ECDSA_P256",
            Self::EcdsaP384 => "ECDSA_P384",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyUsage {
    DigitalSignature,
    NonRepudiation,
    KeyEncipherment,
    DataEncipherment,
    KeyAgreement,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertificateTemplate {
    /// MIM's `TemplateCommonName` (the AD CS template name clients know it by).
    pub common_name: String,
    #[serde(default)]
    pub friendly_name: String,
    #[serde(default = "p256")]
    pub key_algorithm: KeyAlgorithmName,
    /// RSA: the minimum modulus size (default 2048). ECDSA: implied by the curve.
    #[serde(default)]
    pub key_size: Option<u32>,
    #[serde(default = "sha256")]
    pub hash_algorithm: String,
    #[serde(default = "signing")]
    pub key_usages: Vec<KeyUsage>,
    /// `client_auth`, `server_auth`, `email_protection`, `code_signing`, `smartcard_logon`, or a
    /// dotted OID.
    #[serde(default)]
    pub extended_key_usages: Vec<String>,
    #[serde(default = "year")]
    pub validity_days: u32,
    #[serde(default)]
    pub exportable: bool,
    /// NoConsent 0, ConsentOnly 1, ConsentWithPassword 2, ConsentWithFingerprint 3.
    #[serde(default)]
    pub key_protection_level: u8,
    #[serde(default)]
    pub key_storage_providers: Vec<String>,
    /// The server generates the key and delivers it in a PKCS#12.
    #[serde(default)]
    pub server_generated: bool,
    /// Keep the server-generated key (sealed) for Recover.
    #[serde(default)]
    pub archive_key: bool,
    /// Write the user's SID as Active Directory's strong-mapping extension
    /// (`szOID_NTDS_CA_SECURITY_EXT`, KB5014754), as AD CS does in every certificate of an online
    /// template: without it a current domain controller maps the certificate to no account. On
    /// unless a template turns it off.
    #[serde(default = "on")]
    pub sid_extension: bool,
    /// Also write the SID as the subjectAltName URI `tag:microsoft.com,2022-09-14:sid:<SID>`.
    #[serde(default)]
    pub sid_san_uri: bool,
}

fn on() -> bool {
    true
}

fn p256() -> KeyAlgorithmName {
    KeyAlgorithmName::EcdsaP256
}
fn sha256() -> String {
    "SHA256".into()
}
fn signing() -> Vec<KeyUsage> {
    vec![KeyUsage::DigitalSignature]
}
fn year() -> u32 {
    365
}

/// Extended key usage names and their OIDs.
pub const EKU_NAMES: &[(&str, &str)] = &[
    ("server_auth", "1.3.6.1.5.5.7.3.1"),
    ("client_auth", "1.3.6.1.5.5.7.3.2"),
    ("code_signing", "1.3.6.1.5.5.7.3.3"),
    ("email_protection", "1.3.6.1.5.5.7.3.4"),
    ("smartcard_logon", "1.3.6.1.4.1.311.20.2.2"),
];

impl CertificateTemplate {
    /// The minimum key size clients must use.
    pub fn key_bits(&self) -> u32 {
        match self.key_algorithm {
            KeyAlgorithmName::Rsa => self.key_size.unwrap_or(2048),
            KeyAlgorithmName::EcdsaP256 => 256,
            KeyAlgorithmName::EcdsaP384 => 384,
        }
    }

    /// MIM `KeyUsages` flags: Decryption 1, Signing 2, KeyAgreement 4.
    pub fn mim_key_usages(&self) -> i64 {
        self.key_usages.iter().fold(0, |acc, u| {
            acc | match u {
                KeyUsage::KeyEncipherment | KeyUsage::DataEncipherment => 1,
                KeyUsage::DigitalSignature | KeyUsage::NonRepudiation => 2,
                KeyUsage::KeyAgreement => 4,
            }
        })
    }

    /// The extended key usages as dotted OIDs.
    pub fn eku_oids(&self) -> Result<Vec<String>, String> {
        self.extended_key_usages
            .iter()
            .map(
                |e| match EKU_NAMES.iter().find(|(n, _)| n.eq_ignore_ascii_case(e)) {
                    Some((_, oid)) => Ok(oid.to_string()),
                    None if !e.is_empty()
                        && e.split('.')
                            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())) =>
                    {
                        Ok(e.clone())
                    }
                    None => Err(format!(
                        "unknown extended key usage '{e}' (use one of {} or a dotted OID)",
                        EKU_NAMES
                            .iter()
                            .map(|(n, _)| *n)
                            .collect::<Vec<_>>()
                            .join(", ")
                    )),
                },
            )
            .collect()
    }

    /// What the import checks beyond the file's shape.
    pub fn validate(&self) -> Result<(), String> {
        let who = format!("certificate '{}'", self.common_name);
        if self.common_name.trim().is_empty() {
            return Err("a certificate needs a common_name".into());
        }
        if self.key_protection_level > 3 {
            return Err(format!("{who}: key_protection_level must be 0 to 3"));
        }
        if self.key_algorithm == KeyAlgorithmName::Rsa && self.key_bits() < 2048 {
            return Err(format!("{who}: RSA keys must have at least 2048 bits"));
        }
        if self.key_algorithm != KeyAlgorithmName::Rsa
            && self.key_size.is_some_and(|s| s != self.key_bits())
        {
            return Err(format!("{who}: key_size does not match the curve"));
        }
        if self.server_generated && self.key_algorithm == KeyAlgorithmName::Rsa {
            return Err(format!("{who}: server-generated keys are ECDSA for now"));
        }
        if self.validity_days == 0 {
            return Err(format!("{who}: validity_days must be at least 1"));
        }
        if self.key_usages.is_empty() {
            return Err(format!("{who}: key_usages must not be empty"));
        }
        self.eku_oids()
            .map(|_| ())
            .map_err(|e| format!("{who}: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::TemplateFile;

    fn cert(extra: &str) -> Result<(), String> {
        let text = format!(
            "[[template]]\nuuid = '2b7044cf-aa96-4911-b886-177947e9271b'\nname = 'T'\nkind = 'software'\n\
             security_descriptor = 'D:'\n[[template.certificates]]\ncommon_name = 'c'\n{extra}"
        );
        let file: TemplateFile = toml::from_str(&text).map_err(|e| e.to_string())?;
        file.template[0].validate()
    }

    #[test]
    fn import_refuses_certificate_templates_that_cannot_be_issued() {
        assert_eq!(cert(""), Ok(()));
        assert!(cert("key_algorithm = 'RSA'\nkey_size = 1024")
            .unwrap_err()
            .contains("at least 2048"));
        assert!(cert("key_algorithm = 'ECDSA_P256'\nkey_size = 384")
            .unwrap_err()
            .contains("does not match the curve"));
        assert!(cert("key_protection_level = 4")
            .unwrap_err()
            .contains("0 to 3"));
        assert!(
            cert("extended_key_usages = ['client_auth', 'teleportation']")
                .unwrap_err()
                .contains("unknown extended key usage 'teleportation'")
        );
        assert!(cert("key_algorithm = 'RSA'\nserver_generated = true")
            .unwrap_err()
            .contains("ECDSA"));
        assert!(cert("validity_days = 0")
            .unwrap_err()
            .contains("validity_days"));
        assert!(cert("key_usages = []").unwrap_err().contains("key_usages"));
        assert!(cert("[[template.certificates]]\ncommon_name = 'C'")
            .unwrap_err()
            .contains("appears twice"));
        assert!(
            cert("key_algorithm = 'DSA'").unwrap_err().contains("DSA"),
            "unknown algorithms fail to parse"
        );
    }

    #[test]
    fn mim_key_usage_flags_and_eku_oids() {
        let t: CertificateTemplate = toml::from_str(
            "common_name = 'c'\nkey_usages = ['digital_signature', 'key_encipherment', 'key_agreement']\nextended_key_usages = ['smartcard_logon', '1.2.3.4']",
        )
        .unwrap();
        assert_eq!(t.mim_key_usages(), 1 | 2 | 4);
        assert_eq!(
            t.eku_oids().unwrap(),
            vec!["1.3.6.1.4.1.311.20.2.2".to_string(), "1.2.3.4".to_string()]
        );
        assert_eq!(
            (t.key_bits(), t.validity_days, t.hash_algorithm.as_str()),
            (256, 365, "SHA256")
        );
    }
}
