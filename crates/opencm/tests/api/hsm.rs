//! The CA key in an HSM, on Debian's SoftHSM2 over PKCS#11: `opencm ca init --pkcs11` makes the
//! key on the token (OpenSC's pkcs11-tool shows it sensitive and never extractable) and the
//! database keeps only its URI; the server signs certificates, CRLs and OCSP responses through
//! the token, and openssl verifies them; a wrong PIN stops the start; the token taken away makes
//! signing 503 `CaUnavailable` (OCSP goes on with its delegated responder), and put back,
//! issuance works again without a restart.

use crate::blackbox::start_with;
use crate::helpers::{opencm_cli, openssl, sqlite_file};
use crate::ocsp::{ask, call, enrol, id_of, p256_csr, status_line, Dir};
use opencm_store::testing::{fresh_sqlite_url, scratch_dir};
use reqwest::Method;
use serde_json::{json, Value};

const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";

fn softhsm(conf: &str, args: &[&str]) -> String {
    let out = std::process::Command::new("softhsm2-util")
        .args(args)
        .env("SOFTHSM2_CONF", conf)
        .output()
        .expect("run softhsm2-util (Debian's softhsm2)");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
#[cfg_attr(
    not(opencm_softhsm_tests),
    ignore = "SoftHSM2 and pkcs11-tool: apt-get install softhsm2 opensc"
)]
async fn a_ca_on_softhsm_signs_survives_the_token_going_away_and_keeps_its_key_inside() {
    let d = Dir(scratch_dir("hsm"));
    std::fs::create_dir_all(d.0.join("tokens")).unwrap();
    let conf = d.p("softhsm2.conf");
    std::fs::write(
        &conf,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
            d.p("tokens")
        ),
    )
    .unwrap();
    softhsm(
        &conf,
        &[
            "--init-token",
            "--free",
            "--label",
            "opencm CA",
            "--pin",
            "1234",
            "--so-pin",
            "5678",
        ],
    );
    let uri = format!("pkcs11:token=opencm%20CA;object=ca-key?module-path={MODULE}");
    let db = fresh_sqlite_url();

    // Without a PIN: refused, naming what to set.
    let (ok, _, err) = opencm_cli(&db, &["ca", "init", "--pkcs11", &uri]);
    assert!(!ok && err.contains("OPENCM_PKCS11_PIN"), "{err}");
    // The key is made on the token; the certificate is printed.
    let cli = |args: &[&str], pin: &str| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_opencm"))
            .args(args)
            .env("OPENCM_DATABASE_URL", &db)
            .env("OPENCM_CA_KEK_FILE", crate::blackbox::kek_file(&db))
            .env("SOFTHSM2_CONF", &conf)
            .env("OPENCM_PKCS11_PIN", pin)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, printed, err) = cli(&["ca", "init", "--pkcs11", &uri], "1234");
    assert!(ok && printed.contains("BEGIN CERTIFICATE"), "{err}");
    // Inside the token: a private key that never leaves it.
    let out = std::process::Command::new("pkcs11-tool")
        .args([
            "--module",
            MODULE,
            "--token-label",
            "opencm CA",
            "--login",
            "--pin",
            "1234",
            "--list-objects",
            "--type",
            "privkey",
        ])
        .env("SOFTHSM2_CONF", &conf)
        .output()
        .expect("run pkcs11-tool (OpenSC)");
    let objects = String::from_utf8_lossy(&out.stdout);
    assert!(objects.contains("label:      ca-key"), "{objects}");
    assert!(
        objects.contains("sensitive") && objects.contains("never extractable"),
        "{objects}"
    );
    // The database holds the URI, no key and no PIN.
    let stored: String = sqlite_file(&db)
        .query_row("SELECT sealed_key FROM certificate_authorities", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert!(
        stored.starts_with("pkcs11:token=opencm%20CA;object=ca-key"),
        "{stored}"
    );
    assert!(!stored.contains("1234"));
    // Again: the same CA, printed again, nothing made.
    let (ok, again, _) = cli(&["ca", "init", "--pkcs11", &uri], "1234");
    assert!(ok && again == printed);

    // A wrong PIN stops the server's start, saying so.
    let env_wrong = [
        ("SOFTHSM2_CONF", conf.as_str()),
        ("OPENCM_PKCS11_PIN", "9999"),
    ];
    let err = start_with(&db, false, &env_wrong)
        .await
        .err()
        .expect("must not start");
    assert!(err.contains("PIN") && err.contains("incorrect"), "{err}");

    let env = [
        ("SOFTHSM2_CONF", conf.as_str()),
        ("OPENCM_PKCS11_PIN", "1234"),
    ];
    let s = start_with(&db, true, &env).await.unwrap();
    let ca = d.p("ca.pem");
    let served = reqwest::get(format!("{}/pki/ca.pem", s.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(served, printed);
    std::fs::write(&ca, &served).unwrap();
    // A certificate signed by the token, verified by openssl.
    let (cert, _) = enrol(&s, &d).await;
    let (ok, out) = openssl(&["verify", "-CAfile", &ca, &cert]);
    assert!(ok && out.contains(": OK"), "{out}");
    // A CRL signed by the token.
    let crl = reqwest::get(format!("{}/pki/crl", s.base)).await.unwrap();
    assert_eq!(crl.status(), 200);
    std::fs::write(d.p("crl.der"), crl.bytes().await.unwrap()).unwrap();
    let (ok, out) = openssl(&[
        "crl",
        "-inform",
        "DER",
        "-in",
        &d.p("crl.der"),
        "-noout",
        "-CAfile",
        &ca,
    ]);
    assert!(ok && out.contains("verify OK"), "{out}");
    // OCSP: the delegated responder's certificate was signed by the token.
    let url = format!("{}/ocsp", s.base);
    let (ok, out) = ask(&url, &ca, &cert, &[]);
    assert!(ok && out.contains("Response verify OK"), "{out}");
    assert_eq!(status_line(&out, &cert), format!("{cert}: good"));

    // The token goes away (its files moved out of SoftHSM's directory).
    std::fs::create_dir_all(d.0.join("away")).unwrap();
    let token_dir = std::fs::read_dir(d.0.join("tokens"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .file_name();
    std::fs::rename(
        d.0.join("tokens").join(&token_dir),
        d.0.join("away").join(&token_dir),
    )
    .unwrap();
    let http = reqwest::Client::new();
    let req = id_of(
        &call(
            &s,
            "alice",
            Method::POST,
            "/requests",
            Some(json!({"profiletemplateuuid": "2b7044cf-aa96-4911-b886-177947e9271b", "type": "Enroll"})),
        )
        .await,
    );
    let csr = p256_csr(&d, "second");
    let certificatedata = || {
        http.post(s.api(&format!("/requests/{req}/certificatedata")))
            .bearer_auth(&s.tokens["alice"])
            .json(&json!({"certificaterequests": [csr.clone()]}))
            .send()
    };
    let r = certificatedata().await.unwrap();
    assert_eq!(r.status(), 503);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["ErrorCode"], "CaUnavailable", "{v}");
    assert!(!v.to_string().contains("1234"));
    let crl = reqwest::get(format!("{}/pki/crl", s.base)).await.unwrap();
    assert_eq!(crl.status(), 503);
    // OCSP answers on: its responder's key is not the token's.
    let (ok, out) = ask(&url, &ca, &cert, &[]);
    assert!(ok && out.contains("Response verify OK"), "{out}");
    assert_eq!(status_line(&out, &cert), format!("{cert}: good"));

    // Put back: the same request's certificatedata now issues, without a restart.
    std::fs::rename(
        d.0.join("away").join(&token_dir),
        d.0.join("tokens").join(&token_dir),
    )
    .unwrap();
    let r = certificatedata().await.unwrap();
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
    assert_eq!(
        reqwest::get(format!("{}/pki/crl", s.base))
            .await
            .unwrap()
            .status(),
        200
    );
}
