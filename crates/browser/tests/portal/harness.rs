//! The test stack: the built `opencm` binary on a fresh database of the engine under test, one
//! ChromeDriver with a headless Chromium session per user, axe-core injected into pages, and
//! screenshots.

use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"))
}

/// The server binary the CI step built (`cargo build -p opencm`).
fn opencm_binary() -> PathBuf {
    let p = target_dir().join("debug/opencm");
    assert!(
        p.exists(),
        "{} is missing: build it first (cargo build -p opencm)",
        p.display()
    );
    p
}

/// Where the tests leave their screenshots (the README shows some of them).
pub fn screenshot_dir() -> PathBuf {
    let d = target_dir().join("portal-screenshots");
    let _ = std::fs::create_dir_all(&d);
    d
}

/// Kills a child's whole process group when dropped: ChromeDriver's browsers go with it.
struct Group(Child);

impl Drop for Group {
    fn drop(&mut self) {
        // The child's process group (it leads one: `process_group(0)`), by `pkill -g`: never
        // `kill -PID`, which some kill(1)s read as an option, and `kill -1` is everyone.
        let pgid = self.0.id();
        if pgid > 1 {
            let _ = Command::new("pkill")
                .args(["-TERM", "-g", &pgid.to_string()])
                .status();
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub struct User {
    pub token: String,
    pub password: String,
}

/// `opencm serve --demo` on a database of its own.
pub struct Server {
    _child: Group,
    pub base: String,
    pub users: HashMap<String, User>,
    pub dir: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

/// The test suite's real OpenID provider (panva's oidc-provider, `scripts/oidc/provider.mjs`).
pub struct Provider {
    _child: Group,
    pub issuer: String,
}

impl Provider {
    pub fn start() -> Provider {
        let port = free_port();
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../scripts/oidc/provider.mjs"
        );
        // Its output goes to a file, read until it listens: a pipe closed after that line would
        // kill it at its next log line (EPIPE), such as the notices of its login form.
        let log = std::env::temp_dir().join(format!("opencm-oidc-{port}.log"));
        let child = Command::new("node")
            .args([script, &port.to_string()])
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("node runs the OpenID provider (npm ci --prefix scripts/oidc)");
        let started = Instant::now();
        while !std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("listening on")
        {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "the OpenID provider did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Provider {
            _child: Group(child),
            issuer: format!("http://127.0.0.1:{port}"),
        }
    }

    /// Registers a client with this redirect URI (RFC 7591): its id and secret.
    pub async fn register(&self, redirect_uri: &str) -> (String, String) {
        let r: serde_json::Value = reqwest::Client::new()
            .post(format!("{}/reg", self.issuer))
            .json(&serde_json::json!({
                "redirect_uris": [redirect_uri],
                "grant_types": ["authorization_code"],
                "response_types": ["code"],
                "token_endpoint_auth_method": "client_secret_basic",
                "id_token_signed_response_alg": "ES256",
            }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let field = |k: &str| {
            r[k].as_str()
                .unwrap_or_else(|| panic!("registration: {r}"))
                .to_string()
        };
        (field("client_id"), field("client_secret"))
    }
}

impl Server {
    /// `engine`: "sqlite", or "postgres" (a fresh database on OPENCM_TEST_POSTGRES_URL's server).
    /// The portal offers sign-in through `provider`, where the server is registered.
    pub async fn start(engine: &str, provider: &Provider) -> Server {
        let dir =
            std::env::temp_dir().join(format!("opencm-browser-{engine}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let database_url = match engine {
            "sqlite" => format!("sqlite://{}/opencm.db", dir.display()),
            _ => fresh_postgres_database(),
        };
        let port = free_port();
        let (client_id, secret) = provider
            .register(&format!("http://127.0.0.1:{port}/sign-in/oidc"))
            .await;
        std::fs::write(dir.join("oidc-client.secret"), format!("{secret}\n")).unwrap();
        let config = dir.join("opencm.toml");
        std::fs::write(
            &config,
            format!(
                "[oidc]\nissuer = \"{}\"\naudience = [\"api://opencm\"]\nalgorithms = [\"ES256\"]\nclient_id = \"{client_id}\"\nclient_secret_file = \"{}\"\n",
                provider.issuer,
                dir.join("oidc-client.secret").display()
            ),
        )
        .unwrap();
        let mut child = Command::new(opencm_binary())
            .args([
                "serve",
                "--demo",
                "--config",
                &config.to_string_lossy(),
                "--database-url",
                &database_url,
                "--listen",
                &format!("127.0.0.1:{port}"),
            ])
            .env("OPENCM_CA_KEK_FILE", dir.join("opencm-ca.kek"))
            .env("OPENCM_LOG", "info")
            .current_dir(&dir)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(dir.join("server.log")).unwrap())
            .process_group(0)
            .spawn()
            .unwrap();
        // The demo realm prints each user's token and password, then where it listens.
        let mut users = HashMap::new();
        let out = BufReader::new(child.stdout.take().unwrap());
        for line in out.lines() {
            let line = line.unwrap();
            let words: Vec<&str> = line.split_whitespace().collect();
            if let [login, token, password, ..] = words[..] {
                if token.starts_with("ocm_") {
                    users.insert(
                        login.to_string(),
                        User {
                            token: token.into(),
                            password: password.into(),
                        },
                    );
                }
            }
            if line.starts_with("opencm listening on") {
                break;
            }
        }
        assert!(users.contains_key("alice"), "no demo users printed");
        Server {
            _child: Group(child),
            base: format!("http://127.0.0.1:{port}"),
            users,
            dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn password(&self, login: &str) -> &str {
        &self.users[login].password
    }

    pub fn token(&self, login: &str) -> &str {
        &self.users[login].token
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }
}

/// A new database on the test PostgreSQL server (`.ci/run` drops `opencm_t_*` ones).
fn fresh_postgres_database() -> String {
    let base = std::env::var("OPENCM_TEST_POSTGRES_URL").expect(
        "OPENCM_TEST_POSTGRES_URL is not set: the browser tests run on PostgreSQL too (.ci/run sets it)",
    );
    let name = format!("opencm_t_browser_{}", std::process::id());
    for sql in [
        format!("DROP DATABASE IF EXISTS {name}"),
        format!("CREATE DATABASE {name}"),
    ] {
        let ok = Command::new("psql")
            .args([&base, "-qc", &sql])
            .env("PGOPTIONS", "-c client_min_messages=warning")
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "psql {sql} failed");
    }
    match base.rsplit_once('/') {
        Some((server, _)) => format!("{server}/{name}"),
        None => panic!("OPENCM_TEST_POSTGRES_URL has no database part: {base}"),
    }
}

/// ChromeDriver, started on a free port in its own process group.
pub struct Driver {
    _child: Group,
    url: String,
}

impl Driver {
    pub fn start() -> Driver {
        let port = free_port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("chromedriver is not installed: run scripts/browser-stack.sh");
        let url = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "chromedriver did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Driver {
            _child: Group(child),
            url,
        }
    }

    /// A browser of its own (its own cookies): one per user of a test.
    pub async fn browser(&self) -> Client {
        self.browser_in("en-US").await
    }

    /// A browser whose user reads `lang` first (its `Accept-Language`).
    pub async fn browser_in(&self, lang: &str) -> Client {
        let mut caps = serde_json::Map::new();
        caps.insert("browserName".into(), "chrome".into());
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": "/usr/bin/chromium",
                "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                         "--disable-gpu", "--window-size=1280,900", format!("--lang={lang}")],
                "prefs": {"intl.accept_languages": lang}
            }),
        );
        caps.insert(
            "goog:loggingPrefs".into(),
            serde_json::json!({"browser": "ALL"}),
        );
        ClientBuilder::new(HttpConnector::new())
            .capabilities(caps)
            .connect(&self.url)
            .await
            .expect("a Chromium session")
    }
}

/// The browser's console since the last call (ChromeDriver's log endpoint drains it).
#[derive(Debug)]
struct BrowserLog;

impl WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/se/log",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _request_url: &url::Url) -> (hyper::Method, Option<String>) {
        (
            hyper::Method::POST,
            Some(r#"{"type":"browser"}"#.to_owned()),
        )
    }
}

/// The console messages of the page since the last call.
pub async fn console(c: &Client) -> Vec<String> {
    let v = c.issue_cmd(BrowserLog).await.unwrap();
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|e| {
                    format!(
                        "{} {}: {}",
                        e["level"].as_str().unwrap_or(""),
                        e["source"].as_str().unwrap_or(""),
                        e["message"].as_str().unwrap_or("")
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn axe_source() -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../scripts/browser/node_modules/axe-core/axe.min.js");
    std::fs::read_to_string(&p).unwrap_or_else(|_| {
        panic!(
            "{} is missing: run scripts/browser-stack.sh (npm ci --prefix scripts/browser)",
            p.display()
        )
    })
}

/// axe-core's WCAG 2.1 A and AA rules on the page: no serious or critical violation.
pub async fn assert_accessible(c: &Client, page: &str) {
    static AXE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let axe = AXE.get_or_init(axe_source);
    c.execute(&format!("{axe}\n;return axe.version;"), vec![])
        .await
        .unwrap();
    let found = c
        .execute_async(
            "const done = arguments[arguments.length - 1];
             axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}})
               .then(r => done(r.violations.map(v => ({id: v.id, impact: v.impact,
                  nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 5)}))))
               .catch(e => done([{id: 'axe-error', impact: 'critical', nodes: [String(e)]}]));",
            vec![],
        )
        .await
        .unwrap();
    let bad: Vec<&serde_json::Value> = found
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| matches!(v["impact"].as_str(), Some("serious" | "critical")))
        .collect();
    assert!(
        bad.is_empty(),
        "axe-core on {page}: {}",
        serde_json::to_string_pretty(&bad).unwrap()
    );
}

/// The whole page, as tall as it is, then the window as it was.
pub async fn screenshot(c: &Client, name: &str) {
    let height = c
        .execute("return document.documentElement.scrollHeight;", vec![])
        .await
        .ok()
        .and_then(|v| v.as_u64())
        .unwrap_or(900)
        .clamp(600, 3000) as u32;
    // The window is the viewport plus the ~143 px of browser frame headless Chromium emulates.
    c.set_window_size(1280, height + 150).await.unwrap();
    let png = c.screenshot().await.unwrap();
    c.set_window_size(1280, 900).await.unwrap();
    std::fs::write(screenshot_dir().join(format!("{name}.png")), png).unwrap();
}

pub async fn text(c: &Client, css: &str) -> String {
    c.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css}: {e}"))
        .text()
        .await
        .unwrap()
}

/// An attribute of the first element `css` selects (a form's CSRF token, a link's target).
pub async fn attr(c: &Client, css: &str, name: &str) -> String {
    c.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css}: {e}"))
        .attr(name)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("{css} has no {name}"))
}

pub async fn exists(c: &Client, css: &str) -> bool {
    c.find_all(Locator::Css(css))
        .await
        .is_ok_and(|v| !v.is_empty())
}

pub async fn fill(c: &Client, css: &str, value: &str) {
    let e = c.find(Locator::Css(css)).await.unwrap();
    e.clear().await.unwrap();
    e.send_keys(value).await.unwrap();
}

/// Clicks what navigates (a link, a form's button) and waits for the next page to be loaded:
/// the page it leaves is marked, and the click is done when a document without the mark is
/// complete.
pub async fn click(c: &Client, css: &str) {
    c.execute("window.__opencm_left = true;", vec![])
        .await
        .unwrap();
    c.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css}: {e}"))
        .click()
        .await
        .unwrap();
    let started = Instant::now();
    loop {
        let done = c
            .execute(
                "return window.__opencm_left === undefined && document.readyState === 'complete';",
                vec![],
            )
            .await
            .ok()
            .and_then(|v| v.as_bool())
            .unwrap_or(false);
        if done {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "clicking {css} led to no new page"
        );
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
}

pub async fn path(c: &Client) -> String {
    c.current_url().await.unwrap().path().to_string()
}

/// The page's path once a navigation (a form post and its redirect) has settled on `want`, or
/// where it is after a few seconds.
pub async fn settled_path(c: &Client, want: &str) -> String {
    let started = Instant::now();
    loop {
        let ready = c
            .execute("return document.readyState;", vec![])
            .await
            .ok()
            .and_then(|v| v.as_str().map(String::from));
        let p = path(c).await;
        if (p == want && ready.as_deref() == Some("complete"))
            || started.elapsed() > Duration::from_secs(5)
        {
            return p;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Signs `login` in through the sign-in form (from any page: it goes there first).
pub async fn sign_in(c: &Client, s: &Server, login: &str) {
    c.goto(&s.url("/sign-in")).await.unwrap();
    fill(c, "#login", login).await;
    fill(c, "#password", s.password(login)).await;
    click(c, "button[type=submit]").await;
    let at = settled_path(c, "/").await;
    if at != "/" {
        let page = c.source().await.unwrap_or_default();
        panic!("{login} did not land on the home page but on {at}:\n{page}");
    }
}

/// The value of the session cookie of a browser (to replay its requests outside it).
pub async fn session_cookie(c: &Client) -> String {
    c.get_named_cookie("opencm_session")
        .await
        .unwrap()
        .value()
        .to_string()
}
