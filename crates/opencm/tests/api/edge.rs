//! The server's edge, tried as a hostile or careless client would, against the real binary:
//! timeouts, the connection cap under a small open-file limit, 413 before the body, the error
//! bodies of the HTTP layer, and HTTPS checked with curl and openssl.

use crate::blackbox::{create, put, start_limited, start_with, Server};
use crate::helpers::{id_of, json_of, openssl_ok, p256_csr, scratch_dir, self_signed_p256};
use opencm_store::testing::fresh_sqlite_url;
use serde_json::Value;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const SHORT_TIMEOUTS: &[(&str, &str)] = &[
    ("OPENCM_HEADER_TIMEOUT_SECS", "2"),
    ("OPENCM_BODY_TIMEOUT_SECS", "2"),
    ("OPENCM_IDLE_TIMEOUT_SECS", "3"),
];

fn addr(s: &Server) -> String {
    s.base.trim_start_matches("http://").to_string()
}

/// Sends `bytes`, then reads until the server closes the connection (at most 15 s).
async fn exchange(addr: &str, bytes: &[u8]) -> (Vec<u8>, Duration) {
    let mut c = TcpStream::connect(addr).await.unwrap();
    c.write_all(bytes).await.unwrap();
    let t = Instant::now();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(15), c.read_to_end(&mut out)).await;
    (out, t.elapsed())
}

/// The status and JSON body of a raw HTTP/1.1 response.
fn parse(raw: &[u8]) -> (u16, Value, String) {
    let text = String::from_utf8_lossy(raw).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no response head in {text:?}"));
    let status = head[9..12].parse().unwrap();
    let body = serde_json::from_str(body).unwrap_or_else(|_| panic!("not JSON: {text:?}"));
    (status, body, head.to_ascii_lowercase())
}

#[tokio::test]
async fn slow_silent_and_idle_connections_are_closed_by_the_timeouts() {
    let s = start_with(&fresh_sqlite_url(), true, SHORT_TIMEOUTS)
        .await
        .unwrap();
    let a = addr(&s);
    let slow_body = format!(
        "POST /CertificateManagement/api/v1.0/requests HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{",
        s.tokens["alice"]
    );
    let (silent, half_header, trickled_body, kept_alive) = tokio::join!(
        exchange(&a, b""),
        exchange(&a, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: "),
        exchange(&a, slow_body.as_bytes()),
        exchange(&a, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"),
    );
    for (what, (bytes, took)) in [("silent", &silent), ("half a header", &half_header)] {
        assert!(bytes.is_empty(), "{what}: closed without an answer");
        assert!(
            *took >= Duration::from_millis(1500) && *took < Duration::from_secs(8),
            "{what}: closed by the 2 s header timeout, after {took:?}"
        );
    }
    let (status, body, _) = parse(&trickled_body.0);
    assert_eq!(status, 408);
    assert_eq!(body["ErrorCode"], "RequestTimeout");
    assert!(body["CorrelationId"].is_string());
    let (raw, took) = kept_alive;
    assert!(String::from_utf8_lossy(&raw).starts_with("HTTP/1.1 200"));
    assert!(
        took >= Duration::from_millis(1500) && took < Duration::from_secs(8),
        "an idle kept-alive connection is closed by the timeout, after {took:?}"
    );
}

#[tokio::test]
async fn a_body_declared_too_large_is_refused_before_it_is_sent() {
    let s = start_with(&fresh_sqlite_url(), true, &[]).await.unwrap();
    let head = format!(
        "POST /CertificateManagement/api/v1.0/requests HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: 1000000000\r\n\r\n",
        s.tokens["alice"]
    );
    // Not one byte of the body is sent: the answer must not wait for it.
    let (raw, took) = exchange(&addr(&s), head.as_bytes()).await;
    let (status, body, head) = parse(&raw);
    assert_eq!(status, 413);
    assert_eq!(body["ErrorCode"], "PayloadTooLarge");
    assert!(head.contains("connection: close"));
    assert!(took < Duration::from_secs(5), "answered at once: {took:?}");
}

#[tokio::test]
async fn malformed_requests_get_the_json_error_body_from_the_http_layer_too() {
    let mut s = start_with(&fresh_sqlite_url(), false, &[]).await.unwrap();
    let a = addr(&s);
    let long = "a".repeat(70_000);
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        (
            "a header without a colon",
            b"GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n".to_vec(),
            400,
            "BadRequest",
        ),
        (
            "two Content-Lengths",
            b"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab"
                .to_vec(),
            400,
            "BadRequest",
        ),
        (
            "a header too large",
            format!("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {long}\r\n\r\n").into_bytes(),
            431,
            "RequestHeaderTooLarge",
        ),
        (
            "a URI too long",
            format!("GET /healthz?{long} HTTP/1.1\r\nHost: x\r\n\r\n").into_bytes(),
            431,
            "RequestHeaderTooLarge",
        ),
        (
            "not HTTP at all",
            b"\x16\x03\x01\x00\xa5hello\r\n\r\n".to_vec(),
            400,
            "BadRequest",
        ),
    ];
    let mut ids = Vec::new();
    for (what, bytes, want, code) in cases {
        let (raw, _) = exchange(&a, &bytes).await;
        let (status, body, head) = parse(&raw);
        assert_eq!(status, want, "{what}");
        assert_eq!(body["ErrorCode"], code, "{what}");
        let id = body["CorrelationId"].as_str().unwrap().to_string();
        assert!(head.contains(&format!("x-correlation-id: {id}")), "{what}");
        assert!(head.contains("connection: close"), "{what}");
        ids.push(id);
    }
    // After a good request on the same connection, a bad one still gets the body.
    let (raw, _) = exchange(
        &a,
        b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nBad\r\n\r\n",
    )
    .await;
    let text = String::from_utf8_lossy(&raw);
    let second = text.split("HTTP/1.1 ").nth(2).unwrap();
    assert!(second.starts_with("400") && second.contains("\"ErrorCode\":\"BadRequest\""));
    let log = s.stop_and_read_log().await;
    for id in ids {
        assert!(log.contains(&id), "correlation id {id} is logged");
    }
}

#[tokio::test]
async fn more_connections_than_descriptors_and_the_server_still_answers() {
    // 256 descriptors: the server keeps its cap below that. 400 hostile connections — idle ones
    // and ones that send half a header — are more than it could hold at once.
    let mut s = start_limited(&fresh_sqlite_url(), true, SHORT_TIMEOUTS, Some(256))
        .await
        .unwrap();
    let a = addr(&s);
    let http = reqwest::Client::new();
    let alice = s.tokens["alice"].clone();
    let request = create(&http, &s, &alice).await;
    let mut hostile = Vec::new();
    for i in 0..400 {
        let mut c = TcpStream::connect(&a).await.unwrap();
        if i % 2 == 0 {
            c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
                .await
                .unwrap();
        }
        hostile.push(c);
    }
    // The server works through them as the timeouts allow: every one is closed in the end,
    // none answered.
    let closed = futures::future::join_all(hostile.into_iter().map(|mut c| async move {
        let mut buf = Vec::new();
        tokio::time::timeout(Duration::from_secs(30), c.read_to_end(&mut buf))
            .await
            .map(|r| r.is_ok() && buf.is_empty())
            .unwrap_or(false)
    }))
    .await;
    assert!(
        closed.iter().all(|c| *c),
        "{} of 400 hostile connections were not closed by the timeouts",
        closed.iter().filter(|c| !**c).count()
    );
    let t = Instant::now();
    let r = http
        .get(format!("{}/healthz", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let url = s.api(&format!("/requests/{request}"));
    assert_eq!(put(&http, url, &alice, "Completed").await, Some(200));
    let took = t.elapsed();
    let log = s.stop_and_read_log().await;
    assert!(
        took < Duration::from_secs(1),
        "/healthz and a PUT took {took:?}"
    );
    assert!(log.contains("open-file limit"), "{log}");
    let cap_line = log.lines().find(|l| l.contains("open-file limit")).unwrap();
    assert!(
        cap_line.contains("hard_limit=256") && cap_line.contains("max_connections=192"),
        "{cap_line}"
    );
    assert!(!log.contains("Too many open files"), "{log}");
}

fn curl(args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new("curl")
        .args(args)
        .output()
        .expect("curl is installed");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[tokio::test]
async fn https_from_the_embedded_ca_verifies_with_curl_and_openssl_and_offers_http2() {
    let db = fresh_sqlite_url();
    let s = start_with(&db, true, &[("OPENCM_TLS_NAMES", "localhost,127.0.0.1")])
        .await
        .unwrap();
    assert!(s.base.starts_with("https://localhost:"), "{}", s.base);
    let port = s.base.rsplit(':').next().unwrap().to_string();
    // The chain a client should trust, fetched over plain curl first would be circular: the
    // server wrote it beside the KEK file, and serves the same at /pki/ca.pem.
    let ca = crate::blackbox::kek_file(&db).with_file_name("opencm-ca.pem");
    let ca = ca.to_str().unwrap();
    let healthz = format!("https://127.0.0.1:{port}/healthz");
    let (ok, out) = curl(&["-sS", "--cacert", ca, "-w", " %{http_version}", &healthz]);
    assert!(ok, "{out}");
    assert!(out.ends_with(" 2"), "HTTP/2 when offered: {out}");
    let (ok, out) = curl(&[
        "-sS",
        "--http1.1",
        "--cacert",
        ca,
        "-w",
        " %{http_version}",
        &healthz,
    ]);
    assert!(ok && out.ends_with(" 1.1"), "{out}");
    let (ok, served) = curl(&[
        "-sS",
        "--cacert",
        ca,
        &format!("https://localhost:{port}/pki/ca.pem"),
    ]);
    assert!(ok, "{served}");
    assert_eq!(served, std::fs::read_to_string(ca).unwrap());
    let (ok, out) = curl(&["-sS", &healthz]);
    assert!(!ok, "without the CA, curl refuses: {out}");
    let out = std::process::Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &format!("127.0.0.1:{port}"),
            "-servername",
            "localhost",
            "-CAfile",
            ca,
            "-verify_return_error",
            "-alpn",
            "h2,http/1.1",
        ])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Verify return code: 0 (ok)"), "{text}");
    assert!(text.contains("ALPN protocol: h2"), "{text}");
    // Plain HTTP on the TLS port gets nothing useful.
    let (raw, _) = exchange(
        &format!("127.0.0.1:{port}"),
        b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    .await;
    assert!(!String::from_utf8_lossy(&raw).contains("200 OK"));
}

#[tokio::test]
async fn https_from_a_certificate_and_key_in_files() {
    let dir = scratch_dir("tls");
    let (cert, key) = (dir.join("server.pem"), dir.join("server.key"));
    self_signed_p256(
        "/CN=localhost",
        "2",
        &key.to_string_lossy(),
        &cert.to_string_lossy(),
        &["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
    );
    let s = start_with(
        &fresh_sqlite_url(),
        false,
        &[
            ("OPENCM_TLS_CERT_FILE", cert.to_str().unwrap()),
            ("OPENCM_TLS_KEY_FILE", key.to_str().unwrap()),
        ],
    )
    .await
    .unwrap();
    assert!(s.base.starts_with("https://"), "{}", s.base);
    let port = s.base.rsplit(':').next().unwrap();
    let (ok, out) = curl(&[
        "-sS",
        "--cacert",
        cert.to_str().unwrap(),
        &format!("https://127.0.0.1:{port}/healthz"),
    ]);
    assert!(ok && out.contains("ok"), "{out}");
    // One of the pair without the other is refused at start, naming both settings.
    let err = start_with(
        &fresh_sqlite_url(),
        false,
        &[("OPENCM_TLS_CERT_FILE", cert.to_str().unwrap())],
    )
    .await
    .err()
    .unwrap();
    assert!(
        err.contains("tls_cert_file and tls_key_file go together"),
        "{err}"
    );
}

#[tokio::test]
async fn plain_http_on_a_public_address_is_warned_about() {
    let mut public = start_with(
        &fresh_sqlite_url(),
        false,
        &[("OPENCM_LISTEN", "0.0.0.0:0")],
    )
    .await
    .unwrap();
    let mut loopback = start_with(&fresh_sqlite_url(), false, &[]).await.unwrap();
    let log = public.stop_and_read_log().await;
    assert!(
        log.contains("listening without TLS on a non-loopback address"),
        "{log}"
    );
    let log = loopback.stop_and_read_log().await;
    assert!(!log.contains("without TLS"), "{log}");
}

/// A JSON call with curl over HTTPS: a bearer token or a client certificate (`cert`, `key`).
fn curl_json(ca: &str, method: &str, url: &str, auth: &[&str], body: Option<&str>) -> (u16, Value) {
    let mut args = vec!["-sS", "--cacert", ca, "-X", method, "-w", "\n%{http_code}"];
    args.extend_from_slice(auth);
    if let Some(b) = body {
        args.extend_from_slice(&["-H", "Content-Type: application/json", "-d", b]);
    }
    args.push(url);
    let (ok, out) = curl(&args);
    assert!(ok, "{out}");
    let (body, code) = out.trim_end().rsplit_once('\n').unwrap_or(("", out.trim()));
    (
        code.parse().unwrap(),
        serde_json::from_str(body).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn a_certificate_opencm_issued_signs_its_user_in_until_it_is_held_or_revoked() {
    let db = fresh_sqlite_url();
    let s = start_with(&db, true, &[("OPENCM_TLS_NAMES", "localhost,127.0.0.1")])
        .await
        .unwrap();
    let port = s.base.rsplit(':').next().unwrap().to_string();
    let api = format!("https://127.0.0.1:{port}/CertificateManagement/api/v1.0");
    let whoami = format!("https://127.0.0.1:{port}/opencm/v1/whoami");
    let dir = scratch_dir("mtls");
    let p = |n: &str| dir.join(n).to_string_lossy().into_owned();
    // This server's CA, taken from the server once (the opencm-ca.pem file beside the KEK is
    // shared by the tests' servers); everything after is verified against it.
    let (ok, chain) = curl(&["-sSk", &format!("https://127.0.0.1:{port}/pki/ca.pem")]);
    assert!(ok, "{chain}");
    std::fs::write(p("ca.pem"), chain).unwrap();
    let ca = p("ca.pem");
    let ca = ca.as_str();
    let bearer = |who: &str| format!("Authorization: Bearer {}", s.tokens[who]);
    let alice = bearer("alice");

    // alice enrols a software certificate (client authentication) with her own key.
    let (st, v) = curl_json(
        ca,
        "POST",
        &format!("{api}/requests"),
        &["-H", &alice],
        Some(
            r#"{"profiletemplateuuid":"2b7044cf-aa96-4911-b886-177947e9271b","type":"Enroll","datacollection":[{"Request Reason":"sign in with it"}]}"#,
        ),
    );
    assert_eq!(st, 201, "{v}");
    let req = id_of(&v);
    p256_csr("/CN=ignored", &p("alice.key"), &p("alice.csr"));
    let csr: String = std::fs::read_to_string(p("alice.csr"))
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let (st, v) = curl_json(
        ca,
        "POST",
        &format!("{api}/requests/{req}/certificatedata"),
        &["-H", &alice],
        Some(&format!(r#"{{"certificaterequests":["{csr}"]}}"#)),
    );
    assert_eq!(st, 200, "{v}");
    use base64::Engine;
    let p7 = base64::engine::general_purpose::STANDARD
        .decode(v[0]["Pkcs7"].as_str().unwrap().replace("\r\n", ""))
        .unwrap();
    std::fs::write(p("alice.p7b"), p7).unwrap();
    let text = openssl_ok(&[
        "pkcs7",
        "-inform",
        "DER",
        "-in",
        &p("alice.p7b"),
        "-print_certs",
    ]);
    // alice's certificate, not the CA's beside it.
    let leaf = text
        .split("subject=")
        .find(|block| block.contains("Alice"))
        .and_then(|block| block.split("-----BEGIN CERTIFICATE-----").nth(1))
        .and_then(|b| b.split("-----END CERTIFICATE-----").next())
        .unwrap_or_else(|| panic!("no certificate for alice in {text}"));
    std::fs::write(
        p("alice.pem"),
        format!("-----BEGIN CERTIFICATE-----{leaf}-----END CERTIFICATE-----\n"),
    )
    .unwrap();
    let (st, done) = curl_json(
        ca,
        "PUT",
        &format!("{api}/requests/{req}"),
        &["-H", &alice],
        Some(r#"{"status":"Completed"}"#),
    );
    assert_eq!(st, 200, "{done}");
    let profile = done["NewProfileUuid"].as_str().unwrap().to_string();

    // The certificate alone signs alice in, on opencm's routes and MIM's.
    let cert = ["--cert", &p("alice.pem"), "--key", &p("alice.key")];
    let cert: Vec<&str> = cert.iter().map(|x| x.as_ref()).collect();
    let (st, me) = curl_json(ca, "GET", &whoami, &cert, None);
    assert_eq!(st, 200, "{me}");
    assert_eq!(
        (me["Login"].as_str(), me["AuthenticatedBy"].as_str()),
        (Some("alice"), Some("client certificate")),
        "{me}"
    );
    let (st, _) = curl_json(ca, "GET", &format!("{api}/requests/{req}"), &cert, None);
    assert_eq!(st, 200);
    // A token still wins when both are sent; no credential at all is 401.
    let (st, me) = curl_json(
        ca,
        "GET",
        &whoami,
        &[&cert[..], &["-H", &bearer("bob")]].concat(),
        None,
    );
    assert_eq!((st, me["Login"].as_str()), (200, Some("bob")));
    let (st, _) = curl_json(ca, "GET", &whoami, &[], None);
    assert_eq!(st, 401);

    // The portal offers the certificate on its sign-in page; the certificate starts a session
    // (a smart card in the browser), back on the page asked for.
    let portal = |path: &str, extra: &[&str]| {
        let url = format!("https://127.0.0.1:{port}{path}");
        let (ok, out) = curl(&[&["-s", "-i", "--cacert", ca], extra, &[url.as_str()]].concat());
        assert!(ok, "{out}");
        out
    };
    let page = portal("/sign-in", &[]);
    assert!(page.contains("id=\"sign-in-certificate\""), "{page}");
    let signed = portal("/sign-in/certificate?next=%2Fapprovals", &cert);
    assert!(
        signed.starts_with("HTTP/2 303") || signed.starts_with("HTTP/1.1 303"),
        "{signed}"
    );
    assert!(signed.contains("location: /approvals"), "{signed}");
    let session = signed
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: opencm_session="))
        .and_then(|c| c.split(';').next())
        .unwrap_or_else(|| panic!("a session: {signed}"))
        .to_string();
    assert!(
        signed.contains("; Secure"),
        "a Secure cookie under TLS: {signed}"
    );
    let home = portal("/", &["-H", &format!("cookie: opencm_session={session}")]);
    assert!(home.contains("Alice Example"), "{home}");
    let refused = portal("/sign-in/certificate", &[]);
    assert!(
        refused.contains(" 401") && !refused.contains("opencm_session=ocm_"),
        "{refused}"
    );

    // On hold, it signs nobody in; released, it does again; revoked, never.
    let carol = bearer("carol");
    let act = |who: &str, kind: &str| {
        let (st, v) = curl_json(
            ca,
            "POST",
            &format!("{api}/requests"),
            &["-H", who],
            Some(&format!(r#"{{"type":"{kind}","profile":"{profile}"}}"#)),
        );
        assert_eq!(st, 201, "{kind}: {v}");
        let id = id_of(&v);
        let (st, v) = curl_json(
            ca,
            "PUT",
            &format!("{api}/requests/{id}"),
            &["-H", who],
            Some(r#"{"status":"Completed"}"#),
        );
        assert_eq!(st, 200, "{kind}: {v}");
    };
    act(&alice, "Suspend");
    let (st, v) = curl_json(ca, "GET", &whoami, &cert, None);
    assert_eq!(st, 401, "on hold: {v}");
    act(&alice, "Reinstate");
    let (st, _) = curl_json(ca, "GET", &whoami, &cert, None);
    assert_eq!(st, 200, "released");
    act(&carol, "Revoke");
    let (st, v) = curl_json(ca, "GET", &whoami, &cert, None);
    assert_eq!(st, 401, "revoked: {v}");
    let refused = portal("/sign-in/certificate", &cert);
    assert!(
        refused.contains(" 401") && !refused.contains("opencm_session=ocm_"),
        "revoked: {refused}"
    );

    // A certificate from another CA does not even complete the handshake.
    self_signed_p256("/CN=alice", "1", &p("self.key"), &p("self.pem"), &[]);
    let (ok, out) = curl(&[
        "-sS",
        "--cacert",
        ca,
        "--cert",
        &p("self.pem"),
        "--key",
        &p("self.key"),
        &whoami,
    ]);
    assert!(!ok, "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// An enterprise CA made with `openssl ca`: its certificate, a CRL, and user certificates with a
/// UPN and, as AD CS writes them since KB5014754, the account's SID.
pub(crate) struct EnterpriseCa {
    pub dir: std::path::PathBuf,
}

/// How an enterprise certificate ties itself to an account besides its UPN.
#[derive(Clone, Copy)]
pub(crate) enum Strong<'a> {
    /// UPN only (weak mapping).
    None,
    /// `szOID_NTDS_CA_SECURITY_EXT` with this SID, encoded by openssl's own ASN.1 generator as
    /// [MS-WCCE] 2.2.2.7.7.4 lays it out (not by opencm's encoder).
    SidExtension(&'a str),
    /// The SAN URI `tag:microsoft.com,2022-09-14:sid:<SID>`.
    SidUri(&'a str),
    /// The extension with one SID and the SAN URI with another.
    Both(&'a str, &'a str),
}

impl EnterpriseCa {
    pub(crate) fn p(&self, name: &str) -> String {
        self.dir.join(name).to_string_lossy().into_owned()
    }

    pub(crate) fn openssl(&self, args: &[&str]) {
        let out = std::process::Command::new("openssl")
            .args(args)
            .current_dir(&self.dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub(crate) fn new(name: &str) -> EnterpriseCa {
        Self::with_subject(&format!("/O=Example Corp/CN={name}"))
    }

    /// A CA whose subject is `subject` (openssl's `/TYPE=value/…` form).
    pub(crate) fn with_subject(subject: &str) -> EnterpriseCa {
        let dir = scratch_dir("corp-ca");
        std::fs::write(dir.join("index.txt"), "").unwrap();
        std::fs::write(dir.join("crlnumber"), "01\n").unwrap();
        std::fs::write(
            dir.join("ca.cnf"),
            "[ca]\ndefault_ca = corp\n[corp]\ndir = .\ndatabase = index.txt\ncrlnumber = crlnumber\ncertificate = ca.pem\nprivate_key = ca.key\ndefault_md = sha256\ndefault_crl_days = 7\n",
        )
        .unwrap();
        let ca = EnterpriseCa { dir };
        self_signed_p256(
            subject,
            "30",
            &ca.p("ca.key"),
            &ca.p("ca.pem"),
            &[
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ],
        );
        ca.crl();
        ca
    }

    /// A client-authentication certificate for `upn` (`who.pem`, `who.key`), UPN only.
    pub(crate) fn issue(&self, who: &str, upn: &str) {
        self.issue_strong(who, upn, Strong::None)
    }

    /// A client-authentication certificate for `upn` tied to an account by `strong`.
    pub(crate) fn issue_strong(&self, who: &str, upn: &str, strong: Strong<'_>) {
        // The SAN in a section of its own: the URI holds commas, which a one-line list splits.
        let mut ext = "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth,1.3.6.1.4.1.311.20.2.2\nsubjectAltName=@san\n".to_string();
        let mut sections = format!("[san]\notherName.1=1.3.6.1.4.1.311.20.2.3;UTF8:{upn}\n");
        match strong {
            Strong::None => {}
            Strong::SidUri(sid) => {
                sections.push_str(&format!("URI.1=tag:microsoft.com,2022-09-14:sid:{sid}\n"))
            }
            Strong::SidExtension(sid) => {
                ext.push_str("1.3.6.1.4.1.311.25.2=ASN1:SEQUENCE:sid_ext\n");
                sections.push_str(&format!("[sid_ext]\nname=IMPLICIT:0C,SEQUENCE:sid_other_name\n[sid_other_name]\ntype=OID:1.3.6.1.4.1.311.25.2.1\nvalue=EXPLICIT:0C,OCTETSTRING:{sid}\n"));
            }
            Strong::Both(in_extension, in_uri) => {
                sections.push_str(&format!(
                    "URI.1=tag:microsoft.com,2022-09-14:sid:{in_uri}\n"
                ));
                ext.push_str("1.3.6.1.4.1.311.25.2=ASN1:SEQUENCE:sid_ext\n");
                sections.push_str(&format!("[sid_ext]\nname=IMPLICIT:0C,SEQUENCE:sid_other_name\n[sid_other_name]\ntype=OID:1.3.6.1.4.1.311.25.2.1\nvalue=EXPLICIT:0C,OCTETSTRING:{in_extension}\n"));
            }
        }
        std::fs::write(
            self.dir.join(format!("{who}.ext")),
            format!("{ext}{sections}"),
        )
        .unwrap();
        p256_csr(
            &format!("/CN={who}"),
            &self.p(&format!("{who}.key")),
            &self.p(&format!("{who}.csr")),
        );
        let serial_file = self.dir.join(format!("{who}.serial"));
        let mut args = vec![
            "x509".to_string(),
            "-req".into(),
            "-in".into(),
            format!("{who}.csr"),
            "-CA".into(),
            "ca.pem".into(),
            "-CAkey".into(),
            "ca.key".into(),
            "-days".into(),
            "7".into(),
            "-extfile".into(),
            format!("{who}.ext"),
            "-out".into(),
            format!("{who}.pem"),
        ];
        // A serial chosen by the test (`who.serial`, hex), else a fresh one.
        match std::fs::read_to_string(&serial_file) {
            Ok(serial) => args.extend(["-set_serial".into(), format!("0x{}", serial.trim())]),
            Err(_) => args.push("-CAcreateserial".into()),
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.openssl(&args);
    }

    fn revoke(&self, who: &str) {
        self.openssl(&["ca", "-config", "ca.cnf", "-revoke", &format!("{who}.pem")]);
        self.crl();
    }

    fn crl(&self) {
        self.openssl(&["ca", "-config", "ca.cnf", "-gencrl", "-out", "ca.crl"]);
    }

    /// A CRL whose nextUpdate is three seconds away.
    fn short_lived_crl(&self) {
        self.openssl(&[
            "ca", "-config", "ca.cnf", "-gencrl", "-crlsec", "3", "-out", "ca.crl",
        ]);
    }
}

/// The demo realm's SIDs.
pub(crate) const ALICE_SID: &str = "S-1-5-21-1000-1000-1000-1101";
pub(crate) const BOB_SID: &str = "S-1-5-21-1000-1000-1000-1102";

#[tokio::test]
async fn a_certificate_of_a_configured_enterprise_ca_signs_in_until_its_crl_revokes_it() {
    let corp = EnterpriseCa::new("Example Corp Issuing CA");
    // As AD CS issues them: each with its account's SID (the extension, or the SAN URI).
    corp.issue_strong("bob", "bob", Strong::SidExtension(BOB_SID));
    corp.issue_strong("eve", "alice", Strong::SidUri(ALICE_SID));
    corp.issue_strong("nobody", "nobody", Strong::SidExtension(BOB_SID));
    let stranger = EnterpriseCa::new("Stranger CA");
    stranger.issue_strong("bob", "bob", Strong::SidExtension(BOB_SID));
    let cfg = corp.dir.join("opencm.toml");
    std::fs::write(
        &cfg,
        format!(
            "client_certificate_anchors = [\"{}\"]\nclient_certificate_crls = [\"{}\"]\n",
            corp.p("ca.pem"),
            corp.p("ca.crl")
        ),
    )
    .unwrap();
    let cfg = cfg.to_string_lossy().into_owned();
    let db = fresh_sqlite_url();
    let mut s = start_with(
        &db,
        true,
        &[
            ("OPENCM_TLS_NAMES", "localhost,127.0.0.1"),
            ("OPENCM_CONFIG", &cfg),
        ],
    )
    .await
    .unwrap();
    let port = s.base.rsplit(':').next().unwrap().to_string();
    let whoami = format!("https://127.0.0.1:{port}/opencm/v1/whoami");
    let (ok, chain) = curl(&["-sSk", &format!("https://127.0.0.1:{port}/pki/ca.pem")]);
    assert!(ok, "{chain}");
    std::fs::write(corp.dir.join("opencm-ca.pem"), chain).unwrap();
    let ca = corp.p("opencm-ca.pem");
    let with = |ca_of: &EnterpriseCa, who: &str| curl_as(&ca, ca_of, who, &whoami);

    // bob's corporate certificate signs him in, though opencm never issued it.
    let (ok, out) = with(&corp, "bob");
    assert!(ok, "{out}");
    let (body, code) = out.trim_end().rsplit_once('\n').unwrap();
    assert_eq!(code, "200", "{out}");
    let me: Value = serde_json::from_str(body).unwrap();
    assert_eq!(
        (me["Login"].as_str(), me["AuthenticatedBy"].as_str()),
        (Some("bob"), Some("client certificate"))
    );
    // A UPN no user has: 401 after the handshake.
    let (ok, out) = with(&corp, "nobody");
    assert!(ok, "{out}");
    assert!(out.trim_end().ends_with("401"), "{out}");
    // The same name from a CA nobody configured: no handshake.
    let (ok, out) = with(&stranger, "bob");
    assert!(!ok, "{out}");

    // The CA revokes another certificate of a user (alice's, here in file eve.pem) and publishes
    // its CRL: the next connection with it is refused, without restarting opencm; bob's still works.
    let (ok, out) = with(&corp, "eve");
    assert!(ok && out.trim_end().ends_with("200"), "{out}");
    corp.revoke("eve");
    let (ok, out) = with(&corp, "eve");
    assert!(!ok, "revoked by the CRL: {out}");
    let (ok, out) = with(&corp, "bob");
    assert!(ok && out.trim_end().ends_with("200"), "{out}");

    // A CRL file that no longer parses: the last good CRLs stay in force (eve still refused,
    // bob still in), and the server says so.
    std::fs::write(corp.dir.join("ca.crl"), "not a CRL").unwrap();
    let (ok, out) = with(&corp, "eve");
    assert!(!ok, "still revoked: {out}");
    let (ok, out) = with(&corp, "bob");
    assert!(ok && out.trim_end().ends_with("200"), "{out}");

    // bob disabled in opencm: his certificate signs nobody in.
    let (ok, out) = crate::directory::opencm(
        corp.dir.join("opencm.toml").as_path(),
        &db,
        &["user", "disable", "bob"],
    );
    assert!(ok, "{out}");
    let (ok, out) = with(&corp, "bob");
    assert!(ok && out.trim_end().ends_with("401"), "disabled: {out}");

    // A CRL past its nextUpdate: nothing of that CA is accepted until a fresh one arrives.
    corp.short_lived_crl();
    let (ok, out) = with(&corp, "bob");
    assert!(
        ok && out.trim_end().ends_with("401"),
        "the handshake passes while it is fresh: {out}"
    );
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let (ok, out) = with(&corp, "bob");
    assert!(!ok, "stale CRL: {out}");
    let log = s.stop_and_read_log().await;
    assert!(log.contains("did not reload"), "{log}");

    // Anchors without CRLs: the server refuses to start rather than accept what it cannot check.
    let bare = corp.dir.join("bare.toml");
    std::fs::write(
        &bare,
        format!("client_certificate_anchors = [\"{}\"]\n", corp.p("ca.pem")),
    )
    .unwrap();
    let bare = bare.to_string_lossy().into_owned();
    let refused = start_with(
        &fresh_sqlite_url(),
        false,
        &[("OPENCM_TLS_NAMES", "localhost"), ("OPENCM_CONFIG", &bare)],
    )
    .await;
    let err = refused.err().expect("no start without CRLs");
    assert!(err.contains("client_certificate_crls"), "{err}");
    // Anchors on plain HTTP, where no client certificate can be presented: said, not ignored.
    let refused = start_with(&fresh_sqlite_url(), false, &[("OPENCM_CONFIG", &cfg)]).await;
    let err = refused.err().expect("no start with anchors and no HTTPS");
    assert!(err.contains("needs HTTPS"), "{err}");
    let _ = std::fs::remove_dir_all(&corp.dir);
    let _ = std::fs::remove_dir_all(&stranger.dir);
}

/// curl's GET of `url`, trusting `opencm_ca`, with `who`'s certificate and key of `ca`: whether
/// it ran, and the body followed by the HTTP status on a line of its own.
fn curl_as(opencm_ca: &str, ca: &EnterpriseCa, who: &str, url: &str) -> (bool, String) {
    let (cert, key) = (ca.p(&format!("{who}.pem")), ca.p(&format!("{who}.key")));
    curl(&[
        "-sS",
        "--cacert",
        opencm_ca,
        "--cert",
        &cert,
        "--key",
        &key,
        "-w",
        "\n%{http_code}",
        url,
    ])
}

/// `GET /opencm/v1/whoami` over HTTPS with `who`'s certificate of `ca`: the HTTP status (`None`
/// when the handshake fails) and the login signed in.
fn whoami_with(port: &str, opencm_ca: &str, ca: &EnterpriseCa, who: &str) -> (Option<u16>, String) {
    let url = format!("https://127.0.0.1:{port}/opencm/v1/whoami");
    let (ok, out) = curl_as(opencm_ca, ca, who, &url);
    if !ok {
        return (None, out);
    }
    let (body, code) = out.trim_end().rsplit_once('\n').unwrap();
    let login = serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v["Login"].as_str().map(str::to_string))
        .unwrap_or_default();
    (code.parse().ok(), login)
}

#[tokio::test]
async fn an_enterprise_certificate_signs_in_only_by_its_accounts_sid_or_an_explicit_mapping() {
    let corp = EnterpriseCa::new("Example Corp Issuing CA");
    corp.issue_strong("bob-sid", "bob", Strong::SidExtension(BOB_SID));
    corp.issue_strong("bob-uri", "BOB", Strong::SidUri(BOB_SID));
    corp.issue("bob-upn", "bob");
    corp.issue_strong("bob-as-alice", "bob", Strong::SidExtension(ALICE_SID));
    corp.issue("carol-upn", "carol");
    let cfg = corp.dir.join("opencm.toml");
    let anchors = format!(
        "client_certificate_anchors = [\"{}\"]\nclient_certificate_crls = [\"{}\"]\n",
        corp.p("ca.pem"),
        corp.p("ca.crl")
    );
    std::fs::write(&cfg, &anchors).unwrap();
    let cfg = cfg.to_string_lossy().into_owned();
    let db = fresh_sqlite_url();
    let start = |weak: &'static str| {
        let (db, cfg) = (db.clone(), cfg.clone());
        async move {
            start_with(
                &db,
                true,
                &[
                    ("OPENCM_TLS_NAMES", "localhost,127.0.0.1"),
                    ("OPENCM_CONFIG", &cfg),
                    ("OPENCM_CLIENT_CERTIFICATE_WEAK_MAPPING", weak),
                ],
            )
            .await
            .unwrap()
        }
    };
    let mut s = start("false").await;
    let port = s.base.rsplit(':').next().unwrap().to_string();
    let (ok, chain) = curl(&["-sSk", &format!("https://127.0.0.1:{port}/pki/ca.pem")]);
    assert!(ok, "{chain}");
    let opencm_ca = corp.p("opencm-ca.pem");
    std::fs::write(&opencm_ca, chain).unwrap();
    let who = |name: &str| whoami_with(&port, &opencm_ca, &corp, name);

    // The account's SID, in the extension or the SAN URI (and the UPN in any case): signed in.
    assert_eq!(who("bob-sid"), (Some(200), "bob".to_string()));
    assert_eq!(who("bob-uri"), (Some(200), "bob".to_string()));
    // The UPN alone: weak, refused. Another account's SID: refused.
    assert_eq!(who("bob-upn").0, Some(401));
    assert_eq!(who("bob-as-alice").0, Some(401));

    // An explicit mapping of carol's names her certificate by issuer and serial (Windows' form:
    // the issuer's RDNs in certificate order, the serial's bytes reversed).
    assert_eq!(who("carol-upn").0, Some(401));
    let serial = openssl_ok(&["x509", "-in", &corp.p("carol-upn.pem"), "-noout", "-serial"]);
    let serial = serial.trim().trim_start_matches("serial=");
    let reversed: String = (0..serial.len())
        .step_by(2)
        .rev()
        .map(|i| &serial[i..i + 2])
        .collect();
    let mapping = format!("X509:<I>O=Example Corp,CN=Example Corp Issuing CA<SR>{reversed}");
    let toml = corp.dir.join("opencm.toml");
    let (ok, out) =
        crate::directory::opencm(&toml, &db, &["user", "map-certificate", "carol", &mapping]);
    assert!(ok, "{out}");
    assert_eq!(who("carol-upn"), (Some(200), "carol".to_string()));
    // A weak form is not taken as a mapping.
    let (ok, out) = crate::directory::opencm(
        &toml,
        &db,
        &["user", "map-certificate", "alice", "X509:<S>CN=alice"],
    );
    assert!(
        !ok && out.contains("not a strong certificate mapping"),
        "{out}"
    );

    // A UPN that moves to another account does not take the certificate with it: "wren" is
    // renamed and the name given to a new account; the old certificate signs in no one.
    let (ok, out) = crate::directory::opencm(
        &toml,
        &db,
        &[
            "user",
            "add",
            "wren",
            "--sid",
            "S-1-5-21-1000-1000-1000-1201",
        ],
    );
    assert!(ok, "{out}");
    corp.issue_strong(
        "wren",
        "wren",
        Strong::SidExtension("S-1-5-21-1000-1000-1000-1201"),
    );
    assert_eq!(who("wren"), (Some(200), "wren".to_string()));
    crate::helpers::sqlite_file(&db)
        .execute(
            "UPDATE users SET login = 'wren-2019' WHERE login = 'wren'",
            [],
        )
        .unwrap();
    let (ok, out) = crate::directory::opencm(
        &toml,
        &db,
        &[
            "user",
            "add",
            "WREN",
            "--sid",
            "S-1-5-21-1000-1000-1000-1202",
        ],
    );
    assert!(ok, "{out}");
    assert_eq!(
        who("wren").0,
        Some(401),
        "the name now belongs to another account"
    );

    // Two SIDs, one of them another account's: refused, whichever is where.
    corp.issue_strong("bob-two", "bob", Strong::Both(BOB_SID, ALICE_SID));
    corp.issue_strong("bob-two-r", "bob", Strong::Both(ALICE_SID, BOB_SID));
    assert_eq!(who("bob-two").0, Some(401));
    assert_eq!(who("bob-two-r").0, Some(401));

    // A mapping is kept in one spelling: removed by another way of writing it, it maps no more.
    let spaced = format!("x509:<i>O=Example Corp, CN=Example Corp Issuing CA<sr>{reversed}");
    let (ok, out) =
        crate::directory::opencm(&toml, &db, &["user", "unmap-certificate", "carol", &spaced]);
    assert!(ok && out.contains("no longer mapped"), "{out}");
    assert_eq!(who("carol-upn").0, Some(401));

    // Weak mapping, switched on explicitly: the UPN alone signs in, and each time the log says
    // so; another account's SID is still refused.
    s.stop_and_read_log().await;
    let mut s = start("true").await;
    let port = s.base.rsplit(':').next().unwrap().to_string();
    let who = |name: &str| whoami_with(&port, &opencm_ca, &corp, name);
    assert_eq!(who("bob-upn"), (Some(200), "bob".to_string()));
    assert_eq!(who("bob-as-alice").0, Some(401));
    let log = s.stop_and_read_log().await;
    assert!(
        log.contains("client_certificate_weak_mapping is on"),
        "{log}"
    );
    assert!(log.contains("mapped by its UPN alone"), "{log}");
    let _ = std::fs::remove_dir_all(&corp.dir);
}

#[tokio::test]
async fn an_anchor_is_known_by_its_key_with_crls_of_its_own() {
    // Two enterprise CAs of one name (a CA renewed with a new key): each one's certificates sign
    // in, each checked against its own CRL.
    let old = EnterpriseCa::new("Corp Issuing CA");
    let renewed = EnterpriseCa::new("Corp Issuing CA");
    old.issue_strong("bob", "bob", Strong::SidExtension(BOB_SID));
    renewed.issue_strong("alice", "alice", Strong::SidExtension(ALICE_SID));
    renewed.issue_strong("alice2", "alice", Strong::SidExtension(ALICE_SID));
    // A CA that takes opencm's own CA's name, anchored too, issuing a certificate with no SID
    // under the serial of a certificate opencm issued alice.
    let impostor = EnterpriseCa::with_subject("/CN=opencm Issuing CA/O=opencm");
    let cfg = old.dir.join("opencm.toml");
    let write_cfg = |crls: &[String]| {
        let anchors = [old.p("ca.pem"), renewed.p("ca.pem"), impostor.p("ca.pem")];
        std::fs::write(
            &cfg,
            format!(
                "client_certificate_anchors = {anchors:?}\nclient_certificate_crls = {crls:?}\n"
            ),
        )
        .unwrap();
    };
    write_cfg(&[old.p("ca.crl"), renewed.p("ca.crl"), impostor.p("ca.crl")]);
    let cfg_path = cfg.to_string_lossy().into_owned();
    let db = fresh_sqlite_url();
    let env = [
        ("OPENCM_TLS_NAMES", "localhost,127.0.0.1"),
        ("OPENCM_CONFIG", cfg_path.as_str()),
    ];
    let s = start_with(&db, true, &env).await.unwrap();
    let port = s.base.rsplit(':').next().unwrap().to_string();
    let (ok, chain) = curl(&["-sSk", &format!("https://127.0.0.1:{port}/pki/ca.pem")]);
    assert!(ok, "{chain}");
    let opencm_ca = old.p("opencm-ca.pem");
    std::fs::write(&opencm_ca, &chain).unwrap();
    assert_eq!(
        whoami_with(&port, &opencm_ca, &old, "bob"),
        (Some(200), "bob".to_string())
    );
    assert_eq!(
        whoami_with(&port, &opencm_ca, &renewed, "alice"),
        (Some(200), "alice".to_string())
    );
    renewed.revoke("alice2");
    assert_eq!(whoami_with(&port, &opencm_ca, &renewed, "alice2").0, None);
    assert_eq!(
        whoami_with(&port, &opencm_ca, &old, "bob").0,
        Some(200),
        "the old CA's CRL is its own"
    );

    // alice's certificate from opencm, then the impostor's with its serial: opencm's own
    // certificates are known by opencm's key, not by its CA's name.
    let http = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap();
    let api = |p: &str| format!("https://127.0.0.1:{port}/CertificateManagement/api/v1.0{p}");
    let alice_token = s.tokens["alice"].clone();
    let created: String = json_of(http
        .post(api("/requests"))
        .bearer_auth(&alice_token)
        .json(&serde_json::json!({"profiletemplateuuid": "2b7044cf-aa96-4911-b886-177947e9271b", "type": "Enroll", "datacollection": [], "comment": ""}))).await;
    let id = created.rsplit('/').next().unwrap().to_string();
    p256_csr("/CN=x", &old.p("own.key"), &old.p("own.csr"));
    let csr_b64: String = std::fs::read_to_string(old.p("own.csr"))
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let issued: Value = json_of(
        http.post(api(&format!("/requests/{id}/certificatedata")))
            .bearer_auth(&alice_token)
            .json(&serde_json::json!({"certificaterequests": [csr_b64]})),
    )
    .await;
    let (_, certs): (reqwest::StatusCode, Value) = {
        let r = http
            .get(api("/certificates"))
            .bearer_auth(&alice_token)
            .send()
            .await
            .unwrap();
        (r.status(), r.json().await.unwrap())
    };
    let serial = certs[0]["SerialNumber"].as_str().unwrap().to_string();
    assert!(issued[0]["Pkcs7"].is_string(), "{issued}");
    std::fs::write(impostor.dir.join("fake.serial"), &serial).unwrap();
    impostor.issue("fake", "alice");
    impostor.crl();
    assert_eq!(
        whoami_with(&port, &opencm_ca, &impostor, "fake").0,
        Some(401),
        "not opencm's certificate: another CA's, weakly mapped"
    );
    drop(s);

    // An anchor without a CRL of its own does not start, even when other CRLs are listed.
    write_cfg(&[old.p("ca.crl"), renewed.p("ca.crl")]);
    let refused = start_with(&fresh_sqlite_url(), false, &env).await;
    let err = refused
        .err()
        .expect("no start with an anchor whose CRL is missing");
    assert!(
        err.contains("no CRL signed by the anchor 'opencm Issuing CA'"),
        "{err}"
    );
    for ca in [old, renewed, impostor] {
        let _ = std::fs::remove_dir_all(&ca.dir);
    }
}
