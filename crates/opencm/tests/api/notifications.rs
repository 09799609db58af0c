//! Notifications against real peers: the real `opencm` binary, Debian's aiosmtpd as the SMTP
//! server (its Mailbox handler writes each message to a Maildir, read here with Python's own
//! e-mail parser), and a webhook receiver in Python that verifies Standard Webhooks signatures
//! with Python's hmac (`scripts/notify/webhook-receiver.py`).

use crate::blackbox::{self, Server};
use opencm_store::testing::{fresh_postgres_url, fresh_sqlite_url, postgres_base_url};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::process::{Child, Command};

/// `with_smtp_on_each_engine!(name)`: the black-box test `async fn name(db_url)` on a fresh
/// SQLite and a fresh PostgreSQL database (`name::sqlite`, `name::postgres`), shown as ignored
/// without aiosmtpd (and, for PostgreSQL, without `OPENCM_TEST_POSTGRES_URL`).
macro_rules! with_smtp_on_each_engine {
    ($name:ident) => {
        mod $name {
            #[tokio::test]
            #[cfg_attr(
                not(opencm_smtp_tests),
                ignore = "SMTP: install Debian's python3-aiosmtpd to run"
            )]
            async fn sqlite() {
                super::$name(opencm_store::testing::fresh_sqlite_url()).await
            }
            #[tokio::test]
            #[cfg_attr(
                not(all(opencm_postgres_tests, opencm_smtp_tests)),
                ignore = "PostgreSQL and SMTP: set OPENCM_TEST_POSTGRES_URL=postgres://127.0.0.1/test and install python3-aiosmtpd to run"
            )]
            async fn postgres() {
                let base = opencm_store::testing::postgres_base_url();
                super::$name(opencm_store::testing::fresh_postgres_url(&base).await).await
            }
        }
    };
}

const VSC: &str = "a039b4d0-5ce8-4eff-8651-181c6576fda3";
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The peers of one test: an SMTP server and a webhook receiver, and their outputs.
struct Peers {
    dir: PathBuf,
    smtp_port: u16,
    hook_port: u16,
    _smtp: Child,
    _hook: Child,
}

async fn wait_for_port(port: u16) {
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("nothing listens on {port}");
}

impl Peers {
    async fn start() -> Peers {
        Self::start_with("aiosmtpd.handlers.Mailbox").await
    }

    /// With another aiosmtpd handler class (`refusing_smtp.Refusing`, from scripts/notify).
    async fn start_with(handler: &str) -> Peers {
        let dir = opencm_store::testing::scratch_root()
            .join(format!("notify-{}", opencm_domain::Guid::new_random()));
        std::fs::create_dir_all(&dir).unwrap();
        let smtp_port = free_port();
        let smtp = Command::new("/usr/bin/python3")
            .env(
                "PYTHONPATH",
                concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/notify"),
            )
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{smtp_port}"))
            .args(["-c", handler])
            .arg(dir.join("maildir"))
            .kill_on_drop(true)
            .spawn()
            .expect("aiosmtpd (Debian: python3-aiosmtpd)");
        let hook = Self::receiver(&dir, free_port());
        wait_for_port(smtp_port).await;
        let hook_port = hook.1;
        wait_for_port(hook_port).await;
        Peers {
            dir,
            smtp_port,
            hook_port,
            _smtp: smtp,
            _hook: hook.0,
        }
    }

    fn receiver(dir: &Path, port: u16) -> (Child, u16) {
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../scripts/notify/webhook-receiver.py"
        );
        let child = Command::new("/usr/bin/python3")
            .arg(script)
            .arg(port.to_string())
            .arg(SECRET)
            .arg(dir.join("hooks.jsonl"))
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        (child, port)
    }

    /// The configuration file of a server notifying these peers.
    fn config(&self, extra: &str) -> PathBuf {
        let secret = self.dir.join("webhook.secret");
        std::fs::write(&secret, format!("{SECRET}\n")).unwrap();
        let hook = |path: &str| format!("http://127.0.0.1:{}/{path}", self.hook_port);
        let file = self.dir.join(format!("opencm-{}.toml", free_port()));
        std::fs::write(
            &file,
            format!(
                r#"public_url = "https://cm.example.test"
[notifications]
poll_ms = 100
backoff_secs = 1
max_backoff_secs = 1
max_attempts = 3
admin_addresses = ["pki-admins@example.test"]
{extra}
[notifications.smtp]
host = "127.0.0.1"
port = {smtp}
tls = "none"
from = "opencm <cm@example.test>"

[[notifications.webhooks]]
name = "siem"
url = "{siem}"
secret_file = "{secret}"

[[notifications.webhooks]]
name = "flaky"
url = "{flaky}"
secret_file = "{secret}"
events = ["request.created"]

[[notifications.webhooks]]
name = "down"
url = "{down}"
secret_file = "{secret}"
events = ["request.approved"]
"#,
                smtp = self.smtp_port,
                siem = hook("ok"),
                flaky = hook("flaky"),
                down = hook("down"),
                secret = secret.display(),
            ),
        )
        .unwrap();
        file
    }

    /// Every delivery the receiver saw.
    fn hooks(&self) -> Vec<Value> {
        std::fs::read_to_string(self.dir.join("hooks.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// Every message the SMTP server received, parsed by Python's e-mail package: recipient,
    /// subject, the text part, the HTML part.
    fn mails(&self) -> Vec<Value> {
        let out = std::process::Command::new("/usr/bin/python3")
            .arg("-c")
            .arg(
                r#"
import json, mailbox, sys
from email import policy
from email.parser import BytesParser
out = []
box = mailbox.Maildir(sys.argv[1], factory=None, create=False)
for key in box.keys():
    with box.get_file(key) as f:
        m = BytesParser(policy=policy.default).parse(f)
    text = m.get_body(preferencelist=("plain",))
    html = m.get_body(preferencelist=("html",))
    out.append({"to": str(m["To"]), "from": str(m["From"]), "subject": str(m["Subject"]),
                "text": text.get_content() if text else None,
                "html": html.get_content() if html else None})
print(json.dumps(out))
"#,
            )
            .arg(self.dir.join("maildir"))
            .output()
            .unwrap();
        if !out.status.success() {
            return Vec::new();
        }
        serde_json::from_slice(&out.stdout).unwrap_or_default()
    }
}

/// Waits until `done` holds of what `read` answers (at most 20 s); answers the last read.
async fn eventually<T>(what: &str, read: impl Fn() -> T, done: impl Fn(&T) -> bool) -> T {
    for _ in 0..200 {
        let v = read();
        if done(&v) {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what}: not seen in 20 s");
}

async fn start(db: &str, config: &Path) -> Server {
    blackbox::start_with(db, true, &[("OPENCM_CONFIG", config.to_str().unwrap())])
        .await
        .expect("opencm with [notifications] starts")
}

async fn vsc_request(http: &reqwest::Client, s: &Server, who: &str) -> String {
    let r = http
        .post(s.api("/requests"))
        .bearer_auth(&s.tokens[who])
        .json(&json!({"profiletemplateuuid": VSC, "type": "Enroll",
                      "datacollection": [{"Request Reason": "a new laptop"}], "comment": "for travel"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let rel: String = r.json().await.unwrap();
    rel.rsplit('/').next().unwrap().to_string()
}

async fn approve(http: &reqwest::Client, s: &Server, who: &str, id: &str) {
    let r = http
        .post(s.api(&format!("/requests/{id}/approvals")))
        .bearer_auth(&s.tokens[who])
        .json(&json!({"decision": "Approved", "comment": "ok"}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "approval: {}", r.status());
}

async fn outbox(http: &reqwest::Client, s: &Server, who: &str, query: &str) -> (StatusCode, Value) {
    let r = http
        .get(format!("{}/opencm/v1/outbox{query}", s.base))
        .bearer_auth(&s.tokens[who])
        .send()
        .await
        .unwrap();
    (r.status(), r.json().await.unwrap_or(Value::Null))
}

fn events_of<'a>(hooks: &'a [Value], path: &str, request: &str) -> Vec<&'a Value> {
    hooks
        .iter()
        .filter(|h| h["path"] == path && h["event"]["data"]["requestUuid"] == request)
        .collect()
}

/// A VSC request that needs an approval: its approvers are e-mailed (per policy, in their
/// language), the decision reaches the originator, every event reaches the webhook once and
/// signed, a flaky receiver gets its event on the third try, a receiver that never answers ends
/// in dead letter (administrators are told) and an administrator replays it.
async fn a_request_s_life_is_told(db: String) {
    let peers = Peers::start().await;
    // A per-policy template for VSC enrolment approvals, in English only: Spanish falls back to
    // the built-in one.
    let templates = peers.dir.join("templates/Virtual Smart Card Logon/Enroll");
    std::fs::create_dir_all(&templates).unwrap();
    std::fs::write(
        templates.join("request.pending_approval.en.subject"),
        "VSC approval: {{ target.name }} asks for a virtual smart card",
    )
    .unwrap();
    let config = peers.config(&format!(
        "templates_dir = \"{}\"",
        peers.dir.join("templates").display()
    ));
    let s = start(&db, &config).await;
    let http = reqwest::Client::new();

    // Juan (Spanish) and Alice (English) each ask for a card; Bob approves both.
    let juan = vsc_request(&http, &s, "juan").await;
    let alice = vsc_request(&http, &s, "alice").await;
    let mails = eventually(
        "bob's two approval e-mails",
        || peers.mails(),
        |m| {
            m.iter()
                .filter(|m| {
                    m["subject"].as_str().unwrap().starts_with("VSC approval")
                        && m["to"].as_str().unwrap().contains("bob@example.test")
                })
                .count()
                >= 2
        },
    )
    .await;
    let to_bob: Vec<&Value> = mails
        .iter()
        .filter(|m| m["to"].as_str().unwrap().contains("bob@example.test"))
        .collect();
    assert_eq!(to_bob.len(), 2, "{mails:#?}");
    for m in &to_bob {
        assert_eq!(m["from"], "opencm <cm@example.test>");
        assert!(m["text"]
            .as_str()
            .unwrap()
            .contains("It waits for your approval."));
        let html = m["html"].as_str().unwrap();
        assert!(
            html.contains(r#"<a href="https:&#x2f;&#x2f;cm.example.test&#x2f;requests&#x2f;"#),
            "{html}"
        );
    }
    assert!(to_bob
        .iter()
        .any(|m| m["subject"] == "VSC approval: Juan Pérez asks for a virtual smart card"));
    // Nobody who cannot approve is asked.
    assert!(!mails
        .iter()
        .any(|m| m["to"].as_str().unwrap().contains("alice@")
            || m["to"].as_str().unwrap().contains("juan@")
            || m["to"].as_str().unwrap().contains("carol@")));

    approve(&http, &s, "bob", &juan).await;
    approve(&http, &s, "bob", &alice).await;
    let mails = eventually(
        "decision e-mails",
        || peers.mails(),
        |m| {
            m.iter()
                .any(|m| m["to"].as_str().unwrap().contains("juan@"))
                && m.iter()
                    .any(|m| m["to"].as_str().unwrap().contains("alice@"))
        },
    )
    .await;
    let to = |who: &str| {
        mails
            .iter()
            .find(|m| m["to"].as_str().unwrap().contains(who))
            .unwrap()
    };
    assert_eq!(
        to("juan@")["subject"],
        "Aprobada: su solicitud Enroll (Virtual Smart Card Logon)"
    );
    assert!(to("juan@")["to"].as_str().unwrap().contains("Juan Pérez"));
    assert!(to("juan@")["text"]
        .as_str()
        .unwrap()
        .starts_with("Hola, Juan Pérez:"));
    assert_eq!(
        to("alice@")["subject"],
        "Approved: your Enroll request (Virtual Smart Card Logon)"
    );

    // The webhook saw every event of each request once, signed.
    let hooks = eventually(
        "webhook deliveries",
        || peers.hooks(),
        |h| events_of(h, "/ok", &alice).len() >= 3 && events_of(h, "/flaky", &alice).len() >= 3,
    )
    .await;
    assert!(hooks.iter().all(|h| h["verified"] == true), "{hooks:#?}");
    let seen: Vec<&str> = events_of(&hooks, "/ok", &alice)
        .iter()
        .map(|h| h["event"]["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        seen,
        [
            "request.created",
            "request.pending_approval",
            "request.approved"
        ]
    );
    let ids: std::collections::HashSet<&str> = events_of(&hooks, "/ok", &alice)
        .iter()
        .map(|h| h["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 3, "one id per event");
    // The payload's id is the webhook-id.
    for h in events_of(&hooks, "/ok", &alice) {
        assert_eq!(h["id"], h["event"]["id"]);
    }
    // The flaky receiver answered 500 twice, then took the same event (same id) on the third try.
    let flaky = events_of(&hooks, "/flaky", &alice);
    assert_eq!(
        flaky
            .iter()
            .map(|h| h["status"].as_i64().unwrap())
            .collect::<Vec<_>>(),
        [500, 500, 200]
    );
    assert!(flaky.iter().all(|h| h["id"] == flaky[0]["id"]));

    // The receiver that is down never took request.approved: after 3 tries it is dead, the
    // administrators are told by e-mail and on the webhook, and a replay delivers it.
    let (status, dead) = eventually_async(&http, &s, "?state=dead", 2).await;
    assert_eq!(status, StatusCode::OK);
    let dead_row = dead
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["Payload"]["data"]["requestUuid"] == alice.as_str())
        .expect("alice's approval is a dead row")
        .clone();
    assert_eq!(dead_row["Channel"], "webhook:down");
    assert_eq!(dead_row["Attempts"], 3);
    assert!(dead_row["LastError"].as_str().unwrap().contains("HTTP 500"));
    let mails = eventually(
        "the dead letter e-mail",
        || peers.mails(),
        |m| {
            m.iter()
                .any(|m| m["to"].as_str().unwrap().contains("pki-admins@"))
        },
    )
    .await;
    let admin_mail = mails
        .iter()
        .find(|m| m["to"].as_str().unwrap().contains("pki-admins@"))
        .unwrap();
    assert!(admin_mail["subject"]
        .as_str()
        .unwrap()
        .starts_with("opencm could not deliver a notification (request.approved to webhook:down)"));

    // Only administrators see or replay the outbox.
    let (status, _) = outbox(&http, &s, "bob", "").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = outbox(&http, &s, "admin", "?state=lost").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // A row that is not there: 404, for reading and for replaying.
    let nobody = opencm_domain::Guid::new_random();
    let missing = outbox_row(&http, &s.base, &s.tokens["admin"], &nobody.to_string()).await;
    assert_eq!(missing["ErrorCode"], "NotFound", "{missing}");
    let r = http
        .post(format!("{}/opencm/v1/outbox/{nobody}/replay", s.base))
        .bearer_auth(&s.tokens["admin"])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let id = dead_row["Id"].as_str().unwrap();
    let replay = |who: &'static str| {
        http.post(format!("{}/opencm/v1/outbox/{id}/replay", s.base))
            .bearer_auth(&s.tokens[who])
            .send()
    };
    assert_eq!(replay("bob").await.unwrap().status(), StatusCode::FORBIDDEN);
    http.post(format!("http://127.0.0.1:{}/heal", peers.hook_port))
        .send()
        .await
        .unwrap();
    let r = replay("admin").await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let replayed: Value = r.json().await.unwrap();
    assert_eq!(replayed["State"], "pending");
    assert_eq!(replayed["Attempts"], 0);
    assert!(replayed["Log"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["Outcome"] == "replayed" && a["Detail"] == "replayed by admin"));
    // Replaying a row that is not dead is refused.
    let again = replay("admin").await.unwrap();
    assert_eq!(again.status(), StatusCode::CONFLICT);
    let hooks = eventually(
        "the replayed delivery",
        || peers.hooks(),
        |h| {
            events_of(h, "/down", &alice)
                .iter()
                .any(|d| d["status"] == 200)
        },
    )
    .await;
    let down = events_of(&hooks, "/down", &alice);
    assert!(
        down.iter().all(|h| h["id"] == down[0]["id"]),
        "one event id across tries and replay"
    );
    // The receiver answered; the server records it just after.
    let mut entry = Value::Null;
    for _ in 0..100 {
        entry = outbox_row(&http, &s.base, &s.tokens["admin"], id).await;
        if entry["State"] == "delivered" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(entry["State"], "delivered", "{entry:#}");
    let outcomes: Vec<&str> = entry["Log"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["Outcome"].as_str().unwrap())
        .collect();
    assert_eq!(
        outcomes,
        ["failed", "failed", "dead", "replayed", "delivered"]
    );
}

/// One outbox row with its log, as an administrator reads it on the node at `base`.
async fn outbox_row(http: &reqwest::Client, base: &str, token: &str, id: &str) -> Value {
    http.get(format!("{base}/opencm/v1/outbox/{id}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Polls the outbox until it lists at least `n` rows.
async fn eventually_async(
    http: &reqwest::Client,
    s: &Server,
    query: &str,
    n: usize,
) -> (StatusCode, Value) {
    for _ in 0..200 {
        let (status, v) = outbox(http, s, "admin", query).await;
        if v.as_array().is_some_and(|a| a.len() >= n) {
            return (status, v);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the outbox never listed {n} rows for {query}");
}

with_smtp_on_each_engine!(a_request_s_life_is_told);

/// `kill -9` between the commit and the delivery: the notification is delivered after the
/// restart, under the id it was committed with.
#[tokio::test]
#[cfg_attr(
    not(opencm_smtp_tests),
    ignore = "SMTP: install Debian's python3-aiosmtpd to run"
)]
async fn a_node_killed_before_delivery_delivers_after_restart() {
    let peers = Peers::start().await;
    // The webhook points at a port nothing listens on yet: every try fails (and is retried).
    let closed = free_port();
    let secret = peers.dir.join("webhook.secret");
    std::fs::write(&secret, format!("{SECRET}\n")).unwrap();
    let config = peers.dir.join("kill.toml");
    std::fs::write(
        &config,
        format!(
            // A row the killed node held stays its own for lease_secs: 2 here (60 by default).
            "[notifications]\npoll_ms = 100\nbackoff_secs = 1\nmax_backoff_secs = 1\nmax_attempts = 100\nlease_secs = 2\n\
             [[notifications.webhooks]]\nname = \"late\"\nurl = \"http://127.0.0.1:{closed}/ok\"\nsecret_file = \"{}\"\nevents = [\"request.*\"]\n",
            secret.display()
        ),
    )
    .unwrap();
    let db = fresh_sqlite_url();
    let mut s = start(&db, &config).await;
    let http = reqwest::Client::new();
    let id = vsc_request(&http, &s, "alice").await;
    s.child.start_kill().unwrap(); // SIGKILL
    s.child.wait().await.unwrap();
    // The receiver comes up; the server restarts on the same database.
    let (_receiver, _) = Peers::receiver(&peers.dir, closed);
    wait_for_port(closed).await;
    let s = start(&db, &config).await;
    let hooks = eventually(
        "deliveries after the restart",
        || peers.hooks(),
        |h| events_of(h, "/ok", &id).len() >= 2,
    )
    .await;
    let mut by_type = std::collections::HashMap::new();
    for h in events_of(&hooks, "/ok", &id) {
        assert_eq!(h["verified"], true);
        by_type
            .entry(h["event"]["type"].as_str().unwrap().to_string())
            .or_insert_with(std::collections::HashSet::new)
            .insert(h["id"].as_str().unwrap().to_string());
    }
    assert_eq!(by_type.len(), 2, "{by_type:?}");
    assert!(
        by_type.values().all(|ids| ids.len() == 1),
        "an event is never sent under two ids: {by_type:?}"
    );
    drop(s);
}

/// Two nodes on one PostgreSQL database deliver every row once between them: each row has one
/// `delivered` line in its log, and the receiver sees each event once.
#[tokio::test]
#[cfg_attr(
    not(all(opencm_postgres_tests, opencm_smtp_tests)),
    ignore = "PostgreSQL and SMTP: set OPENCM_TEST_POSTGRES_URL=postgres://127.0.0.1/test and install python3-aiosmtpd to run"
)]
async fn two_postgres_nodes_never_both_deliver_a_row() {
    let peers = Peers::start().await;
    let secret = peers.dir.join("webhook.secret");
    std::fs::write(&secret, format!("{SECRET}\n")).unwrap();
    let config = peers.dir.join("two.toml");
    std::fs::write(
        &config,
        format!(
            "[notifications]\npoll_ms = 20\n\
             [[notifications.webhooks]]\nname = \"siem\"\nurl = \"http://127.0.0.1:{}/ok\"\nsecret_file = \"{}\"\nevents = [\"request.created\"]\n",
            peers.hook_port,
            secret.display()
        ),
    )
    .unwrap();
    let db = fresh_postgres_url(&postgres_base_url()).await;
    let a = start(&db, &config).await;
    let b = blackbox::start_with(&db, false, &[("OPENCM_CONFIG", config.to_str().unwrap())])
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let token = a.tokens["alice"].clone();
    let mut ids = Vec::new();
    for i in 0..40 {
        let base = if i % 2 == 0 { &a.base } else { &b.base };
        ids.push(blackbox::create_at(&http, base, &token).await);
    }
    let hooks = eventually(
        "every creation delivered",
        || peers.hooks(),
        |h| ids.iter().all(|id| !events_of(h, "/ok", id).is_empty()),
    )
    .await;
    for id in &ids {
        assert_eq!(
            events_of(&hooks, "/ok", id).len(),
            1,
            "request {id} told twice"
        );
    }
    let admin = a.tokens["admin"].clone();
    // The receiver answered every one; the nodes record it just after.
    for _ in 0..100 {
        let (_, pending) = outbox(&http, &a, "admin", "?state=pending").await;
        if pending.as_array().is_some_and(|p| p.is_empty()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let rows: Value = http
        .get(format!("{}/opencm/v1/outbox?limit=1000", a.base))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let rows = rows.as_array().unwrap();
    assert!(rows.len() >= 40);
    for r in rows {
        let entry = outbox_row(&http, &b.base, &admin, r["Id"].as_str().unwrap()).await;
        let delivered = entry["Log"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["Outcome"] == "delivered")
            .count();
        assert_eq!(delivered, 1, "{entry:#}");
    }
}

/// `certificate.expiring`: a holder is warned once per threshold — at 30 days, then at 7 —
/// however often the scan runs, and never of an expired certificate. The scan runs in process
/// with the test clock; the rows it writes are read through the admin use case.
async fn holders_are_warned_once_per_threshold(app: crate::helpers::TestApp) {
    use crate::issuance::{csr, post_csrs, Work, P256};
    use opencm_app::outbox::{NotificationSettings, WebhookSubscription};
    use opencm_app::ports::Clock;
    let w = Work::new();
    let id = app.create("alice", crate::helpers::SOFTWARE).await;
    let (s, resp) = post_csrs(
        &app,
        "alice",
        &id,
        json!({"certificaterequests": [csr(&w, "alice", P256)]}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{resp}");
    let alice = app.users["alice"].uuid;
    let cert = app
        .store
        .certificates_of_user(alice)
        .await
        .unwrap()
        .remove(0);
    // A real transport (a webhook nothing listens on): the scan only writes rows, nothing is
    // dispatched in this test.
    let channels = opencm_notify::Channels::new(
        None,
        None,
        vec![opencm_notify::WebhookSettings {
            name: "siem".into(),
            url: "http://127.0.0.1:9/".into(),
            secret: vec![7; 32],
            timeout: Duration::from_secs(1),
        }],
    )
    .unwrap();
    let core = opencm_app::App::new(
        app.store.clone(),
        app.clock.clone(),
        opencm_app::Settings::default(),
    )
    .with_notifications(
        NotificationSettings {
            webhooks: vec![WebhookSubscription {
                name: "siem".into(),
                events: vec!["certificate.*".into()],
            }],
            expiry_days: vec![7, 30],
            ..Default::default()
        },
        std::sync::Arc::new(channels),
    );
    let go_to = |t: i64| {
        let now = app.clock.now().micros();
        app.clock.advance_ms((t - now) / 1000);
    };
    let day = 86_400_000_000i64;
    let end = cert.not_after.micros();
    let warnings = || async {
        core.outbox_list(opencm_app::Actor::Cli, None, Some(1000))
            .await
            .unwrap()
            .into_iter()
            .filter(|r| r.event.name() == "certificate.expiring")
            .map(|r| serde_json::from_str::<Value>(&r.payload).unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(core.warn_expiring().await.unwrap(), 0, "a year to go");
    go_to(end - 31 * day);
    assert_eq!(core.warn_expiring().await.unwrap(), 0);
    go_to(end - 30 * day + 3_600_000_000);
    assert_eq!(core.warn_expiring().await.unwrap(), 1, "the 30-day warning");
    for _ in 0..3 {
        assert_eq!(core.warn_expiring().await.unwrap(), 0, "not at every scan");
    }
    go_to(end - 10 * day);
    assert_eq!(core.warn_expiring().await.unwrap(), 0);
    go_to(end - 7 * day + 3_600_000_000);
    assert_eq!(core.warn_expiring().await.unwrap(), 1, "the 7-day warning");
    assert_eq!(core.warn_expiring().await.unwrap(), 0);
    go_to(end + day);
    assert_eq!(
        core.warn_expiring().await.unwrap(),
        0,
        "expired: nothing more"
    );
    let given = warnings().await;
    assert_eq!(given.len(), 2, "{given:#?}");
    let mut thresholds: Vec<i64> = given
        .iter()
        .map(|p| p["data"]["threshold"].as_i64().unwrap())
        .collect();
    thresholds.sort_unstable();
    assert_eq!(thresholds, [7, 30]);
    for p in &given {
        assert_eq!(p["type"], "certificate.expiring");
        assert_eq!(p["data"]["serialNumber"], cert.serial_hex.as_str());
        assert_eq!(p["data"]["userUuid"], alice.to_string());
    }
}
on_each_engine!(holders_are_warned_once_per_threshold);

/// Workflow-only templates whose Enroll policies ask for a one-time password.
const OTP_TEMPLATES: &str = r#"
[[template]]
uuid = "0f0e0d0c-0b0a-4909-8807-060504030201"
name = "OTP User"
kind = "software"
security_descriptor = "O:BAD:(A;;RCCR;;;AU)(A;;GA;;;BA)"
[template.policies.Enroll]
self_service_enabled = true
approvals_needed = 1
authorized_approver = "D:(A;;CR;;;S-1-5-21-1000-1000-1000-2001)"
authorized_initiator = "D:(A;;CR;;;S-1-5-21-1000-1000-1000-2002)"
one_time_password_policy = "user"

[[template]]
uuid = "1f0e0d0c-0b0a-4909-8807-060504030201"
name = "OTP Originator"
kind = "software"
security_descriptor = "O:BAD:(A;;RCCR;;;AU)(A;;GA;;;BA)"
[template.policies.Enroll]
self_service_enabled = true
one_time_password_policy = "originator"
"#;
const OTP_USER: &str = "0f0e0d0c-0b0a-4909-8807-060504030201";
const OTP_ORIGINATOR: &str = "1f0e0d0c-0b0a-4909-8807-060504030201";

fn import_otp_templates(db: &str, dir: &Path) {
    let file = dir.join("otp.toml");
    std::fs::write(&file, OTP_TEMPLATES).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_opencm"))
        .args(["template", "import"])
        .arg(&file)
        .args(["--database-url", db])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The secret in a one-time password e-mail.
fn secret_in(text: &str) -> String {
    text.split_whitespace()
        .find(|w| w.len() == 14 && w.split('-').count() == 3 && w.split('-').all(|p| p.len() == 4))
        .unwrap_or_else(|| panic!("no secret in {text}"))
        .to_string()
}

async fn call(
    http: &reqwest::Client,
    s: &Server,
    who: &str,
    method: reqwest::Method,
    url: String,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut r = http.request(method, url).bearer_auth(&s.tokens[who]);
    if let Some(b) = body {
        r = r.json(&b);
    }
    let r = r.send().await.unwrap();
    (r.status(), r.json().await.unwrap_or(Value::Null))
}

async fn enroll(http: &reqwest::Client, s: &Server, who: &str, template: &str) -> String {
    let (status, v) = call(
        http,
        s,
        who,
        reqwest::Method::POST,
        s.api("/requests"),
        Some(json!({"profiletemplateuuid": template, "type": "Enroll", "datacollection": "[]"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    v.as_str().unwrap().rsplit('/').next().unwrap().to_string()
}

fn actions(history: &Value) -> Vec<String> {
    history
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["Action"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// One-time passwords: e-mailed to the target when the request is approved (in their
/// language); executing without, with a wrong or with a replaced one is refused and in the
/// history; the help desk sends a new one; the right one, typed loosely, lets the request
/// complete. A policy `originator` shows it to the originator once.
async fn one_time_passwords_guard_execution(db: String) {
    let peers = Peers::start().await;
    let config = peers.config("");
    let s = start(&db, &config).await;
    import_otp_templates(&db, &peers.dir);
    let http = reqwest::Client::new();
    use reqwest::Method as M;

    let id = enroll(&http, &s, "juan", OTP_USER).await;
    approve(&http, &s, "bob", &id).await;
    let mails = eventually(
        "the one-time password e-mail",
        || peers.mails(),
        |m| {
            m.iter().any(|m| {
                m["subject"]
                    .as_str()
                    .unwrap()
                    .contains("contraseña de un solo uso")
            })
        },
    )
    .await;
    let mail = mails
        .iter()
        .find(|m| {
            m["subject"]
                .as_str()
                .unwrap()
                .contains("contraseña de un solo uso")
        })
        .unwrap();
    assert!(mail["to"].as_str().unwrap().contains("juan@example.test"));
    let first = secret_in(mail["text"].as_str().unwrap());

    let complete = |who: &'static str| {
        call(
            &http,
            &s,
            who,
            M::PUT,
            s.api(&format!("/requests/{id}")),
            Some(json!({"status": "Completed"})),
        )
    };
    let (status, v) = complete("juan").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{v}");
    assert_eq!(v["ErrorCode"], "OneTimePasswordRequired");
    let present = |password: String| {
        call(
            &http,
            &s,
            "juan",
            M::POST,
            format!("{}/opencm/v1/requests/{id}/onetimepassword", s.base),
            Some(json!({ "Password": password })),
        )
    };
    let (status, v) = present("ABCD-EFGH-JKMN".into()).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{v}");
    assert_eq!(v["ErrorCode"], "OneTimePasswordRefused");
    assert!(
        v["Message"].as_str().unwrap().contains("4 tries left"),
        "{v}"
    );

    // Carol (help desk: an initiator of the policy) sends a new one; alice may not.
    let resend = |who: &'static str| {
        call(
            &http,
            &s,
            who,
            M::POST,
            format!("{}/opencm/v1/requests/{id}/onetimepassword/resend", s.base),
            None,
        )
    };
    let (status, _) = resend("alice").await;
    assert!(status == StatusCode::FORBIDDEN || status == StatusCode::NOT_FOUND);
    let (status, v) = resend("carol").await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let mails = eventually(
        "the second one-time password",
        || peers.mails(),
        |m| {
            m.iter()
                .filter(|m| {
                    m["subject"]
                        .as_str()
                        .unwrap()
                        .contains("contraseña de un solo uso")
                })
                .count()
                >= 2
        },
    )
    .await;
    let second = mails
        .iter()
        .filter(|m| {
            m["subject"]
                .as_str()
                .unwrap()
                .contains("contraseña de un solo uso")
        })
        .map(|m| secret_in(m["text"].as_str().unwrap()))
        .find(|s| *s != first)
        .expect("a new secret");
    // The old one no longer works.
    let (status, v) = present(first.clone()).await;
    assert_eq!(
        (status, v["ErrorCode"].as_str()),
        (StatusCode::FORBIDDEN, Some("OneTimePasswordRefused"))
    );
    // The new one, typed in lower case with spaces, does.
    let loose = second.to_lowercase().replace('-', " ");
    let (status, v) = present(loose).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let (status, v) = complete("juan").await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let (_, history) = call(
        &http,
        &s,
        "juan",
        M::GET,
        s.api(&format!("/requests/{id}/history")),
        None,
    )
    .await;
    let seen = actions(&history);
    for a in [
        "OneTimePasswordRefused",
        "DistributeSecrets",
        "OneTimePasswordAccepted",
        "Complete",
    ] {
        assert!(seen.iter().any(|s| s == a), "{a} in {seen:?}");
    }
    assert_eq!(
        seen.iter()
            .filter(|a| *a == "OneTimePasswordRefused")
            .count(),
        2
    );
    // The webhook heard of the secrets, never saw one.
    let hooks = peers.hooks();
    assert!(events_of(&hooks, "/ok", &id)
        .iter()
        .any(|h| h["event"]["type"] == "secrets.distributed"));
    for h in &hooks {
        let text = h.to_string();
        assert!(!text.contains(&first) && !text.contains(&second) && !text.contains("sealed"));
    }

    // Policy `originator`: alice is shown it once; bob never.
    let id = enroll(&http, &s, "alice", OTP_ORIGINATOR).await;
    let show = |who: &'static str| {
        call(
            &http,
            &s,
            who,
            M::GET,
            format!("{}/opencm/v1/requests/{id}/onetimepassword", s.base),
            None,
        )
    };
    let (status, _) = show("bob").await;
    assert!(status == StatusCode::FORBIDDEN || status == StatusCode::NOT_FOUND);
    let (status, v) = show("alice").await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let password = v["Password"].as_str().unwrap().to_string();
    let (status, v) = show("alice").await;
    assert_eq!(
        (status, v["ErrorCode"].as_str()),
        (StatusCode::CONFLICT, Some("OneTimePasswordNotPending"))
    );
    let (status, v) = call(
        &http,
        &s,
        "alice",
        M::POST,
        format!("{}/opencm/v1/requests/{id}/onetimepassword", s.base),
        Some(json!({ "Password": password })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let (_, history) = call(
        &http,
        &s,
        "alice",
        M::GET,
        s.api(&format!("/requests/{id}/history")),
        None,
    )
    .await;
    assert!(actions(&history).contains(&"ReleaseOneTimePassword".to_string()));
}

with_smtp_on_each_engine!(one_time_passwords_guard_execution);

/// An expired one-time password is refused and in the history (the test clock passes its
/// lifetime), and a request that needs one cannot be completed around it.
async fn an_expired_one_time_password_is_refused(app: crate::helpers::TestApp) {
    app.core.import_templates(OTP_TEMPLATES).await.unwrap();
    let id = app.create("alice", OTP_ORIGINATOR).await;
    let alice = &app.users["alice"];
    let rid: opencm_domain::RequestId = id.parse::<opencm_domain::Guid>().unwrap().into();
    let password = app.core.show_secret(alice, rid).await.unwrap();
    app.clock.advance_ms(73 * 3600 * 1000);
    let e = app
        .core
        .present_secret(alice, rid, &password)
        .await
        .unwrap_err();
    assert_eq!(e.code, opencm_app::ErrorCode::OneTimePasswordRefused);
    assert!(e.message.contains("expired"), "{}", e.message);
    let (s, _) = app.put_status("alice", &id, "Completed").await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let history = app.history(&id).await;
    assert!(
        history
            .iter()
            .any(|e| e["Action"] == "OneTimePasswordRefused"
                && e["Detail"] == "expired one-time password"),
        "{history:#?}"
    );
}
on_each_engine!(an_expired_one_time_password_is_refused);

/// An SMTP server that refuses one approver for good: the other approvers still get their
/// e-mail, the refusal is in the row's log and the row is dead (administrators are told). An
/// SMTP server that accepts connections and never answers costs one failed try, never the
/// webhooks' deliveries.
#[tokio::test]
#[cfg_attr(
    not(opencm_smtp_tests),
    ignore = "SMTP: install Debian's python3-aiosmtpd to run"
)]
async fn a_refusing_or_silent_smtp_server_costs_only_its_own_mail() {
    let peers = Peers::start_with("refusing_smtp.Refusing").await;
    let s = start(&fresh_sqlite_url(), &peers.config("")).await;
    let http = reqwest::Client::new();
    let id = vsc_request(&http, &s, "juan").await;
    let mails = eventually(
        "the administrator's approval e-mail",
        || peers.mails(),
        |m| {
            m.iter()
                .any(|m| m["to"].as_str().unwrap().contains("admin@example.test"))
        },
    )
    .await;
    assert!(!mails
        .iter()
        .any(|m| m["to"].as_str().unwrap().contains("bob@")));
    let (_, dead) = eventually_async(&http, &s, "?state=dead", 1).await;
    let row = dead
        .as_array()
        .unwrap()
        .iter()
        .find(|r| {
            r["Event"] == "request.pending_approval"
                && r["Payload"]["data"]["requestUuid"] == id.as_str()
        })
        .expect("the approval row is dead")
        .clone();
    assert_eq!(row["Attempts"], 1, "a 5xx is not retried");
    assert!(
        row["LastError"]
            .as_str()
            .unwrap()
            .contains("bob@example.test"),
        "{row:#}"
    );
    let entry = outbox_row(
        &http,
        &s.base,
        &s.tokens["admin"],
        row["Id"].as_str().unwrap(),
    )
    .await;
    let lines: Vec<(String, String)> = entry["Log"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["Outcome"].as_str().unwrap().into(),
                a["Detail"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert!(
        lines.contains(&("sent".into(), "admin@example.test".into())),
        "{lines:?}"
    );
    assert!(
        lines.contains(&("refused".into(), "bob@example.test".into())),
        "{lines:?}"
    );

    // A server that accepts and never says a word.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    let held = std::sync::Arc::new(tokio::sync::Mutex::new(Vec::new()));
    let keep = held.clone();
    tokio::spawn(async move {
        while let Ok((sock, _)) = silent.accept().await {
            keep.lock().await.push(sock);
        }
    });
    let config = peers.config("lease_secs = 4");
    let text = std::fs::read_to_string(&config).unwrap().replace(
        &format!("port = {}", peers.smtp_port),
        &format!("port = {silent_port}\ntimeout_secs = 1"),
    );
    std::fs::write(&config, text).unwrap();
    let s = start(&fresh_sqlite_url(), &config).await;
    let id = vsc_request(&http, &s, "juan").await;
    // The webhook hears of the request at once, whatever the SMTP server does.
    eventually(
        "the webhook's deliveries beside a silent SMTP server",
        || peers.hooks(),
        |h| events_of(h, "/ok", &id).len() >= 2,
    )
    .await;
    // And the e-mail's try ends, failed, with a reason.
    let (_, failed) = eventually_async(&http, &s, "?state=pending", 1).await;
    let mut error = Value::Null;
    for _ in 0..100 {
        let (_, rows) = outbox(&http, &s, "admin", "?state=pending").await;
        if let Some(r) = rows
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["Channel"] == "email" && r["Attempts"].as_i64() >= Some(1))
        {
            error = r["LastError"].clone();
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        error
            .as_str()
            .is_some_and(|e| e.contains("SMTP") || e.contains("no answer")),
        "{error} / {failed:#}"
    );
}
