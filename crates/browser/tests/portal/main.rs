//! The portal in a real headless Chromium, on SQLite and on PostgreSQL: what employees, approvers,
//! the help desk and administrators do, each in a browser of their own; every page checked by
//! axe-core; CSRF, XSS and the CSP tried as an attacker would; the pages in Spanish.
//!
//! Needs Chromium, ChromeDriver and axe-core (`scripts/browser-stack.sh`) and the built server
//! (`cargo build -p opencm`); `.ci/run` provides all three.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod harness;

use fantoccini::{Client, Locator};
use harness::*;

/// The demo realm's "Virtual Smart Card Logon" template: one approval from an approver.
const VSC: &str = "a039b4d0-5ce8-4eff-8651-181c6576fda3";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_portal_on_sqlite() {
    the_portal("sqlite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_portal_on_postgres() {
    the_portal("postgres").await;
}

async fn the_portal(engine: &str) {
    let s = Server::start(engine);
    let d = Driver::start();
    let alice = d.browser().await;
    let bob = d.browser().await;
    let admin = d.browser().await;
    let carol = d.browser().await;
    let spanish = d.browser_in("es").await;
    self_service_and_approval(&s, &alice, &bob, engine).await;
    concurrent_decisions_end_with_one(&s, &alice, &bob, &admin).await;
    help_desk_requests_within_its_site(&s, &carol).await;
    hostile_text_renders_as_text_and_inline_script_is_blocked(&s, &alice).await;
    forms_without_their_session_token_change_nothing(&s, &alice, &bob).await;
    audit_search_export_and_disabling_ends_a_session(&s, &admin, &bob, engine).await;
    spanish_pages_have_no_english_left(&s, &spanish, &alice).await;
    for c in [alice, bob, admin, carol, spanish] {
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
    assert_eq!(
        alice
            .find(Locator::Css("#d0"))
            .await
            .unwrap()
            .attr("required")
            .await
            .unwrap()
            .as_deref(),
        Some("true")
    );
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
        timeline.contains("Create") && timeline.contains("Approve"),
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

/// carol (help desk, site A) requests for jdoe (site A), not for dave (site B).
async fn help_desk_requests_within_its_site(s: &Server, carol: &Client) {
    sign_in(carol, s, "carol").await;
    carol
        .goto(&s.url(&format!("/requests/new/{VSC}")))
        .await
        .unwrap();
    fill(carol, "#d0", "Card for John").await;
    fill(carol, "#comment", "Called the help desk").await;
    fill(carol, "#for_user", "jdoe").await;
    click(carol, "#request-form button[type=submit]").await;
    assert_eq!(text(carol, "#notice").await, "Your request was submitted.");
    assert!(text(carol, "dl.facts").await.contains("John Doe (jdoe)"));

    carol
        .goto(&s.url(&format!("/requests/new/{VSC}")))
        .await
        .unwrap();
    fill(carol, "#d0", "Card for Dave").await;
    fill(carol, "#comment", "Called the help desk").await;
    fill(carol, "#for_user", "dave").await;
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
    let data = all.to_string();
    assert!(
        !data.contains("Card for Dave"),
        "a request for dave was created"
    );
    assert!(data.contains("Card for John"));
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
    let own = alice
        .find(Locator::Css("#cancel-form input[name=csrf]"))
        .await
        .unwrap()
        .attr("value")
        .await
        .unwrap()
        .unwrap();
    bob.goto(&s.url("/")).await.unwrap();
    let bobs = bob
        .find(Locator::Css("form.who input[name=csrf]"))
        .await
        .unwrap()
        .attr("value")
        .await
        .unwrap()
        .unwrap();
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
    let export = admin
        .find(Locator::Css("#export"))
        .await
        .unwrap()
        .attr("href")
        .await
        .unwrap()
        .unwrap();
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

    // bob is disabled (through the API): his open portal session ends at his next click.
    let r = reqwest::Client::new()
        .post(s.url("/opencm/v1/users/disable"))
        .bearer_auth(s.token("admin"))
        .json(&serde_json::json!({"login": "bob"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
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
    fill(es, "#login", "jdoe").await;
    fill(es, "#password", "not the password").await;
    click(es, "button[type=submit]").await;
    assert_eq!(
        text(es, "#sign-in-error").await,
        "El nombre de usuario o la contraseña no son correctos."
    );
    sign_in(es, s, "jdoe").await;
    assert_eq!(text(es, "h1").await, "Hola, John Doe");
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
