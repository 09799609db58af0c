//! The portal in a real headless Chromium, on SQLite and on PostgreSQL: what employees, approvers,
//! the help desk and administrators do, each in a browser of their own; every page checked by
//! axe-core; CSRF, XSS and the CSP tried as an attacker would; the pages in Spanish.
//!
//! Needs Chromium, ChromeDriver and axe-core (`scripts/browser-stack.sh`) and the built server
//! (`cargo build -p opencm`); `.ci/run` provides all three.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod harness;

use fantoccini::Client;
use harness::*;
use std::time::{Duration, Instant};

/// The demo realm's "Virtual Smart Card Logon" template: one approval from an approver.
const VSC: &str = "a039b4d0-5ce8-4eff-8651-181c6576fda3";
/// "Software User Certificate": the user's CSR, no approval.
const SOFTWARE: &str = "2b7044cf-aa96-4911-b886-177947e9271b";
/// "Wi-Fi Certificate": the server makes the key, handed over once as a PKCS#12.
const WIFI: &str = "5d1f0c2e-8a3b-4c6d-9e7f-1a2b3c4d5e6f";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_portal_on_sqlite() {
    the_portal("sqlite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_portal_on_postgres() {
    the_portal("postgres").await;
}

async fn the_portal(engine: &str) {
    let provider = Provider::start();
    let s = Server::start(engine, &provider).await;
    let d = Driver::start();
    let alice = d.browser().await;
    let bob = d.browser().await;
    let admin = d.browser().await;
    let carol = d.browser().await;
    let spanish = d.browser_in("es").await;
    self_service_and_approval(&s, &alice, &bob, engine).await;
    concurrent_decisions_end_with_one(&s, &alice, &bob, &admin).await;
    help_desk_requests_within_its_site(&s, &carol).await;
    help_desk_finds_a_user_and_unblocks_a_card_offline(&s, &carol, &alice, engine).await;
    software_certificates_download_and_verify_with_openssl(&s, &alice).await;
    hostile_text_renders_as_text_and_inline_script_is_blocked(&s, &alice).await;
    forms_without_their_session_token_change_nothing(&s, &alice, &bob).await;
    audit_search_export_and_disabling_ends_a_session(&s, &admin, &bob, engine).await;
    spanish_pages_have_no_english_left(&s, &spanish, &alice).await;
    let sso = d.browser().await;
    let stranger = d.browser().await;
    sign_in_through_the_openid_provider(&s, &sso, &stranger, engine).await;
    for c in [alice, bob, admin, carol, spanish, sso, stranger] {
        let _ = c.close().await;
    }
    let log = s.log();
    for u in s.users.values() {
        assert!(!log.contains(&u.password), "a password reached the log");
        assert!(!log.contains(&u.token), "a token reached the log");
    }
}

/// alice requests a virtual smart card from the form, with the reason the policy requires.
async fn request_vsc(c: &Client, s: &Server, reason: &str, comment: &str) -> String {
    c.goto(&s.url(&format!("/requests/new/{VSC}")))
        .await
        .unwrap();
    fill(c, "#d0", reason).await;
    fill(c, "#comment", comment).await;
    click(c, "#request-form button[type=submit]").await;
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let p = path(c).await;
    let id = p
        .strip_prefix("/requests/")
        .unwrap_or_else(|| panic!("not on a request page: {p}"))
        .to_string();
    assert_eq!(text(c, "#notice").await, "Your request was submitted.");
    id
}

async fn self_service_and_approval(s: &Server, alice: &Client, bob: &Client, engine: &str) {
    sign_in(alice, s, "alice").await;
    assert_eq!(text(alice, "h1").await, "Hello, Alice Example");
    assert_accessible(alice, "home").await;
    click(alice, "main a[href='/requests/new']").await;
    assert_eq!(text(alice, "h1").await, "New request");
    assert_accessible(alice, "new request").await;
    click(alice, &format!("#templates a[href='/requests/new/{VSC}']")).await;
    assert_accessible(alice, "request form").await;
    // The policy's required reason is required in the form too.
    assert_eq!(attr(alice, "#d0", "required").await, "true");
    let id = request_vsc(alice, s, "My laptop needs a smart card", "New starter").await;
    assert_eq!(text(alice, "#status").await, "Waiting for approval");
    assert_eq!(
        text(alice, "#waiting").await,
        "Waiting for approval: 1 more needed."
    );
    assert_accessible(alice, "request (waiting)").await;

    sign_in(bob, s, "bob").await;
    assert!(
        text(bob, "#queue-count").await.starts_with('1'),
        "bob's header counts one request waiting for him"
    );
    click(bob, "#nav-approvals").await;
    assert!(exists(bob, &format!("#needs-me tr[data-request='{id}']")).await);
    assert_accessible(bob, "approval queue").await;
    screenshot(bob, &format!("{engine}-approval-queue")).await;
    click(bob, &format!("#needs-me a[href='/requests/{id}']")).await;
    assert_accessible(bob, "review").await;
    fill(bob, "#decision-comment", "Approved for the new laptop").await;
    click(bob, "#approve").await;
    assert_eq!(text(bob, "#status").await, "Approved");
    assert_eq!(text(bob, "#decided").await, "You decided: Approved");
    assert!(
        !exists(bob, "#queue-count").await,
        "nothing waits for bob now"
    );

    alice
        .goto(&s.url(&format!("/requests/{id}")))
        .await
        .unwrap();
    assert_eq!(text(alice, "#status").await, "Approved");
    assert_eq!(
        text(alice, "#handoff").await,
        format!("opencm card enroll --server {} --request {id}", s.base)
    );
    assert!(text(alice, "#approvals")
        .await
        .contains("Approved for the new laptop"));
    let timeline = text(alice, "#timeline").await;
    assert!(
        timeline.contains("Created") && timeline.contains("Approved"),
        "{timeline}"
    );
    assert_accessible(alice, "request (approved)").await;
    screenshot(alice, &format!("{engine}-request-timeline")).await;
    alice.goto(&s.url("/")).await.unwrap();
    assert!(exists(alice, &format!("tr[data-request='{id}']")).await);
    screenshot(alice, &format!("{engine}-dashboard")).await;
}

/// bob approves while the administrator denies the same request: one decision is recorded, and
/// the one who came second is told instead of overwriting it.
async fn concurrent_decisions_end_with_one(
    s: &Server,
    alice: &Client,
    bob: &Client,
    admin: &Client,
) {
    let id = request_vsc(alice, s, "Second card for travel", "Travelling").await;
    sign_in(admin, s, "admin").await;
    for c in [bob, admin] {
        c.goto(&s.url(&format!("/requests/{id}"))).await.unwrap();
        assert!(exists(c, "#decision-form").await);
    }
    fill(bob, "#decision-comment", "yes").await;
    fill(admin, "#decision-comment", "no").await;
    let (b, a) = tokio::join!(click(bob, "#approve"), click(admin, "#deny"));
    let _ = (b, a);
    let mut told = 0;
    for c in [bob, admin] {
        assert_eq!(path(c).await, format!("/requests/{id}"));
        if exists(c, "#notice").await {
            assert!(text(c, "#notice")
                .await
                .starts_with("Someone else decided this request first"));
            told += 1;
        }
    }
    assert_eq!(
        told, 1,
        "exactly one of the two is told the other decided first"
    );
    let approvals: serde_json::Value = reqwest::Client::new()
        .get(s.url(&format!(
            "/CertificateManagement/api/v1.0/requests/{id}/approvals"
        )))
        .bearer_auth(s.token("admin"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(approvals.as_array().unwrap().len(), 1, "{approvals}");
}

/// carol (help desk, site A) requests for juan (site A), not for luis (site B).
async fn help_desk_requests_within_its_site(s: &Server, carol: &Client) {
    sign_in(carol, s, "carol").await;
    carol
        .goto(&s.url(&format!("/requests/new/{WIFI}")))
        .await
        .unwrap();
    fill(carol, "#for_user", "juan").await;
    click(carol, "#request-form button[type=submit]").await;
    assert_eq!(text(carol, "#notice").await, "Your request was submitted.");
    assert!(text(carol, "dl.facts").await.contains("Juan Pérez (juan)"));

    carol
        .goto(&s.url(&format!("/requests/new/{WIFI}")))
        .await
        .unwrap();
    fill(carol, "#for_user", "luis").await;
    click(carol, "#request-form button[type=submit]").await;
    assert_eq!(
        text(carol, "#error-message").await,
        "You are not allowed to do this."
    );
    assert_accessible(carol, "error page").await;
    let all: serde_json::Value = reqwest::Client::new()
        .get(s.url("/CertificateManagement/api/v1.0/requests"))
        .bearer_auth(s.token("admin"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let targets = all.to_string();
    let (juan, luis) = (user_id(s, "juan").await, user_id(s, "luis").await);
    // Users and templates are the administrators': the use cases refuse the help desk.
    for page in ["/users?login=juan", "/templates", "/health"] {
        carol.goto(&s.url(page)).await.unwrap();
        assert_eq!(
            text(carol, "#error-message").await,
            "You are not allowed to do this.",
            "{page}"
        );
    }
    assert!(targets.contains(&juan));
    assert!(!targets.contains(&luis), "a request for luis was created");
}

/// A user's GUID, as whoami tells them.
async fn user_id(s: &Server, login: &str) -> String {
    let me: serde_json::Value = reqwest::Client::new()
        .get(s.url("/opencm/v1/whoami"))
        .bearer_auth(s.token(login))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    me["Uuid"].as_str().unwrap().to_string()
}

const HOSTILE: &str = "<script>alert('x')</script> \u{202E}gnp.exe\u{202C} 🎉 \"'&";

async fn hostile_text_renders_as_text_and_inline_script_is_blocked(s: &Server, alice: &Client) {
    let id = request_vsc(alice, s, HOSTILE, HOSTILE).await;
    assert_eq!(text(alice, "#data dd").await, HOSTILE);
    assert_eq!(text(alice, "#comment").await, HOSTILE);
    let scripts = alice
        .execute(
            "return document.querySelectorAll('body script').length;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(scripts, 0, "no script element came from the data");
    let _ = console(alice).await;
    // An inline script that does get into the page (here put there by the test) does not run.
    let ran = alice
        .execute(
            "var s = document.createElement('script'); s.textContent = 'window.__pwned = 1;';
             document.body.appendChild(s); return window.__pwned === 1;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(ran, false, "the CSP let an inline script run");
    let log = console(alice).await;
    assert!(
        log.iter().any(|l| l.contains("Content Security Policy")),
        "the browser reports the blocked script: {log:?}"
    );
    // The request page of a hostile request is still accessible.
    alice
        .goto(&s.url(&format!("/requests/{id}")))
        .await
        .unwrap();
    assert_accessible(alice, "request with hostile text").await;
}

/// A cancel posted without the form's token, with another session's, or from another site is
/// refused and changes nothing; with its own token it goes through.
async fn forms_without_their_session_token_change_nothing(
    s: &Server,
    alice: &Client,
    bob: &Client,
) {
    let id = request_vsc(alice, s, "To be canceled", "Changed my mind").await;
    let own = attr(alice, "#cancel-form input[name=csrf]", "value").await;
    bob.goto(&s.url("/")).await.unwrap();
    let bobs = attr(bob, "form.who input[name=csrf]", "value").await;
    let cookie = format!("opencm_session={}", session_cookie(alice).await);
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let cancel = s.url(&format!("/requests/{id}/cancel"));
    let status_of = || async {
        let r: serde_json::Value = reqwest::Client::new()
            .get(s.url(&format!("/CertificateManagement/api/v1.0/requests/{id}")))
            .bearer_auth(s.token("alice"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        r["Status"].clone()
    };
    let before = status_of().await;
    for (what, body, origin) in [
        ("no token", String::new(), None),
        ("bob's token", format!("csrf={bobs}"), None),
        (
            "another site",
            format!("csrf={own}"),
            Some("http://evil.example"),
        ),
    ] {
        let mut req = http
            .post(&cancel)
            .header("cookie", &cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), 403, "{what}");
        assert_eq!(status_of().await, before, "{what} changed the request");
    }
    let res = http
        .post(&cancel)
        .header("cookie", &cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("csrf={own}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_ne!(status_of().await, before, "its own token cancels it");
}

async fn audit_search_export_and_disabling_ends_a_session(
    s: &Server,
    admin: &Client,
    bob: &Client,
    engine: &str,
) {
    admin.goto(&s.url("/audit")).await.unwrap();
    fill(admin, "#user", "alice").await;
    click(admin, "#audit-form button[type=submit]").await;
    let events = text(admin, "#events").await;
    assert!(
        events.contains("Create") && events.contains("Alice Example (alice)"),
        "{events}"
    );
    assert!(
        !events.contains("Bob Approver"),
        "only alice's actions: {events}"
    );
    assert_accessible(admin, "audit").await;
    screenshot(admin, &format!("{engine}-audit")).await;
    let export = attr(admin, "#export", "href").await;
    let csv = reqwest::Client::new()
        .get(s.url(&export))
        .header(
            "cookie",
            format!("opencm_session={}", session_cookie(admin).await),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
    let csv = csv.text().await.unwrap();
    assert!(
        csv.starts_with("time,user,request,action,status,detail\r\n"),
        "{csv}"
    );
    assert!(csv.contains("\"Create\"") && csv.contains("Alice Example (alice)"));
    // The hostile reason went into a cell as text; a leading formula character never does.
    assert!(!csv.contains(",\"="));

    // The templates as opencm applies them, read-only.
    click(admin, "#nav-templates").await;
    let templates = text(admin, "main").await;
    assert!(
        templates.contains("Virtual Smart Card Logon") && templates.contains("only for users in"),
        "{templates}"
    );
    assert_accessible(admin, "templates").await;

    // The server's health: the engine answering, the CA's expiry.
    click(admin, "#nav-health").await;
    let engine_name = if engine == "sqlite" {
        "sqlite"
    } else {
        "postgres"
    };
    assert!(
        text(admin, "#health-database")
            .await
            .starts_with(engine_name),
        "{}",
        text(admin, "#health").await
    );
    assert!(text(admin, "#health-ca-expires")
        .await
        .contains("days left"));
    assert_accessible(admin, "health").await;

    // The administrator disables bob on his page: bob's open session ends at his next click.
    click(admin, "#nav-users").await;
    fill(admin, "#login", "bob").await;
    click(admin, "#user-search button[type=submit]").await;
    assert_eq!(text(admin, "#user-status").await, "Enabled");
    assert!(
        text(admin, "#tokens").await.contains("bob"),
        "bob's API token is listed"
    );
    assert_accessible(admin, "users").await;
    click(admin, "#disable").await;
    assert_eq!(text(admin, "#notice").await, "Done.");
    assert_eq!(text(admin, "#user-status").await, "Disabled");
    // His API token stopped with his session.
    let r = reqwest::Client::new()
        .get(s.url("/CertificateManagement/api/v1.0/profiletemplates"))
        .bearer_auth(s.token("bob"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    click(bob, "#nav-approvals").await;
    assert_eq!(path(bob).await, "/sign-in");
    assert_eq!(
        text(bob, "#notice").await,
        "Your session has ended. Please sign in again."
    );
    // And he cannot sign in again.
    fill(bob, "#login", "bob").await;
    fill(bob, "#password", s.password("bob")).await;
    click(bob, "button[type=submit]").await;
    assert_eq!(
        text(bob, "#sign-in-error").await,
        "The user name or the password is not right."
    );
}

/// What an English page would say; none of it may be left on a Spanish page.
const ENGLISH: &[&str] = &[
    "Sign in",
    "Sign out",
    "Skip to content",
    "My requests",
    "My certificates",
    "New request",
    "Approvals",
    "Waiting for approval",
    "Submit request",
    "Timeline",
    "Details",
    "Hello",
    "Requested by",
    "Submitted",
    "Needs approval",
    "No approval needed",
    "Information provided",
    "Nothing here",
    "Created",
];

async fn assert_spanish(c: &Client, page: &str) {
    let body = c
        .execute(
            "return document.documentElement.lang + ' ' + document.body.innerText;",
            vec![],
        )
        .await
        .unwrap();
    let body = body.as_str().unwrap();
    assert!(body.starts_with("es "), "{page} is not marked Spanish");
    for e in ENGLISH {
        assert!(!body.contains(e), "{page} still says {e:?}:\n{body}");
    }
    assert_accessible(c, page).await;
}

async fn spanish_pages_have_no_english_left(s: &Server, es: &Client, alice: &Client) {
    // A browser that asks for Spanish gets it from the first page.
    es.goto(&s.url("/sign-in")).await.unwrap();
    assert_eq!(text(es, "h1").await, "Iniciar sesión");
    assert_spanish(es, "sign-in (es)").await;
    fill(es, "#login", "juan").await;
    fill(es, "#password", "not the password").await;
    click(es, "button[type=submit]").await;
    assert_eq!(
        text(es, "#sign-in-error").await,
        "El nombre de usuario o la contraseña no son correctos."
    );
    sign_in(es, s, "juan").await;
    assert_eq!(text(es, "h1").await, "Hola, Juan Pérez");
    assert_spanish(es, "home (es)").await;
    es.goto(&s.url("/requests/new")).await.unwrap();
    assert_spanish(es, "new request (es)").await;
    let id = {
        es.goto(&s.url(&format!("/requests/new/{VSC}")))
            .await
            .unwrap();
        assert_spanish(es, "request form (es)").await;
        fill(es, "#d0", "Necesito una tarjeta").await;
        fill(es, "#comment", "Empiezo el lunes").await;
        click(es, "#request-form button[type=submit]").await;
        assert_eq!(text(es, "#notice").await, "Su solicitud se ha enviado.");
        path(es).await
    };
    assert_eq!(text(es, "#status").await, "Esperando aprobación");
    assert_spanish(es, "request (es)").await;
    es.goto(&s.url("/approvals")).await.unwrap();
    assert_spanish(es, "approvals (es)").await;
    es.goto(&s.url("/requests/00000000-0000-0000-0000-000000000001"))
        .await
        .unwrap();
    assert_eq!(
        text(es, "#error-message").await,
        "Esta página no existe o no tiene permiso para verla."
    );
    assert_spanish(es, "error (es)").await;
    assert!(id.starts_with("/requests/"));

    // The switch in the page turns an English browser's pages Spanish, and back.
    alice.goto(&s.url("/approvals")).await.unwrap();
    click(alice, "header a.lang").await;
    assert_eq!(path(alice).await, "/approvals");
    assert_eq!(text(alice, "h1").await, "Aprobaciones");
    click(alice, "header a.lang").await;
    assert_eq!(text(alice, "h1").await, "Approvals");
}

fn openssl(dir: &std::path::Path, args: &[&str]) -> String {
    let out = std::process::Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// alice gets a certificate from her own CSR, and a Wi-Fi certificate whose key the server makes
/// and hands over once as a PKCS#12; openssl opens both and verifies them against the CA.
async fn software_certificates_download_and_verify_with_openssl(s: &Server, alice: &Client) {
    let dir = s.dir.join("certs");
    std::fs::create_dir_all(&dir).unwrap();
    let ca = reqwest::get(s.url("/pki/ca.pem"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    std::fs::write(dir.join("ca.pem"), ca).unwrap();
    let cookie = format!("opencm_session={}", session_cookie(alice).await);
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    // 1. From a CSR made on "her computer": the key never leaves it.
    alice
        .goto(&s.url(&format!("/requests/new/{SOFTWARE}")))
        .await
        .unwrap();
    fill(alice, "#d0", "VPN").await;
    click(alice, "#request-form button[type=submit]").await;
    assert_eq!(text(alice, "#status").await, "Approved");
    assert_accessible(alice, "request with its CSR form").await;
    openssl(
        &dir,
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "mine.key",
            "-out",
            "mine.csr",
            "-subj",
            "/CN=alice",
        ],
    );
    let csr = std::fs::read_to_string(dir.join("mine.csr")).unwrap();
    fill(alice, "#csr0", &csr).await;
    click(alice, "#issue").await;
    assert_eq!(text(alice, "#notice").await, "Your certificate was issued.");
    assert_eq!(text(alice, "#status").await, "Completed");
    let href = attr(alice, "#issued a.download", "href").await;
    let der = http
        .get(s.url(&href))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(der.headers()["content-type"], "application/pkix-cert");
    std::fs::write(dir.join("mine.cer"), der.bytes().await.unwrap()).unwrap();
    openssl(
        &dir,
        &[
            "x509", "-inform", "DER", "-in", "mine.cer", "-out", "mine.pem",
        ],
    );
    assert!(openssl(&dir, &["verify", "-CAfile", "ca.pem", "mine.pem"]).contains("mine.pem: OK"));
    // The certificate is for her key.
    let cert_key = openssl(&dir, &["x509", "-in", "mine.pem", "-noout", "-pubkey"]);
    let own_key = openssl(&dir, &["pkey", "-in", "mine.key", "-pubout"]);
    assert_eq!(cert_key, own_key);

    // 2. The server makes the key: a PKCS#12 with the password she chooses, once.
    alice
        .goto(&s.url(&format!("/requests/new/{WIFI}")))
        .await
        .unwrap();
    click(alice, "#request-form button[type=submit]").await;
    let id = path(alice)
        .await
        .trim_start_matches("/requests/")
        .to_string();
    assert!(exists(alice, "#pfx-password").await);
    let csrf = attr(alice, "#issue-form input[name=csrf]", "value").await;
    let post = |body: String| {
        http.post(s.url(&format!("/requests/{id}/certificate")))
            .header("cookie", &cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
    };
    // Two different passwords: refused, nothing issued.
    let r = post(format!(
        "csrf={csrf}&password=correct-horse&password2=correct-hors"
    ))
    .await
    .unwrap();
    assert_eq!(r.status(), 400);
    let r = post(format!(
        "csrf={csrf}&password=correct-horse&password2=correct-horse"
    ))
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/x-pkcs12");
    std::fs::write(dir.join("wifi.p12"), r.bytes().await.unwrap()).unwrap();
    openssl(
        &dir,
        &[
            "pkcs12",
            "-in",
            "wifi.p12",
            "-passin",
            "pass:correct-horse",
            "-nokeys",
            "-clcerts",
            "-out",
            "wifi.pem",
        ],
    );
    assert!(openssl(&dir, &["verify", "-CAfile", "ca.pem", "wifi.pem"]).contains("wifi.pem: OK"));
    let keys = openssl(
        &dir,
        &[
            "pkcs12",
            "-in",
            "wifi.p12",
            "-passin",
            "pass:correct-horse",
            "-nocerts",
            "-nodes",
        ],
    );
    assert!(keys.contains("PRIVATE KEY"));
    // Once: the request is completed and offers no second file.
    let r = post(format!(
        "csrf={csrf}&password=correct-horse&password2=correct-horse"
    ))
    .await
    .unwrap();
    assert_ne!(r.status(), 200);
    alice
        .goto(&s.url(&format!("/requests/{id}")))
        .await
        .unwrap();
    assert_eq!(text(alice, "#status").await, "Completed");
    assert!(!exists(alice, "#issue-form").await);
    assert!(text(alice, "#issued").await.contains("opencmWifi"));
    assert_accessible(alice, "request with its certificates").await;
}

/// juan signs in through the test suite's real OpenID provider: the authorization-code flow with
/// PKCE (the provider requires it of every client), back on the page he asked for. The provider's
/// answer works once, only in the browser that began the sign-in, and only with its own state.
async fn sign_in_through_the_openid_provider(
    s: &Server,
    c: &Client,
    stranger: &Client,
    engine: &str,
) {
    c.goto(&s.url("/approvals")).await.unwrap();
    assert_eq!(settled_path(c, "/sign-in").await, "/sign-in");
    assert_accessible(c, "sign-in-ways").await;
    screenshot(c, &format!("{engine}-sign-in")).await;
    click(c, "#sign-in-oidc").await;
    // The provider's own forms: login (any login; the account is the login), then consent.
    // (bob, disabled by the administrator above, would be refused like any disabled user.)
    let started = Instant::now();
    loop {
        let url = c.current_url().await.unwrap();
        if url.as_str().starts_with(&s.base) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "not back from the provider: {url}: {}",
            c.source().await.unwrap_or_default()
        );
        if url.path().starts_with("/interaction/") && exists(c, "button[type=submit]").await {
            if exists(c, "input[name=login]").await {
                fill(c, "input[name=login]", "juan").await;
                fill(c, "input[name=password]", "whatever").await;
            }
            click(c, "button[type=submit]").await;
            continue;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let at = settled_path(c, "/approvals").await;
    assert_eq!(
        at,
        "/approvals",
        "back on the page juan asked for; the server said: {}",
        s.log()
            .lines()
            .filter(|l| l.contains("OIDC") || l.contains("OpenID"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        text(c, "header").await.contains("Juan Pérez"),
        "signed in as juan"
    );

    // A forged answer in a browser that began an attempt: its state is not the attempt's.
    stranger
        .goto(&s.url("/sign-in/oidc/start?next=/"))
        .await
        .unwrap();
    stranger
        .goto(&s.url("/sign-in/oidc?code=forged&state=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"))
        .await
        .unwrap();
    assert!(
        text(stranger, "#sign-in-error")
            .await
            .contains("did not work"),
        "a forged state is refused"
    );
    assert!(
        stranger.get_named_cookie("opencm_session").await.is_err(),
        "nobody signed in"
    );

    // The provider's real answer, taken outside a browser: it signs in once, in the client that
    // began the attempt; replayed there or elsewhere it signs nobody in.
    let began = no_redirects(true);
    let answer = provider_answer(s, &began, "carol").await;
    let other = no_redirects(true);
    let r = other.get(&answer).send().await.unwrap();
    assert_eq!(r.status(), 401, "another client than the one that began");
    let r = began.get(&answer).send().await.unwrap();
    assert_eq!(r.status(), 303, "the client that began it signs in");
    assert!(r
        .headers()
        .get_all("set-cookie")
        .iter()
        .any(|v| v.to_str().unwrap().starts_with("opencm_session=ocm_")));
    let r = began.get(&answer).send().await.unwrap();
    assert_eq!(r.status(), 401, "the same answer twice");
}

fn no_redirects(cookies: bool) -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(cookies)
        .build()
        .unwrap()
}

/// Walks the authorization-code flow through the provider's own forms as `login` would, up to
/// the provider's redirect back to opencm: that URL (with its code and state), not followed.
async fn provider_answer(s: &Server, client: &reqwest::Client, login: &str) -> String {
    let mut next = s.url("/sign-in/oidc/start?next=/");
    let mut form: Option<Vec<(String, String)>> = None;
    for _ in 0..20 {
        let r = match form.take() {
            Some(f) => client.post(&next).form(&f).send().await.unwrap(),
            None => client.get(&next).send().await.unwrap(),
        };
        let base = r.url().clone();
        if r.status().is_redirection() {
            let to = base
                .join(r.headers()["location"].to_str().unwrap())
                .unwrap()
                .to_string();
            if to.starts_with(&s.url("/sign-in/oidc?")) {
                return to;
            }
            next = to;
            continue;
        }
        let page = r.text().await.unwrap();
        let action = between(&page, "action=\"", "\"").expect("a form of the provider");
        next = base.join(&action).unwrap().to_string();
        let mut fields: Vec<(String, String)> = page
            .split("<input")
            .skip(1)
            .filter(|i| i.contains("type=\"hidden\""))
            .filter_map(|i| Some((between(i, "name=\"", "\"")?, between(i, "value=\"", "\"")?)))
            .collect();
        if page.contains("name=\"login\"") {
            fields.push(("login".into(), login.into()));
            fields.push(("password".into(), "whatever".into()));
        }
        form = Some(fields);
    }
    panic!("the provider did not send the browser back");
}

fn between(s: &str, start: &str, end: &str) -> Option<String> {
    let from = s.find(start)? + start.len();
    let len = s[from..].find(end)?;
    Some(s[from..from + len].to_string())
}

/// A REST call with a user's API token: status and body.
async fn api(
    s: &Server,
    who: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    let mut req = reqwest::Client::new()
        .request(
            method,
            s.url(&format!("/CertificateManagement/api/v1.0{path}")),
        )
        .bearer_auth(s.token(who));
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(serde_json::Value::Null))
}

fn last_segment(v: &serde_json::Value) -> String {
    v.as_str().unwrap().rsplit('/').next().unwrap().to_string()
}

/// `login`'s virtual smart card, enrolled through the REST API as a card client does it
/// (request, approval by bob, bind, certificate from an RSA CSR, complete): its card uuid and id.
async fn enrolled_vsc(s: &Server, login: &str) -> (String, String) {
    use reqwest::Method;
    let (st, v) = api(
        s,
        login,
        Method::POST,
        "/requests",
        Some(
            serde_json::json!({"profiletemplateuuid": VSC, "type": "Enroll",
            "datacollection": [{"Request Reason": "new laptop"}], "comment": "new laptop"}),
        ),
    )
    .await;
    assert_eq!(st, 201, "{v}");
    let request = last_segment(&v);
    let (st, v) = api(
        s,
        "bob",
        Method::POST,
        &format!("/requests/{request}/approvals"),
        Some(serde_json::json!({"decision": "Approve"})),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    let card_id = format!("6a1b2c3d-0000-4000-8000-{:012x}", std::process::id());
    let (st, v) = api(
        s,
        login,
        Method::POST,
        "/smartcards",
        Some(serde_json::json!({"requestid": request, "cardid": card_id,
            "atr": "3B8D018031FE09E8D87000640005"})),
    )
    .await;
    assert_eq!(st, 201, "{v}");
    let card = last_segment(&v);
    let dir = s.dir.join(format!("vsc-{login}"));
    std::fs::create_dir_all(&dir).unwrap();
    openssl(
        &dir,
        &[
            "req", "-new", "-nodes", "-newkey", "rsa:2048", "-subj", "/CN=vsc", "-keyout",
            "vsc.key", "-out", "vsc.csr",
        ],
    );
    let csr: String = std::fs::read_to_string(dir.join("vsc.csr"))
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let (st, v) = api(
        s,
        login,
        Method::POST,
        &format!("/requests/{request}/certificatedata"),
        Some(serde_json::json!({"certificaterequests": [csr]})),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    let (st, v) = api(
        s,
        login,
        Method::PUT,
        &format!("/requests/{request}"),
        Some(serde_json::json!({"status": "Completed"})),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    (card, card_id)
}

/// carol (help desk; site A's for virtual smart cards and Wi-Fi) finds juan, sees his card, and
/// unblocks it offline: the response to the published challenge under the factory key is the
/// published one, the request is recorded and completed. Outside her scopes she is offered
/// nothing; employees find nobody.
async fn help_desk_finds_a_user_and_unblocks_a_card_offline(
    s: &Server,
    carol: &Client,
    alice: &Client,
    engine: &str,
) {
    let (card, card_id) = enrolled_vsc(s, "juan").await;
    carol.goto(&s.url("/")).await.unwrap();
    click(carol, "#nav-help-desk").await;
    assert_eq!(path(carol).await, "/people");
    fill(carol, "#login", "juan").await;
    click(carol, "#people-search button[type=submit]").await;
    assert_eq!(settled_path(carol, "/people/juan").await, "/people/juan");
    assert_eq!(text(carol, "#person").await, "Juan Pérez");
    assert!(
        text(carol, "#cards").await.contains(&card_id),
        "juan's card is listed"
    );
    assert!(
        text(carol, "#for-user").await.contains("Wi-Fi Certificate"),
        "carol may request for juan"
    );
    assert!(
        text(carol, "#requests").await.contains("Wi-Fi Certificate"),
        "the request carol made for juan"
    );
    assert_accessible(carol, "a user's page").await;
    screenshot(carol, &format!("{engine}-help-desk-user")).await;

    // luis is another site's: carol serves him only where her policies are not scoped to site A
    // (software certificates, PIV cards), so his page offers those and not the Wi-Fi
    // certificate; a login nobody has is nobody, as is everyone to an employee.
    carol.goto(&s.url("/people/luis")).await.unwrap();
    let offered = text(carol, "#for-user").await;
    assert!(offered.contains("Software User Certificate"), "{offered}");
    assert!(
        !offered.contains("Wi-Fi"),
        "Wi-Fi is for site A only: {offered}"
    );
    for login in ["nobody-at-all"] {
        carol
            .goto(&s.url(&format!("/people?login={login}")))
            .await
            .unwrap();
        assert!(exists(carol, "#no-user").await, "{login}");
        carol
            .goto(&s.url(&format!("/people/{login}")))
            .await
            .unwrap();
        assert!(exists(carol, "#error-message").await, "{login}'s page");
    }
    // An employee has no help desk.
    alice.goto(&s.url("/")).await.unwrap();
    assert!(!exists(alice, "#nav-help-desk").await);
    alice.goto(&s.url("/people?login=juan")).await.unwrap();
    assert!(exists(alice, "#no-user").await);

    // The inventory: by holder, and by card id.
    carol.goto(&s.url("/cards?holder=juan")).await.unwrap();
    assert!(text(carol, "#cards").await.contains(&card_id));
    assert_accessible(carol, "card inventory").await;
    carol
        .goto(&s.url(&format!("/cards?card_id={}", card_id.to_uppercase())))
        .await
        .unwrap();
    assert!(text(carol, "#cards").await.contains(&card_id));
    carol.goto(&s.url("/cards?holder=luis")).await.unwrap();
    assert!(exists(carol, "#no-cards").await);
    // By ATR, as a reader prints it (upper case, with colons).
    carol
        .goto(&s.url("/cards?atr=3B:8D:01:80:31:FE:09:E8:D8:70:00:64:00:05"))
        .await
        .unwrap();
    assert!(text(carol, "#cards").await.contains(&card_id), "by ATR");

    // Offline unblock: without a reason nothing happens (a form post outside the browser's
    // own checks), with one the published vector comes back.
    carol.goto(&s.url(&format!("/cards/{card}"))).await.unwrap();
    assert!(text(carol, "#card-facts").await.contains("Juan Pérez"));
    let csrf = attr(carol, "#offline-form input[name=csrf]", "value").await;
    let before = api(s, "admin", reqwest::Method::GET, "/requests", None)
        .await
        .1;
    let cookie = format!("opencm_session={}", session_cookie(carol).await);
    let post = |path: String, form: Vec<(&'static str, &'static str)>| {
        let (cookie, csrf, origin) = (cookie.clone(), csrf.clone(), s.base.clone());
        async move {
            let mut form: Vec<(&str, String)> =
                form.into_iter().map(|(k, v)| (k, v.to_string())).collect();
            form.push(("csrf", csrf));
            reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap()
                .post(s.url(&path))
                .header("cookie", cookie)
                .header("origin", origin)
                .form(&form)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    let offline = format!("/cards/{card}/offline-unblock");
    for (why, form) in [
        (
            "no reason",
            vec![
                ("reason", " "),
                ("challenge", "1hFD+cz/0so="),
                ("key", "factory"),
            ],
        ),
        (
            "an invisible reason",
            vec![
                ("reason", "\u{200b}\u{200b}\u{200b}\u{202e}"),
                ("challenge", "1hFD+cz/0so="),
                ("key", "factory"),
            ],
        ),
        (
            "a challenge of 3 bytes",
            vec![
                ("reason", "phone call"),
                ("challenge", "AAAA"),
                ("key", "factory"),
            ],
        ),
        (
            "a challenge of 16 bytes for a 3DES key",
            vec![
                ("reason", "phone call"),
                ("challenge", "00112233445566778899aabbccddeeff"),
                ("key", "own"),
            ],
        ),
        (
            "an unknown key",
            vec![
                ("reason", "phone call"),
                ("challenge", "1hFD+cz/0so="),
                ("key", "bogus"),
            ],
        ),
    ] {
        assert_eq!(post(offline.clone(), form).await, 400, "{why}");
    }
    // The offline unblock has its own form (reason, challenge): the general one refuses it.
    assert_eq!(
        post(
            format!("/cards/{card}/requests"),
            vec![("operation", "offlineunblock"), ("comment", "")]
        )
        .await,
        403,
        "an offline unblock through the operations form"
    );
    let after = api(s, "admin", reqwest::Method::GET, "/requests", None)
        .await
        .1;
    assert_eq!(before, after, "nothing was created");

    assert_accessible(carol, "a card's page").await;
    fill(carol, "#reason", "Juan is abroad; his card is blocked").await;
    fill(carol, "#challenge", "1hFD+cz/0so=").await;
    carol
        .find(fantoccini::Locator::Css("#key-factory"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    click(carol, "#offline-form button[type=submit]").await;
    if !exists(carol, "#response").await {
        panic!("no response: {}", text(carol, "main").await);
    }
    assert_eq!(text(carol, "#response").await, "F0Zudm4wPLY=");
    assert_eq!(text(carol, "#response-hex").await, "17466E766E303CB6");
    screenshot(carol, &format!("{engine}-offline-unblock")).await;
    // The same challenge read as hex, with the card's own (diversified) key: another answer.
    fill(carol, "#reason", "Juan again").await;
    fill(carol, "#challenge", "D6 11 43 F9 CC FF D2 CA").await;
    click(carol, "#offline-form button[type=submit]").await;
    let own = text(carol, "#response").await;
    assert_ne!(own, "F0Zudm4wPLY=");
    assert_eq!(own.len(), 12, "8 bytes in base64: {own}");
    // Each unblock is a completed OfflineUnblock request for juan, by carol, with its reason.
    let request = attr(carol, "#offline-result a", "href").await;
    let request = request.rsplit('/').next().unwrap();
    let (st, r) = api(
        s,
        "admin",
        reqwest::Method::GET,
        &format!("/requests/{request}"),
        None,
    )
    .await;
    assert_eq!(st, 200, "{r}");
    assert_eq!(
        (r["RequestType"].as_i64(), r["Status"].as_i64()),
        (Some(12), Some(8)),
        "{r}"
    );
    assert_eq!(r["Comment"], "Juan again");
    // carol reads the request she carried out (its certificates are not hers, but the request is).
    carol
        .goto(&s.url(&format!("/requests/{request}")))
        .await
        .unwrap();
    assert!(
        text(carol, "main").await.contains("Juan again"),
        "{}",
        text(carol, "main").await
    );
    let (_, h) = api(
        s,
        "admin",
        reqwest::Method::GET,
        &format!("/requests/{request}/history"),
        None,
    )
    .await;
    assert!(h.to_string().contains("AuthenticationResponse"), "{h}");
}
