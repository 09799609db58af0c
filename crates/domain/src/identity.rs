//! Security identifiers and the authenticated caller.

use crate::ids::UserId;
use std::fmt;

/// A Windows security identifier, kept in its canonical `S-1-...` form. SDDL aliases (`WD`, `AU`,
/// `BA`, ...) are resolved on parse and written back by the SDDL formatter.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sid(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not a SID (expected S-1-<authority>-<subauthority>... or a well-known SDDL alias such as WD, AU, BA)")]
pub struct SidError(pub String);

/// Well-known SID aliases of SDDL (MS-DTYP 2.4.2.4) that do not depend on a domain.
pub(crate) const ALIASES: &[(&str, &str)] = &[
    ("WD", "S-1-1-0"),
    ("CO", "S-1-3-0"),
    ("CG", "S-1-3-1"),
    ("NU", "S-1-5-2"),
    ("IU", "S-1-5-4"),
    ("SU", "S-1-5-6"),
    ("AN", "S-1-5-7"),
    ("ED", "S-1-5-9"),
    ("PS", "S-1-5-10"),
    ("AU", "S-1-5-11"),
    ("RC", "S-1-5-12"),
    ("SY", "S-1-5-18"),
    ("LS", "S-1-5-19"),
    ("NS", "S-1-5-20"),
    ("BA", "S-1-5-32-544"),
    ("BU", "S-1-5-32-545"),
    ("BG", "S-1-5-32-546"),
    ("PU", "S-1-5-32-547"),
    ("AO", "S-1-5-32-548"),
    ("SO", "S-1-5-32-549"),
    ("PO", "S-1-5-32-550"),
    ("BO", "S-1-5-32-551"),
    ("RE", "S-1-5-32-552"),
    ("RU", "S-1-5-32-554"),
    ("RD", "S-1-5-32-555"),
    ("NO", "S-1-5-32-556"),
];

impl Sid {
    pub const EVERYONE: &'static str = "S-1-1-0";
    pub const AUTHENTICATED_USERS: &'static str = "S-1-5-11";
    pub const ADMINISTRATORS: &'static str = "S-1-5-32-544";

    /// Parses `S-1-5-21-...` (any case) or a well-known alias.
    pub fn parse(s: &str) -> Result<Self, SidError> {
        let t = s.trim();
        if let Some((_, sid)) = ALIASES.iter().find(|(a, _)| a.eq_ignore_ascii_case(t)) {
            return Ok(Sid((*sid).to_string()));
        }
        let upper = t.to_ascii_uppercase();
        let rest = upper
            .strip_prefix("S-1-")
            .ok_or_else(|| SidError(s.to_string()))?;
        let parts: Vec<&str> = rest.split('-').collect();
        // One identifier authority plus at most 15 sub-authorities (MS-DTYP 2.4.2).
        if parts.is_empty() || parts.len() > 16 {
            return Err(SidError(s.to_string()));
        }
        let mut canon = String::from("S-1");
        for (i, p) in parts.iter().enumerate() {
            let ok = !p.is_empty()
                && p.bytes().all(|b| b.is_ascii_digit())
                && if i == 0 {
                    p.parse::<u64>().is_ok_and(|v| v < (1 << 48))
                } else {
                    p.parse::<u32>().is_ok()
                };
            if !ok {
                return Err(SidError(s.to_string()));
            }
            // Canonical: no leading zeros.
            canon.push('-');
            canon.push_str(
                &p.parse::<u64>()
                    .map_err(|_| SidError(s.to_string()))?
                    .to_string(),
            );
        }
        Ok(Sid(canon))
    }

    /// A SID in its binary form (MS-DTYP 2.4.2.2), as Active Directory's `objectSid` and
    /// `tokenGroups` hold it: revision 1, the sub-authority count, a 6-byte big-endian identifier
    /// authority, then the sub-authorities as 32-bit little-endian integers.
    pub fn from_binary(b: &[u8]) -> Result<Self, SidError> {
        let bad = || SidError(format!("{} bytes that are not a binary SID", b.len()));
        let (&revision, rest) = b.split_first().ok_or_else(bad)?;
        let (&count, rest) = rest.split_first().ok_or_else(bad)?;
        if revision != 1 || count > 15 || rest.len() != 6 + 4 * usize::from(count) {
            return Err(bad());
        }
        let authority = rest[..6]
            .iter()
            .fold(0u64, |acc, &x| (acc << 8) | u64::from(x));
        let mut s = format!("S-1-{authority}");
        for sub in rest[6..].chunks_exact(4) {
            let v = u32::from_le_bytes([sub[0], sub[1], sub[2], sub[3]]);
            s.push_str(&format!("-{v}"));
        }
        Ok(Sid(s))
    }

    /// The binary form `from_binary` reads (to search `objectSid`).
    pub fn to_binary(&self) -> Vec<u8> {
        let parts: Vec<u64> = self
            .0
            .split('-')
            .skip(2)
            .filter_map(|p| p.parse().ok())
            .collect();
        let Some((authority, subs)) = parts.split_first() else {
            return Vec::new();
        };
        let mut b = vec![1, subs.len() as u8];
        b.extend_from_slice(&authority.to_be_bytes()[2..]);
        for s in subs {
            b.extend_from_slice(&(*s as u32).to_le_bytes());
        }
        b
    }

    pub fn everyone() -> Self {
        Sid(Self::EVERYONE.into())
    }
    pub fn authenticated_users() -> Self {
        Sid(Self::AUTHENTICATED_USERS.into())
    }
    pub fn administrators() -> Self {
        Sid(Self::ADMINISTRATORS.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this is an account SID of a Windows domain (`S-1-5-21-` and the domain's three
    /// sub-authorities, then the account's RID): the SIDs a domain controller maps certificates to.
    pub fn is_domain_account(&self) -> bool {
        self.0
            .strip_prefix("S-1-5-21-")
            .is_some_and(|rest| rest.split('-').count() == 4)
    }

    /// The SDDL alias for this SID, if it has one.
    pub fn alias(&self) -> Option<&'static str> {
        ALIASES.iter().find(|(_, s)| *s == self.0).map(|(a, _)| *a)
    }
}

/// In template files a SID is its string (`S-1-5-21-…` or an alias), checked when read.
impl serde::Serialize for Sid {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for Sid {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Sid::parse(&s).map_err(|_| serde::de::Error::custom(format!("'{s}' is not a SID")))
    }
}

#[cfg(test)]
#[test]
fn binary_sids_read_back() {
    for s in ["S-1-5-21-1000-2000-3000-1106", "S-1-5-32-544", "S-1-1-0"] {
        let sid = Sid::parse(s).unwrap();
        assert_eq!(Sid::from_binary(&sid.to_binary()).unwrap(), sid);
    }
}

impl fmt::Display for Sid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Sid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sid({})", self.0)
    }
}

/// The authenticated caller (or any user the server acts about): who they are and the SIDs their
/// access token carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    pub uuid: UserId,
    pub login: String,
    pub display_name: String,
    pub sid: Sid,
    /// Group SIDs from the directory (not including the implicit Everyone and Authenticated Users).
    pub groups: Vec<Sid>,
    /// The user principal name certificates carry, when the directory has one (else the login).
    pub upn: Option<String>,
    /// The e-mail address certificates carry, when the directory has one.
    pub email: Option<String>,
    /// Explicit certificate mappings (`altSecurityIdentities` syntax: `X509:<I>issuer<SR>serial`,
    /// `X509:<SKI>hex`): the directory's `altSecurityIdentities`, or those configured for an
    /// opencm user (`opencm user map-certificate`). See `certmap`.
    pub certificate_mappings: Vec<String>,
    /// The language the user's e-mails speak (BCP 47, e.g. "es"), when the directory says
    /// (`preferredLanguage`, or `opencm user add --language`).
    pub language: Option<String>,
}

impl Principal {
    /// The UPN certificates name the user by: the directory's, else the login.
    pub fn upn(&self) -> &str {
        self.upn.as_deref().unwrap_or(&self.login)
    }

    /// The e-mail address certificates carry: the directory's, else the login when it is one.
    pub fn email(&self) -> Option<&str> {
        self.email
            .as_deref()
            .or_else(|| self.login.contains('@').then_some(self.login.as_str()))
    }
}

impl Principal {
    /// Whether the caller is an administrator (BUILTIN\\Administrators in their token): every
    /// object's descriptor grants them everything, and the administrative use cases are theirs.
    pub fn is_administrator(&self) -> bool {
        self.sid == Sid::administrators() || self.groups.contains(&Sid::administrators())
    }

    /// Every SID in the caller's token: the user, their groups, Everyone and Authenticated Users.
    pub fn token_sids(&self) -> Vec<Sid> {
        let mut v = Vec::with_capacity(self.groups.len() + 3);
        v.push(self.sid.clone());
        v.extend(self.groups.iter().cloned());
        v.push(Sid::everyone());
        v.push(Sid::authenticated_users());
        v
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_administrator_holds_builtin_administrators_in_their_token() {
        let admin = crate::testing::user(1, &["S-1-5-21-7-512", "S-1-5-32-544"]);
        let helpdesk = crate::testing::user(2, &["S-1-5-21-7-6000"]);
        assert!(admin.is_administrator());
        assert!(!helpdesk.is_administrator());
    }

    #[test]
    fn binary_sids_read_as_ms_dtyp_writes_them() {
        // S-1-5-21-1004336348-1177238915-682003330-512 (Domain Admins), as AD stores it.
        let b: Vec<u8> = [
            &[1u8, 5, 0, 0, 0, 0, 0, 5][..],
            &21u32.to_le_bytes(),
            &1004336348u32.to_le_bytes(),
            &1177238915u32.to_le_bytes(),
            &682003330u32.to_le_bytes(),
            &512u32.to_le_bytes(),
        ]
        .concat();
        assert_eq!(
            Sid::from_binary(&b).unwrap().as_str(),
            "S-1-5-21-1004336348-1177238915-682003330-512"
        );
        assert_eq!(
            Sid::from_binary(&[1, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0]).unwrap(),
            Sid::everyone()
        );
        assert!(Sid::from_binary(&b[..b.len() - 1]).is_err(), "truncated");
        assert!(
            Sid::from_binary(&[2, 0, 0, 0, 0, 0, 0, 5]).is_err(),
            "revision 2"
        );
        assert!(Sid::from_binary(&[]).is_err());
    }

    use super::*;

    #[test]
    fn parses_aliases_and_canonicalises() {
        assert_eq!(Sid::parse("wd").unwrap().as_str(), "S-1-1-0");
        assert_eq!(
            Sid::parse("s-1-5-21-1-02-3").unwrap().as_str(),
            "S-1-5-21-1-2-3"
        );
        assert_eq!(Sid::parse("BA").unwrap().alias(), Some("BA"));
        for bad in [
            "",
            "S-1",
            "S-1-",
            "S-2-5",
            "S-1-5-x",
            "S-1-5--1",
            "XX",
            "S-1-5-99999999999",
        ] {
            assert!(Sid::parse(bad).is_err(), "{bad}");
        }
    }
}
