//! PKCS#12 for server-generated keys: PBES2 with PBKDF2-HMAC-SHA256 and AES-256-CBC, HMAC-SHA256
//! integrity, as current Windows and OpenSSL 3 write by default (no RC2 or 3DES).

use crate::{CaError, Secret};
use p12_keystore::{
    Certificate, EncryptionAlgorithm, KeyStore, KeyStoreEntry, MacAlgorithm, PrivateKey,
    PrivateKeyChain,
};

/// `key_pkcs8` with `chain` (end-entity first), protected by `password`.
pub fn pfx_aes256(
    friendly_name: &str,
    key_pkcs8: &Secret,
    chain: &[Vec<u8>],
    password: &str,
) -> Result<Vec<u8>, CaError> {
    let bad = |e: p12_keystore::error::Error| CaError::Generate(format!("PKCS#12: {e}"));
    let key = PrivateKey::from_der(&key_pkcs8.0).map_err(bad)?;
    let certs = chain
        .iter()
        .map(|c| Certificate::from_der(c))
        .collect::<Result<Vec<_>, _>>()
        .map_err(bad)?;
    let local_id = certs
        .first()
        .map(|c| sha1_of(c.as_der()))
        .unwrap_or_default();
    let mut ks = KeyStore::new();
    ks.add_entry(
        friendly_name,
        KeyStoreEntry::PrivateKeyChain(PrivateKeyChain::new(local_id, key, certs)),
    );
    ks.writer(password)
        .encryption_algorithm(EncryptionAlgorithm::PbeWithHmacSha256AndAes256)
        .encryption_iterations(10_000)
        .mac_algorithm(MacAlgorithm::HmacSha256)
        .mac_iterations(10_000)
        .write()
        .map_err(bad)
}

fn sha1_of(b: &[u8]) -> Vec<u8> {
    use sha1::Digest;
    sha1::Sha1::digest(b).to_vec()
}
