//! A signed-in browser session of the portal, and when it ends: at its absolute expiry, or when
//! it has been idle longer than allowed. Its last use is written back at most once a minute (a
//! page view is a read, not a write).

use crate::{Timestamp, UserId};

/// How often a session's last use is written back: the idle expiry is exact to this much.
pub const TOUCH_EVERY_MICROS: i64 = 60 * 1_000_000;

/// A session as stored: by the SHA-256 of its cookie, never the cookie itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionRecord {
    pub hash: String,
    pub user: UserId,
    /// How the user signed in: `password`, `oidc`, `kerberos`, `certificate`.
    pub method: String,
    pub created: Timestamp,
    pub last_seen: Timestamp,
    pub expires: Timestamp,
}

/// How long sessions last.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionLimits {
    /// Ends after this long without a request.
    pub idle_micros: i64,
    /// Ends this long after sign-in, used or not.
    pub absolute_micros: i64,
}

impl Default for SessionLimits {
    fn default() -> Self {
        SessionLimits {
            idle_micros: 30 * 60 * 1_000_000,
            absolute_micros: 8 * 3600 * 1_000_000,
        }
    }
}

/// What a request does with the session it presents.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionUse {
    /// Valid; `touch` when its last use must be written back.
    Live { touch: bool },
    /// Past its absolute expiry or idle too long: it is deleted and the user signs in again.
    Ended,
}

impl SessionRecord {
    /// A new session of `user` signed in at `now`.
    pub fn new(hash: String, user: UserId, method: &str, now: Timestamp, l: SessionLimits) -> Self {
        SessionRecord {
            hash,
            user,
            method: method.into(),
            created: now,
            last_seen: now,
            expires: Timestamp::from_micros(now.micros().saturating_add(l.absolute_micros)),
        }
    }

    pub fn use_at(&self, now: Timestamp, l: SessionLimits) -> SessionUse {
        let idle = now.micros().saturating_sub(self.last_seen.micros());
        if now >= self.expires || idle >= l.idle_micros {
            return SessionUse::Ended;
        }
        SessionUse::Live {
            touch: idle >= TOUCH_EVERY_MICROS,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> Timestamp {
        Timestamp::from_micros(1_700_000_000_000_000 + s * 1_000_000)
    }

    #[test]
    fn a_session_ends_when_idle_too_long_or_past_its_absolute_expiry() {
        let l = SessionLimits {
            idle_micros: 600 * 1_000_000,
            absolute_micros: 3600 * 1_000_000,
        };
        let mut s = SessionRecord::new(
            "h".into(),
            UserId::from(crate::Guid::default()),
            "password",
            at(0),
            l,
        );
        assert_eq!(s.use_at(at(30), l), SessionUse::Live { touch: false });
        assert_eq!(s.use_at(at(61), l), SessionUse::Live { touch: true });
        assert_eq!(s.use_at(at(600), l), SessionUse::Ended);
        // Kept alive by use, it still ends at its absolute expiry.
        s.last_seen = at(3590);
        assert_eq!(s.use_at(at(3595), l), SessionUse::Live { touch: false });
        assert_eq!(s.use_at(at(3600), l), SessionUse::Ended);
    }
}
