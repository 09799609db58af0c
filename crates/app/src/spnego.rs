//! The replay key of a `Negotiate` token: what makes one Kerberos authentication unique, so
//! every node of a cluster refuses a token another node accepted (MIT's replay cache is per
//! node). Like MIT's cache, it keys on the AP-REQ's authenticator ciphertext — fresh for every
//! authentication, and the same however the SPNEGO wrapper around it is re-encoded — and falls
//! back to the whole token when the token cannot be read that far.
//!
//! Written by hand: only a few nested tag-length-value headers are read, and the Kerberos
//! mechanism token (RFC 1964 §1.1, RFC 4121 §4.1) is not DER after its OID (two raw token-id
//! bytes precede the AP-REQ), which an ASN.1 crate would not parse as one structure.

use sha2::{Digest, Sha256};

/// SPNEGO, RFC 4178: 1.3.6.1.5.5.2.
const SPNEGO: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x02];
/// Kerberos 5, RFC 1964: 1.2.840.113554.1.2.2.
const KRB5: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x12, 0x01, 0x02, 0x02];
/// The OID Windows clients also send for Kerberos 5: 1.2.840.48018.1.2.2.
const MS_KRB5: &[u8] = &[0x2a, 0x86, 0x48, 0x82, 0xf7, 0x12, 0x01, 0x02, 0x02];

/// The key a `Negotiate` token is recorded under: hex SHA-256 of its authenticator ciphertext,
/// else of the whole token.
pub fn replay_key(token: &[u8]) -> String {
    let authenticator = authenticator_cipher(token, 0);
    let mut h = Sha256::new();
    match authenticator {
        Some(c) => {
            h.update(b"authenticator:");
            h.update(c);
        }
        None => {
            h.update(b"token:");
            h.update(token);
        }
    }
    hex::encode(h.finalize())
}

/// One TLV: its tag, its contents and what follows it. Only the single-byte tags and definite
/// lengths these tokens use.
fn tlv(b: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = b.split_first()?;
    if tag & 0x1f == 0x1f {
        return None;
    }
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, &x| (acc << 8) | usize::from(x));
        (len, &rest[n..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

/// The contents of the first TLV tagged `tag` among those in `b`.
fn child(mut b: &[u8], tag: u8) -> Option<&[u8]> {
    while !b.is_empty() {
        let (t, contents, rest) = tlv(b)?;
        if t == tag {
            return Some(contents);
        }
        b = rest;
    }
    None
}

/// The authenticator ciphertext of the AP-REQ in a GSS token (SPNEGO around Kerberos, or
/// Kerberos alone). `depth` bounds the unwrapping.
fn authenticator_cipher(token: &[u8], depth: u8) -> Option<&[u8]> {
    if depth > 2 {
        return None;
    }
    // InitialContextToken: [APPLICATION 0] { thisMech OID, innerContextToken }.
    let (0x60, inner, _) = tlv(token)? else {
        return None;
    };
    let (0x06, oid, rest) = tlv(inner)? else {
        return None;
    };
    if oid == SPNEGO {
        // NegotiationToken: [0] NegTokenInit SEQUENCE { ..., [2] mechToken OCTET STRING, ... }.
        let init = child(rest, 0xa0)?;
        let seq = child(init, 0x30)?;
        let mech_token = child(child(seq, 0xa2)?, 0x04)?;
        return authenticator_cipher(mech_token, depth + 1);
    }
    if oid != KRB5 && oid != MS_KRB5 {
        return None;
    }
    // TOK_ID 01 00 (AP-REQ), then AP-REQ ::= [APPLICATION 14] SEQUENCE { ..., [4] authenticator
    // EncryptedData }, EncryptedData ::= SEQUENCE { [0] etype, [1] kvno OPTIONAL, [2] cipher }.
    let ap_req = rest.strip_prefix(&[0x01, 0x00])?;
    let (0x6e, ap, _) = tlv(ap_req)? else {
        return None;
    };
    let fields = child(ap, 0x30)?;
    let encrypted = child(child(fields, 0xa4)?, 0x30)?;
    child(child(encrypted, 0xa2)?, 0x04)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A TLV with a definite length (short or long form).
    fn t(tag: u8, contents: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        match contents.len() {
            n if n < 0x80 => out.push(n as u8),
            n if n < 0x100 => out.extend([0x81, n as u8]),
            n => out.extend([0x82, (n >> 8) as u8, n as u8]),
        }
        out.extend_from_slice(contents);
        out
    }

    /// A Kerberos mechanism token whose AP-REQ's authenticator holds `cipher`.
    fn krb5_token(oid: &[u8], cipher: &[u8], ticket: &[u8]) -> Vec<u8> {
        let encrypted = t(
            0x30,
            &[t(0xa0, &t(0x02, &[18])), t(0xa2, &t(0x04, cipher))].concat(),
        );
        let ap_req = t(
            0x6e,
            &t(
                0x30,
                &[
                    t(0xa0, &t(0x02, &[5])),
                    t(0xa1, &t(0x02, &[14])),
                    t(0xa2, &t(0x03, &[0, 0, 0, 0, 0])),
                    t(0xa3, ticket),
                    t(0xa4, &encrypted),
                ]
                .concat(),
            ),
        );
        t(0x60, &[t(0x06, oid), vec![0x01, 0x00], ap_req].concat())
    }

    fn spnego(mech_token: &[u8], extra_mech: bool) -> Vec<u8> {
        let mut mechs = t(0x06, KRB5);
        if extra_mech {
            mechs.extend(t(0x06, MS_KRB5));
        }
        let init = t(
            0x30,
            &[t(0xa0, &t(0x30, &mechs)), t(0xa2, &t(0x04, mech_token))].concat(),
        );
        t(0x60, &[t(0x06, SPNEGO), t(0xa0, &init)].concat())
    }

    #[test]
    fn a_token_is_known_by_its_authenticator_however_it_is_wrapped() {
        let cipher = [7u8; 200];
        let krb = krb5_token(KRB5, &cipher, &[0x61, 0x00]);
        let plain = replay_key(&krb);
        // The same authenticator inside SPNEGO, with another mechanism list, or under the
        // Microsoft OID: one key.
        assert_eq!(replay_key(&spnego(&krb, false)), plain);
        assert_eq!(replay_key(&spnego(&krb, true)), plain);
        assert_eq!(
            replay_key(&krb5_token(MS_KRB5, &cipher, &[0x61, 0x01, 0x00])),
            plain
        );
        // Another authentication: another key.
        assert_ne!(
            replay_key(&krb5_token(KRB5, &[8u8; 200], &[0x61, 0x00])),
            plain
        );
        // What cannot be read is keyed by its bytes (NTLM in SPNEGO, garbage, truncation).
        for other in [
            b"NTLMSSP\0\x01\0\0\0".to_vec(),
            vec![0x60, 0x80],
            krb[..krb.len() - 3].to_vec(),
        ] {
            let k = replay_key(&other);
            assert_eq!(k.len(), 64);
            assert_ne!(k, plain);
            assert_eq!(k, replay_key(&other));
        }
    }
}
