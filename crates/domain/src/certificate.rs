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
    /// Written `client_auth`, `server_auth`, `email_protection`, `code_signing`,
    /// `smartcard_logon`, or a dotted OID; kept as OIDs.
    #[serde(default)]
    pub extended_key_usages: Vec<Eku>,
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

    /// What the template's shape cannot say: key sizes that fit the algorithm, a validity, key
    /// usages, a protection level MIM knows.
    pub fn check(&self) -> Result<(), CertificateProblem> {
        use CertificateProblem::*;
        if self.common_name.trim().is_empty() {
            return Err(NoCommonName);
        }
        if self.key_protection_level > 3 {
            return Err(KeyProtectionLevel);
        }
        if self.key_algorithm == KeyAlgorithmName::Rsa && self.key_bits() < 2048 {
            return Err(RsaTooShort);
        }
        if self.key_algorithm != KeyAlgorithmName::Rsa
            && self.key_size.is_some_and(|s| s != self.key_bits())
        {
            return Err(KeySizeOfCurve);
        }
        if self.server_generated && self.key_algorithm == KeyAlgorithmName::Rsa {
            return Err(ServerGeneratedRsa);
        }
        if self.validity_days == 0 {
            return Err(NoValidity);
        }
        if self.key_usages.is_empty() {
            return Err(NoKeyUsages);
        }
        let mut ekus: Vec<&str> = self.extended_key_usages.iter().map(Eku::oid).collect();
        ekus.sort_unstable();
        if ekus.windows(2).any(|w| w[0] == w[1]) {
            return Err(EkuTwice);
        }
        Ok(())
    }
}

/// Why a certificate template cannot be issued.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CertificateProblem {
    #[error("a certificate needs a common_name")]
    NoCommonName,
    #[error("key_protection_level must be 0 to 3")]
    KeyProtectionLevel,
    #[error("RSA keys must have at least 2048 bits")]
    RsaTooShort,
    #[error("key_size does not match the curve")]
    KeySizeOfCurve,
    #[error("server-generated keys are ECDSA for now")]
    ServerGeneratedRsa,
    #[error("validity_days must be at least 1")]
    NoValidity,
    #[error("key_usages must not be empty")]
    NoKeyUsages,
    #[error("extended_key_usages names one usage twice")]
    EkuTwice,
}

/// An extended key usage, as its dotted OID. Parsed from one of the names of [`EKU_NAMES`] (in
/// any case) or a dotted OID; written as the OID.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(into = "String")]
pub struct Eku(String);

impl Eku {
    pub fn parse(text: &str) -> Result<Self, String> {
        if let Some((_, oid)) = EKU_NAMES.iter().find(|(n, _)| n.eq_ignore_ascii_case(text)) {
            return Ok(Eku(oid.to_string()));
        }
        let unknown = || {
            format!(
                "unknown extended key usage '{}' (use one of {} or a dotted OID)",
                crate::limits::excerpt(text),
                EKU_NAMES
                    .iter()
                    .map(|(n, _)| *n)
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        let arcs: Vec<&str> = text.split('.').collect();
        let numbers: Option<Vec<u64>> = arcs
            .iter()
            .map(|a| {
                // Digits only, without leading zeros (`01` is not how an OID is written).
                let digits = !a.is_empty() && a.bytes().all(|b| b.is_ascii_digit());
                (digits && (a.len() == 1 || !a.starts_with('0')))
                    .then(|| a.parse::<u64>().ok())
                    .flatten()
            })
            .collect();
        let Some(numbers) = numbers.filter(|n| n.len() >= 2) else {
            return Err(unknown());
        };
        // X.660: the first arc is 0, 1 or 2; under 0 and 1 the second is below 40 (that is how
        // both fit in DER's first byte).
        if numbers[0] > 2 || (numbers[0] < 2 && numbers[1] >= 40) {
            return Err(format!(
                "'{}' is not an object identifier: it starts 0.x or 1.x with x below 40, or 2.x",
                crate::limits::excerpt(text)
            ));
        }
        Ok(Eku(text.to_string()))
    }
    pub fn oid(&self) -> &str {
        &self.0
    }
}

impl From<Eku> for String {
    fn from(e: Eku) -> String {
        e.0
    }
}

impl<'de> Deserialize<'de> for Eku {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Eku::parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mim_key_usage_flags_and_ekus_as_oids() {
        let t: CertificateTemplate = toml::from_str(
            "common_name = 'c'\nkey_usages = ['digital_signature', 'key_encipherment', 'key_agreement']\nextended_key_usages = ['Smartcard_Logon', '1.2.3.4']",
        )
        .unwrap();
        assert_eq!(t.mim_key_usages(), 1 | 2 | 4);
        let oids: Vec<&str> = t.extended_key_usages.iter().map(Eku::oid).collect();
        assert_eq!(oids, ["1.3.6.1.4.1.311.20.2.2", "1.2.3.4"]);
        assert_eq!(
            (t.key_bits(), t.validity_days, t.hash_algorithm.as_str()),
            (256, 365, "SHA256")
        );
        let back: CertificateTemplate =
            serde_json::from_value(serde_json::to_value(&t).unwrap()).unwrap();
        assert_eq!(back, t, "written as OIDs, read back the same");
    }

    #[test]
    fn an_eku_is_a_known_name_or_a_dotted_oid() {
        for bad in [
            "",
            "teleportation",
            "1",
            "1..2",
            "1.2.",
            ".1.2",
            "1.2.x",
            " 1.2",
            "3.1",
            "1.40",
            "01.02.03",
            "1.2.3.99999999999999999999",
            "1.2.-3",
        ] {
            assert!(Eku::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            Eku::parse("CLIENT_AUTH").unwrap().oid(),
            "1.3.6.1.5.5.7.3.2"
        );
        assert!(Eku::parse("teleportation")
            .unwrap_err()
            .contains("unknown extended key usage 'teleportation'"));
    }
}
