//! The portal's sign-in: local users' passwords (argon2id) and browser sessions kept in the
//! database, so that any node of a cluster serves any session.
//!
//! A session cookie is 256 random bits; only its SHA-256 is stored. Its CSRF token is derived
//! from the cookie (`csrf_token`), so a form of one session cannot be replayed in another and
//! nothing more is stored. A session ends at its absolute expiry, after being idle too long
//! (`opencm_domain::session`), at sign-out, and — with every other session of its user — when the
//! user is disabled or given a new password; its user is resolved on each request through the
//! users who may sign in, so a user removed from the directory is signed out at the next click.
//!
//! Sign-in failures answer the same for an unknown user, a user without a password and a wrong
//! password (an unknown user costs the same argon2 work), and are limited per account and per
//! address (`Throttle`).

use crate::error::{AppError, ErrorCode};
use crate::identity::{generate_token, hash_token};
use crate::ports::AdminEvent;
use crate::App;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use opencm_domain::offboarding::Actor;
use opencm_domain::session::{SessionLimits, SessionRecord, SessionUse};
use opencm_domain::Principal;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The shortest password `opencm user passwd` accepts (NIST SP 800-63B: at least 8; more for
/// accounts that approve and administer, so one rule for all).
pub const MIN_PASSWORD_CHARS: usize = 12;
/// The longest: argon2 hashes anything, but a megabyte "password" is an attack, not a secret.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// What a sign-in attempt comes to.
pub enum SignIn {
    /// Signed in: the session cookie (shown to this browser only) and the user.
    Session {
        cookie: String,
        user: Box<Principal>,
    },
    /// Unknown user, no password, wrong password or disabled: the same answer for all.
    Refused,
    /// Too many failures for this account or this address: try again after this long.
    Throttled { retry_after: Duration },
}

/// The CSRF token of a session: a keyed digest of its cookie (never the cookie itself).
pub fn csrf_token(cookie: &str) -> String {
    let d = Sha256::new()
        .chain_update(b"opencm portal csrf\0")
        .chain_update(cookie.as_bytes())
        .finalize();
    hex::encode(&d[..20])
}

/// Whether `sent` is the CSRF token of `cookie`, compared in constant time.
pub fn csrf_matches(cookie: &str, sent: &str) -> bool {
    let want = csrf_token(cookie);
    want.len() == sent.len()
        && want
            .bytes()
            .zip(sent.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// Sign-in attempts counted per account and per address over a window: each attempt is counted
/// when it starts (so a burst of parallel guesses is counted as it arrives, not after the
/// argon2 work), and a success takes its own attempt back and clears the account. In memory, per
/// node: a cluster of N nodes allows N times the attempts, still few enough to stop guessing.
pub struct Throttle {
    window: Duration,
    per_account: u32,
    per_address: u32,
    attempts: Mutex<HashMap<String, (u32, Instant)>>,
}

impl Default for Throttle {
    fn default() -> Self {
        Throttle {
            window: Duration::from_secs(15 * 60),
            per_account: 5,
            per_address: 20,
            attempts: Mutex::new(HashMap::new()),
        }
    }
}

/// Entries kept before the expired ones are swept.
const THROTTLE_SWEEP: usize = 10_000;

impl Throttle {
    /// The account's key: at most 256 characters of its login, so a megabyte-long "login" costs
    /// what a short one does.
    fn keys(login: &str, from: IpAddr) -> [String; 2] {
        let login: String = login.chars().take(256).collect();
        [format!("u:{}", login.to_lowercase()), format!("a:{from}")]
    }

    /// Counts an attempt, or answers how long to wait when the account or the address has used
    /// up its attempts (then nothing is counted).
    fn attempt(&self, login: &str, from: IpAddr) -> Result<(), Duration> {
        let Ok(mut map) = self.attempts.lock() else {
            return Ok(());
        };
        if map.len() > THROTTLE_SWEEP {
            map.retain(|_, (_, at)| at.elapsed() < self.window);
        }
        let [user, addr] = Self::keys(login, from);
        for (key, max) in [(&user, self.per_account), (&addr, self.per_address)] {
            if let Some((n, at)) = map.get(key) {
                if *n >= max && at.elapsed() < self.window {
                    return Err(self.window.saturating_sub(at.elapsed()));
                }
            }
        }
        for key in [user, addr] {
            let e = map.entry(key).or_insert((0, Instant::now()));
            if e.1.elapsed() >= self.window {
                *e = (0, Instant::now());
            }
            e.0 += 1;
        }
        Ok(())
    }

    fn succeeded(&self, login: &str, from: IpAddr) {
        if let Ok(mut map) = self.attempts.lock() {
            let [user, addr] = Self::keys(login, from);
            map.remove(&user);
            if let Some(e) = map.get_mut(&addr) {
                e.0 = e.0.saturating_sub(1);
            }
        }
    }
}

/// Hashes a password with argon2id at the crate's default cost (19 MiB, 2 passes; OWASP's
/// recommendation) and a random salt, as a PHC string.
pub(crate) fn hash_password(password: &str) -> Result<String, AppError> {
    let mut bytes = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut bytes);
    let salt =
        SaltString::encode_b64(&bytes).map_err(|e| AppError::internal(format!("salt: {e}")))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AppError::internal(format!("argon2: {e}")))
}

/// A hash of no one's password: an unknown user costs the same work as a wrong password.
fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash_password("opencm decoy password").unwrap_or_default())
}

pub(crate) fn verify(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

impl App {
    /// `opencm user passwd LOGIN`: sets a local user's portal password, ends the user's open
    /// sessions, and records who did it (never the password).
    pub async fn set_password(
        &self,
        actor: Actor<'_>,
        login: &str,
        password: &str,
    ) -> Result<(), AppError> {
        actor
            .authorize()
            .map_err(|e| AppError::new(ErrorCode::AccessDenied, e.to_string()))?;
        let chars = password.chars().count();
        if chars < MIN_PASSWORD_CHARS || password.len() > MAX_PASSWORD_BYTES {
            return Err(AppError::new(
                ErrorCode::InvalidRequest,
                format!(
                    "A password has at least {MIN_PASSWORD_CHARS} characters and at most {MAX_PASSWORD_BYTES} bytes."
                ),
            ));
        }
        let user = self.local_user(login).await?;
        let password = password.to_string();
        let phc = tokio::task::spawn_blocking(move || hash_password(&password))
            .await
            .map_err(|e| AppError::internal(format!("hashing task: {e}")))??;
        let event = AdminEvent {
            at: self.clock.now(),
            actor: actor.name(),
            action: "SetPassword",
            subject: format!("{} ({})", user.login, user.uuid),
        };
        self.sessions.set_password(user.uuid, &phc, &event).await?;
        Ok(())
    }

    /// A portal sign-in with a local user's password.
    pub async fn sign_in_password(
        &self,
        login: &str,
        password: &str,
        from: IpAddr,
    ) -> Result<SignIn, AppError> {
        if let Err(retry_after) = self.throttle.attempt(login, from) {
            tracing::info!(login = ?opencm_domain::limits::excerpt(login), %from, "sign-in throttled");
            return Ok(SignIn::Throttled { retry_after });
        }
        let stored = if login.is_empty() || login.len() > 256 || password.len() > MAX_PASSWORD_BYTES
        {
            None
        } else {
            self.sessions.password_of(login).await?
        };
        let (user, phc) = match &stored {
            Some((u, phc)) => (Some(*u), phc.clone()),
            None => (None, decoy_hash().to_string()),
        };
        let password = password.to_string();
        let matches = tokio::task::spawn_blocking(move || verify(&password, &phc))
            .await
            .map_err(|e| AppError::internal(format!("verifying task: {e}")))?;
        let principal = match (user, matches) {
            (Some(u), true) => self.sign_in_users().user_by_uuid(u).await?,
            _ => None,
        };
        let Some(principal) = principal else {
            tracing::info!(login = ?opencm_domain::limits::excerpt(login), %from, "portal sign-in refused");
            crate::metrics::authentication_failed("password");
            return Ok(SignIn::Refused);
        };
        self.throttle.succeeded(login, from);
        let cookie = self.start_session(&principal, "password").await?;
        Ok(SignIn::Session {
            cookie,
            user: Box::new(principal),
        })
    }

    /// A new session for a user who has proved who they are (`method`: how); its cookie.
    pub async fn start_session(&self, user: &Principal, method: &str) -> Result<String, AppError> {
        let cookie = generate_token();
        let record = SessionRecord::new(
            hash_token(&cookie),
            user.uuid,
            method,
            self.clock.now(),
            self.session_limits,
        );
        self.sessions.create_session(&record).await?;
        tracing::info!(login = ?user.login, method, "portal session started");
        Ok(cookie)
    }

    /// The user of a session cookie, if the session is live and its user may still sign in.
    pub async fn session_user(&self, cookie: &str) -> Result<Option<Principal>, AppError> {
        let hash = hash_token(cookie);
        let Some(s) = self.sessions.session(&hash).await? else {
            return Ok(None);
        };
        let now = self.clock.now();
        match s.use_at(now, self.session_limits) {
            SessionUse::Ended => {
                self.sessions.end_session(&hash).await?;
                Ok(None)
            }
            SessionUse::Live { touch } => {
                let Some(user) = self.sign_in_users().user_by_uuid(s.user).await? else {
                    self.sessions.end_session(&hash).await?;
                    return Ok(None);
                };
                if touch {
                    self.sessions.touch_session(&hash, now).await?;
                }
                Ok(Some(user))
            }
        }
    }

    /// Signs a session out (its cookie stops working on every node).
    pub async fn end_session(&self, cookie: &str) -> Result<(), AppError> {
        Ok(self.sessions.end_session(&hash_token(cookie)).await?)
    }

    pub fn with_session_limits(self, session_limits: SessionLimits) -> App {
        App {
            session_limits,
            ..self
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_csrf_token_belongs_to_its_session_only() {
        let (a, b) = (generate_token(), generate_token());
        assert!(csrf_matches(&a, &csrf_token(&a)));
        assert!(!csrf_matches(&a, &csrf_token(&b)));
        assert!(!csrf_matches(&a, ""));
        assert!(!csrf_token(&a).contains(&a[4..12]));
    }

    #[test]
    fn passwords_verify_against_their_argon2id_hash_only() {
        let phc = hash_password("correct horse battery").unwrap();
        assert!(phc.starts_with("$argon2id$"));
        assert!(verify("correct horse battery", &phc));
        assert!(!verify("correct horse batterY", &phc));
        assert!(!verify("correct horse battery", "not a hash"));
    }

    #[test]
    fn the_throttle_counts_attempts_as_they_start_and_a_success_gives_its_own_back() {
        let t = Throttle::default();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        for _ in 0..4 {
            assert!(t.attempt("Alice", ip).is_ok());
        }
        t.succeeded("alice", ip);
        for _ in 0..5 {
            assert!(t.attempt("alice", ip).is_ok());
        }
        // The sixth is refused, from any address, whatever the case of the login; others go on.
        assert!(t.attempt("ALICE", other).is_err());
        assert!(t.attempt("bob", other).is_ok());
        // An address that tries many accounts is stopped for all of them.
        for i in 0..19 {
            assert!(t.attempt(&format!("user{i}"), other).is_ok(), "{i}");
        }
        assert!(t.attempt("carol", other).is_err());
        // A megabyte "login" is one short key.
        let long = "x".repeat(1 << 20);
        assert!(t.attempt(&long, ip).is_ok());
        assert!(t.attempts.lock().unwrap().keys().all(|k| k.len() < 300));
    }
}
