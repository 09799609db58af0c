//! Access masks and their SDDL right letters (MS-DTYP 2.5.1.1, the directory-service set).

use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct AccessMask(pub u32);

/// Letters in the order the formatter writes them.
const LETTERS: &[(&str, u32)] = &[
    ("GA", 0x1000_0000),
    ("GR", 0x8000_0000),
    ("GW", 0x4000_0000),
    ("GX", 0x2000_0000),
    ("CC", 0x0000_0001),
    ("DC", 0x0000_0002),
    ("LC", 0x0000_0004),
    ("SW", 0x0000_0008),
    ("RP", 0x0000_0010),
    ("WP", 0x0000_0020),
    ("DT", 0x0000_0040),
    ("LO", 0x0000_0080),
    ("CR", 0x0000_0100),
    ("SD", 0x0001_0000),
    ("RC", 0x0002_0000),
    ("WD", 0x0004_0000),
    ("WO", 0x0008_0000),
];

impl AccessMask {
    pub const CREATE_CHILD: AccessMask = AccessMask(0x1);
    pub const DELETE_CHILD: AccessMask = AccessMask(0x2);
    pub const LIST_CHILDREN: AccessMask = AccessMask(0x4);
    pub const SELF_WRITE: AccessMask = AccessMask(0x8);
    pub const READ_PROPERTY: AccessMask = AccessMask(0x10);
    pub const WRITE_PROPERTY: AccessMask = AccessMask(0x20);
    pub const DELETE_TREE: AccessMask = AccessMask(0x40);
    pub const LIST_OBJECT: AccessMask = AccessMask(0x80);
    pub const CONTROL_ACCESS: AccessMask = AccessMask(0x100);
    pub const READ_CONTROL: AccessMask = AccessMask(0x2_0000);
    pub const WRITE_DAC: AccessMask = AccessMask(0x4_0000);
    pub const GENERIC_ALL: AccessMask = AccessMask(0x1000_0000);
    /// Every specific and standard right of a directory object (what GA maps to).
    pub const FULL: AccessMask = AccessMask(0x000F_01FF);

    pub fn contains(self, other: AccessMask) -> bool {
        self.0 & other.0 == other.0
    }

    pub fn union(self, other: AccessMask) -> AccessMask {
        AccessMask(self.0 | other.0)
    }

    /// Generic rights mapped to specific ones with the Active Directory generic mapping.
    pub fn map_generic(self) -> AccessMask {
        let mut m = self.0 & 0x0FFF_FFFF;
        if self.0 & 0x1000_0000 != 0 {
            m |= Self::FULL.0;
        }
        if self.0 & 0x8000_0000 != 0 {
            m |= 0x2_0000 | 0x4 | 0x10 | 0x80; // RC LC RP LO
        }
        if self.0 & 0x4000_0000 != 0 {
            m |= 0x2_0000 | 0x8 | 0x20; // RC SW WP
        }
        if self.0 & 0x2000_0000 != 0 {
            m |= 0x2_0000 | 0x4; // RC LC
        }
        AccessMask(m)
    }

    /// Letters (`CCDCRC`), or a hex number (`0x1F01FF`), case-insensitive.
    pub fn parse(s: &str) -> Option<AccessMask> {
        if s.is_empty() {
            return Some(AccessMask(0));
        }
        if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
            return u32::from_str_radix(h, 16).ok().map(AccessMask);
        }
        if !s.len().is_multiple_of(2) || !s.is_ascii() {
            return None;
        }
        let up = s.to_ascii_uppercase();
        let mut m = 0u32;
        for chunk in up.as_bytes().chunks(2) {
            let l = std::str::from_utf8(chunk).ok()?;
            m |= LETTERS.iter().find(|(n, _)| *n == l)?.1;
        }
        Some(AccessMask(m))
    }
}

impl fmt::Display for AccessMask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let known = LETTERS.iter().fold(0, |a, (_, b)| a | b);
        if self.0 & !known != 0 {
            return write!(f, "0x{:x}", self.0);
        }
        for (l, b) in LETTERS {
            if self.0 & b != 0 {
                f.write_str(l)?;
            }
        }
        Ok(())
    }
}
