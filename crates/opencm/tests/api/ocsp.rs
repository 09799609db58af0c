//! The OCSP responder as relying parties meet it, on the real binary: `openssl ocsp` (POST with a
//! nonce, SHA-1 and SHA-256 CertIDs, GET per RFC 5019) and GnuTLS's `ocsptool` ask about a
//! certificate enrolled through the API; its status follows a suspension, a reinstatement and a
//! revocation at once; a serial never issued is unknown, another CA's certificate unauthorized,
//! garbage malformedRequest; the delegated responder's certificate verifies, and a server told to
//! sign with the CA's key does so.

use crate::blackbox::{start_with, Server};
use crate::helpers::{openssl, self_signed_p256};
use base64::Engine as _;
use opencm_store::testing::{fresh_sqlite_url, scratch_dir};
use serde_json::{json, Value};
use std::path::PathBuf;

const SOFTWARE: &str = "2b7044cf-aa96-4911-b886-177947e9271b";

pub(crate) struct Dir(pub(crate) PathBuf);

impl Dir {
    pub(crate) fn p(&self, n: &str) -> String {
        self.0.join(n).to_str().unwrap().to_string()
    }
}

pub(crate) async fn call(
    s: &Server,
    who: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> Value {
    let http = reqwest::Client::new();
    let mut r = http
        .request(method, s.api(path))
        .bearer_auth(&s.tokens[who]);
    if let Some(b) = body {
        r = r.json(&b);
    }
    let r = r.send().await.unwrap();
    let status = r.status();
    let v: Value = r.json().await.unwrap_or(Value::Null);
    assert!(status.is_success(), "{path}: {status} {v}");
    v
}

pub(crate) fn id_of(v: &Value) -> String {
    v.as_str().unwrap().rsplit('/').next().unwrap().to_string()
}

/// A P-256 key and a CSR made by openssl (`NAME.key`, `NAME.csr` in `d`): the CSR's base64, as
/// clients send it.
pub(crate) fn p256_csr(d: &Dir, name: &str) -> String {
    let (key, csr) = (d.p(&format!("{name}.key")), d.p(&format!("{name}.csr")));
    let (ok, out) = openssl(&[
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-subj",
        "/CN=ignored",
        "-keyout",
        &key,
        "-out",
        &csr,
    ]);
    assert!(ok, "{out}");
    std::fs::read_to_string(&csr)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect()
}

/// The server's CA chain, saved as `ca.pem` in `d`: its path.
pub(crate) async fn save_ca(s: &Server, d: &Dir) -> String {
    let pem = reqwest::get(format!("{}/pki/ca.pem", s.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    std::fs::write(d.p("ca.pem"), pem).unwrap();
    d.p("ca.pem")
}

/// Alice enrols the demo's software template with an openssl key; returns the certificate's
/// PEM path and the profile's id.
pub(crate) async fn enrol(s: &Server, d: &Dir) -> (String, String) {
    use reqwest::Method;
    let req = id_of(
        &call(
            s,
            "alice",
            Method::POST,
            "/requests",
            Some(json!({"profiletemplateuuid": SOFTWARE, "type": "Enroll"})),
        )
        .await,
    );
    let csr = p256_csr(d, "alice");
    let issued = call(
        s,
        "alice",
        Method::POST,
        &format!("/requests/{req}/certificatedata"),
        Some(json!({"certificaterequests": [csr]})),
    )
    .await;
    let p7 = issued[0]["Pkcs7"].as_str().unwrap().replace("\r\n", "");
    std::fs::write(
        d.p("alice.p7b"),
        base64::engine::general_purpose::STANDARD
            .decode(p7)
            .unwrap(),
    )
    .unwrap();
    let (ok, certs) = openssl(&[
        "pkcs7",
        "-inform",
        "DER",
        "-in",
        &d.p("alice.p7b"),
        "-print_certs",
    ]);
    assert!(ok, "{certs}");
    // The end entity's is the one that is not the CA's.
    let ca = std::fs::read_to_string(d.p("ca.pem")).unwrap();
    let body = |pem: &str| -> String { pem.lines().filter(|l| !l.starts_with("-----")).collect() };
    let leaf: String = certs
        .split("-----END CERTIFICATE-----")
        .filter_map(|b| b.split_once("-----BEGIN CERTIFICATE-----"))
        .map(|(_, b)| format!("-----BEGIN CERTIFICATE-----{b}-----END CERTIFICATE-----\n"))
        .find(|pem| !body(&ca).contains(&body(pem)))
        .unwrap();
    std::fs::write(d.p("alice.pem"), leaf).unwrap();
    call(
        s,
        "alice",
        Method::PUT,
        &format!("/requests/{req}"),
        Some(json!({"status": "Completed"})),
    )
    .await;
    let profiles = call(s, "alice", Method::GET, "/profiles?status=Active", None).await;
    (
        d.p("alice.pem"),
        profiles[0]["Uuid"].as_str().unwrap().to_string(),
    )
}

/// `who` runs a `kind` request on the profile to completion (the demo's software template:
/// Suspend and Reinstate are self-service, Revoke is the help desk's, carol's).
async fn run(s: &Server, who: &str, kind: &str, profile: &str) {
    use reqwest::Method;
    let req = id_of(
        &call(
            s,
            who,
            Method::POST,
            "/requests",
            Some(json!({"type": kind, "profile": profile})),
        )
        .await,
    );
    call(
        s,
        who,
        Method::PUT,
        &format!("/requests/{req}"),
        Some(json!({"status": "Completed"})),
    )
    .await;
}

/// `openssl ocsp` asking `url` about `cert` by POST (with a nonce unless `extra` says
/// `-no_nonce`), verifying the response against the CA: (succeeded, everything it printed).
pub(crate) fn ask(url: &str, ca: &str, cert: &str, extra: &[&str]) -> (bool, String) {
    let mut args = vec!["ocsp", "-issuer", ca];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["-cert", cert, "-url", url, "-CAfile", ca, "-resp_text"]);
    openssl(&args)
}

/// The status line `openssl ocsp` prints for the certificate.
pub(crate) fn status_line(out: &str, cert: &str) -> String {
    out.lines()
        .find(|l| l.starts_with(&format!("{cert}:")))
        .unwrap_or_else(|| panic!("no status line in {out}"))
        .to_string()
}

/// GET /ocsp/{base64 of a request openssl made}; the response saved in `resp.der`.
async fn get(s: &Server, d: &Dir, ca: &str, cert: &str) -> reqwest::header::HeaderMap {
    let (ok, out) = openssl(&[
        "ocsp",
        "-issuer",
        ca,
        "-cert",
        cert,
        "-no_nonce",
        "-reqout",
        &d.p("req.der"),
    ]);
    assert!(ok, "{out}");
    let b64 =
        base64::engine::general_purpose::STANDARD.encode(std::fs::read(d.p("req.der")).unwrap());
    // URL-encoded as RFC 5019 asks: '+', '/' and '=' escaped.
    let encoded = b64
        .replace('+', "%2B")
        .replace('/', "%2F")
        .replace('=', "%3D");
    let r = reqwest::get(format!("{}/ocsp/{encoded}", s.base))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/ocsp-response");
    let headers = r.headers().clone();
    std::fs::write(d.p("resp.der"), r.bytes().await.unwrap()).unwrap();
    headers
}

/// What `openssl ocsp` reads in `resp.der` for `cert`, verified against the CA.
fn read_response(d: &Dir, ca: &str, cert: &str) -> (bool, String) {
    openssl(&[
        "ocsp",
        "-respin",
        &d.p("resp.der"),
        "-issuer",
        ca,
        "-cert",
        cert,
        "-CAfile",
        ca,
        "-no_nonce",
        "-resp_text",
    ])
}

fn ocsptool(ca: &str, cert: &str, url: &str) -> (bool, String) {
    // (exit status, everything printed)
    let out = std::process::Command::new("ocsptool")
        .args([
            &format!("--ask={url}"),
            "--load-issuer",
            ca,
            "--load-cert",
            cert,
            "--load-trust",
            ca,
            "--nonce",
        ])
        .output()
        .expect("run ocsptool (Debian's gnutls-bin)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test]
async fn openssl_and_gnutls_read_a_certificate_s_status_as_it_changes() {
    let db = fresh_sqlite_url();
    let s = start_with(&db, true, &[("OPENCM_BODY_TIMEOUT_SECS", "2")])
        .await
        .unwrap();
    let d = Dir(scratch_dir("ocsp"));
    let ca = save_ca(&s, &d).await;
    let (cert, profile) = enrol(&s, &d).await;
    let url = format!("{}/ocsp", s.base);

    // The certificate names the responder in its Authority Information Access.
    let (ok, uri) = openssl(&["x509", "-in", &cert, "-noout", "-ocsp_uri"]);
    assert!(ok && uri.trim() == url, "{uri}");

    // POST with a nonce: good, the nonce echoed (openssl warns when it is not), and the
    // delegated responder's certificate (OCSP Signing, OCSP No Check) verifies to the CA.
    let (ok, out) = ask(&url, &ca, &cert, &[]);
    assert!(ok, "{out}");
    assert_eq!(status_line(&out, &cert), format!("{cert}: good"));
    assert!(out.contains("Response verify OK"), "{out}");
    assert!(out.contains("OCSP Nonce"), "the nonce is echoed: {out}");
    assert!(!out.contains("WARNING"), "{out}");
    assert!(
        out.contains("OCSP Signing") && out.contains("OCSP No Check"),
        "{out}"
    );
    assert!(out.contains("Responder Id: "), "{out}");
    // A SHA-256 CertID.
    let (ok, out) = ask(&url, &ca, &cert, &["-sha256"]);
    assert!(ok && out.contains("Hash Algorithm: sha256"), "{out}");
    assert_eq!(status_line(&out, &cert), format!("{cert}: good"));

    // GET, RFC 5019: the response says how long HTTP caches may keep it.
    let headers = get(&s, &d, &ca, &cert).await;
    let (ok, out) = read_response(&d, &ca, &cert);
    assert!(ok && out.contains("Response verify OK"), "{out}");
    assert_eq!(status_line(&out, &cert), format!("{cert}: good"));
    // A proxy may forward the path in capitals: the base64 after it is left as it is.
    let b64 = base64::engine::general_purpose::STANDARD
        .encode(std::fs::read(d.p("req.der")).unwrap())
        .replace('+', "%2B")
        .replace('/', "%2F")
        .replace('=', "%3D");
    let r = reqwest::get(format!("{}/OCSP/{b64}", s.base))
        .await
        .unwrap();
    std::fs::write(d.p("resp.der"), r.bytes().await.unwrap()).unwrap();
    let (ok, out) = read_response(&d, &ca, &cert);
    assert!(ok, "{out}");
    assert_eq!(status_line(&out, &cert), format!("{cert}: good"));
    let cache = headers["cache-control"].to_str().unwrap();
    assert!(
        cache.starts_with("max-age=") && cache.contains("public"),
        "{cache}"
    );
    assert!(headers.contains_key("expires") && headers.contains_key("last-modified"));

    // Suspended: revoked, certificateHold, at once — even by GET, whose good answer was kept.
    run(&s, "alice", "Suspend", &profile).await;
    get(&s, &d, &ca, &cert).await;
    let (ok, out) = read_response(&d, &ca, &cert);
    assert!(ok, "{out}");
    assert_eq!(status_line(&out, &cert), format!("{cert}: revoked"));
    assert!(out.contains("Reason: certificateHold"), "{out}");
    // Reinstated: good again.
    run(&s, "alice", "Reinstate", &profile).await;
    let (ok, out) = ask(&url, &ca, &cert, &[]);
    assert!(ok, "{out}");
    assert_eq!(status_line(&out, &cert), format!("{cert}: good"));
    // Revoked for good.
    run(&s, "carol", "Revoke", &profile).await;
    let (ok, out) = ask(&url, &ca, &cert, &["-sha256"]);
    assert!(ok, "{out}");
    assert_eq!(status_line(&out, &cert), format!("{cert}: revoked"));
    // "unspecified" is not written, in OCSP as in the CRL (RFC 5280 §5.3.1).
    assert!(
        out.contains("Revocation Time") && !out.contains("Reason:"),
        "{out}"
    );

    // A serial this CA never issued: unknown.
    let (ok, out) = openssl(&[
        "ocsp",
        "-issuer",
        &ca,
        "-serial",
        "0x0123456789ABCDEF",
        "-url",
        &url,
        "-CAfile",
        &ca,
    ]);
    assert!(ok && out.contains("0x0123456789ABCDEF: unknown"), "{out}");

    // Another CA's certificate: unauthorized, not a status.
    self_signed_p256(
        "/CN=Someone Else",
        "30",
        &d.p("other.key"),
        &d.p("other.pem"),
        &[],
    );
    let (_, out) = openssl(&[
        "ocsp",
        "-issuer",
        &d.p("other.pem"),
        "-serial",
        "0x01",
        "-url",
        &url,
        "-CAfile",
        &ca,
    ]);
    assert!(out.contains("Responder Error: unauthorized (6)"), "{out}");

    // Garbage, by POST and by GET: malformedRequest, HTTP 200 as RFC 5019 asks.
    let http = reqwest::Client::new();
    for r in [
        http.post(&url)
            .header("content-type", "application/ocsp-request")
            .body(b"\x30\x03\x02\x01\x01".to_vec()),
        http.post(&url)
            .header("content-type", "application/ocsp-request")
            .body(vec![0x30; 40_000]),
        http.get(format!("{url}/not-base64!")),
        http.get(format!("{url}/MAMCAQE%3D")),
    ] {
        let r = r.send().await.unwrap();
        assert_eq!(r.status(), 200);
        std::fs::write(d.p("bad.der"), r.bytes().await.unwrap()).unwrap();
        let (_, out) = openssl(&[
            "ocsp",
            "-respin",
            &d.p("bad.der"),
            "-resp_text",
            "-noverify",
        ]);
        assert!(out.to_lowercase().contains("malformedrequest (1)"), "{out}");
    }
    // A body that trickles in is cut off at the body deadline (the server's is 2 s here), not
    // held open byte by byte.
    {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let addr = s.base.trim_start_matches("http://").to_string();
        let mut slow = tokio::net::TcpStream::connect(&addr).await.unwrap();
        slow.write_all(b"POST /ocsp HTTP/1.1\r\nHost: x\r\nContent-Type: application/ocsp-request\r\nContent-Length: 1000\r\n\r\n")
            .await
            .unwrap();
        let answered = tokio::time::timeout(std::time::Duration::from_secs(20), async {
            let mut buf = [0u8; 512];
            loop {
                // One byte a second keeps the connection's idle timer from firing.
                let _ = slow.write_all(b"0").await;
                match tokio::time::timeout(std::time::Duration::from_secs(1), slow.read(&mut buf))
                    .await
                {
                    Ok(Ok(n)) => return String::from_utf8_lossy(&buf[..n]).into_owned(),
                    Ok(Err(_)) => return String::new(),
                    Err(_) => continue,
                }
            }
        })
        .await
        .expect("a trickled body is still being read after 20 s");
        assert!(
            answered.is_empty() || answered.starts_with("HTTP/1.1 408"),
            "{answered}"
        );
    }

    // A body that is not an OCSP request by its type: 415 with the API's error body.
    let r = http
        .post(&url)
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["ErrorCode"], "UnsupportedMediaType", "{v}");
}

/// GnuTLS, a second OCSP client: good, then revoked after the help desk revokes; the delegated
/// responder's response verifies against the CA as trust anchor.
#[tokio::test]
#[cfg_attr(
    not(opencm_ocsptool_tests),
    ignore = "GnuTLS's ocsptool: apt-get install gnutls-bin"
)]
async fn gnutls_ocsptool_reads_good_then_revoked() {
    let s = start_with(&fresh_sqlite_url(), true, &[]).await.unwrap();
    let d = Dir(scratch_dir("ocsptool"));
    let ca = save_ca(&s, &d).await;
    let (cert, profile) = enrol(&s, &d).await;
    let url = format!("{}/ocsp", s.base);
    // ocsptool's exit status is not its verdict here (it tries the certificate's own OCSP URL
    // again after answering); what it prints is.
    let (_, out) = ocsptool(&ca, &cert, &url);
    assert!(out.contains("Certificate Status: good"), "{out}");
    assert!(out.contains("Verifying OCSP Response: Success."), "{out}");
    assert!(out.contains("Nonce: "), "{out}");
    run(&s, "carol", "Revoke", &profile).await;
    let (_, out) = ocsptool(&ca, &cert, &url);
    assert!(out.contains("Certificate Status: revoked"), "{out}");
    assert!(
        out.contains("Revocation reason: unspecified") || out.contains("Revocation time"),
        "{out}"
    );
    assert!(out.contains("Verifying OCSP Response: Success."), "{out}");
}

#[tokio::test]
async fn a_server_told_to_sign_with_the_ca_key_does_and_one_without_ocsp_says_so() {
    let d = Dir(scratch_dir("ocsp-ca"));
    let config = d.0.join("opencm.toml");
    std::fs::write(
        &config,
        "[ocsp]\nsigner = \"ca\"\nresponse_validity_minutes = 10\n",
    )
    .unwrap();
    let db = fresh_sqlite_url();
    let s = start_with(&db, true, &[("OPENCM_CONFIG", config.to_str().unwrap())])
        .await
        .unwrap();
    let ca = save_ca(&s, &d).await;
    let (cert, _) = enrol(&s, &d).await;
    let (ok, out) = ask(&format!("{}/ocsp", s.base), &ca, &cert, &[]);
    assert!(ok && out.contains("Response verify OK"), "{out}");
    assert_eq!(status_line(&out, &cert), format!("{cert}: good"));
    // No certificate travels with a response the CA signs itself.
    assert!(
        !out.contains("BEGIN CERTIFICATE") && !out.contains("OCSP Signing"),
        "{out}"
    );
    let next = out
        .lines()
        .find(|l| l.contains("Next Update:"))
        .unwrap_or_default()
        .to_string();
    let this = out
        .lines()
        .find(|l| l.contains("This Update:"))
        .unwrap_or_default()
        .to_string();
    assert!(
        !next.is_empty() && !this.is_empty() && next != this,
        "{out}"
    );
    drop(s);

    // Off: no responder, no OCSP URL in new certificates.
    std::fs::write(&config, "[ocsp]\nenabled = false\n").unwrap();
    let db = fresh_sqlite_url();
    let s = start_with(&db, true, &[("OPENCM_CONFIG", config.to_str().unwrap())])
        .await
        .unwrap();
    save_ca(&s, &d).await;
    let (cert, _) = enrol(&s, &d).await;
    let (_, uri) = openssl(&["x509", "-in", &cert, "-noout", "-ocsp_uri"]);
    assert!(uri.trim().is_empty(), "{uri}");
    let r = reqwest::Client::new()
        .post(format!("{}/ocsp", s.base))
        .header("content-type", "application/ocsp-request")
        .body(vec![0x30, 0x00])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    // What cannot be written into a certificate (a URL is an IA5String: ASCII, with a host), and
    // a signer opencm does not know, stop the start, saying which key (and the file's line).
    for (toml, says) in [
        ("url = \"http://\u{fc}.example/ocsp\"", "[ocsp] url must be"),
        ("url = \"http:///ocsp\"", "[ocsp] url must be"),
        ("url = \"http://user@host/ocsp\"", "[ocsp] url must be"),
        (
            "signer = \"hsm\"",
            "line 2, column 10: expected one of 'delegated', 'ca'",
        ),
    ] {
        std::fs::write(&config, format!("[ocsp]\n{toml}\n")).unwrap();
        let err = start_with(
            &fresh_sqlite_url(),
            false,
            &[("OPENCM_CONFIG", config.to_str().unwrap())],
        )
        .await
        .err()
        .expect("must not start");
        assert!(err.contains(says), "{toml}: {err}");
    }
}

/// The delegated responder's certificate over a week of the test clock: kept while more than a
/// third of its life is left, renewed after; a renewal the CA refuses keeps the current one while
/// it is valid, and once it has ended the responder answers internalError rather than sign with
/// an expired certificate. Checked with openssl on the responses.
#[tokio::test]
async fn the_delegated_responder_is_renewed_and_a_failed_renewal_keeps_the_valid_one() {
    use std::sync::atomic::Ordering;
    let t = crate::helpers::TestApp::sqlite().await;
    let app = opencm_app::App::new(t.store.clone(), t.clock.clone(), Default::default())
        .with_ca(
            t.ca.clone(),
            std::sync::Arc::new(opencm_ca::Kek::generate()),
        )
        .with_ocsp(opencm_app::ocsp::OcspSettings::default())
        .unwrap();
    let issuer = opencm_ca::CertificateAuthority::chain_der(t.ca.as_ref())[0].clone();
    let d = Dir(scratch_dir("ocsp-renewal"));
    // The responder's certificate in an answer (PEM, as openssl prints it), or its error status.
    let ask = |n: u8| {
        let app = &app;
        let request =
            opencm_ca::ocsp::request_der(&issuer, &[0x42, n], false, Some(&[n; 16])).unwrap();
        let path = d.p(&format!("r{n}.der"));
        async move {
            let answer = app.ocsp(&request).await;
            std::fs::write(&path, answer.der.as_slice()).unwrap();
            let (_, out) = openssl(&["ocsp", "-respin", &path, "-resp_text", "-noverify"]);
            match out.split_once("-----BEGIN CERTIFICATE-----") {
                Some((_, cert)) => cert.split("-----END").next().unwrap().to_string(),
                None => out,
            }
        }
    };
    let day = 86_400_000;
    let first = ask(1).await;
    assert!(first.len() > 100, "{first}");
    t.clock.advance_ms(3 * day);
    assert_eq!(ask(2).await, first, "four days left of seven: kept");
    // Due (a day and a half left), but the CA fails: the current one goes on.
    t.clock.advance_ms(2 * day + day / 2);
    t.ca.fail.store(true, Ordering::SeqCst);
    assert_eq!(
        ask(3).await,
        first,
        "a failed renewal keeps the valid certificate"
    );
    // The CA is back: renewed.
    t.ca.fail.store(false, Ordering::SeqCst);
    let second = ask(4).await;
    assert!(second.len() > 100 && second != first, "{second}");
    // Past the second one's end with the CA failing: no response signed by an expired certificate.
    t.clock.advance_ms(8 * day);
    t.ca.fail.store(true, Ordering::SeqCst);
    let out = ask(5).await;
    assert!(out.to_lowercase().contains("internalerror (2)"), "{out}");
}
