//! Strong certificate mapping, as Windows domain controllers enforce it since KB5014754: which
//! account a client certificate of an enterprise CA (AD CS, another anchor) signs in.
//!
//! The certificate's UPN names the account it claims; that claim stands only when something
//! non-spoofable ties the certificate to that very account:
//! - the account's SID in the certificate — Active Directory's `szOID_NTDS_CA_SECURITY_EXT`
//!   extension, or the SAN URI `tag:microsoft.com,2022-09-14:sid:<SID>` — equal to the account's
//!   own SID (a SID of another account refuses the certificate outright);
//! - or an explicit mapping of the account (Active Directory's `altSecurityIdentities`, or one
//!   configured for an opencm user) naming the certificate by issuer and serial number
//!   (`X509:<I>issuer<SR>serial`) or by subject key identifier (`X509:<SKI>hex`).
//!
//! Mapping by UPN alone is weak: after a UPN moves to another account, the old holder's
//! certificate would sign in the new account. It is allowed only behind an explicit switch.
//! (Certificates opencm issued itself are mapped by their recorded owner instead, elsewhere.)

use crate::identity::{Principal, Sid};

/// What a client certificate says of its holder, as read from it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PresentedCertificate {
    /// The UPN of the subject alternative name (Microsoft's otherName).
    pub upn: String,
    /// Every SID the certificate carries: the extension's, and each SAN URI's.
    pub sids: Vec<Sid>,
    /// The issuer's name, RDNs in the certificate's order (`DC=com,DC=contoso,CN=Contoso CA`),
    /// as `altSecurityIdentities` writes it.
    pub issuer: String,
    /// The serial number, big-endian bytes as encoded (no sign byte).
    pub serial: Vec<u8>,
    /// The subject key identifier extension's value, if any.
    pub subject_key_id: Option<Vec<u8>>,
}

/// How a certificate was tied to its account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mapped {
    /// The certificate carries the account's SID.
    Sid,
    /// The account's explicit mapping names the certificate (the mapping, as written).
    Explicit(String),
    /// By UPN alone, allowed by configuration.
    WeakUpn,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MappingRefused {
    #[error("the certificate carries SID {certificate}, not the SID {account} of the account its UPN names")]
    SidOfAnotherAccount { certificate: Sid, account: Sid },
    #[error("no strong mapping: the certificate carries no SID and no explicit mapping of the account names it (mapping by UPN alone is turned off)")]
    NoStrongMapping,
}

/// Whether `cert` signs in `account` (the account its UPN names).
pub fn map(
    cert: &PresentedCertificate,
    account: &Principal,
    weak_allowed: bool,
) -> Result<Mapped, MappingRefused> {
    // Every SID it carries must be the account's: one of another account refuses it, wherever
    // it stands among them.
    if let Some(other) = cert.sids.iter().find(|s| **s != account.sid) {
        return Err(MappingRefused::SidOfAnotherAccount {
            certificate: other.clone(),
            account: account.sid.clone(),
        });
    }
    if !cert.sids.is_empty() {
        return Ok(Mapped::Sid);
    }
    if let Some(m) = account
        .certificate_mappings
        .iter()
        .find(|m| names_certificate(m, cert))
    {
        return Ok(Mapped::Explicit(m.clone()));
    }
    if weak_allowed {
        return Ok(Mapped::WeakUpn);
    }
    Err(MappingRefused::NoStrongMapping)
}

/// Whether an explicit mapping (`altSecurityIdentities` syntax) names `cert`, by one of the
/// strong forms: `X509:<I>issuer<SR>serial` (the serial in reversed byte order, as Windows writes
/// it) or `X509:<SKI>hex`. The weak forms (`<S>` subject, `<I><S>`, `<RFC822>`) never match.
pub fn names_certificate(mapping: &str, cert: &PresentedCertificate) -> bool {
    match parse_strong(mapping) {
        Some(Strong::SubjectKeyId(ski)) => cert.subject_key_id.as_deref() == Some(&ski[..]),
        Some(Strong::IssuerSerial(issuer, serial)) => {
            normalized_name(&issuer) == normalized_name(&cert.issuer)
                && serial == significant(&cert.serial)
        }
        None => false,
    }
}

/// A strong mapping, parsed.
enum Strong {
    SubjectKeyId(Vec<u8>),
    /// The issuer as written, and the serial number big-endian without leading zero bytes.
    IssuerSerial(String, Vec<u8>),
}

/// Hex digits (any case, spaces ignored) as bytes.
fn hex_bytes(text: &str) -> Option<Vec<u8>> {
    let digits: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    if digits.is_empty() || !digits.len().is_multiple_of(2) {
        return None;
    }
    digits
        .chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).ok()?, 16).ok())
        .collect()
}

/// A big-endian integer's bytes without leading zeros (the sign byte DER may add).
fn significant(b: &[u8]) -> Vec<u8> {
    b.iter().skip_while(|x| **x == 0).copied().collect()
}

fn parse_strong(mapping: &str) -> Option<Strong> {
    let rest = strip_prefix_ignore_case(mapping.trim(), "X509:")?;
    if let Some(ski) = strip_prefix_ignore_case(rest, "<SKI>") {
        return hex_bytes(ski).map(Strong::SubjectKeyId);
    }
    let rest = strip_prefix_ignore_case(rest, "<I>")?;
    let (issuer, serial) = split_ignore_case(rest, "<SR>")?;
    if normalized_name(issuer).is_empty() {
        return None;
    }
    // Windows writes the serial's bytes in reverse order; a sign byte may trail.
    let mut serial = hex_bytes(serial)?;
    serial.reverse();
    Some(Strong::IssuerSerial(
        issuer.to_string(),
        significant(&serial),
    ))
}

/// A strong mapping in one canonical spelling — `X509:<I>TYPE=value,…<SR>HEX` (serial bytes
/// reversed, no sign byte) or `X509:<SKI>HEX`, hex in capitals, no spaces — so that one mapping
/// is stored once and removed by any way of writing it. `None` for anything else (the weak forms
/// included).
pub fn canonical_mapping(mapping: &str) -> Option<String> {
    let upper = |b: &[u8]| b.iter().map(|x| format!("{x:02X}")).collect::<String>();
    Some(match parse_strong(mapping)? {
        Strong::SubjectKeyId(ski) => format!("X509:<SKI>{}", upper(&ski)),
        Strong::IssuerSerial(issuer, serial) => {
            let issuer: Vec<String> = issuer
                .split(',')
                .filter_map(|rdn| rdn.split_once('='))
                .map(|(t, v)| format!("{}={}", t.trim().to_ascii_uppercase(), v.trim()))
                .collect();
            let reversed: Vec<u8> = serial.iter().rev().copied().collect();
            format!("X509:<I>{}<SR>{}", issuer.join(","), upper(&reversed))
        }
    })
}

/// Whether `mapping` is one of the strong explicit forms (`X509:<I>issuer<SR>serial`,
/// `X509:<SKI>hex`) with hex where hex belongs.
pub fn is_strong_mapping(mapping: &str) -> bool {
    parse_strong(mapping).is_some()
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    (s.len() >= prefix.len() && s.is_char_boundary(prefix.len()))
        .then(|| s.split_at(prefix.len()))
        .filter(|(head, _)| head.eq_ignore_ascii_case(prefix))
        .map(|(_, tail)| tail)
}

fn split_ignore_case<'a>(s: &'a str, sep: &str) -> Option<(&'a str, &'a str)> {
    let at = s.to_ascii_uppercase().find(&sep.to_ascii_uppercase())?;
    Some((&s[..at], &s[at + sep.len()..]))
}

/// A name for comparison: attribute types and values without case, no spaces around `,` and
/// `=`, `ST` written `S` (Windows' name for stateOrProvinceName).
fn normalized_name(name: &str) -> Vec<(String, String)> {
    name.split(',')
        .filter_map(|rdn| {
            let (t, v) = rdn.split_once('=')?;
            let t = t.trim().to_ascii_uppercase();
            let t = if t == "ST" { "S".to_string() } else { t };
            Some((t, v.trim().to_lowercase()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Guid;

    fn account(sid: &str, mappings: &[&str]) -> Principal {
        Principal {
            uuid: Guid::from_u128(1).into(),
            login: "wren".into(),
            display_name: "Wren".into(),
            sid: Sid::parse(sid).unwrap(),
            groups: Vec::new(),
            upn: Some("wren@corp.example".into()),
            email: None,
            certificate_mappings: mappings.iter().map(|m| m.to_string()).collect(),
            language: None,
        }
    }

    fn cert(sid: Option<&str>) -> PresentedCertificate {
        PresentedCertificate {
            upn: "wren@corp.example".into(),
            sids: sid.map(|s| Sid::parse(s).unwrap()).into_iter().collect(),
            issuer: "DC=example,DC=corp,CN=Corp Issuing CA".into(),
            serial: vec![0x61, 0x00, 0x00, 0x00, 0x0a, 0x2b],
            subject_key_id: Some(vec![0xde, 0xad, 0xbe, 0xef]),
        }
    }

    const WREN: &str = "S-1-5-21-1-2-3-1105";
    const OTHER: &str = "S-1-5-21-1-2-3-1999";

    #[test]
    fn which_certificates_sign_in_which_account() {
        let a = account(WREN, &[]);
        // (certificate SID, account mappings, weak switch) → outcome
        assert_eq!(map(&cert(Some(WREN)), &a, false), Ok(Mapped::Sid));
        assert!(matches!(
            map(&cert(Some(OTHER)), &a, true),
            Err(MappingRefused::SidOfAnotherAccount { .. })
        ));
        assert_eq!(
            map(&cert(None), &a, false),
            Err(MappingRefused::NoStrongMapping)
        );
        assert_eq!(map(&cert(None), &a, true), Ok(Mapped::WeakUpn));
        // A SID of another account is refused even where an explicit mapping names the
        // certificate.
        // Two SIDs, one of them another account's: refused whatever their order.
        for sids in [[WREN, OTHER], [OTHER, WREN]] {
            let two = PresentedCertificate {
                sids: sids.iter().map(|s| Sid::parse(s).unwrap()).collect(),
                ..cert(None)
            };
            assert!(map(&two, &a, true).is_err(), "{sids:?}");
        }
        let mapped = account(WREN, &["X509:<SKI>deadbeef"]);
        assert!(map(&cert(Some(OTHER)), &mapped, false).is_err());
        assert_eq!(
            map(&cert(None), &mapped, false),
            Ok(Mapped::Explicit("X509:<SKI>deadbeef".into()))
        );
    }

    #[test]
    fn explicit_mappings_name_a_certificate_by_issuer_and_serial_or_key_identifier() {
        let c = cert(None);
        for (m, names) in [
            (
                "X509:<I>DC=example,DC=corp,CN=Corp Issuing CA<SR>2b0a00000061",
                true,
            ),
            (
                "x509:<i>dc=EXAMPLE, dc=corp, cn=corp issuing ca<sr>2B0A00000061",
                true,
            ),
            // The serial as printed (not reversed) is not Windows' form.
            (
                "X509:<I>DC=example,DC=corp,CN=Corp Issuing CA<SR>61000000 0a2b",
                false,
            ),
            (
                "X509:<I>DC=example,DC=corp,CN=Other CA<SR>2b0a00000061",
                false,
            ),
            ("X509:<SKI>DEADBEEF", true),
            ("X509:<SKI>deadbeee", false),
            // Weak forms never map.
            (
                "X509:<I>DC=example,DC=corp,CN=Corp Issuing CA<S>CN=Wren",
                false,
            ),
            ("X509:<S>CN=Wren", false),
            ("X509:<RFC822>wren@corp.example", false),
            ("", false),
            ("X509:", false),
        ] {
            assert_eq!(names_certificate(m, &c), names, "{m}");
        }
        // A sign byte the serial's DER carries may be written or not.
        let signed = PresentedCertificate {
            serial: vec![0x80, 0x01],
            ..cert(None)
        };
        for serial in ["0180", "018000"] {
            let m = format!("X509:<I>DC=example,DC=corp,CN=Corp Issuing CA<SR>{serial}");
            assert!(names_certificate(&m, &signed), "{m}");
        }
        // One canonical spelling, whatever the case, spaces or sign byte.
        assert_eq!(
            canonical_mapping("x509:<i>dc=example, dc=corp ,cn=Corp CA<sr>01 80 00"),
            Some("X509:<I>DC=example,DC=corp,CN=Corp CA<SR>0180".to_string())
        );
        assert_eq!(
            canonical_mapping("X509:<SKI>de ad be ef"),
            Some("X509:<SKI>DEADBEEF".to_string())
        );
        assert_eq!(canonical_mapping("X509:<S>CN=Wren"), None);
        assert!(is_strong_mapping("X509:<SKI>deadbeef"));
        assert!(is_strong_mapping("x509:<i>CN=Corp CA<sr>2b0a"));
        for weak in [
            "X509:<S>CN=Wren",
            "X509:<SKI>xyz",
            "X509:<I>CN=Corp CA<SR>",
            "X509:<I><SR>2b0a",
            "wren",
        ] {
            assert!(!is_strong_mapping(weak), "{weak}");
        }
        let no_ski = PresentedCertificate {
            subject_key_id: None,
            ..cert(None)
        };
        assert!(!names_certificate("X509:<SKI>deadbeef", &no_ski));
    }
}
