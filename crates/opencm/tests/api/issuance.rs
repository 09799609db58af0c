//! Issue #3's software-profile enrolment over HTTP, every artefact checked with openssl: the
//! generation options, a CSR made by openssl, the PKCS#7 response, the certificate chain up to
//! /pki/ca.pem, the profile's life, and revocation in /pki/crl when an executing request is
//! canceled. Bad CSRs are refused with 400 and change nothing.

use crate::helpers::*;
use base64::Engine;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::path::PathBuf;

pub(crate) struct Work(PathBuf);

impl Work {
    pub(crate) fn new() -> Work {
        Work(scratch_dir("enroll"))
    }
    pub(crate) fn p(&self, n: &str) -> String {
        self.0.join(n).to_str().unwrap().to_string()
    }
}

/// The test clock's time, for `openssl verify -attime` (certificates are issued at that time).
const AT: &str = "1436312300";

/// A key and CSR made by openssl; returns the CSR as the base64 body MIM clients send.
pub(crate) fn csr(w: &Work, name: &str, keyspec: &[&str]) -> String {
    let mut args = vec![
        "req",
        "-new",
        "-nodes",
        "-subj",
        "/CN=Whatever The Client Says",
    ];
    let (key, out) = (w.p(&format!("{name}.key")), w.p(&format!("{name}.csr")));
    args.extend_from_slice(keyspec);
    args.extend_from_slice(&["-keyout", &key, "-out", &out]);
    let (ok, msg) = openssl(&args);
    assert!(ok, "{msg}");
    std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect::<Vec<_>>()
        .join("\r\n")
}

pub(crate) const P256: &[&str] = &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"];

pub(crate) async fn save_ca(app: &TestApp, w: &Work) -> String {
    let pem = app
        .http
        .get(format!("{}/pki/ca.pem", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    std::fs::write(w.p("ca.pem"), pem).unwrap();
    w.p("ca.pem")
}

/// Writes the certificates of a base64 PKCS#7 as PEM files; returns the end-entity's path, a
/// new one on every call (a test keeps the paths of the certificates it holds).
pub(crate) fn leaf_of(w: &Work, pkcs7_b64: &str) -> String {
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let der = base64::engine::general_purpose::STANDARD
        .decode(pkcs7_b64.replace("\r\n", ""))
        .unwrap();
    std::fs::write(w.p("resp.p7b"), der).unwrap();
    let (ok, out) = openssl(&[
        "pkcs7",
        "-inform",
        "DER",
        "-in",
        &w.p("resp.p7b"),
        "-print_certs",
    ]);
    assert!(ok, "{out}");
    let blocks: Vec<String> = out
        .split("-----BEGIN CERTIFICATE-----")
        .skip(1)
        .map(|b| {
            format!(
                "-----BEGIN CERTIFICATE-----{}",
                b.split("-----END CERTIFICATE-----").next().unwrap()
            ) + "-----END CERTIFICATE-----\n"
        })
        .collect();
    assert_eq!(blocks.len(), 2, "the certificate and the CA: {out}");
    for (i, b) in blocks.iter().enumerate() {
        let path = w.p(&format!("c{n}-{i}.pem"));
        std::fs::write(&path, b).unwrap();
        // The end entity is the one not issued by itself (the CA is a self-signed root).
        let (_, names) = openssl(&["x509", "-in", &path, "-noout", "-subject", "-issuer"]);
        let mut lines = names
            .lines()
            .map(|l| l.split_once('=').map(|x| x.1).unwrap_or(l));
        if lines.next() != lines.next() {
            return path;
        }
    }
    panic!("no end-entity certificate in the response")
}

pub(crate) async fn post_csrs(
    app: &TestApp,
    who: &str,
    id: &str,
    body: Value,
) -> (StatusCode, Value) {
    let (s, v, _) = app
        .send(
            who,
            Method::POST,
            &format!("/requests/{id}/certificatedata"),
            Some(body),
        )
        .await;
    (s, v)
}

async fn a_software_enrolment_issues_a_certificate_that_openssl_verifies_and_completes_the_profile(
    app: TestApp,
) {
    let w = Work::new();
    let ca = save_ca(&app, &w).await;
    let id = app.create("alice", SOFTWARE).await;
    let (s, opts) = app
        .get(
            "alice",
            &format!("/requests/{id}/certificaterequestgenerationoptions"),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        opts,
        json!([{"Subject": "", "KeyAlgorithmName": "ECDSA_P256", "KeySize": 256, "FriendlyName": "opencm user certificate", "HashAlgorithmName": "SHA256", "KeyStorageProviderNames": ["Microsoft Software Key Storage Provider"], "Exportable": 0, "KeyProtectionLevel": 0, "KeyUsages": 2}])
    );

    let (s, resp) = post_csrs(
        &app,
        "alice",
        &id,
        json!({"certificaterequests": [csr(&w, "alice", P256)], "comments": "laptop"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{resp}");
    let r = &resp[0];
    assert_eq!(
        (
            r["TemplateCommonName"].as_str(),
            r["Flags"].as_i64(),
            r["isPkcs7"].as_bool(),
            r["isPfx"].as_bool()
        ),
        (Some("opencmUser"), Some(0x10000), Some(true), Some(false))
    );
    assert_eq!(
        (r["Pfx"].clone(), r["Error"].clone()),
        (Value::Null, Value::Null)
    );
    let leaf = leaf_of(&w, r["Pkcs7"].as_str().unwrap());
    let (ok, out) = openssl(&["verify", "-attime", AT, "-CAfile", &ca, &leaf]);
    assert!(ok, "{}: {out}", app.engine());
    let (_, text) = openssl(&[
        "x509",
        "-in",
        &leaf,
        "-noout",
        "-subject",
        "-serial",
        "-fingerprint",
        "-sha1",
        "-ext",
        "extendedKeyUsage",
    ]);
    assert!(
        text.contains("CN = Alice Example") || text.contains("CN=Alice Example"),
        "the subject comes from the directory: {text}"
    );
    assert!(!text.contains("Whatever The Client Says"));
    assert!(
        text.contains("TLS Web Client Authentication") && text.contains("E-mail Protection"),
        "{text}"
    );

    // The request is executing, with its new profile in status New.
    let (_, req) = app.get("alice", &format!("/requests/{id}")).await;
    assert_eq!(req["Status"], 18);
    let profile = req["NewProfileUuid"].as_str().unwrap().to_string();
    // Profiles, like requests, get time-ordered (version 7) GUIDs: they sort by creation, after
    // the request that made them, and sit together in every index keyed by them.
    assert_eq!(profile.chars().nth(14), Some('7'), "{profile}");
    assert!(profile > id, "{profile} sorts after its request {id}");
    let (_, p) = app.get("alice", &format!("/profiles/{profile}")).await;
    assert_eq!(
        (p["Status"].as_i64(), p["AssignedUserUuid"].as_str()),
        (Some(0), Some(app.users["alice"].uuid.to_string().as_str()))
    );
    let (_, list) = app.get("alice", &format!("/requests/{id}/profiles")).await;
    assert_eq!(list[0]["Uuid"], profile);

    // Issuing twice is refused and changes nothing, whatever the second call carries.
    let (s, v) = post_csrs(
        &app,
        "alice",
        &id,
        json!({"certificaterequests": ["garbage"]}),
    )
    .await;
    assert_eq!(
        (s, v["ErrorCode"].as_str()),
        (StatusCode::CONFLICT, Some("AlreadyIssued"))
    );
    let (s, v) = post_csrs(
        &app,
        "alice",
        &id,
        json!({"certificaterequests": [csr(&w, "again", P256)]}),
    )
    .await;
    assert_eq!(
        (s, v["ErrorCode"].as_str()),
        (StatusCode::CONFLICT, Some("AlreadyIssued"))
    );

    assert_eq!(
        app.put_status("alice", &id, "Completed").await.0,
        StatusCode::OK
    );
    let (_, p) = app.get("alice", &format!("/profiles/{profile}")).await;
    assert_eq!(p["Status"], 2, "Completed makes the profile Active");
    let (_, active) = app.get("alice", "/profiles?status=Active").await;
    assert_eq!(active.as_array().unwrap().len(), 1);
    let (_, certs) = app.get("alice", "/certificates").await;
    let c = &certs[0];
    // The dates shown are the certificate's own (MIM form: no fraction, no Z).
    let (_, dates) = openssl(&[
        "x509",
        "-in",
        &leaf,
        "-noout",
        "-startdate",
        "-enddate",
        "-dateopt",
        "iso_8601",
    ]);
    let iso = |field: &str| c[field].as_str().unwrap().replace('T', " ") + "Z";
    assert!(
        dates.contains(&format!("notBefore={}", iso("NotBefore"))),
        "{dates} / {c}"
    );
    assert!(
        dates.contains(&format!("notAfter={}", iso("NotAfter"))),
        "{dates} / {c}"
    );
    assert!(
        text.contains(&format!("serial={}", c["SerialNumber"].as_str().unwrap())),
        "{text} / {c}"
    );
    assert!(
        text.replace(':', "")
            .contains(c["Thumbprint"].as_str().unwrap()),
        "{text} / {c}"
    );
    assert_eq!(
        (
            c["Status"].as_i64(),
            c["CertificateType"].as_i64(),
            c["Issuer"].as_str()
        ),
        (Some(0), Some(1), Some("opencm Test CA"))
    );
    let (_, pc) = app
        .get("alice", &format!("/profiles/{profile}/certificates"))
        .await;
    assert_eq!(pc[0]["SerialNumber"], c["SerialNumber"]);
    assert!(
        pc[0].get("NotAfter").is_none(),
        "the short view has no dates"
    );
    // Others cannot see alice's profile.
    assert_eq!(
        app.get("eve", &format!("/profiles/{profile}")).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(app.get("eve", "/certificates").await.1, json!([]));
    let history: Vec<String> = app
        .history(&id)
        .await
        .iter()
        .map(|e| e["Action"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(history, ["Create", "Execute", "Issue", "Complete"]);
}
on_each_engine!(
    a_software_enrolment_issues_a_certificate_that_openssl_verifies_and_completes_the_profile
);

async fn canceling_an_executing_request_revokes_what_it_issued_and_the_crl_says_so(app: TestApp) {
    let w = Work::new();
    let ca = save_ca(&app, &w).await;
    let id = app.create("alice", SOFTWARE).await;
    let (s, resp) = post_csrs(
        &app,
        "alice",
        &id,
        json!({"certificaterequests": [csr(&w, "a", P256)]}),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let leaf = leaf_of(&w, resp[0]["Pkcs7"].as_str().unwrap());
    assert_eq!(
        app.put_status("alice", &id, "Canceled").await.0,
        StatusCode::OK
    );
    let crl = app
        .http
        .get(format!("{}/pki/crl.pem", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    std::fs::write(w.p("crl.pem"), crl).unwrap();
    let (_, text) = openssl(&["crl", "-in", &w.p("crl.pem"), "-noout", "-text"]);
    let (_, serial) = openssl(&["x509", "-in", &leaf, "-noout", "-serial"]);
    assert!(
        text.contains(serial.trim().trim_start_matches("serial="))
            && text.contains("Cessation Of Operation"),
        "{}: {text}",
        app.engine()
    );
    let (ok, out) = openssl(&[
        "verify",
        "-crl_check",
        "-CRLfile",
        &w.p("crl.pem"),
        "-CAfile",
        &ca,
        &leaf,
    ]);
    assert!(!ok && out.contains("certificate revoked"), "{out}");
    let (_, req) = app.get("alice", &format!("/requests/{id}")).await;
    let (_, p) = app
        .get(
            "alice",
            &format!("/profiles/{}", req["NewProfileUuid"].as_str().unwrap()),
        )
        .await;
    assert_eq!(p["Status"], 3, "the profile is Disabled");
    let (_, certs) = app.get("alice", "/certificates").await;
    assert_eq!(certs[0]["Status"], 1, "Revoked");
}
on_each_engine!(canceling_an_executing_request_revokes_what_it_issued_and_the_crl_says_so);

#[tokio::test]
async fn bad_certificate_requests_are_400_and_change_nothing() {
    let app = TestApp::sqlite().await;
    let w = Work::new();
    let id = app.create("alice", SOFTWARE).await;
    let good = csr(&w, "good", P256);
    let mut tampered = base64::engine::general_purpose::STANDARD
        .decode(good.replace("\r\n", ""))
        .unwrap();
    let n = tampered.len() - 4;
    tampered[n] ^= 0x01;
    let tampered = base64::engine::general_purpose::STANDARD.encode(tampered);
    let cases: Vec<(Value, &str, &str)> = vec![
        (
            json!({"certificaterequests": ["%%% not base64 %%%"]}),
            "InvalidCertificateRequest",
            "not base64",
        ),
        (
            json!({"certificaterequests": [tampered]}),
            "InvalidCertificateRequest",
            "signature does not verify",
        ),
        (
            json!({"certificaterequests": [csr(&w, "rsa", &["-newkey", "rsa:2048"])]}),
            "InvalidCertificateRequest",
            "the template requires ECDSA_P256",
        ),
        (
            json!({"certificaterequests": [csr(&w, "p384", &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384"])]}),
            "InvalidCertificateRequest",
            "ECDSA_P384",
        ),
        (
            json!({"certificaterequests": [csr(&w, "rsa1k", &["-newkey", "rsa:1024"])]}),
            "InvalidCertificateRequest",
            "1024 bits; at least 2048 are required",
        ),
        (
            // A valid signature with a refused hash says which hash, not "no proof of possession".
            json!({"certificaterequests": [csr(&w, "sha1", &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-sha1"])]}),
            "InvalidCertificateRequest",
            "signed with ECDSA with SHA-1, which is not allowed",
        ),
        (
            json!({"certificaterequests": []}),
            "InvalidCertificateRequests",
            "Expected 1 certificate request",
        ),
        (
            json!({"certificaterequests": [good.clone(), good.clone()]}),
            "InvalidCertificateRequests",
            "got 2",
        ),
        (
            json!({"certificaterequests": 7}),
            "InvalidBody",
            "array of strings",
        ),
    ];
    for (body, code, text) in cases {
        let (s, v) = post_csrs(&app, "alice", &id, body).await;
        assert_eq!(
            (s, v["ErrorCode"].as_str()),
            (StatusCode::BAD_REQUEST, Some(code)),
            "{v}"
        );
        assert!(v["Message"].as_str().unwrap().contains(text), "{v}");
        assert!(
            v["Message"].as_str().unwrap().contains("opencmUser")
                || code != "InvalidCertificateRequest",
            "names the certificate: {v}"
        );
    }
    // Nothing changed: still Approved, no profile, nothing issued, nothing in the history.
    let (_, req) = app.get("alice", &format!("/requests/{id}")).await;
    assert_eq!(
        (req["Status"].as_i64(), req["NewProfileUuid"].as_str()),
        (Some(3), Some("00000000-0000-0000-0000-000000000000"))
    );
    assert_eq!(app.get("alice", "/certificates").await.1, json!([]));
    assert_eq!(app.history(&id).await.len(), 1);
    // Only the executor may submit: an approver who can read it gets 403, a stranger 404.
    assert_eq!(
        post_csrs(
            &app,
            "bob",
            &id,
            json!({"certificaterequests": [good.clone()]})
        )
        .await
        .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        post_csrs(
            &app,
            "eve",
            &id,
            json!({"certificaterequests": [good.clone()]})
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get(
            "bob",
            &format!("/requests/{id}/certificaterequestgenerationoptions")
        )
        .await
        .0,
        StatusCode::FORBIDDEN
    );
    // A pending request cannot be executed.
    let pending = app.create("alice", VSC).await;
    let (s, v) = post_csrs(
        &app,
        "alice",
        &pending,
        json!({"certificaterequests": [csr(&w, "vsc", &["-newkey", "rsa:2048"])]}),
    )
    .await;
    assert_eq!(
        (s, v["ErrorCode"].as_str()),
        (StatusCode::CONFLICT, Some("InvalidTransition"))
    );
}

/// Creates `who`'s Enroll request from `template` and issues its certificate; the request and
/// the certificate's path.
pub(crate) async fn issue_from(
    app: &TestApp,
    w: &Work,
    who: &str,
    template: &str,
    tag: &str,
) -> (String, String) {
    let id = app.create(who, template).await;
    let (s, resp) = post_csrs(
        app,
        who,
        &id,
        json!({"certificaterequests": [csr(w, tag, P256)]}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{resp}");
    (id, leaf_of(w, resp[0]["Pkcs7"].as_str().unwrap()))
}

/// Enrolls `who` on the demo software template through to Completed; returns the profile and the
/// issued certificate (PEM path).
pub(crate) async fn enrol(app: &TestApp, w: &Work, who: &str, tag: &str) -> (String, String) {
    let (id, leaf) = issue_from(app, w, who, SOFTWARE, tag).await;
    let leaf_path = w.p(&format!("{tag}.crt"));
    std::fs::copy(&leaf, &leaf_path).unwrap();
    assert_eq!(
        app.put_status(who, &id, "Completed").await.0,
        StatusCode::OK
    );
    let (_, req) = app.get(who, &format!("/requests/{id}")).await;
    (
        req["NewProfileUuid"].as_str().unwrap().to_string(),
        leaf_path,
    )
}

/// Creates a request on an existing profile, completes it as `executor`, returns the request.
async fn on_profile(app: &TestApp, who: &str, executor: &str, kind: &str, profile: &str) -> Value {
    let id = app.request_on(who, kind, profile).await;
    let (s, v) = app.put_status(executor, &id, "Completed").await;
    assert_eq!(s, StatusCode::OK, "{kind}: {v}");
    v
}

/// The CRL's text as openssl prints it, and whether openssl accepts `leaf` against it.
pub(crate) async fn crl_check(app: &TestApp, w: &Work, leaf: &str) -> (String, bool, String) {
    let crl = app
        .http
        .get(format!("{}/pki/crl.pem", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    std::fs::write(w.p("now.crl"), crl).unwrap();
    let (_, text) = openssl(&["crl", "-in", &w.p("now.crl"), "-noout", "-text"]);
    let (ok, out) = openssl(&[
        "verify",
        "-attime",
        AT,
        "-crl_check",
        "-CRLfile",
        &w.p("now.crl"),
        "-CAfile",
        &w.p("ca.pem"),
        leaf,
    ]);
    (text, ok, out)
}

pub(crate) fn serial_of(leaf: &str) -> String {
    openssl(&["x509", "-in", leaf, "-noout", "-serial"])
        .1
        .trim()
        .trim_start_matches("serial=")
        .to_string()
}

async fn suspend_reinstate_renew_and_retire_change_the_profile_and_the_crl(app: TestApp) {
    let w = Work::new();
    save_ca(&app, &w).await;
    let (profile, leaf) = enrol(&app, &w, "alice", "first").await;
    let serial = serial_of(&leaf);
    let (_, ops) = app
        .get("alice", &format!("/profiles/{profile}/operations"))
        .await;
    assert_eq!(
        ops,
        json!(["renew", "retire", "suspend"]),
        "{}: alice may not revoke (helpdesk only)",
        app.engine()
    );

    on_profile(&app, "alice", "alice", "Suspend", &profile).await;
    let (_, p) = app.get("alice", &format!("/profiles/{profile}")).await;
    assert_eq!(
        (p["Status"].as_i64(), p["ProfileOperations"].clone()),
        (Some(4), json!(["retire", "reinstate"]))
    );
    let (text, ok, out) = crl_check(&app, &w, &leaf).await;
    assert!(
        text.contains(&serial) && text.contains("Certificate Hold"),
        "{text}"
    );
    assert!(!ok && out.contains("revoked"), "{out}");

    on_profile(&app, "alice", "alice", "Reinstate", &profile).await;
    assert_eq!(
        app.get("alice", &format!("/profiles/{profile}")).await.1["Status"],
        2
    );
    let (text, ok, out) = crl_check(&app, &w, &leaf).await;
    assert!(
        !text.contains(&serial) && ok,
        "the hold is lifted: {text} {out}"
    );

    // Renew: a new profile with its own certificate; the old one is superseded and revoked.
    let (s, v, _) = app
        .post_request("alice", json!({"type": "Renew", "profile": profile}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let renew = id_of(&v);
    let (s, resp) = post_csrs(
        &app,
        "alice",
        &renew,
        json!({"certificaterequests": [csr(&w, "second", P256)]}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{resp}");
    let new_leaf = leaf_of(&w, resp[0]["Pkcs7"].as_str().unwrap());
    assert_eq!(
        app.put_status("alice", &renew, "Completed").await.0,
        StatusCode::OK
    );
    let (_, req) = app.get("alice", &format!("/requests/{renew}")).await;
    assert_eq!(req["OldProfileUuid"], profile);
    let new_profile = req["NewProfileUuid"].as_str().unwrap().to_string();
    let (_, np) = app.get("alice", &format!("/profiles/{new_profile}")).await;
    assert_eq!(
        (np["Status"].as_i64(), np["ParentProfileUuid"].as_str()),
        (Some(2), Some(profile.as_str()))
    );
    let (_, op) = app.get("alice", &format!("/profiles/{profile}")).await;
    assert_eq!(
        (op["Status"].as_i64(), op["Flags"].as_i64().unwrap() & 32),
        (Some(6), 32),
        "old profile retired and superseded"
    );
    let (text, ok, _) = crl_check(&app, &w, &leaf).await;
    assert!(
        text.contains(&serial) && text.contains("Superseded") && !ok,
        "{text}"
    );
    assert!(
        crl_check(&app, &w, &new_leaf).await.1,
        "the new certificate is good"
    );
    let (_, certs) = app.get("alice", "/certificates").await;
    assert_eq!(
        certs.as_array().unwrap().len(),
        1,
        "the retired profile's certificate is left out: {certs}"
    );
    assert_eq!(
        certs[0]["SerialNumber"].as_str().unwrap(),
        serial_of(&new_leaf)
    );

    on_profile(&app, "alice", "alice", "Retire", &new_profile).await;
    assert_eq!(
        app.get("alice", &format!("/profiles/{new_profile}"))
            .await
            .1["Status"],
        6
    );
    assert!(!crl_check(&app, &w, &new_leaf).await.1);
    assert_eq!(app.get("alice", "/certificates").await.1, json!([]));
    // Nothing more may be done to a retired profile.
    let (s, v, _) = app
        .post_request("alice", json!({"type": "Suspend", "profile": new_profile}))
        .await;
    assert_eq!(
        (s, v["ErrorCode"].as_str()),
        (StatusCode::CONFLICT, Some("ProfileRetired")),
        "{v}"
    );
}
on_each_engine!(suspend_reinstate_renew_and_retire_change_the_profile_and_the_crl);

#[tokio::test]
async fn the_helpdesk_revokes_a_users_profile_and_others_cannot() {
    let app = TestApp::sqlite().await;
    let w = Work::new();
    save_ca(&app, &w).await;
    let (profile, leaf) = enrol(&app, &w, "alice", "r").await;
    // alice may not revoke her own (the policy is not self-service); eve cannot even see it.
    let (s, _, _) = app
        .post_request("alice", json!({"type": "Revoke", "profile": profile}))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, v, _) = app
        .post_request("eve", json!({"type": "Revoke", "profile": profile}))
        .await;
    assert_eq!(
        (s, v["ErrorCode"].as_str()),
        (StatusCode::NOT_FOUND, Some("ProfileNotFound"))
    );
    // carol (initiator and enrollment agent) revokes it; the request is on alice's profile.
    let done = on_profile(&app, "carol", "carol", "Disable", &profile).await;
    assert_eq!(
        (
            done["RequestType"].as_i64(),
            done["TargetUserUuid"].as_str()
        ),
        (Some(4), Some(app.users["alice"].uuid.to_string().as_str()))
    );
    assert_eq!(done["OldProfileUuid"], profile);
    assert_eq!(
        app.get("alice", &format!("/profiles/{profile}")).await.1["Status"],
        3
    );
    let (text, ok, out) = crl_check(&app, &w, &leaf).await;
    assert!(
        text.contains(&serial_of(&leaf)) && !ok && out.contains("revoked"),
        "{text}"
    );
    // Requests that need a profile say so; Enroll must not name one.
    let (s, v, _) = app
        .post_request(
            "alice",
            json!({"type": "Renew", "profiletemplateuuid": SOFTWARE}),
        )
        .await;
    assert_eq!(
        (s, v["ErrorCode"].as_str()),
        (StatusCode::BAD_REQUEST, Some("ProfileRequired"))
    );
    let (s, v, _) = app
        .post_request("alice", json!({"type": "Enroll", "profile": profile}))
        .await;
    assert_eq!(
        (s, v["ErrorCode"].as_str()),
        (StatusCode::BAD_REQUEST, Some("ProfileNotAllowed"))
    );
    let (s, v, _) = app
        .post_request(
            "alice",
            json!({"type": "Renew", "profile": uuid::Uuid::new_v4().to_string()}),
        )
        .await;
    assert_eq!(
        (s, v["ErrorCode"].as_str()),
        (StatusCode::NOT_FOUND, Some("ProfileNotFound"))
    );
}

/// The public key inside a PFX, as openssl prints it.
pub(crate) fn pfx_public_key(w: &Work, pfx_b64: &str, password: &str, tag: &str) -> String {
    let der = base64::engine::general_purpose::STANDARD
        .decode(pfx_b64.replace("\r\n", ""))
        .unwrap();
    std::fs::write(w.p(&format!("{tag}.pfx")), der).unwrap();
    let (ok, info) = openssl(&[
        "pkcs12",
        "-info",
        "-in",
        &w.p(&format!("{tag}.pfx")),
        "-passin",
        &format!("pass:{password}"),
        "-noout",
    ]);
    assert!(
        ok && info.contains("AES-256-CBC") && info.contains("PBKDF2"),
        "{info}"
    );
    let (ok, out) = openssl(&[
        "pkcs12",
        "-in",
        &w.p(&format!("{tag}.pfx")),
        "-passin",
        &format!("pass:{password}"),
        "-nocerts",
        "-nodes",
        "-out",
        &w.p(&format!("{tag}.key")),
    ]);
    assert!(ok, "{out}");
    let (ok, pubkey) = openssl(&["pkey", "-in", &w.p(&format!("{tag}.key")), "-pubout"]);
    assert!(ok, "{pubkey}");
    let (ok, out) = openssl(&[
        "pkcs12",
        "-in",
        &w.p(&format!("{tag}.pfx")),
        "-passin",
        &format!("pass:{password}"),
        "-clcerts",
        "-nokeys",
        "-out",
        &w.p(&format!("{tag}.crt")),
    ]);
    assert!(ok, "{out}");
    pubkey
}

async fn server_generated_keys_come_as_an_aes_pfx_are_archived_sealed_and_recovered(app: TestApp) {
    let w = Work::new();
    let ca = save_ca(&app, &w).await;
    let id = app.create("alice", SERVER_KEYS).await;
    // Nothing for the client to generate.
    assert_eq!(
        app.get(
            "alice",
            &format!("/requests/{id}/certificaterequestgenerationoptions")
        )
        .await
        .1,
        json!([])
    );
    let (s, v) = post_csrs(&app, "alice", &id, json!({})).await;
    assert_eq!(
        (s, v["ErrorCode"].as_str()),
        (StatusCode::BAD_REQUEST, Some("PfxPasswordRequired"))
    );
    let (s, resp) = post_csrs(
        &app,
        "alice",
        &id,
        json!({"pfxpassword": "6b75162c-b3b4-4fc1-a653-f12dae98f0c3"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{resp}");
    let r = &resp[0];
    assert_eq!(
        (
            r["Flags"].as_i64(),
            r["isPfx"].as_bool(),
            r["isServerGenerated"].as_bool(),
            r["Pkcs7"].clone()
        ),
        (Some(0x20000), Some(true), Some(true), Value::Null)
    );
    let issued_key = pfx_public_key(
        &w,
        r["Pfx"].as_str().unwrap(),
        "6b75162c-b3b4-4fc1-a653-f12dae98f0c3",
        "issued",
    );
    let (ok, out) = openssl(&["verify", "-attime", AT, "-CAfile", &ca, &w.p("issued.crt")]);
    assert!(ok, "{}: {out}", app.engine());
    assert_eq!(
        app.put_status("alice", &id, "Completed").await.0,
        StatusCode::OK
    );
    let (_, req) = app.get("alice", &format!("/requests/{id}")).await;
    let profile = req["NewProfileUuid"].as_str().unwrap().to_string();
    // At rest the key is sealed under the KEK, never in the clear.
    let stored = app
        .store
        .certificates_of_profile(profile.parse().unwrap())
        .await
        .unwrap();
    let sealed = stored[0].sealed_key.clone().unwrap();
    assert!(
        sealed.starts_with("v1:") && !sealed.contains("PRIVATE"),
        "{sealed}"
    );
    assert_eq!(
        app.get("alice", &format!("/profiles/{profile}/certificates"))
            .await
            .1[0]["ArchivedOnCa"],
        true
    );

    // Recover delivers the same key again, under a new password, once.
    let (s, v, _) = app
        .post_request("alice", json!({"type": "Recover", "profile": profile}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let rec = id_of(&v);
    let (s, resp) = post_csrs(
        &app,
        "alice",
        &rec,
        json!({"pfxpassword": "another secret"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{resp}");
    let recovered_key = pfx_public_key(
        &w,
        resp[0]["Pfx"].as_str().unwrap(),
        "another secret",
        "recovered",
    );
    assert_eq!(
        recovered_key, issued_key,
        "the archived key is the one first issued"
    );
    let (s, v) = post_csrs(&app, "alice", &rec, json!({"pfxpassword": "again"})).await;
    assert_eq!(
        (s, v["ErrorCode"].as_str()),
        (StatusCode::CONFLICT, Some("AlreadyDelivered"))
    );
    assert_eq!(
        app.put_status("alice", &rec, "Completed").await.0,
        StatusCode::OK
    );
    // Profiles whose keys were not archived have nothing to recover.
    let (plain, _) = enrol(&app, &w, "alice", "plain").await;
    let (s, v, _) = app
        .post_request("alice", json!({"type": "Recover", "profile": plain}))
        .await;
    assert_eq!(
        s,
        StatusCode::BAD_REQUEST,
        "the software template has no Recover policy: {v}"
    );
}
on_each_engine!(server_generated_keys_come_as_an_aes_pfx_are_archived_sealed_and_recovered);
