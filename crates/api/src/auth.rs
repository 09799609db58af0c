//! Bearer tokens: opaque random strings shown once at creation and stored only as their SHA-256.
//! Tokens carry 256 bits of randomness, so a fast hash is the right tool (a password hash would
//! only add latency to every request without adding security).

use opencm_domain::{Principal, Timestamp};
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const TOKEN_PREFIX: &str = "ocm_";

/// A new token: `ocm_` and 43 base64url characters.
pub fn generate_token() -> String {
    use base64::Engine;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!(
        "{TOKEN_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Resolved tokens kept briefly in memory, keyed by hash, so reads do not cost a database round
/// trip each. A token stops working at its expiry exactly (the expiry is cached with it); one
/// deleted in the database, or a user's changed groups, take effect within the TTL.
pub struct TokenCache {
    ttl: Duration,
    map: Mutex<HashMap<String, (Principal, Instant, Timestamp)>>,
}

const CACHE_MAX: usize = 10_000;

impl TokenCache {
    pub fn new(ttl: Duration) -> Self {
        TokenCache {
            ttl,
            map: Mutex::new(HashMap::new()),
        }
    }

    pub fn get(&self, hash: &str, now: Timestamp) -> Option<Principal> {
        let map = self.map.lock().ok()?;
        let (p, at, expires) = map.get(hash)?;
        let expired = expires.is_set() && *expires <= now;
        (at.elapsed() < self.ttl && !expired).then(|| p.clone())
    }

    pub fn put(&self, hash: String, p: Principal, expires: Timestamp) {
        if self.ttl.is_zero() {
            return;
        }
        if let Ok(mut map) = self.map.lock() {
            if map.len() >= CACHE_MAX {
                map.retain(|_, (_, at, _)| at.elapsed() < self.ttl);
                if map.len() >= CACHE_MAX {
                    map.clear();
                }
            }
            map.insert(hash, (p, Instant::now(), expires));
        }
    }
}
