//! Smart card admin keys: the per-card key diversified from a master secret, and the
//! challenge-response that proves knowledge of a key to a card.
//!
//! - Diversification: HKDF-SHA256 (RFC 5869) with the master secret as input keying material, the
//!   key version in the salt, and the card's binding (its diversifier) and algorithm in the info, cut to the algorithm's
//!   key size; 3DES keys then get odd DES parity in every byte, as MIM's do. The version lets the
//!   master be rotated: a card keeps answering to the version it was personalised with. (MIM's
//!   own diversification is undocumented; opencm's is its own and says so in COMPATIBILITY.md.)
//! - Challenge-response: the challenge encrypted with the key in ECB, one block, no padding — an
//!   8-byte challenge under 3-key 3DES (EDE), as Base CSP cards and PIV tokens with 3DES management
//!   keys expect, or a 16-byte one under AES.

use crate::seal::Secret;
use cipher::{BlockCipherEncrypt, KeyInit};
use opencm_domain::smartcard::AdminKeyAlgorithm;
use opencm_domain::Guid;

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum CardKeyError {
    #[error("the challenge has {got} bytes; a {alg} admin key answers a challenge of {want}")]
    ChallengeLength {
        got: usize,
        want: usize,
        alg: &'static str,
    },
    #[error("the admin key has {got} bytes; a {alg} key has {want}")]
    KeyLength {
        got: usize,
        want: usize,
        alg: &'static str,
    },
}

/// The bytes of the challenge a key of `alg` answers.
pub fn challenge_len(alg: AdminKeyAlgorithm) -> usize {
    match alg {
        AdminKeyAlgorithm::Tdes => 8,
        _ => 16,
    }
}

/// The admin key of the card bound as `diversifier` (the card record's uuid; the card id for cards
/// bound before secrets followed the binding) at master `version`.
pub fn diversify(
    master: &Secret,
    version: u32,
    diversifier: Guid,
    alg: AdminKeyAlgorithm,
) -> Secret {
    let salt = format!("opencm card admin key v{version}");
    let info = format!("{diversifier}|{}", alg.name());
    let hk = hkdf::Hkdf::<sha2::Sha256>::new(Some(salt.as_bytes()), &master.0);
    let mut key = vec![0u8; alg.key_len()];
    // A 32-byte output at most: far under HKDF-SHA256's limit, so expand cannot fail.
    if hk.expand(info.as_bytes(), &mut key).is_err() {
        key.fill(0);
    }
    if alg == AdminKeyAlgorithm::Tdes {
        set_odd_parity(&mut key);
    }
    Secret(key)
}

/// The PUK of the card bound as `diversifier` at master `version` (PIV unblocks a PIN with the PUK, not with the
/// admin key): `len` characters drawn from `alphabet` by HKDF-SHA256 from the same master secret
/// under its own label, so it needs no storage of its own and follows master rotation like the
/// admin key. Each character takes 8 output bytes reduced modulo the alphabet (a bias below 2^-55).
pub fn diversify_puk(
    master: &Secret,
    version: u32,
    diversifier: Guid,
    alphabet: &[u8],
    len: usize,
) -> String {
    let salt = format!("opencm card PUK v{version}");
    let hk = hkdf::Hkdf::<sha2::Sha256>::new(Some(salt.as_bytes()), &master.0);
    let mut out = vec![0u8; 8 * len];
    if alphabet.is_empty()
        || hk
            .expand(diversifier.to_string().as_bytes(), &mut out)
            .is_err()
    {
        return String::new();
    }
    out.chunks(8)
        .map(|c| {
            let mut b = [0u8; 8];
            b.copy_from_slice(c);
            alphabet[(u64::from_be_bytes(b) % alphabet.len() as u64) as usize] as char
        })
        .collect()
}

/// Sets each byte's lowest bit so that the byte has an odd number of ones (DES key parity).
pub fn set_odd_parity(key: &mut [u8]) {
    for b in key {
        let high = *b & 0xfe;
        *b = high | u8::from(high.count_ones() % 2 == 0);
    }
}

pub fn has_odd_parity(key: &[u8]) -> bool {
    key.iter().all(|b| b.count_ones() % 2 == 1)
}

/// E(key, challenge): the answer a card expects from whoever holds its admin key.
pub fn respond(
    key: &[u8],
    alg: AdminKeyAlgorithm,
    challenge: &[u8],
) -> Result<Vec<u8>, CardKeyError> {
    if key.len() != alg.key_len() {
        return Err(CardKeyError::KeyLength {
            got: key.len(),
            want: alg.key_len(),
            alg: alg.name(),
        });
    }
    if challenge.len() != challenge_len(alg) {
        return Err(CardKeyError::ChallengeLength {
            got: challenge.len(),
            want: challenge_len(alg),
            alg: alg.name(),
        });
    }
    // Lengths are checked above, so neither new_from_slice nor the block conversion can fail;
    // an all-zero (weak) key is what cards ship with and must work.
    fn one_block<C: BlockCipherEncrypt + KeyInit>(key: &[u8], data: &[u8]) -> Vec<u8> {
        let Ok(c) = C::new_from_slice(key) else {
            return Vec::new();
        };
        let mut block = cipher::Block::<C>::default();
        block.copy_from_slice(data);
        c.encrypt_block(&mut block);
        block.to_vec()
    }
    Ok(match alg {
        AdminKeyAlgorithm::Tdes => one_block::<des::TdesEde3>(key, challenge),
        AdminKeyAlgorithm::Aes128 => one_block::<aes::Aes128>(key, challenge),
        AdminKeyAlgorithm::Aes192 => one_block::<aes::Aes192>(key, challenge),
        AdminKeyAlgorithm::Aes256 => one_block::<aes::Aes256>(key, challenge),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use base64::Engine;

    fn b64(s: &str) -> Vec<u8> {
        base64::engine::general_purpose::STANDARD.decode(s).unwrap()
    }

    #[test]
    fn puks_are_per_card_per_version_stable_and_of_the_alphabet() {
        let master = Secret(vec![9; 32]);
        let (a, b) = (Guid::new_random(), Guid::new_random());
        let p = diversify_puk(&master, 1, a, b"0123456789", 8);
        assert_eq!(p.len(), 8);
        assert!(p.bytes().all(|c| c.is_ascii_digit()), "{p}");
        assert_eq!(p, diversify_puk(&master, 1, a, b"0123456789", 8));
        assert_ne!(p, diversify_puk(&master, 1, b, b"0123456789", 8));
        assert_ne!(p, diversify_puk(&master, 2, a, b"0123456789", 8));
        let key = diversify(&master, 1, a, AdminKeyAlgorithm::Tdes);
        assert!(!String::from_utf8_lossy(&key.0).contains(&p));
    }

    #[test]
    fn the_published_vector_reproduces() {
        let out = respond(&[0; 24], AdminKeyAlgorithm::Tdes, &b64("1hFD+cz/0so=")).unwrap();
        assert_eq!(out, b64("F0Zudm4wPLY="));
    }

    #[test]
    fn diversified_keys_have_odd_parity_differ_per_card_and_version_and_repeat_per_card() {
        let master = Secret(vec![7; 32]);
        let (a, b) = (Guid::new_random(), Guid::new_random());
        let ka = diversify(&master, 1, a, AdminKeyAlgorithm::Tdes);
        assert_eq!(ka.0.len(), 24);
        assert!(has_odd_parity(&ka.0));
        assert!(
            has_odd_parity(&b64("mBVA+HopB/gc+6FuKsQqx+OX01hK1WQI")),
            "the published shape"
        );
        assert_eq!(ka.0, diversify(&master, 1, a, AdminKeyAlgorithm::Tdes).0);
        assert_ne!(ka.0, diversify(&master, 1, b, AdminKeyAlgorithm::Tdes).0);
        assert_ne!(ka.0, diversify(&master, 2, a, AdminKeyAlgorithm::Tdes).0);
        assert_ne!(
            ka.0,
            diversify(&Secret(vec![8; 32]), 1, a, AdminKeyAlgorithm::Tdes).0
        );
        assert_eq!(
            diversify(&master, 1, a, AdminKeyAlgorithm::Aes256).0.len(),
            32
        );
    }

    #[test]
    fn wrong_lengths_are_named() {
        assert_eq!(
            respond(&[0; 24], AdminKeyAlgorithm::Tdes, &[0; 16]).unwrap_err(),
            CardKeyError::ChallengeLength {
                got: 16,
                want: 8,
                alg: "tdes"
            }
        );
        assert!(respond(&[0; 16], AdminKeyAlgorithm::Tdes, &[0; 8]).is_err());
    }
}
