//! The CA's artefacts checked by an implementation that is not ours: the `openssl` command.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use opencm_ca::*;
use opencm_domain::certificate::KeyUsage;
use opencm_domain::issued::RevocationReason;
use std::path::{Path, PathBuf};
use std::process::Command;
use time::OffsetDateTime;

/// A scratch directory, removed when the test ends.
struct Dir(PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Dir {
    fn new() -> Dir {
        let d = std::env::temp_dir().join(format!("opencm-ca-{}", rand_name()));
        std::fs::create_dir_all(&d).unwrap();
        Dir(d)
    }
    fn p(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
    fn write(&self, name: &str, data: impl AsRef<[u8]>) -> PathBuf {
        std::fs::write(self.p(name), data).unwrap();
        self.p(name)
    }
}

fn rand_name() -> String {
    use rand::RngCore;
    let mut b = [0u8; 8];
    rand::rngs::OsRng.fill_bytes(&mut b);
    upper_hex(&b)
}

fn openssl(args: &[&str]) -> (bool, String) {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl is installed (.ci/run installs it)");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A key and CSR made by openssl; the CSR's subject is deliberately not what opencm will issue.
fn openssl_csr(d: &Dir, name: &str, keyspec: &[&str]) -> String {
    let key = d.p(&format!("{name}.key"));
    let csr = d.p(&format!("{name}.csr"));
    let mut args = vec![
        "req",
        "-new",
        "-nodes",
        "-subj",
        "/CN=Chosen By The Client",
        "-keyout",
        path(&key),
        "-out",
        path(&csr),
    ];
    args.extend_from_slice(keyspec);
    let (ok, out) = openssl(&args);
    assert!(ok, "{out}");
    std::fs::read_to_string(csr).unwrap()
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

fn issue(ca: &EmbeddedCa, csr: &VerifiedCsr) -> Issued {
    let mut serial = [0u8; 16];
    serial.copy_from_slice(&rand_name().as_bytes()[..16]);
    ca.issue(&IssueRequest {
        key: csr,
        common_name: "Alice Example",
        upn: Some("alice@corp.example"),
        sid_extension: None,
        sid_uri: None,
        email: Some("alice@corp.example"),
        server_names: &[],
        key_usages: &[KeyUsage::DigitalSignature],
        extended_key_usages: &[
            "1.3.6.1.5.5.7.3.2".to_string(),
            "1.3.6.1.5.5.7.3.4".to_string(),
        ],
        not_before: now() - time::Duration::minutes(5),
        not_after: now() + time::Duration::days(365),
        serial,
    })
    .unwrap()
}

#[test]
fn certificates_from_p256_and_rsa_requests_verify_against_the_ca_with_our_subject() {
    let d = Dir::new();
    let (ca, material) = EmbeddedCa::generate("opencm Test CA", now(), 10).unwrap();
    let ca_pem = d.write("ca.pem", &material.cert_pem);
    for (name, spec) in [
        (
            "ec",
            vec!["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
        ),
        ("rsa", vec!["-newkey", "rsa:2048"]),
    ] {
        let csr = parse_csr(&openssl_csr(&d, name, &spec)).unwrap();
        assert_eq!(csr.key_bits, if name == "ec" { 256 } else { 2048 });
        let issued = issue(&ca, &csr);
        let cert = d.write(&format!("{name}.pem"), pem("CERTIFICATE", &issued.der));
        let (ok, out) = openssl(&["verify", "-CAfile", path(&ca_pem), path(&cert)]);
        assert!(ok, "{out}");
        let (_, text) = openssl(&[
            "x509",
            "-in",
            path(&cert),
            "-noout",
            "-text",
            "-serial",
            "-fingerprint",
            "-sha1",
        ]);
        assert!(
            text.contains("Subject: CN=Alice Example")
                || text.contains("Subject: CN = Alice Example"),
            "{text}"
        );
        assert!(!text.contains("Chosen By The Client"));
        assert!(
            text.contains("email:alice@corp.example")
                && text.contains("TLS Web Client Authentication"),
            "{text}"
        );
        assert!(
            text.contains(&format!("serial={}", issued.serial_hex)),
            "{text}"
        );
        assert!(text.replace(':', "").contains(&issued.thumbprint), "{text}");
    }
}

#[test]
fn pkcs7_certs_only_holds_the_certificate_and_the_chain() {
    let d = Dir::new();
    let (ca, _) = EmbeddedCa::generate("opencm Test CA", now(), 10).unwrap();
    let csr = parse_csr(&openssl_csr(
        &d,
        "ec",
        &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
    ))
    .unwrap();
    let issued = issue(&ca, &csr);
    let mut chain = vec![issued.der.clone()];
    chain.extend(ca.chain_der().iter().cloned());
    let p7 = d.write("r.p7b", certs_only(&chain));
    let (ok, out) = openssl(&[
        "pkcs7",
        "-inform",
        "DER",
        "-in",
        path(&p7),
        "-print_certs",
        "-noout",
    ]);
    assert!(ok, "{out}");
    assert_eq!(out.matches("subject=").count(), 2, "{out}");
    assert!(
        out.contains("Alice Example") && out.contains("opencm Test CA"),
        "{out}"
    );
}

#[test]
fn the_crl_lists_revoked_serials_with_reasons_and_openssl_refuses_them() {
    let d = Dir::new();
    let (ca, material) = EmbeddedCa::generate("opencm Test CA", now(), 10).unwrap();
    let ca_pem = d.write("ca.pem", &material.cert_pem);
    let csr = parse_csr(&openssl_csr(
        &d,
        "ec",
        &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
    ))
    .unwrap();
    let revoked = issue(&ca, &csr);
    let kept = issue(&ca, &csr);
    let serial = (0..revoked.serial_hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&revoked.serial_hex[i..i + 2], 16).unwrap())
        .collect();
    let crl = ca
        .crl(
            &[Revocation {
                serial,
                at: now(),
                reason: RevocationReason::KeyCompromise,
            }],
            7,
            now(),
            now() + time::Duration::days(7),
        )
        .unwrap();
    let crl_pem = d.write("crl.pem", pem("X509 CRL", &crl));
    let (ok, text) = openssl(&["crl", "-in", path(&crl_pem), "-noout", "-text"]);
    assert!(ok, "{text}");
    assert!(
        text.contains(&revoked.serial_hex)
            && text.contains("Key Compromise")
            && text.contains("X509v3 CRL Number"),
        "{text}"
    );
    let (ok, _) = openssl(&[
        "crl",
        "-in",
        path(&crl_pem),
        "-noout",
        "-CAfile",
        path(&ca_pem),
    ]);
    assert!(ok, "the CRL's signature verifies");
    for (issued, expect_ok) in [(&revoked, false), (&kept, true)] {
        let cert = d.write("c.pem", pem("CERTIFICATE", &issued.der));
        let (ok, out) = openssl(&[
            "verify",
            "-crl_check",
            "-CRLfile",
            path(&crl_pem),
            "-CAfile",
            path(&ca_pem),
            path(&cert),
        ]);
        assert_eq!(ok, expect_ok, "{out}");
        if !expect_ok {
            assert!(out.contains("certificate revoked"), "{out}");
        }
    }
}

#[test]
fn pfx_is_aes_256_with_pbkdf2_and_opens_with_its_password_only() {
    let d = Dir::new();
    let (ca, _) = EmbeddedCa::generate("opencm Test CA", now(), 10).unwrap();
    // A server-generated key: made here, delivered in the PFX.
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let (_, csr_pem) = {
        let params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        let csr = params.serialize_request(&key).unwrap();
        ((), csr.pem().unwrap())
    };
    let csr = parse_csr(&csr_pem).unwrap();
    let issued = issue(&ca, &csr);
    let mut chain = vec![issued.der.clone()];
    chain.extend(ca.chain_der().iter().cloned());
    let pfx = d.write(
        "a.pfx",
        pfx_aes256(
            "Alice",
            &Secret(key.serialize_der()),
            &chain,
            "6b75162c-b3b4",
        )
        .unwrap(),
    );
    let (ok, out) = openssl(&[
        "pkcs12",
        "-info",
        "-in",
        path(&pfx),
        "-passin",
        "pass:6b75162c-b3b4",
        "-noout",
    ]);
    assert!(ok, "{out}");
    assert!(
        out.contains("PBES2") && out.contains("PBKDF2") && out.contains("AES-256-CBC"),
        "{out}"
    );
    assert!(!out.contains("RC2") && !out.contains("3DES"), "{out}");
    let (ok, _) = openssl(&[
        "pkcs12",
        "-info",
        "-in",
        path(&pfx),
        "-passin",
        "pass:wrong",
        "-noout",
    ]);
    assert!(!ok);
}

#[test]
fn bad_requests_are_refused_with_a_reason() {
    let d = Dir::new();
    assert_eq!(
        parse_csr("not base64 at all!").unwrap_err(),
        CsrError::Encoding
    );
    assert_eq!(parse_csr("aGVsbG8gd29ybGQ=").unwrap_err(), CsrError::Parse);
    // Flip a byte of the signature: the request no longer proves possession of the key.
    let good = openssl_csr(
        &d,
        "ec",
        &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
    );
    let (ok, _) = openssl(&[
        "req",
        "-in",
        path(&d.p("ec.csr")),
        "-outform",
        "DER",
        "-out",
        path(&d.p("ec.der")),
    ]);
    assert!(ok);
    let mut der = std::fs::read(d.p("ec.der")).unwrap();
    let n = der.len() - 5;
    der[n] ^= 0x55;
    assert_eq!(
        parse_csr(&pem("CERTIFICATE REQUEST", &der)).unwrap_err(),
        CsrError::Signature
    );
    // The MIM client's form: base64 with "\r\n" escapes left in.
    let b64: String = good
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect::<Vec<_>>()
        .join("\\r\\n");
    assert!(parse_csr(&b64).is_ok());
    assert_eq!(
        parse_csr(&openssl_csr(&d, "rsa1k", &["-newkey", "rsa:1024"])).unwrap_err(),
        CsrError::RsaTooSmall(1024)
    );
    assert_eq!(
        CsrError::RsaTooSmall(1024).to_string(),
        "its RSA key has 1024 bits; at least 2048 are required"
    );
}

#[test]
fn a_key_that_does_not_match_the_certificate_is_refused() {
    let (_, a) = EmbeddedCa::generate("A", now(), 1).unwrap();
    let (_, b) = EmbeddedCa::generate("B", now(), 1).unwrap();
    assert!(matches!(
        EmbeddedCa::load(&a.cert_pem, "", &b.key_pkcs8),
        Err(CaError::KeyMismatch)
    ));
    assert!(EmbeddedCa::load(&a.cert_pem, "", &a.key_pkcs8).is_ok());
}

#[test]
fn a_subordinate_of_an_openssl_root_issues_certificates_that_verify_up_to_the_root() {
    let d = Dir::new();
    let root_key = path(&d.p("root.key")).to_string();
    let root = path(&d.p("root.pem")).to_string();
    let (ok, out) = openssl(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-subj",
        "/CN=Enterprise Root",
        "-days",
        "30",
        "-keyout",
        &root_key,
        "-out",
        &root,
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    assert!(ok, "{out}");
    let sub_key = path(&d.p("sub.key")).to_string();
    let sub_csr = path(&d.p("sub.csr")).to_string();
    assert!(
        openssl(&[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-subj",
            "/CN=opencm Issuing CA",
            "-keyout",
            &sub_key,
            "-out",
            &sub_csr
        ])
        .0
    );
    let ext = d.write("ext.cnf", "basicConstraints=critical,CA:true,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign,digitalSignature\nsubjectKeyIdentifier=hash\n");
    let sub = path(&d.p("sub.pem")).to_string();
    let (ok, out) = openssl(&[
        "x509",
        "-req",
        "-in",
        &sub_csr,
        "-CA",
        &root,
        "-CAkey",
        &root_key,
        "-CAcreateserial",
        "-days",
        "20",
        "-extfile",
        path(&ext),
        "-out",
        &sub,
    ]);
    assert!(ok, "{out}");
    let sub_der = path(&d.p("sub.der")).to_string();
    assert!(
        openssl(&[
            "pkcs8", "-topk8", "-nocrypt", "-in", &sub_key, "-outform", "DER", "-out", &sub_der
        ])
        .0
    );
    let ca = EmbeddedCa::load(
        &std::fs::read_to_string(&sub).unwrap(),
        &std::fs::read_to_string(&root).unwrap(),
        &Secret(std::fs::read(&sub_der).unwrap()),
    )
    .unwrap();
    assert_eq!(ca.chain_der().len(), 2);
    let csr = parse_csr(&openssl_csr(
        &d,
        "leaf",
        &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
    ))
    .unwrap();
    let leaf = d.write("leaf.pem", pem("CERTIFICATE", &issue(&ca, &csr).der));
    let (ok, out) = openssl(&["verify", "-CAfile", &root, "-untrusted", &sub, path(&leaf)]);
    assert!(ok, "{out}");
}

#[test]
fn an_rsa_ca_issues_certificates_and_crls_that_verify() {
    let d = Dir::new();
    let (ca, material) =
        EmbeddedCa::generate_with("opencm RSA CA", now(), 10, CaKeyAlgorithm::Rsa(2048)).unwrap();
    assert!(
        ca.slow_signatures(),
        "RSA signing is moved off async workers"
    );
    assert!(!EmbeddedCa::generate("P", now(), 1)
        .unwrap()
        .0
        .slow_signatures());
    let ca_pem = d.write("ca.pem", &material.cert_pem);
    let (_, text) = openssl(&["x509", "-in", path(&ca_pem), "-noout", "-text"]);
    assert!(
        text.contains("rsaEncryption")
            && text.contains("2048 bit")
            && text.contains("sha256WithRSAEncryption"),
        "{text}"
    );
    let csr = parse_csr(&openssl_csr(
        &d,
        "ec",
        &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
    ))
    .unwrap();
    let cert = d.write("c.pem", pem("CERTIFICATE", &issue(&ca, &csr).der));
    let (ok, out) = openssl(&["verify", "-CAfile", path(&ca_pem), path(&cert)]);
    assert!(ok, "{out}");
    let crl = d.write(
        "crl.pem",
        pem(
            "X509 CRL",
            &ca.crl(&[], 1, now(), now() + time::Duration::days(1))
                .unwrap(),
        ),
    );
    assert!(openssl(&["crl", "-in", path(&crl), "-noout", "-CAfile", path(&ca_pem)]).0);
    // It reloads from its sealed material like the P-256 CA.
    assert!(EmbeddedCa::load(&material.cert_pem, "", &material.key_pkcs8).is_ok());
    assert_eq!(
        CaKeyAlgorithm::parse("RSA-3072"),
        Some(CaKeyAlgorithm::Rsa(3072))
    );
    assert_eq!(CaKeyAlgorithm::parse("rsa-1024"), None);
}

/// Every admin key challenge-response, checked against `openssl enc` in ECB mode without padding:
/// the published zero-key vector, diversified 3DES keys and every AES size.
#[test]
fn challenge_responses_match_openssl_enc() {
    use opencm_ca::cardkey::{challenge_len, diversify, respond};
    use opencm_domain::smartcard::AdminKeyAlgorithm as A;
    use rand::RngCore;
    let d = Dir::new();
    let master = Secret(vec![42; 32]);
    for (i, (alg, cipher)) in [
        (A::Tdes, "-des-ede3"),
        (A::Aes128, "-aes-128-ecb"),
        (A::Aes192, "-aes-192-ecb"),
        (A::Aes256, "-aes-256-ecb"),
    ]
    .into_iter()
    .enumerate()
    {
        let key = diversify(&master, 1, opencm_domain::Guid::new_random(), alg);
        let mut challenge = vec![0u8; challenge_len(alg)];
        rand::rngs::OsRng.fill_bytes(&mut challenge);
        for (j, k) in [vec![0u8; alg.key_len()], key.0.clone()].iter().enumerate() {
            let (input, output) = (d.0.join(format!("c{i}{j}")), d.0.join(format!("r{i}{j}")));
            std::fs::write(&input, &challenge).unwrap();
            let (ok, out) = openssl(&[
                "enc",
                cipher,
                "-nopad",
                "-K",
                &hex::encode(k),
                "-in",
                path(&input),
                "-out",
                path(&output),
            ]);
            assert!(ok, "{out}");
            let theirs = std::fs::read(&output).unwrap();
            assert_eq!(respond(k, alg, &challenge).unwrap(), theirs, "{cipher}");
        }
    }
}

/// The SID of the AD CS certificate in `tests/fixtures/adcs-sid-extension.pem` (see the README
/// there for its source).
const ADCS_SID: &str = "S-1-5-21-666199682-1411342147-2938717855-1001";
const SID_EXT: &str = "1.3.6.1.4.1.311.25.2";

/// `openssl asn1parse` of one extension of a PEM certificate, by walking `asn1parse -i` of the
/// whole certificate to the extension's OCTET STRING and parsing its contents: what openssl
/// makes of the extension, offsets and all.
fn openssl_extension(d: &Dir, pem: &Path, oid: &str) -> (String, bool) {
    let (ok, tree) = openssl(&["asn1parse", "-in", path(pem), "-i"]);
    assert!(ok, "{tree}");
    let lines: Vec<&str> = tree.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.ends_with(&format!(":{oid}")))
        .unwrap_or_else(|| panic!("{oid} not in\n{tree}"));
    // Extension ::= SEQUENCE { extnID, critical BOOLEAN DEFAULT FALSE, extnValue OCTET STRING }.
    let critical = lines[at + 1].contains("BOOLEAN");
    let value = lines[at + 1 + usize::from(critical)];
    assert!(value.contains("OCTET STRING"), "{value}");
    let offset = value.split(':').next().unwrap().trim().to_string();
    let (ok, inner) = openssl(&["asn1parse", "-in", path(pem), "-i", "-strparse", &offset]);
    assert!(ok, "{inner}");
    let _ = d;
    (inner, critical)
}

#[test]
fn the_sid_extension_is_written_byte_for_byte_as_ad_cs_writes_it() {
    let d = Dir::new();
    let fixture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/adcs-sid-extension.pem");
    let pem = std::fs::read_to_string(&fixture).unwrap();
    let der = pem_decode(&pem).remove(0);
    let (_, adcs) = x509_parser::parse_x509_certificate(&der).unwrap();
    let ext = adcs
        .extensions()
        .iter()
        .find(|e| e.oid.to_id_string() == SID_EXT)
        .expect("the AD CS certificate carries the SID extension");
    assert!(!ext.critical);
    // opencm's encoding of the same SID is the AD CS extension's value, byte for byte; and opencm
    // reads AD CS's back.
    assert_eq!(sid_extension_value(ADCS_SID), ext.value);
    assert_eq!(
        sid_from_extension_value(ext.value).as_deref(),
        Some(ADCS_SID)
    );

    // A certificate opencm issues carries it, non-critical, and openssl parses it exactly as it
    // parses AD CS's (the same SID, so the same lengths and offsets within the extension).
    let (ca, _) = EmbeddedCa::generate("opencm Test CA", now(), 10).unwrap();
    let csr = parse_csr(&openssl_csr(
        &d,
        "sid",
        &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
    ))
    .unwrap();
    let mut serial = [0u8; 16];
    serial.copy_from_slice(&rand_name().as_bytes()[..16]);
    let issued = ca
        .issue(&IssueRequest {
            key: &csr,
            common_name: "Meereen",
            upn: Some("meereen@essos.local"),
            sid_extension: Some(ADCS_SID),
            sid_uri: Some(ADCS_SID),
            email: None,
            server_names: &[],
            key_usages: &[KeyUsage::DigitalSignature],
            extended_key_usages: &["1.3.6.1.4.1.311.20.2.2".to_string()],
            not_before: now() - time::Duration::minutes(5),
            not_after: now() + time::Duration::days(30),
            serial,
        })
        .unwrap();
    let ours = d.write("ours.pem", pem_text(&issued.der));
    let (ours_parsed, ours_critical) = openssl_extension(&d, &ours, SID_EXT);
    let (adcs_parsed, adcs_critical) = openssl_extension(&d, &fixture, SID_EXT);
    assert_eq!(ours_parsed, adcs_parsed);
    assert!(!ours_critical && !adcs_critical);
    for expected in [
        "cont [ 0 ]",
        ":1.3.6.1.4.1.311.25.2.1",
        &format!("OCTET STRING      :{ADCS_SID}"),
    ] {
        assert!(ours_parsed.contains(expected), "{expected}: {ours_parsed}");
    }
    // The SAN URI form beside it.
    let (ok, text) = openssl(&[
        "x509",
        "-in",
        path(&ours),
        "-noout",
        "-ext",
        "subjectAltName",
    ]);
    assert!(
        ok && text.contains(&format!("URI:tag:microsoft.com,2022-09-14:sid:{ADCS_SID}")),
        "{text}"
    );
    // opencm reads back what a client certificate says: UPN, SID, issuer, serial.
    let presented = presented_certificate(&issued.der).unwrap();
    assert_eq!(presented.upn, "meereen@essos.local");
    let sids: Vec<&str> = presented.sids.iter().map(|s| s.as_str()).collect();
    assert_eq!(
        sids,
        [ADCS_SID, ADCS_SID],
        "the extension's and the SAN URI's"
    );
    assert_eq!(presented.issuer, "CN=opencm Test CA,O=opencm");
    let adcs = presented_certificate(&der);
    assert!(
        adcs.is_none(),
        "the DC certificate names no UPN: it signs nobody in"
    );
}

fn pem_text(der: &[u8]) -> String {
    pem("CERTIFICATE", der)
}
