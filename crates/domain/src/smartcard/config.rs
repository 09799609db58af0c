//! A smart card profile template's card configuration (docs/API.md, "Objects" "Smart card configuration", the
//! published `configuration/smartcards` example), plus what opencm adds for PIV tokens: the admin
//! (management) key's algorithm and the PIV slot each certificate goes to.
//!
//! In template files it is `[template.smartcard]` with snake_case keys; on the wire it has MIM's
//! PascalCase names and numbers.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How the user's PIN is chosen (docs/API.md, "Enumerations"; opencm order).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UserPinOption {
    None,
    #[default]
    UserProvided,
    ServerDistributed,
    Randomized,
    CustomServerDistributed,
}

impl UserPinOption {
    pub fn number(self) -> i64 {
        match self {
            Self::None => 0,
            Self::UserProvided => 1,
            Self::ServerDistributed => 2,
            Self::Randomized => 3,
            Self::CustomServerDistributed => 4,
        }
    }
}

/// The characters a PIN may hold (opencm's numbering; MIM's example uses 1 for digits).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PinCharacterSet {
    /// Printable ASCII.
    Any,
    #[default]
    Numeric,
    Alphanumeric,
}

impl PinCharacterSet {
    pub fn number(self) -> i64 {
        match self {
            Self::Any => 0,
            Self::Numeric => 1,
            Self::Alphanumeric => 2,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PinPolicy {
    pub min_length: u32,
    pub max_length: u32,
    pub character_set: PinCharacterSet,
    pub rollover: bool,
    pub default_value: String,
}

impl Default for PinPolicy {
    fn default() -> Self {
        PinPolicy {
            min_length: 6,
            max_length: 8,
            character_set: PinCharacterSet::Numeric,
            rollover: false,
            default_value: String::new(),
        }
    }
}

/// The card's admin key (the PIV management key): MIM's 3-key 3DES, or the AES keys current PIV
/// tokens use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AdminKeyAlgorithm {
    #[default]
    Tdes,
    Aes128,
    Aes192,
    Aes256,
}

impl AdminKeyAlgorithm {
    pub fn key_len(self) -> usize {
        match self {
            Self::Tdes | Self::Aes192 => 24,
            Self::Aes128 => 16,
            Self::Aes256 => 32,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Self::Tdes => "tdes",
            Self::Aes128 => "aes128",
            Self::Aes192 => "aes192",
            Self::Aes256 => "aes256",
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PrintPolicy {
    pub field_mapping: String,
    pub project_name: String,
    pub card_name: String,
    pub print: bool,
}

/// PIV key slots a certificate may go to: authentication, signature, key management, card
/// authentication, and the twenty retired key-management slots.
pub const PIV_SLOTS: &[&str] = &[
    "9a", "9c", "9d", "9e", "82", "83", "84", "85", "86", "87", "88", "89", "8a", "8b", "8c", "8d",
    "8e", "8f", "90", "91", "92", "93", "94", "95",
];

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmartcardConfig {
    pub user_pin_option: UserPinOption,
    pub user_pin_policy: PinPolicy,
    pub admin_pin_policy: PinPolicy,
    /// The cards' factory admin key, written in hex as `default_admin_key_hex`; `None` (an empty
    /// or absent value) means the all-zero key of the algorithm's size.
    #[serde(rename = "default_admin_key_hex", with = "admin_key_hex")]
    pub default_admin_key: Option<Vec<u8>>,
    pub admin_key_algorithm: AdminKeyAlgorithm,
    pub diversify_admin_key: bool,
    pub provider_name: String,
    pub provider_id: String,
    pub provider_type: i64,
    pub card_initialization_type: String,
    pub card_initialization_data: String,
    pub initialize_new_smartcard: bool,
    pub use_secure_key_injection: bool,
    pub do_not_install_ca_certificates: bool,
    pub allow_smartcard_reuse: bool,
    pub erase_on_overflow: bool,
    pub certificate_label: String,
    /// 0 = unlimited.
    pub max_number_of_certificates: u32,
    pub use_virtual_smartcards: bool,
    pub print_policy: PrintPolicy,
    /// PIV tokens: the slot (`9a`, `9c`, `9d`, `9e`, `82`–`95`) each certificate, by its common
    /// name, is generated in.
    pub piv_slots: BTreeMap<String, String>,
    /// How long a temporary card (TemporaryCards) lasts, in days: the card is Disabled when it
    /// expires, and the certificates issued onto it end then too.
    pub temporary_card_days: u32,
    /// Whether a card client resets the card's application when the card is retired (a PIV
    /// token: its keys, certificates and PINs erased), as far as the token allows.
    pub reset_on_retire: bool,
}

impl Default for SmartcardConfig {
    fn default() -> Self {
        SmartcardConfig {
            user_pin_option: UserPinOption::UserProvided,
            user_pin_policy: PinPolicy::default(),
            admin_pin_policy: PinPolicy::default(),
            default_admin_key: None,
            admin_key_algorithm: AdminKeyAlgorithm::Tdes,
            diversify_admin_key: true,
            provider_name: String::new(),
            provider_id: String::new(),
            provider_type: 0,
            card_initialization_type: String::new(),
            card_initialization_data: String::new(),
            initialize_new_smartcard: true,
            use_secure_key_injection: false,
            do_not_install_ca_certificates: false,
            allow_smartcard_reuse: false,
            erase_on_overflow: false,
            certificate_label: "{Template!cn}".into(),
            max_number_of_certificates: 0,
            use_virtual_smartcards: false,
            print_policy: PrintPolicy::default(),
            piv_slots: BTreeMap::new(),
            temporary_card_days: 7,
            reset_on_retire: true,
        }
    }
}

impl SmartcardConfig {
    /// The cards' factory admin key: the configured one, or all zeros of the algorithm's size.
    pub fn default_admin_key(&self) -> Vec<u8> {
        match &self.default_admin_key {
            Some(key) => key.clone(),
            None => vec![0; self.admin_key_algorithm.key_len()],
        }
    }

    /// The configured factory key in upper-case hex; empty when it is the all-zero default.
    pub fn default_admin_key_hex(&self) -> String {
        self.default_admin_key
            .as_deref()
            .map(hex::encode_upper)
            .unwrap_or_default()
    }

    /// What the file's shape cannot say. `certificates` are the template's certificate common
    /// names; `virtual_cards` whether the template is for TPM virtual smart cards.
    pub fn check(
        &self,
        certificates: &[&str],
        virtual_cards: bool,
    ) -> Result<(), SmartcardProblem> {
        use SmartcardProblem::*;
        let alg = self.admin_key_algorithm;
        if let Some(key) = &self.default_admin_key {
            if key.len() != alg.key_len() {
                return Err(AdminKeyLength {
                    bytes: key.len(),
                    algorithm: alg.name(),
                    wanted: alg.key_len(),
                });
            }
        }
        for (which, p) in [
            ("user_pin_policy", &self.user_pin_policy),
            ("admin_pin_policy", &self.admin_pin_policy),
        ] {
            if p.min_length == 0 || p.min_length > p.max_length || p.max_length > 127 {
                return Err(PinLengths {
                    which,
                    min: p.min_length,
                    max: p.max_length,
                });
            }
        }
        if self.use_virtual_smartcards != virtual_cards {
            return Err(VirtualCards(virtual_cards));
        }
        let mut named: Vec<String> = self
            .piv_slots
            .keys()
            .map(|n| n.to_ascii_lowercase())
            .collect();
        named.sort();
        named.dedup();
        if named.len() != self.piv_slots.len() {
            return Err(SlotNamedTwice);
        }
        for (name, slot) in &self.piv_slots {
            if !certificates.iter().any(|c| c.eq_ignore_ascii_case(name)) {
                return Err(SlotForNoCertificate(name.clone()));
            }
            if !PIV_SLOTS.contains(&slot.to_ascii_lowercase().as_str()) {
                return Err(NotAPivSlot(slot.clone()));
            }
        }
        if !(1..=366).contains(&self.temporary_card_days) {
            return Err(TemporaryCardDays(self.temporary_card_days));
        }
        let mut slots: Vec<String> = self
            .piv_slots
            .values()
            .map(|s| s.to_ascii_lowercase())
            .collect();
        slots.sort();
        if slots.windows(2).any(|w| w[0] == w[1]) {
            return Err(SlotTwice);
        }
        Ok(())
    }
}

/// Why a card configuration cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SmartcardProblem {
    #[error("default_admin_key_hex holds {bytes} bytes; a {algorithm} admin key has {wanted}")]
    AdminKeyLength {
        bytes: usize,
        algorithm: &'static str,
        wanted: usize,
    },
    #[error(
        "{which}: lengths must satisfy 1 <= min_length <= max_length <= 127 (got {min} and {max})"
    )]
    PinLengths {
        which: &'static str,
        min: u32,
        max: u32,
    },
    #[error("use_virtual_smartcards must be {0} for a template of this kind")]
    VirtualCards(bool),
    #[error("piv_slots names '{}', which is not a certificate of this template", crate::limits::excerpt(.0))]
    SlotForNoCertificate(String),
    #[error("piv_slots: '{}' is not a PIV key slot (9a, 9c, 9d, 9e, 82-95)", crate::limits::excerpt(.0))]
    NotAPivSlot(String),
    #[error("temporary_card_days must be 1 to 366 (got {0})")]
    TemporaryCardDays(u32),
    #[error("piv_slots puts two certificates in one slot")]
    SlotTwice,
    #[error("piv_slots names one certificate twice (names are compared without regard to case)")]
    SlotNamedTwice,
}

/// `default_admin_key_hex`: hex (either case) in, upper-case hex out; empty is `None`.
mod admin_key_hex {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(key: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&key.as_deref().map(hex::encode_upper).unwrap_or_default())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        let text = String::deserialize(d)?;
        if text.is_empty() {
            return Ok(None);
        }
        hex::decode(&text)
            .map(Some)
            .map_err(|_| serde::de::Error::custom("default_admin_key_hex is not hexadecimal"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_admin_key_defaults_to_zeros_of_the_algorithms_size_and_is_checked() {
        let mut c = SmartcardConfig::default();
        assert_eq!(c.default_admin_key(), vec![0; 24]);
        c.admin_key_algorithm = AdminKeyAlgorithm::Aes128;
        assert_eq!(c.default_admin_key(), vec![0; 16]);
        c.default_admin_key = Some(vec![1; 24]);
        assert_eq!(
            c.check(&[], false),
            Err(SmartcardProblem::AdminKeyLength {
                bytes: 24,
                algorithm: "aes128",
                wanted: 16
            })
        );
        c.default_admin_key = Some(vec![1; 16]);
        assert_eq!(c.check(&[], false), Ok(()));
        assert_eq!(c.default_admin_key(), vec![1; 16]);
        let parse = |hex: &str| {
            toml::from_str::<SmartcardConfig>(&format!("default_admin_key_hex = '{hex}'"))
                .map(|c| c.default_admin_key)
                .map_err(|e| e.to_string())
        };
        assert_eq!(parse(""), Ok(None));
        assert_eq!(parse("0a0B"), Ok(Some(vec![10, 11])));
        assert!(parse("zz").unwrap_err().contains("not hexadecimal"));
        let written = serde_json::to_value(&c).unwrap();
        assert_eq!(written["default_admin_key_hex"], "01".repeat(16));
    }

    #[test]
    fn pin_lengths_virtual_cards_and_piv_slots_are_validated() {
        use SmartcardProblem::*;
        let mut c = SmartcardConfig::default();
        assert_eq!(c.check(&[], false), Ok(()));
        assert_eq!(
            c.check(&[], true),
            Err(VirtualCards(true)),
            "a virtual card template says so"
        );
        c.user_pin_policy.min_length = 9;
        assert_eq!(
            c.check(&[], false),
            Err(PinLengths {
                which: "user_pin_policy",
                min: 9,
                max: 8
            })
        );
        c.user_pin_policy.min_length = 6;
        c.admin_pin_policy.max_length = 128;
        assert!(matches!(
            c.check(&[], false),
            Err(PinLengths {
                which: "admin_pin_policy",
                ..
            })
        ));
        c.admin_pin_policy.max_length = 8;
        c.piv_slots.insert("Logon".into(), "9a".into());
        assert_eq!(c.check(&["logon"], false), Ok(()));
        assert_eq!(
            c.check(&["other"], false),
            Err(SlotForNoCertificate("Logon".into()))
        );
        c.piv_slots.insert("Logon".into(), "9b".into());
        assert_eq!(c.check(&["logon"], false), Err(NotAPivSlot("9b".into())));
        c.piv_slots.insert("Logon".into(), "9a".into());
        c.piv_slots.insert("Sign".into(), "9A".into());
        assert_eq!(c.check(&["logon", "sign"], false), Err(SlotTwice));
        c.piv_slots.clear();
        c.piv_slots.insert("Logon".into(), "9a".into());
        c.piv_slots.insert("Sign".into(), "9c".into());
        c.piv_slots.insert("logon".into(), "9d".into());
        assert_eq!(c.check(&["Logon", "Sign"], false), Err(SlotNamedTwice));
        c.piv_slots.clear();
        c.temporary_card_days = 0;
        assert_eq!(c.check(&[], false), Err(TemporaryCardDays(0)));
        c.temporary_card_days = 367;
        assert_eq!(c.check(&[], false), Err(TemporaryCardDays(367)));
    }
}
