//! SDDL security descriptors (MS-DTYP 2.5.1): parse, format and check access.
//!
//! Written by hand: no maintained Rust crate parses SDDL outside of Windows (the `windows` crate
//! calls the OS). Only what opencm needs is supported: owner, group, a DACL of allow/deny ACEs
//! with the standard and directory-service rights. Object ACEs, conditional ACEs and SACLs are
//! refused with a clear error rather than silently dropped.
//!
//! `SecurityDescriptor::parse` yields a value that is always valid; `Display` writes it back in a
//! canonical form, and `parse(format(sd)) == sd` (property-tested).

mod access;
mod mask;

pub use access::{access_check, AccessDecision};
pub use mask::AccessMask;

use crate::identity::{Sid, SidError};
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AceType {
    Allow,
    Deny,
}

/// ACE flags (inheritance and audit), kept so they survive a round trip. The access check ignores
/// them except INHERIT_ONLY, which makes an ACE not apply to the object itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct AceFlags(u8);

const ACE_FLAG_LETTERS: &[(&str, u8)] = &[
    ("OI", 0x01),
    ("CI", 0x02),
    ("NP", 0x04),
    ("IO", 0x08),
    ("ID", 0x10),
    ("SA", 0x40),
    ("FA", 0x80),
];

impl AceFlags {
    pub const INHERIT_ONLY: u8 = 0x08;

    pub fn bits(self) -> u8 {
        self.0
    }
    pub fn from_bits(b: u8) -> Self {
        AceFlags(b & ACE_FLAG_LETTERS.iter().fold(0, |a, (_, v)| a | v))
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Ace {
    pub ace_type: AceType,
    pub flags: AceFlags,
    pub mask: AccessMask,
    pub sid: Sid,
}

impl Ace {
    pub fn allow(mask: AccessMask, sid: Sid) -> Self {
        Ace {
            ace_type: AceType::Allow,
            flags: AceFlags::default(),
            mask,
            sid,
        }
    }
    pub fn deny(mask: AccessMask, sid: Sid) -> Self {
        Ace {
            ace_type: AceType::Deny,
            flags: AceFlags::default(),
            mask,
            sid,
        }
    }
}

/// DACL control letters: `P` protected, `AI` auto-inherited, `AR` auto-inherit required.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct Dacl {
    pub protected: bool,
    pub auto_inherited: bool,
    pub auto_inherit_req: bool,
    pub aces: Vec<Ace>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct SecurityDescriptor {
    pub owner: Option<Sid>,
    pub group: Option<Sid>,
    /// `None` is a NULL DACL (everyone gets everything); `Some` with no ACEs denies everyone.
    pub dacl: Option<Dacl>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SddlError {
    #[error("SDDL is empty")]
    Empty,
    #[error("SDDL: {0}")]
    Sid(#[from] SidError),
    #[error("SDDL: unexpected text at position {pos}: '{text}'")]
    Unexpected { pos: usize, text: String },
    #[error("SDDL: ACE '{0}' does not have six ';'-separated fields")]
    AceFields(String),
    #[error("SDDL: ACE type '{0}' is not supported (only A and D)")]
    AceType(String),
    #[error("SDDL: unknown ACE flag in '{0}'")]
    AceFlag(String),
    #[error("SDDL: unknown access right in '{0}'")]
    Right(String),
    #[error("SDDL: object ACEs (GUID fields) are not supported: '{0}'")]
    ObjectAce(String),
    #[error("SDDL: system ACLs (S:) are not supported")]
    Sacl,
    #[error("SDDL: '{0}:' appears twice")]
    Duplicate(char),
}

impl SecurityDescriptor {
    pub fn parse(input: &str) -> Result<Self, SddlError> {
        // MIM pads descriptors with one U+0000 per ACE; tolerate that (and whitespace).
        let s: String = input
            .chars()
            .filter(|c| *c != '\0' && !c.is_whitespace())
            .collect();
        if s.is_empty() {
            return Err(SddlError::Empty);
        }
        let mut sd = SecurityDescriptor::default();
        let mut seen = Vec::new();
        let mut pos = 0;
        while pos < s.len() {
            let rest = &s[pos..];
            let tag = rest.as_bytes()[0].to_ascii_uppercase() as char;
            if rest.len() < 2 || rest.as_bytes()[1] != b':' || !"OGDS".contains(tag) {
                return Err(SddlError::Unexpected {
                    pos,
                    text: rest.chars().take(20).collect(),
                });
            }
            if seen.contains(&tag) {
                return Err(SddlError::Duplicate(tag));
            }
            seen.push(tag);
            let body_start = pos + 2;
            let body_end = next_section(&s, body_start);
            let body = &s[body_start..body_end];
            match tag {
                'O' => sd.owner = Some(Sid::parse(body)?),
                'G' => sd.group = Some(Sid::parse(body)?),
                'D' => sd.dacl = parse_dacl(body, body_start)?,
                _ => return Err(SddlError::Sacl),
            }
            pos = body_end;
        }
        Ok(sd)
    }

    pub fn aces(&self) -> &[Ace] {
        self.dacl.as_ref().map_or(&[], |d| d.aces.as_slice())
    }

    /// SIDs granted every bit of `right` by an allow ACE (ignoring deny ACEs): who "holds a role" on
    /// a role descriptor, and who may read a request, used to pre-filter lists in SQL.
    pub fn sids_allowed(&self, right: AccessMask) -> Vec<Sid> {
        let mut v: Vec<Sid> = Vec::new();
        for ace in self.aces() {
            if ace.ace_type == AceType::Allow
                && ace.flags.bits() & AceFlags::INHERIT_ONLY == 0
                && ace.mask.map_generic().contains(right)
                && !v.contains(&ace.sid)
            {
                v.push(ace.sid.clone());
            }
        }
        v
    }
}

/// Where the next `X:` section starts, skipping over parenthesised ACEs (whose SIDs contain `S-`
/// and whose rights may contain letters that look like tags).
fn next_section(s: &str, from: usize) -> usize {
    let b = s.as_bytes();
    let mut depth = 0;
    let mut i = from;
    while i < b.len() {
        match b[i] {
            b'(' => depth += 1,
            b')' => depth -= 1,
            c if depth == 0
                && i + 1 < b.len()
                && b[i + 1] == b':'
                && matches!(c.to_ascii_uppercase(), b'O' | b'G' | b'D' | b'S') =>
            {
                return i;
            }
            _ => {}
        }
        i += 1;
    }
    b.len()
}

fn parse_dacl(body: &str, offset: usize) -> Result<Option<Dacl>, SddlError> {
    let flags_end = body.find('(').unwrap_or(body.len());
    let mut flags = &body[..flags_end];
    let mut dacl = Dacl::default();
    if flags.eq_ignore_ascii_case("NO_ACCESS_CONTROL") {
        return Ok(None);
    }
    while !flags.is_empty() {
        let up = flags.to_ascii_uppercase();
        if up.starts_with("AR") {
            dacl.auto_inherit_req = true;
            flags = &flags[2..];
        } else if up.starts_with("AI") {
            dacl.auto_inherited = true;
            flags = &flags[2..];
        } else if up.starts_with('P') {
            dacl.protected = true;
            flags = &flags[1..];
        } else {
            return Err(SddlError::Unexpected {
                pos: offset,
                text: flags.to_string(),
            });
        }
    }
    let mut rest = &body[flags_end..];
    let mut pos = offset + flags_end;
    while !rest.is_empty() {
        if !rest.starts_with('(') {
            return Err(SddlError::Unexpected {
                pos,
                text: rest.chars().take(20).collect(),
            });
        }
        let close = rest
            .find(')')
            .ok_or_else(|| SddlError::AceFields(rest.to_string()))?;
        dacl.aces.push(parse_ace(&rest[1..close])?);
        pos += close + 1;
        rest = &rest[close + 1..];
    }
    Ok(Some(dacl))
}

fn parse_ace(text: &str) -> Result<Ace, SddlError> {
    let f: Vec<&str> = text.split(';').collect();
    if f.len() != 6 {
        return Err(SddlError::AceFields(text.to_string()));
    }
    let ace_type = match f[0].to_ascii_uppercase().as_str() {
        "A" => AceType::Allow,
        "D" => AceType::Deny,
        "OA" | "OD" => return Err(SddlError::ObjectAce(text.to_string())),
        other => return Err(SddlError::AceType(other.to_string())),
    };
    let mut flags = 0u8;
    let up = f[1].to_ascii_uppercase();
    for chunk in up.as_bytes().chunks(2) {
        let c = std::str::from_utf8(chunk).unwrap_or("");
        let bit = ACE_FLAG_LETTERS
            .iter()
            .find(|(l, _)| *l == c)
            .ok_or_else(|| SddlError::AceFlag(f[1].to_string()))?;
        flags |= bit.1;
    }
    if !f[3].is_empty() || !f[4].is_empty() {
        return Err(SddlError::ObjectAce(text.to_string()));
    }
    let mask = AccessMask::parse(f[2]).ok_or_else(|| SddlError::Right(f[2].to_string()))?;
    Ok(Ace {
        ace_type,
        flags: AceFlags(flags),
        mask,
        sid: Sid::parse(f[5])?,
    })
}

fn write_sid(f: &mut fmt::Formatter<'_>, sid: &Sid) -> fmt::Result {
    f.write_str(sid.alias().unwrap_or(sid.as_str()))
}

impl fmt::Display for SecurityDescriptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(o) = &self.owner {
            f.write_str("O:")?;
            write_sid(f, o)?;
        }
        if let Some(g) = &self.group {
            f.write_str("G:")?;
            write_sid(f, g)?;
        }
        match &self.dacl {
            None => f.write_str("D:NO_ACCESS_CONTROL")?,
            Some(d) => {
                f.write_str("D:")?;
                if d.protected {
                    f.write_str("P")?;
                }
                if d.auto_inherit_req {
                    f.write_str("AR")?;
                }
                if d.auto_inherited {
                    f.write_str("AI")?;
                }
                for ace in &d.aces {
                    f.write_str(match ace.ace_type {
                        AceType::Allow => "(A;",
                        AceType::Deny => "(D;",
                    })?;
                    for (l, bit) in ACE_FLAG_LETTERS {
                        if ace.flags.0 & bit != 0 {
                            f.write_str(l)?;
                        }
                    }
                    write!(f, ";{};;;", ace.mask)?;
                    write_sid(f, &ace.sid)?;
                    f.write_str(")")?;
                }
            }
        }
        Ok(())
    }
}

impl serde::Serialize for SecurityDescriptor {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for SecurityDescriptor {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        SecurityDescriptor::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests;
