//! Secrets at rest: AES-256-GCM under a 256-bit key-encryption key (KEK). The sealed form is
//! `v1:` + base64(nonce ‖ ciphertext+tag); a wrong KEK or tampered data fails to open.

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use rand::RngCore;
use std::fmt;

/// Key material that must never be printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub Vec<u8>);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[derive(Clone)]
pub struct Kek([u8; 32]);

impl fmt::Debug for Kek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Kek(***)")
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealError {
    #[error("the key-encryption key must be 32 bytes, base64-encoded")]
    BadKek,
    #[error("sealed data is malformed")]
    Malformed,
    #[error("sealed data could not be opened: wrong key-encryption key, or the data was altered")]
    Open,
}

impl Kek {
    pub fn generate() -> Kek {
        let mut k = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut k);
        Kek(k)
    }

    /// From its base64 text form (as kept in the KEK file or `OPENCM_CA_KEK`).
    pub fn from_base64(text: &str) -> Result<Kek, SealError> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|_| SealError::BadKek)?;
        let arr: [u8; 32] = bytes.try_into().map_err(|_| SealError::BadKek)?;
        Ok(Kek(arr))
    }

    pub fn to_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.0)
    }

    pub fn seal(&self, plain: &Secret) -> String {
        let cipher = Aes256Gcm::new((&self.0).into());
        let mut nonce = [0u8; 12];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        // Encryption with a fresh nonce and a valid key cannot fail.
        let ct = cipher
            .encrypt(Nonce::from_slice(&nonce), plain.0.as_slice())
            .unwrap_or_default();
        let mut out = nonce.to_vec();
        out.extend(ct);
        format!(
            "v1:{}",
            base64::engine::general_purpose::STANDARD.encode(out)
        )
    }

    pub fn open(&self, sealed: &str) -> Result<Secret, SealError> {
        let b64 = sealed.strip_prefix("v1:").ok_or(SealError::Malformed)?;
        let raw = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|_| SealError::Malformed)?;
        if raw.len() < 12 + 16 {
            return Err(SealError::Malformed);
        }
        let cipher = Aes256Gcm::new((&self.0).into());
        let (nonce, ct) = raw.split_at(12);
        cipher
            .decrypt(Nonce::from_slice(nonce), ct)
            .map(Secret)
            .map_err(|_| SealError::Open)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn sealed_secrets_open_only_with_their_kek_and_unaltered() {
        let kek = Kek::generate();
        let s = Secret(b"private key bytes".to_vec());
        let sealed = kek.seal(&s);
        assert!(!sealed.contains("private"));
        assert_eq!(kek.open(&sealed).unwrap(), s);
        assert_ne!(kek.seal(&s), sealed, "a fresh nonce each time");
        assert_eq!(Kek::generate().open(&sealed), Err(SealError::Open));
        let mut tampered = sealed.clone().into_bytes();
        let n = tampered.len() - 3;
        tampered[n] = if tampered[n] == b'A' { b'B' } else { b'A' };
        assert_eq!(
            kek.open(std::str::from_utf8(&tampered).unwrap()),
            Err(SealError::Open)
        );
        assert_eq!(
            Kek::from_base64(&kek.to_base64())
                .unwrap()
                .open(&sealed)
                .unwrap(),
            s
        );
        assert_eq!(Kek::from_base64("c2hvcnQ=").unwrap_err(), SealError::BadKek);
        assert_eq!(format!("{s:?} {kek:?}"), "Secret(***) Kek(***)");
    }
}
