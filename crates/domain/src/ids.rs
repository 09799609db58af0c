//! GUID identifiers as MIM CM writes and accepts them.
//!
//! Accepted: any case, with or without braces (`{C6BAD97C-F97F-4920-8947-BE980C98C6B5}`).
//! Written: lowercase, hyphenated. The all-zero GUID means "none".

use std::fmt;
use std::str::FromStr;

#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Guid(uuid::Uuid);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not a GUID (expected 32 hex digits as 8-4-4-4-12, braces optional)")]
pub struct GuidError(pub String);

impl Guid {
    pub const NIL: Guid = Guid(uuid::Uuid::nil());

    /// A new random (version 4) GUID.
    pub fn new_random() -> Self {
        Guid(uuid::Uuid::new_v4())
    }

    /// A new time-ordered (version 7) GUID, for every row opencm creates by the thousand (requests,
    /// profiles, smart cards). Ordering by id is ordering by creation, which keyset pagination
    /// relies on, and rows made together sit together in every B-tree keyed by them: the next
    /// lookup or insert finds its index page already in cache instead of reading (and, for an
    /// insert, dirtying) a random one. Random (version 4) profile GUIDs cost each completion two
    /// cold index pages and each enrolment two dirtied ones (docs/PERFORMANCE.md, issue #6). Nothing on the wire relies on a
    /// GUID being unguessable: access is decided by each object's security descriptor.
    pub fn new_time_ordered() -> Self {
        Guid(uuid::Uuid::now_v7())
    }

    /// A GUID from its 128 bits (fixed ids in tests and tables).
    pub const fn from_u128(v: u128) -> Self {
        Guid(uuid::Uuid::from_u128(v))
    }

    pub fn is_nil(&self) -> bool {
        self.0.is_nil()
    }

    pub fn from_uuid(u: uuid::Uuid) -> Self {
        Guid(u)
    }

    /// A GUID in the byte order Windows stores it (`objectGUID`): the first three fields little
    /// endian, the last eight bytes as they are.
    pub fn from_windows_bytes(b: &[u8]) -> Option<Self> {
        let b: [u8; 16] = b.try_into().ok()?;
        Some(Guid(uuid::Uuid::from_bytes_le(b)))
    }

    /// The bytes of `from_windows_bytes`, for searching `objectGUID`.
    pub fn to_windows_bytes(&self) -> [u8; 16] {
        self.0.to_bytes_le()
    }
}

impl FromStr for Guid {
    type Err = GuidError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        let inner = t
            .strip_prefix('{')
            .and_then(|x| x.strip_suffix('}'))
            .unwrap_or(t);
        // Only the hyphenated 36-character form (MIM never sends the simple or URN forms).
        if inner.len() != 36 {
            return Err(GuidError(s.to_string()));
        }
        uuid::Uuid::parse_str(inner)
            .map(Guid)
            .map_err(|_| GuidError(s.to_string()))
    }
}

impl fmt::Display for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0.hyphenated(), f)
    }
}

impl fmt::Debug for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Guid({})", self.0.hyphenated())
    }
}

impl serde::Serialize for Guid {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Guid {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A GUID that names one kind of object: a request's id cannot be passed where a profile's is
/// expected. On the wire and in the database each is the GUID it wraps; absence is `Option`, never
/// the all-zero GUID (which exists only at the edges: MIM's wire format and the stored columns).
macro_rules! typed_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Guid);

        impl $name {
            /// A new time-ordered id (see `Guid::new_time_ordered`).
            pub fn new_time_ordered() -> Self {
                $name(Guid::new_time_ordered())
            }

            pub const fn from_guid(g: Guid) -> Self {
                $name(g)
            }

            pub const fn guid(self) -> Guid {
                self.0
            }

            /// The id, or `None` for the all-zero GUID MIM writes for "none".
            pub fn from_nullable(g: Guid) -> Option<Self> {
                (!g.is_nil()).then_some($name(g))
            }

            /// The GUID MIM writes for an optional id: the all-zero GUID for `None`.
            pub fn nullable(id: Option<Self>) -> Guid {
                id.map_or(Guid::NIL, |i| i.0)
            }
        }

        impl From<Guid> for $name {
            fn from(g: Guid) -> Self {
                $name(g)
            }
        }

        impl From<$name> for Guid {
            fn from(i: $name) -> Self {
                i.0
            }
        }

        impl PartialEq<Guid> for $name {
            fn eq(&self, g: &Guid) -> bool {
                self.0 == *g
            }
        }

        impl FromStr for $name {
            type Err = GuidError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                s.parse().map($name)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0 .0.hyphenated())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                self.0.serialize(s)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                Guid::deserialize(d).map($name)
            }
        }
    };
}

typed_id!(
    /// A request's id (`RequestUuid`).
    RequestId
);
typed_id!(
    /// A profile's id (`ProfileUuid`), software or on a card.
    ProfileId
);
typed_id!(
    /// A smart card record's id (`SmartcardUuid`): one binding of a physical card.
    SmartcardId
);
typed_id!(
    /// A user's id (`objectGUID` in a directory; opencm's own for local users).
    UserId
);
typed_id!(
    /// A profile template's id (`ProfileTemplateUuid`).
    TemplateId
);

#[cfg(test)]
mod tests {
    #[test]
    fn windows_byte_order_swaps_the_first_three_fields() {
        let g: Guid = "c6bad97c-f97f-4920-8947-be980c98c6b5".parse().unwrap();
        let b = g.to_windows_bytes();
        assert_eq!(&b[..8], &[0x7c, 0xd9, 0xba, 0xc6, 0x7f, 0xf9, 0x20, 0x49]);
        assert_eq!(&b[8..], &[0x89, 0x47, 0xbe, 0x98, 0x0c, 0x98, 0xc6, 0xb5]);
        assert_eq!(Guid::from_windows_bytes(&b), Some(g));
        assert_eq!(Guid::from_windows_bytes(&b[..15]), None);
    }

    use super::*;

    #[test]
    fn accepts_braces_and_upper_case_and_writes_lowercase() {
        let g: Guid = "{C6BAD97C-F97F-4920-8947-BE980C98C6B5}".parse().unwrap();
        assert_eq!(g.to_string(), "c6bad97c-f97f-4920-8947-be980c98c6b5");
        let h: Guid = "c6bad97c-f97f-4920-8947-be980c98c6b5".parse().unwrap();
        assert_eq!(g, h);
    }

    #[test]
    fn a_typed_id_is_its_guid_on_the_wire_and_absence_is_none_inside() {
        let g: Guid = "{C6BAD97C-F97F-4920-8947-BE980C98C6B5}".parse().unwrap();
        let r = RequestId::from_guid(g);
        assert_eq!(r.to_string(), "c6bad97c-f97f-4920-8947-be980c98c6b5");
        assert_eq!(
            "c6bad97c-f97f-4920-8947-be980c98c6b5".parse::<RequestId>(),
            Ok(r)
        );
        assert_eq!(
            format!("{r:?}"),
            "RequestId(c6bad97c-f97f-4920-8947-be980c98c6b5)"
        );
        assert_eq!(ProfileId::from_nullable(Guid::NIL), None);
        assert_eq!(ProfileId::nullable(None), Guid::NIL);
        assert_eq!(ProfileId::nullable(ProfileId::from_nullable(g)), g);
        assert_eq!(serde_json::to_string(&r).unwrap(), format!("\"{g}\""));
    }

    #[test]
    fn rejects_garbage_and_simple_form() {
        for bad in [
            "",
            "nope",
            "c6bad97cf97f49208947be980c98c6b5",
            "{c6bad97c-f97f-4920-8947-be980c98c6b5",
            "c6bad97c-f97f-4920-8947-be980c98c6bz",
        ] {
            assert!(bad.parse::<Guid>().is_err(), "{bad}");
        }
    }
}
