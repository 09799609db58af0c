//! The CA as an operator meets it: created on first start with its key sealed under a KEK file,
//! the same after a restart, refused without its KEK, and replaced by a subordinate of an
//! enterprise root with `opencm ca import`. Checked with openssl.

use crate::blackbox::{kek_file, start, start_with};
use crate::helpers::{opencm_cli, openssl, p256_csr, scratch_dir, self_signed_p256, sqlite_file};
use opencm_store::testing::fresh_sqlite_url;

async fn fetch(base: &str, path: &str) -> (reqwest::StatusCode, String, Vec<u8>) {
    let r = reqwest::get(format!("{base}{path}")).await.unwrap();
    let status = r.status();
    let ct = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, ct, r.bytes().await.unwrap().to_vec())
}

#[tokio::test]
async fn the_ca_is_created_once_kept_sealed_and_needs_its_kek() {
    let db = fresh_sqlite_url();
    let mut server = start(&db, true).await;
    let (status, ct, first) = fetch(&server.base, "/pki/ca.pem").await;
    assert_eq!(
        (status.as_u16(), ct.as_str()),
        (200, "application/x-pem-file")
    );
    let dir = scratch_dir("pki");
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, &first).unwrap();
    let (ok, text) = openssl(&["x509", "-in", ca.to_str().unwrap(), "-noout", "-text"]);
    assert!(
        ok && text.contains("CA:TRUE") && text.contains("Certificate Sign, CRL Sign"),
        "{text}"
    );
    let (status, ct, crl) = fetch(&server.base, "/pki/crl").await;
    assert_eq!(
        (status.as_u16(), ct.as_str()),
        (200, "application/pkix-crl")
    );
    let crl_path = dir.join("crl.der");
    std::fs::write(&crl_path, &crl).unwrap();
    let (ok, out) = openssl(&[
        "crl",
        "-inform",
        "DER",
        "-in",
        crl_path.to_str().unwrap(),
        "-noout",
        "-CAfile",
        ca.to_str().unwrap(),
    ]);
    assert!(ok, "the CRL is signed by the CA: {out}");
    // The KEK file is private; the database holds only the sealed key.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&kek_file(&db)), 0o600);
        // So are the database and the WAL and shared-memory files SQLite makes beside it.
        let file = db.trim_start_matches("sqlite://");
        for suffix in ["", "-wal", "-shm"] {
            let p = std::path::PathBuf::from(format!("{file}{suffix}"));
            assert_eq!(mode(&p), 0o600, "{}", p.display());
        }
    }
    server.child.start_kill().unwrap();
    server.child.wait().await.unwrap();
    // At rest the database holds only the sealed key.
    let sealed: String = sqlite_file(&db)
        .query_row("SELECT sealed_key FROM certificate_authorities", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert!(
        sealed.starts_with("v1:") && !sealed.contains("PRIVATE KEY"),
        "{sealed}"
    );

    let again = start(&db, false).await;
    assert_eq!(
        fetch(&again.base, "/pki/ca.pem").await.2,
        first,
        "the same CA after a restart"
    );
    drop(again);

    // Without its KEK the server refuses to start, and says why; it does not make a new CA.
    let err = start_with(
        &db,
        false,
        &[("OPENCM_CA_KEK_FILE", "/nonexistent/opencm.kek")],
    )
    .await
    .err()
    .expect("must not start");
    assert!(
        err.contains("key-encryption key") && err.contains("/nonexistent/opencm.kek"),
        "{err}"
    );
    let wrong = opencm_ca::Kek::generate().to_base64();
    let err = start_with(&db, false, &[("OPENCM_CA_KEK", &wrong)])
        .await
        .err()
        .expect("must not start");
    assert!(err.contains("could not be opened"), "{err}");
}

#[tokio::test]
async fn ca_import_makes_opencm_a_subordinate_of_an_enterprise_root() {
    let dir = scratch_dir("sub");
    let p = |n: &str| dir.join(n).to_str().unwrap().to_string();
    self_signed_p256(
        "/CN=Enterprise Root",
        "30",
        &p("root.key"),
        &p("root.pem"),
        &[],
    );
    p256_csr("/CN=opencm Sub CA", &p("sub.key"), &p("sub.csr"));
    std::fs::write(p("ext.cnf"), "basicConstraints=critical,CA:true,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign,digitalSignature\n").unwrap();
    assert!(
        openssl(&[
            "x509",
            "-req",
            "-in",
            &p("sub.csr"),
            "-CA",
            &p("root.pem"),
            "-CAkey",
            &p("root.key"),
            "-CAcreateserial",
            "-days",
            "20",
            "-extfile",
            &p("ext.cnf"),
            "-out",
            &p("sub.pem")
        ])
        .0
    );
    let db = fresh_sqlite_url();
    std::fs::write(
        p("sec1.key"),
        "-----BEGIN EC PRIVATE KEY-----\nAA==\n-----END EC PRIVATE KEY-----\n",
    )
    .unwrap();
    // Certificates that cannot be a CA, with their own keys: a self-signed CA:FALSE certificate,
    // and a CA:TRUE one whose keyUsage cannot sign certificates.
    for (name, ext) in [
        ("leaf", "basicConstraints=critical,CA:FALSE"),
        ("nosign", "keyUsage=critical,digitalSignature"),
    ] {
        self_signed_p256(
            "/CN=Not A CA",
            "30",
            &p(&format!("{name}.key")),
            &p(&format!("{name}.pem")),
            &["-addext", ext],
        );
    }
    // (certificate, key file, --replace, succeeds, what the output must say): a SEC1 key is
    // refused with the command that converts it, a key that is not the certificate's is refused,
    // certificates that cannot be a CA are refused saying why, the right one is imported, and a
    // second import needs --replace.
    let cases = [
        ("sub.pem", "sec1.key", false, false, "openssl pkcs8 -topk8"),
        ("sub.pem", "root.key", false, false, "does not match"),
        (
            "leaf.pem",
            "leaf.key",
            false,
            false,
            "cannot be a CA: its basicConstraints do not say CA:TRUE",
        ),
        (
            "nosign.pem",
            "nosign.key",
            false,
            false,
            "cannot be a CA: its keyUsage lacks keyCertSign",
        ),
        ("sub.pem", "sub.key", false, true, "imported"),
        (
            "sub.pem",
            "sub.key",
            false,
            false,
            "already has a CA ('opencm Sub CA')",
        ),
        ("sub.pem", "sub.key", true, true, "imported"),
    ];
    for (cert, key, replace, succeeds, says) in cases {
        let mut args = vec![
            "ca".to_string(),
            "import".into(),
            "--cert".into(),
            p(cert),
            "--key".into(),
            p(key),
            "--chain".into(),
            p("root.pem"),
        ];
        if replace {
            args.push("--replace".into());
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (ok, out) = cli(&db, &args);
        assert!(ok == succeeds && out.contains(says), "{cert} {key}: {out}");
    }
    let server = start(&db, true).await;
    let (_, _, chain) = fetch(&server.base, "/pki/ca.pem").await;
    std::fs::write(p("chain.pem"), &chain).unwrap();
    let text = String::from_utf8_lossy(&chain);
    assert_eq!(
        text.matches("BEGIN CERTIFICATE").count(),
        2,
        "issuing CA then root: {text}"
    );
    // The published issuing certificate verifies up to the enterprise root.
    let first_end =
        text.find("-----END CERTIFICATE-----").unwrap() + "-----END CERTIFICATE-----\n".len();
    std::fs::write(p("issuing.pem"), &text[..first_end]).unwrap();
    let (ok, out) = openssl(&["verify", "-CAfile", &p("root.pem"), &p("issuing.pem")]);
    assert!(ok, "{out}");
}

#[tokio::test]
async fn ca_init_can_make_an_rsa_ca_and_refuses_unknown_algorithms() {
    let db = fresh_sqlite_url();
    let (ok, _, err) = opencm_cli(&db, &["ca", "init", "--algorithm", "rsa-1024"]);
    assert!(!ok && err.contains("unknown --algorithm"), "{err}");
    let (ok, pem, err) = opencm_cli(&db, &["ca", "init", "--algorithm", "rsa-3072"]);
    assert!(ok, "{err}");
    let dir = scratch_dir("rsa");
    std::fs::write(dir.join("ca.pem"), &pem).unwrap();
    let (_, text) = openssl(&[
        "x509",
        "-in",
        dir.join("ca.pem").to_str().unwrap(),
        "-noout",
        "-text",
    ]);
    assert!(
        text.contains("3072 bit") && text.contains("sha256WithRSAEncryption"),
        "{text}"
    );
    // The server uses the CA that init made.
    let server = start(&db, true).await;
    assert_eq!(
        String::from_utf8(fetch(&server.base, "/pki/ca.pem").await.2).unwrap(),
        pem
    );
}

/// The CLI's success and all it printed.
fn cli(db: &str, args: &[&str]) -> (bool, String) {
    let (ok, out, err) = opencm_cli(db, args);
    (ok, out + &err)
}

#[tokio::test]
async fn card_master_rotate_adds_a_sealed_version_each_time() {
    let db = fresh_sqlite_url();
    let (ok, out, err) = opencm_cli(&db, &["card-master", "rotate"]);
    assert!(
        ok && out.contains("card master key version 2"),
        "{out}{err}"
    );
    let (ok, out, err) = opencm_cli(&db, &["card-master", "rotate"]);
    assert!(
        ok && out.contains("card master key version 3"),
        "{out}{err}"
    );
    let conn = sqlite_file(&db);
    let rows: Vec<(i64, String)> = conn
        .prepare("SELECT version, sealed FROM card_master_keys ORDER BY version")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(rows.iter().map(|r| r.0).collect::<Vec<_>>(), [1, 2, 3]);
    // Sealed: three different ciphertexts, none of them 32 raw bytes in base64.
    let sealed: std::collections::HashSet<&String> = rows.iter().map(|r| &r.1).collect();
    assert_eq!(sealed.len(), 3);
    assert!(rows.iter().all(|r| r.1.len() > 44), "{rows:?}");
}
