//! Black-box tests: the real `opencm` binary on port 0. A kill -9 in the middle of a burst of PUTs
//! followed by a restart; two servers on one PostgreSQL database racing on the same requests; a
//! 500 whose correlation id is in the server's log and whose body leaks nothing.

use crate::helpers::sqlite_file;
use opencm_store::testing::{fresh_postgres_url, fresh_sqlite_url, postgres_base_url};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::process::Stdio;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};

/// The workflow-only template (no certificates), imported beside the demo realm: these tests
/// complete Enroll requests without issuing anything.
const WORKFLOW: &str = "5f0c1b7e-2d7c-4f43-9a55-0d6d3c1e0a06";

pub struct Server {
    pub child: Child,
    pub base: String,
    pub tokens: HashMap<String, String>,
}

/// Starts `opencm serve` on port 0 and reads its stdout until it says where it listens.
/// Each database gets its own KEK file beside it in the temp directory.
pub fn kek_file(db_url: &str) -> std::path::PathBuf {
    use sha2::Digest;
    let h = hex::encode(&sha2::Sha256::digest(db_url.as_bytes())[..8]);
    // A directory per database: the server writes opencm-ca.pem beside its KEK file.
    let dir = opencm_store::testing::scratch_root().join(h);
    let _ = std::fs::create_dir_all(&dir);
    dir.join("opencm-ca.kek")
}

pub async fn start(db_url: &str, demo: bool) -> Server {
    start_with(db_url, demo, &[])
        .await
        .expect("opencm exited before listening")
}

/// Starts the server with extra environment; `Err(stderr)` if it exits before listening.
pub async fn start_with(db_url: &str, demo: bool, env: &[(&str, &str)]) -> Result<Server, String> {
    start_limited(db_url, demo, env, None).await
}

/// As `start_with`, with the open-file limit (soft and hard) set to `nofile` when given.
pub async fn start_limited(
    db_url: &str,
    demo: bool,
    env: &[(&str, &str)],
    nofile: Option<u64>,
) -> Result<Server, String> {
    if demo {
        let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/workflow.toml");
        let out = Command::new(env!("CARGO_BIN_EXE_opencm"))
            .args(["template", "import", fixture, "--database-url", db_url])
            .output()
            .await
            .expect("run opencm template import");
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
    }
    let mut cmd = match nofile {
        None => Command::new(env!("CARGO_BIN_EXE_opencm")),
        Some(n) => {
            let mut c = Command::new("sh");
            c.args([
                "-c",
                &format!("ulimit -n {n} && exec \"$0\" \"$@\""),
                env!("CARGO_BIN_EXE_opencm"),
            ]);
            c
        }
    };
    cmd.env("OPENCM_CA_KEK_FILE", kek_file(db_url));
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.args(["serve", "--database-url", db_url]);
    if !env.iter().any(|(k, _)| *k == "OPENCM_LISTEN") {
        cmd.args(["--listen", "127.0.0.1:0"]);
    }
    if demo {
        cmd.arg("--demo");
    }
    if !env.iter().any(|(k, _)| *k == "OPENCM_LOG") {
        cmd.env("OPENCM_LOG", "info");
    }
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().expect("start opencm");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut tokens = HashMap::new();
    let base = loop {
        let line = tokio::time::timeout(std::time::Duration::from_secs(30), lines.next_line())
            .await
            .expect("opencm did not start in time")
            .unwrap();
        let Some(line) = line else {
            let mut err = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .await
                .unwrap();
            return Err(err);
        };
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.len() >= 2 && words[1].starts_with("ocm_") {
            tokens.insert(words[0].to_string(), words[1].to_string());
        }
        if let Some(url) = line.strip_prefix("opencm listening on ") {
            break url.to_string();
        }
    };
    Ok(Server {
        child,
        base,
        tokens,
    })
}

impl Server {
    pub fn api(&self, path: &str) -> String {
        format!("{}/CertificateManagement/api/v1.0{path}", self.base)
    }

    /// Stops the server and returns everything it logged.
    pub async fn stop_and_read_log(&mut self) -> String {
        self.child.start_kill().unwrap();
        self.child.wait().await.unwrap();
        let mut log = String::new();
        self.child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut log)
            .await
            .unwrap();
        log
    }
}

pub async fn create(http: &reqwest::Client, s: &Server, token: &str) -> String {
    create_at(http, &s.base, token).await
}

/// Creates a workflow request on the server at `base`; returns its id.
pub async fn create_at(http: &reqwest::Client, base: &str, token: &str) -> String {
    let r = http
        .post(format!("{base}/CertificateManagement/api/v1.0/requests"))
        .bearer_auth(token)
        .json(&json!({"profiletemplateuuid": WORKFLOW, "type": "Enroll", "datacollection": "[]"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let rel: String = r.json().await.unwrap();
    rel.rsplit('/').next().unwrap().to_string()
}

async fn get_json<T: serde::de::DeserializeOwned>(
    http: &reqwest::Client,
    url: String,
    token: &str,
) -> T {
    http.get(url)
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

pub async fn put(http: &reqwest::Client, url: String, token: &str, status: &str) -> Option<u16> {
    let r = http
        .put(url)
        .bearer_auth(token)
        .json(&json!({ "status": status }))
        .send()
        .await
        .ok()?;
    Some(r.status().as_u16())
}

#[tokio::test]
async fn kill_9_during_a_burst_of_puts_loses_nothing_committed_and_half_applies_nothing() {
    let db = fresh_sqlite_url();
    let mut server = start(&db, true).await;
    let alice = server.tokens["alice"].clone();
    let http = reqwest::Client::new();
    let mut ids = Vec::new();
    for _ in 0..300 {
        ids.push(create(&http, &server, &alice).await);
    }
    // 16 clients complete the requests as fast as they can; the server is killed mid-burst.
    let acknowledged = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let queue = std::sync::Arc::new(std::sync::Mutex::new(ids.clone()));
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let (http, queue, acked, alice) = (
            http.clone(),
            queue.clone(),
            acknowledged.clone(),
            alice.clone(),
        );
        let api = server.api("/requests/");
        tasks.push(tokio::spawn(async move {
            loop {
                let Some(id) = queue.lock().unwrap().pop() else {
                    break;
                };
                match put(&http, format!("{api}{id}"), &alice, "Completed").await {
                    Some(200) => acked.lock().unwrap().push(id),
                    Some(code) => panic!("unexpected {code}"),
                    None => break, // the server is gone
                }
            }
        }));
    }
    while acknowledged.lock().unwrap().len() < 100 {
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    server.child.start_kill().unwrap(); // SIGKILL
    server.child.wait().await.unwrap();
    for t in tasks {
        t.await.unwrap();
    }
    let acked: Vec<String> = acknowledged.lock().unwrap().clone();
    assert!(
        acked.len() >= 100 && acked.len() < ids.len(),
        "the kill landed mid-burst: {} of {}",
        acked.len(),
        ids.len()
    );

    let server = start(&db, false).await;
    // alice's token survives the restart: only its hash is stored, in the database.
    let mut completed = 0;
    for id in &ids {
        let r: Value = get_json(&http, server.api(&format!("/requests/{id}")), &alice).await;
        let h: Vec<Value> = get_json(
            &http,
            server.api(&format!("/requests/{id}/history")),
            &alice,
        )
        .await;
        let status = r["Status"].as_i64().unwrap();
        let has_event = h.iter().any(|e| e["Action"] == "Complete");
        // Nothing half-applied: the status, its timestamp and its audit event go together.
        assert_eq!(status == 8, has_event, "{id}: {r} {h:?}");
        assert_eq!(status == 8, r["Completed"] != "0001-01-01T00:00:00", "{id}");
        assert!(status == 8 || status == 3, "{id}: {status}");
        if status == 8 {
            completed += 1;
        }
    }
    // Nothing acknowledged was lost.
    for id in &acked {
        let r: Value = get_json(&http, server.api(&format!("/requests/{id}")), &alice).await;
        assert_eq!(r["Status"], 8, "acknowledged completion of {id} was lost");
    }
    assert!(completed >= acked.len());
}

#[tokio::test]
async fn the_real_binary_follows_every_row_of_the_put_transition_table() {
    let db = fresh_sqlite_url();
    let server = start(&db, true).await;
    let (alice, bob) = (server.tokens["alice"].clone(), server.tokens["bob"].clone());
    let http = reqwest::Client::new();
    let vsc = "a039b4d0-5ce8-4eff-8651-181c6576fda3";
    for (from, to, code, final_status) in crate::lifecycle::TRANSITIONS {
        let id = match *from {
            "Pending" | "Denied" => {
                let body = json!({"profiletemplateuuid": vsc, "type": "Enroll", "datacollection": [{"Request Reason": "laptop"}], "comment": "c"});
                let r = http
                    .post(server.api("/requests"))
                    .bearer_auth(&alice)
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                let rel: String = r.json().await.unwrap();
                let id = rel.rsplit('/').next().unwrap().to_string();
                if *from == "Denied" {
                    let r = http
                        .post(server.api(&format!("/requests/{id}/approvals")))
                        .bearer_auth(&bob)
                        .json(&json!({"decision": "Deny"}))
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(r.status(), StatusCode::OK);
                }
                id
            }
            "Approved" => create(&http, &server, &alice).await,
            "Executing" => {
                // No HTTP step reaches Executing yet (card binding and certificate data do); put the
                // request there in the database as such a step would.
                let id = create(&http, &server, &alice).await;
                sqlite_file(&db)
                    .execute(
                        "UPDATE requests SET status = 18, version = version + 1 WHERE uuid = ?1",
                        [&id],
                    )
                    .unwrap();
                id
            }
            outcome => {
                let id = create(&http, &server, &alice).await;
                assert_eq!(
                    put(
                        &http,
                        server.api(&format!("/requests/{id}")),
                        &alice,
                        outcome
                    )
                    .await,
                    Some(200)
                );
                id
            }
        };
        let code_got = put(&http, server.api(&format!("/requests/{id}")), &alice, to).await;
        let r: Value = get_json(&http, server.api(&format!("/requests/{id}")), &alice).await;
        assert_eq!(
            (code_got, r["Status"].as_i64()),
            (Some(*code), Some(*final_status)),
            "{from} -> {to}"
        );
    }
}

#[tokio::test]
#[cfg_attr(
    not(opencm_postgres_tests),
    ignore = "PostgreSQL: set OPENCM_TEST_POSTGRES_URL=postgres://127.0.0.1/test to run"
)]
async fn two_servers_on_one_postgres_database_race_and_exactly_one_wins_each_request() {
    let db = fresh_postgres_url(&postgres_base_url()).await;
    let a = start(&db, true).await;
    let b = start(&db, false).await;
    let alice = a.tokens["alice"].clone();
    let http = reqwest::Client::new();
    let mut ids = Vec::new();
    for _ in 0..60 {
        ids.push(create(&http, &a, &alice).await);
    }
    let mut tasks = Vec::new();
    for id in &ids {
        for (server, status) in [
            (&a, "Completed"),
            (&b, "Canceled"),
            (&a, "Abandoned"),
            (&b, "Completed"),
        ] {
            let (http, alice, url) = (
                http.clone(),
                alice.clone(),
                server.api(&format!("/requests/{id}")),
            );
            let id = id.clone();
            tasks.push(tokio::spawn(async move {
                (id, status, put(&http, url, &alice, status).await.unwrap())
            }));
        }
    }
    let mut by_id: HashMap<String, Vec<(&str, u16)>> = HashMap::new();
    for t in tasks {
        let (id, status, code) = t.await.unwrap();
        by_id.entry(id).or_default().push((status, code));
    }
    for id in &ids {
        let results = &by_id[id];
        let winners: std::collections::HashSet<&str> = results
            .iter()
            .filter(|(_, c)| *c == 200)
            .map(|(s, _)| *s)
            .collect();
        assert_eq!(winners.len(), 1, "{id}: {results:?}");
        assert!(
            results.iter().all(|(_, c)| *c == 200 || *c == 409),
            "{results:?}"
        );
        let expected = match *winners.iter().next().unwrap() {
            "Completed" => 8,
            "Canceled" => 17,
            _ => 9,
        };
        let r: Value = get_json(&http, b.api(&format!("/requests/{id}")), &alice).await;
        assert_eq!(r["Status"], expected, "{id}");
        let h: Vec<Value> =
            get_json(&http, a.api(&format!("/requests/{id}/history")), &alice).await;
        assert_eq!(h.len(), 2, "one creation and exactly one outcome: {h:?}");
    }
}

#[tokio::test]
async fn a_500_carries_a_correlation_id_that_is_logged_and_leaks_nothing() {
    let db = fresh_sqlite_url();
    let mut server = start(&db, true).await;
    let alice = server.tokens["alice"].clone();
    let http = reqwest::Client::new();
    let id = create(&http, &server, &alice).await;
    // Corrupt the stored row behind the server's back.
    sqlite_file(&db)
        .execute("UPDATE requests SET status = 99 WHERE uuid = ?1", [&id])
        .unwrap();
    let r = http
        .get(server.api(&format!("/requests/{id}")))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let header_id = r.headers()["x-correlation-id"]
        .to_str()
        .unwrap()
        .to_string();
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["ErrorCode"], "InternalError");
    assert_eq!(body["CorrelationId"], header_id);
    let text = body.to_string().to_lowercase();
    for leak in ["status 99", "sql", "sqlite", "panicked", "stored data"] {
        assert!(!text.contains(leak), "body leaks '{leak}': {body}");
    }
    let log = server.stop_and_read_log().await;
    let line = log
        .lines()
        .find(|l| l.contains(&header_id) && l.contains("request failed"))
        .unwrap_or_else(|| panic!("correlation id not logged:\n{log}"));
    assert!(
        line.contains("request status 99"),
        "the log has the detail: {line}"
    );
    assert!(!log.contains(&alice), "tokens are never logged");
    assert!(
        !log.contains('\u{1b}'),
        "no colour codes in a log that is not a terminal:\n{log}"
    );
}

#[tokio::test]
async fn a_taken_address_is_refused_with_the_setting_that_chooses_another() {
    let first = start(&fresh_sqlite_url(), false).await;
    let taken = first.base.trim_start_matches("http://").to_string();
    let db = fresh_sqlite_url();
    let out = Command::new(env!("CARGO_BIN_EXE_opencm"))
        .args(["serve", "--listen", &taken, "--database-url", &db])
        .env("OPENCM_CA_KEK_FILE", kek_file(&db))
        .output()
        .await
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains(&taken) && err.contains("--listen") && err.contains("OPENCM_LISTEN"),
        "{err}"
    );
}

#[tokio::test]
async fn client_text_cannot_forge_a_log_line() {
    let db = fresh_sqlite_url();
    let mut server = start_with(&db, true, &[("OPENCM_LOG", "debug")])
        .await
        .unwrap();
    let alice = server.tokens["alice"].clone();
    let http = reqwest::Client::new();
    let id = create(&http, &server, &alice).await;
    let forged = "x\nFORGED opencm: admin token accepted\r\nFORGED again";
    let r = http
        .put(server.api(&format!("/requests/{id}")))
        .bearer_auth(&alice)
        .json(&json!({ "status": forged }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let log = server.stop_and_read_log().await;
    assert!(
        log.contains("request refused"),
        "the refusal is logged:\n{log}"
    );
    assert!(
        !log.lines().any(|l| l.starts_with("FORGED")),
        "a client's newline started a log line:\n{log}"
    );
}

#[tokio::test]
async fn a_server_that_finds_no_database_says_where_it_creates_one() {
    let db = fresh_sqlite_url();
    let path = db.trim_start_matches("sqlite://").to_string();
    // The first line a server prints, read while it starts up to listening.
    let first_line = || async {
        let mut child = Command::new(env!("CARGO_BIN_EXE_opencm"))
            .args(["serve", "--listen", "127.0.0.1:0", "--database-url", &db])
            .env("OPENCM_CA_KEK_FILE", kek_file(&db))
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines.next_line().await.unwrap().unwrap();
        // Stop it only once it serves, so the database it made is complete on disk.
        let mut line = first.clone();
        while !line.starts_with("opencm listening on") {
            line = tokio::time::timeout(std::time::Duration::from_secs(30), lines.next_line())
                .await
                .expect("opencm did not start in time")
                .unwrap()
                .expect("opencm exited before listening");
        }
        child.start_kill().unwrap();
        child.wait().await.unwrap();
        first
    };
    let first = first_line().await;
    assert!(
        first.starts_with(&format!("No database at {path}: creating a new database"))
            && first.contains(kek_file(&db).to_str().unwrap()),
        "{first}"
    );
    // Started again on the same file, it just serves it.
    let again = first_line().await;
    assert!(again.starts_with("opencm listening on"), "{again}");
}

/// Card secrets (the diversified key, challenge responses, PINs) reach only their caller: not
/// the log, even at the most verbose level, nor any error body.
#[tokio::test]
async fn card_secrets_never_reach_the_log_or_an_error_body() {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let db = fresh_sqlite_url();
    let mut server = start_with(&db, true, &[("OPENCM_LOG", "trace")])
        .await
        .unwrap();
    let alice = server.tokens["alice"].clone();
    let http = reqwest::Client::new();
    let r = http
        .post(server.api("/requests"))
        .bearer_auth(&alice)
        .json(&json!({"profiletemplateuuid": crate::cards::PIV, "type": "Enroll"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let request = crate::helpers::id_of(&r.json::<Value>().await.unwrap());
    let card_id = uuid::Uuid::new_v4().to_string();
    let r = http
        .post(server.api("/smartcards"))
        .bearer_auth(&alice)
        .json(&json!({"requestid": request, "cardid": card_id, "atr": "3b8d0180fba000000397425446590301c8"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let card = crate::helpers::id_of(&r.json::<Value>().await.unwrap());
    let under = |what: &str, q: &str| {
        server.api(&format!("/requests/{request}/smartcards/{card}/{what}?{q}"))
    };
    let mut secrets = Vec::new();
    let key: String = get_json(
        &http,
        under("diversifiedkey", &format!("cardid={card_id}")),
        &alice,
    )
    .await;
    secrets.push(key.clone());
    secrets.push(hex::encode(b64.decode(&key).unwrap()));
    for diversified in ["true", "false"] {
        let q = format!("cardid={card_id}&challenge=AAECAwQFBgc%3D&diversified={diversified}");
        let response: String = get_json(&http, under("authenticationresponse", &q), &alice).await;
        secrets.push(response);
    }
    let pin: String = get_json(
        &http,
        under("serverproposedpin", &format!("cardid={card_id}")),
        &alice,
    )
    .await;
    secrets.push(pin);
    // Refusals around the secrets: their bodies hold none of them.
    let mut bodies = String::new();
    let wrong_card = format!("cardid={}&challenge=AAECAwQFBgc%3D", uuid::Uuid::new_v4());
    for (what, q) in [
        ("diversifiedkey", wrong_card.clone()),
        ("authenticationresponse", wrong_card),
        (
            "authenticationresponse",
            format!("cardid={card_id}&challenge=%E2%80%9C"),
        ),
    ] {
        let r = http
            .get(under(what, &q))
            .bearer_auth(&alice)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_client_error(), "{what}?{q}: {}", r.status());
        bodies.push_str(&r.text().await.unwrap());
    }
    let log = server.stop_and_read_log().await;
    assert!(
        log.contains("TRACE") || log.contains("DEBUG"),
        "verbose log:\n{log}"
    );
    for s in &secrets {
        assert!(!log.contains(s.as_str()), "secret {s} in the log");
        assert!(
            !bodies.contains(s.as_str()),
            "secret {s} in an error body: {bodies}"
        );
    }
}
