//! PKCS#7 / CMS "certs-only" (a degenerate SignedData with certificates and no signers, RFC 5652
//! §5), the certificate response MIM CM clients install (`Flags` 0x10000). Written with yasna, the
//! DER writer rcgen already uses, since the structure is fixed and small.

use yasna::models::ObjectIdentifier;
use yasna::Tag;

const SIGNED_DATA: &[u64] = &[1, 2, 840, 113549, 1, 7, 2];
const DATA: &[u64] = &[1, 2, 840, 113549, 1, 7, 1];

/// `certs` in DER, the end-entity first; the result is DER.
pub fn certs_only(certs: &[Vec<u8>]) -> Vec<u8> {
    yasna::construct_der(|w| {
        w.write_sequence(|w| {
            w.next()
                .write_oid(&ObjectIdentifier::from_slice(SIGNED_DATA));
            w.next().write_tagged(Tag::context(0), |w| {
                w.write_sequence(|w| {
                    w.next().write_u8(1); // version
                    w.next().write_set(|_| {}); // digestAlgorithms
                    w.next().write_sequence(|w| {
                        w.next().write_oid(&ObjectIdentifier::from_slice(DATA))
                    });
                    w.next().write_tagged_implicit(Tag::context(0), |w| {
                        w.write_set_of(|w| {
                            for c in certs {
                                w.next().write_der(c);
                            }
                        })
                    });
                    w.next().write_set(|_| {}); // signerInfos
                })
            });
        })
    })
}
