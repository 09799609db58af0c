//! `TestApp`: the real router on port 0 over a fresh database (SQLite, or PostgreSQL when
//! OPENCM_TEST_POSTGRES_URL is set), a settable clock, and ready-made principals with tokens.

use opencm_api::{ApiConfig, AppState};
use opencm_app::ports::{Clock, NewUser, Storage};
use opencm_app::{App, Settings};
use opencm_domain::{Guid, Principal, Timestamp};
pub(crate) use opencm_store::testing::scratch_dir;
use opencm_store::testing::{fresh_postgres_url, fresh_sqlite_url, postgres_base_url};
use opencm_store::StoreOptions;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

/// The public URL the test CA writes into certificates (CRL distribution point, CA issuers).
pub const PUBLIC_URL: &str = "http://pki.example.test";
pub const SOFTWARE: &str = "2b7044cf-aa96-4911-b886-177947e9271b";
pub const VSC: &str = "a039b4d0-5ce8-4eff-8651-181c6576fda3";
pub const TWO_APPROVALS: &str = "5f0c1b7e-2d7c-4f43-9a55-0d6d3c1e0a01";
pub const AGENT_REQUIRED: &str = "5f0c1b7e-2d7c-4f43-9a55-0d6d3c1e0a02";
pub const HIDDEN: &str = "5f0c1b7e-2d7c-4f43-9a55-0d6d3c1e0a03";
pub const READ_ONLY: &str = "5f0c1b7e-2d7c-4f43-9a55-0d6d3c1e0a04";
pub const SERVER_KEYS: &str = "5f0c1b7e-2d7c-4f43-9a55-0d6d3c1e0a05";
/// Issues no certificates: for tests of the request workflow itself, which complete Enroll
/// requests without issuing (a template with certificates refuses that, 409 NothingIssued).
pub const WORKFLOW: &str = "5f0c1b7e-2d7c-4f43-9a55-0d6d3c1e0a06";
pub const WORKFLOW_TEMPLATE: &str = include_str!("../fixtures/workflow.toml");

const EXTRA_TEMPLATES: &str = r#"
[[template]]
uuid = "5f0c1b7e-2d7c-4f43-9a55-0d6d3c1e0a01"
name = "Two Approvals"
kind = "software"
security_descriptor = "D:(A;;RCCR;;;AU)"
[template.policies.Enroll]
approvals_needed = 2
self_service_enabled = true
authorized_approver = "D:(A;;CR;;;S-1-5-21-1000-1000-1000-2001)"

[[template]]
uuid = "5f0c1b7e-2d7c-4f43-9a55-0d6d3c1e0a02"
name = "Agent Required"
kind = "smartcard"
security_descriptor = "D:(A;;RCCR;;;AU)"
[template.policies.Enroll]
approvals_needed = 0
self_service_enabled = true
enroll_agent_required = true
collect_comments = true
authorized_enrollment_agent = "D:(A;;CR;;;S-1-5-21-1000-1000-1000-2002)"
authorized_initiator = "D:(A;;CR;;;S-1-5-21-1000-1000-1000-2002)"
[[template.policies.Enroll.data_collection]]
name = "Employee Number"
required = true
validation = "[0-9]{6}"
[[template.policies.Enroll.data_collection]]
name = "City"

[[template]]
uuid = "5f0c1b7e-2d7c-4f43-9a55-0d6d3c1e0a03"
name = "Hidden"
kind = "software"
security_descriptor = "D:(A;;GA;;;BA)"
[template.policies.Enroll]
self_service_enabled = true

[[template]]
uuid = "5f0c1b7e-2d7c-4f43-9a55-0d6d3c1e0a05"
name = "Server Keys"
kind = "software"
security_descriptor = "D:(A;;RCCR;;;AU)"
[[template.certificates]]
common_name = "opencmEncryption"
key_usages = ["key_agreement"]
extended_key_usages = ["email_protection"]
server_generated = true
archive_key = true
[template.policies.Enroll]
self_service_enabled = true
[template.policies.Recover]
self_service_enabled = true

[[template]]
uuid = "5f0c1b7e-2d7c-4f43-9a55-0d6d3c1e0a04"
name = "Read Only"
kind = "software"
security_descriptor = "D:(A;;RC;;;AU)"
[template.policies.Enroll]
self_service_enabled = true
"#;

/// The embedded CA, made to fail its signatures on demand: failure injection for what opencm
/// does when its CA cannot sign (everything else it does is the real CA's).
pub struct TestCa {
    inner: opencm_ca::EmbeddedCa,
    pub fail: std::sync::atomic::AtomicBool,
}

impl opencm_ca::CertificateAuthority for TestCa {
    fn chain_der(&self) -> &[Vec<u8>] {
        self.inner.chain_der()
    }
    fn slow_signatures(&self) -> bool {
        self.inner.slow_signatures()
    }
    fn issue(
        &self,
        req: &opencm_ca::IssueRequest<'_>,
    ) -> Result<opencm_ca::Issued, opencm_ca::CaError> {
        if self.fail.load(Ordering::SeqCst) {
            return Err(opencm_ca::CaError::Generate("injected failure".into()));
        }
        self.inner.issue(req)
    }
    fn crl(
        &self,
        revoked: &[opencm_ca::Revocation],
        number: u64,
        this_update: time::OffsetDateTime,
        next_update: time::OffsetDateTime,
    ) -> Result<Vec<u8>, opencm_ca::CaError> {
        self.inner.crl(revoked, number, this_update, next_update)
    }
    fn sign(&self, data: &[u8]) -> Result<opencm_ca::ocsp::RawSignature, opencm_ca::CaError> {
        if self.fail.load(Ordering::SeqCst) {
            return Err(opencm_ca::CaError::Generate("injected failure".into()));
        }
        self.inner.sign(data)
    }
    fn issue_ocsp_responder(
        &self,
        key: &opencm_ca::VerifiedCsr,
        not_before: time::OffsetDateTime,
        not_after: time::OffsetDateTime,
    ) -> Result<opencm_ca::Issued, opencm_ca::CaError> {
        if self.fail.load(Ordering::SeqCst) {
            return Err(opencm_ca::CaError::Generate("injected failure".into()));
        }
        self.inner.issue_ocsp_responder(key, not_before, not_after)
    }
}

/// A clock tests move by hand; starts at 2015-07-07T23:36:21.93Z like the MIM examples.
pub struct TestClock(AtomicI64);

impl TestClock {
    pub fn advance_ms(&self, ms: i64) {
        self.0.fetch_add(ms * 1000, Ordering::SeqCst);
    }
}

impl Clock for TestClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_micros(self.0.load(Ordering::SeqCst))
    }
}

pub struct TestApp {
    pub base: String,
    pub http: reqwest::Client,
    /// The application behind the router, for steps no HTTP route reaches yet.
    pub core: Arc<App>,
    /// The CA behind the app, which fails its signatures on demand.
    pub ca: Arc<TestCa>,
    pub store: Arc<dyn Storage>,
    pub clock: Arc<TestClock>,
    /// The database, for a second node on it.
    pub db_url: String,
    pub tokens: HashMap<&'static str, String>,
    pub users: HashMap<&'static str, Principal>,
}

/// `on_each_engine!(name)` runs the test body `async fn name(app: TestApp)` as two tests:
/// `name::sqlite`, and `name::postgres`, which is reported as *ignored* (not silently passed)
/// unless `OPENCM_TEST_POSTGRES_URL` was set when the tests were built (`build.rs` turns it into
/// the `opencm_postgres_tests` cfg; changing the variable rebuilds them).
macro_rules! on_each_engine {
    ($name:ident) => {
        mod $name {
            #[tokio::test]
            async fn sqlite() {
                super::$name(crate::helpers::TestApp::sqlite().await).await
            }
            #[tokio::test]
            #[cfg_attr(
                not(opencm_postgres_tests),
                ignore = "PostgreSQL: set OPENCM_TEST_POSTGRES_URL=postgres://127.0.0.1/test to run"
            )]
            async fn postgres() {
                super::$name(crate::helpers::TestApp::postgres().await).await
            }
        }
    };
}

impl TestApp {
    pub async fn sqlite() -> TestApp {
        TestApp::with_url(fresh_sqlite_url()).await
    }

    /// A fresh database on the PostgreSQL server of `OPENCM_TEST_POSTGRES_URL` (required).
    pub async fn postgres() -> TestApp {
        TestApp::with_url(fresh_postgres_url(&postgres_base_url()).await).await
    }

    pub async fn with_url(db_url: String) -> TestApp {
        let store = opencm_store::connect(&db_url, StoreOptions::default())
            .await
            .unwrap();
        store.migrate().await.unwrap();
        let clock = Arc::new(TestClock(AtomicI64::new(1_436_312_181_930_000)));
        let now = clock.now();
        let (ca, _) =
            opencm_ca::EmbeddedCa::generate("opencm Test CA", now.to_offset_date_time(), 20)
                .unwrap();
        let ca = ca.with_public_url(PUBLIC_URL);
        let ca = Arc::new(TestCa {
            inner: ca,
            fail: std::sync::atomic::AtomicBool::new(false),
        });
        let core = Arc::new(
            App::new(store.clone(), clock.clone(), Settings::default())
                .with_ca(ca.clone(), Arc::new(opencm_ca::Kek::generate())),
        );
        let demo = opencm::demo::seed(&core).await.unwrap().unwrap();
        let mut tokens: HashMap<&'static str, String> =
            demo.into_iter().map(|u| (u.login, u.token)).collect();
        for (login, rid, groups) in [
            (
                "dave",
                1104,
                vec!["S-1-5-21-1000-1000-1000-2001".to_string()],
            ),
            ("eve", 1105, vec![]),
        ] {
            core.add_user(&NewUser {
                uuid: Guid::new_random().into(),
                login: login.into(),
                display_name: login.into(),
                sid: format!("S-1-5-21-1000-1000-1000-{rid}"),
                groups,
                email: None,
                language: None,
            })
            .await
            .unwrap();
            tokens.insert(login, core.create_token(login, None).await.unwrap());
        }
        for file in [EXTRA_TEMPLATES, WORKFLOW_TEMPLATE] {
            core.import_templates(file).await.unwrap();
        }
        let mut users = HashMap::new();
        for login in ["alice", "bob", "carol", "admin", "dave", "eve"] {
            users.insert(login, core.user_by_login(login).await.unwrap().unwrap());
        }
        let app = opencm_api::app(
            AppState::new(core.clone(), ApiConfig::default()),
            axum::Router::new(),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            axum::serve(
                listener,
                axum::ServiceExt::<axum::extract::Request>::into_make_service(app),
            )
            .await
            .unwrap();
        });
        TestApp {
            base,
            http: reqwest::Client::new(),
            core,
            ca,
            store,
            clock,
            db_url,
            tokens,
            users,
        }
    }

    pub fn engine(&self) -> &'static str {
        self.store.engine()
    }

    pub fn api(&self, path: &str) -> String {
        format!("{}/CertificateManagement/api/v1.0{path}", self.base)
    }

    pub fn auth(&self, who: &str) -> String {
        format!("Bearer {}", self.tokens[who])
    }

    pub async fn send(
        &self,
        who: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value, reqwest::header::HeaderMap) {
        let mut r = self
            .http
            .request(method, self.api(path))
            .header("authorization", self.auth(who));
        if let Some(b) = body {
            r = r.json(&b);
        }
        let res = r.send().await.unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let text = res.text().await.unwrap();
        let v = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, v, headers)
    }

    /// `POST /requests` with `body`, as `who`.
    pub async fn post_request(
        &self,
        who: &str,
        body: Value,
    ) -> (StatusCode, Value, reqwest::header::HeaderMap) {
        self.send(who, reqwest::Method::POST, "/requests", Some(body))
            .await
    }

    pub async fn get(&self, who: &str, path: &str) -> (StatusCode, Value) {
        let (s, v, _) = self.send(who, reqwest::Method::GET, path, None).await;
        (s, v)
    }

    /// Creates an Enroll request for `who` (self-service) and returns its id.
    pub async fn create(&self, who: &str, template: &str) -> String {
        let data = if template == VSC {
            json!([{"Request Reason": "new laptop"}])
        } else {
            json!([])
        };
        let body = json!({"profiletemplateuuid": template, "type": "Enroll", "datacollection": data, "comment": "test"});
        let (s, v, _) = self
            .send(who, reqwest::Method::POST, "/requests", Some(body))
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        id_of(&v)
    }

    pub async fn put_status(&self, who: &str, id: &str, status: &str) -> (StatusCode, Value) {
        let (s, v, _) = self
            .send(
                who,
                reqwest::Method::PUT,
                &format!("/requests/{id}"),
                Some(json!({ "status": status })),
            )
            .await;
        (s, v)
    }

    pub async fn decide(&self, who: &str, id: &str, decision: &str) -> (StatusCode, Value) {
        let (s, v, _) = self
            .send(
                who,
                reqwest::Method::POST,
                &format!("/requests/{id}/approvals"),
                Some(json!({ "decision": decision })),
            )
            .await;
        (s, v)
    }

    pub async fn history(&self, id: &str) -> Vec<Value> {
        let (s, v) = self.get("admin", &format!("/requests/{id}/history")).await;
        assert_eq!(s, StatusCode::OK);
        v.as_array().unwrap().clone()
    }

    pub async fn status_of(&self, id: &str) -> i64 {
        let (s, v) = self.get("admin", &format!("/requests/{id}")).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        v["Status"].as_i64().unwrap()
    }

    /// Creates a request of `kind` on an existing `profile` as `who`; returns its id.
    pub async fn request_on(&self, who: &str, kind: &str, profile: &str) -> String {
        let (s, v, _) = self
            .send(
                who,
                reqwest::Method::POST,
                "/requests",
                Some(json!({"type": kind, "profile": profile})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{kind}: {v}");
        id_of(&v)
    }

    /// Moves an Approved request to Executing, as an execution step (card bind, certificate data) does.
    pub async fn begin_execution(&self, who: &str, id: &str) {
        self.core
            .begin_execution(&self.users[who], id.parse().unwrap())
            .await
            .unwrap();
    }
}

/// Sends a raw body with a chosen content type.
pub async fn raw(
    app: &TestApp,
    who: &str,
    method: reqwest::Method,
    path: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> (StatusCode, Value, reqwest::header::HeaderMap) {
    let mut r = app
        .http
        .request(method, app.api(path))
        .header("authorization", app.auth(who))
        .body(body);
    if let Some(ct) = content_type {
        r = r.header("content-type", ct);
    }
    let res = r.send().await.unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let v = res.json().await.unwrap_or(Value::Null);
    (status, v, headers)
}

/// Asserts the error body (docs/API.md, "Errors") and returns its ErrorCode.
/// A request's answer read as JSON (the test fails when it cannot be sent or read).
pub async fn json_of<T: serde::de::DeserializeOwned>(request: reqwest::RequestBuilder) -> T {
    request.send().await.unwrap().json().await.unwrap()
}

pub fn error_code(v: &Value, headers: &reqwest::header::HeaderMap) -> String {
    let obj = v
        .as_object()
        .unwrap_or_else(|| panic!("error body is not an object: {v}"));
    assert_eq!(obj.len(), 3, "{v}");
    assert!(!obj["Message"].as_str().unwrap().is_empty());
    let cid = obj["CorrelationId"].as_str().unwrap();
    assert!(cid.parse::<Guid>().is_ok());
    assert_eq!(headers["x-correlation-id"].to_str().unwrap(), cid);
    obj["ErrorCode"].as_str().unwrap().to_string()
}

/// The id at the end of a created object's location (`"…/requests/{id}"`), as a 201 answers it.
pub fn id_of(location_body: &serde_json::Value) -> String {
    location_body
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_string()
}

/// Runs openssl (installed by .ci/run): success and everything it printed.
pub fn openssl(args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new("openssl")
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

/// Runs openssl and fails the test, with what openssl printed, unless it succeeds.
pub fn openssl_ok(args: &[&str]) -> String {
    let (ok, out) = openssl(args);
    assert!(ok, "openssl {args:?}: {out}");
    out
}

/// A new P-256 key (`key`) and a certificate self-signed by it (`cert`) for `subject`, valid for
/// `days`, made by openssl; `extra` adds options such as `-addext basicConstraints=…`.
pub fn self_signed_p256(subject: &str, days: &str, key: &str, cert: &str, extra: &[&str]) {
    p256_req(&["-x509", "-days", days], subject, key, cert, extra);
}

/// A new P-256 key (`key`) and a certificate request for `subject` signed by it (`csr`), by openssl.
pub fn p256_csr(subject: &str, key: &str, csr: &str) {
    p256_req(&["-new"], subject, key, csr, &[]);
}

fn p256_req(kind: &[&str], subject: &str, key: &str, out: &str, extra: &[&str]) {
    let mut args = vec!["req"];
    args.extend_from_slice(kind);
    args.extend_from_slice(&[
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-subj",
        subject,
        "-keyout",
        key,
        "-out",
        out,
    ]);
    args.extend_from_slice(extra);
    openssl_ok(&args);
}

/// Runs an opencm CLI command on `db` (with that database's KEK file): success, stdout, stderr.
pub fn opencm_cli(db: &str, args: &[&str]) -> (bool, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_opencm"))
        .args(args)
        .env("OPENCM_DATABASE_URL", db)
        .env("OPENCM_CA_KEK_FILE", crate::blackbox::kek_file(db))
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A direct connection to a test's SQLite database file (`sqlite://PATH`), to look at or corrupt
/// what the server stored behind its back.
pub fn sqlite_file(db_url: &str) -> rusqlite::Connection {
    rusqlite::Connection::open(db_url.trim_start_matches("sqlite://")).unwrap()
}
