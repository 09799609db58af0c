#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `opencm-card` against a real PC/SC stack: the software PIV card (`opencm-softcard`) in vpcd's
//! second reader, the opencm server on its demo realm, and OpenSC and openssl checking what ends
//! up on the card. Needs the card stack (`scripts/card-stack.sh`) and the two other binaries built
//! (`cargo build -p opencm -p opencm-softcard`); `.ci/run` does both.

use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// vpcd's second reader, so a card a developer keeps in the first is left alone.
const VPCD_PORT: &str = "35964";
const READER: &str = "Virtual PCD 00 01";
const READER_INDEX: &str = "1";
const CARD_ID: &str = "5e0c1d2a-3b4c-4d5e-8f60-718293a4b5c6";
const PIV: &str = "7c3e51a4-1f0d-4e8b-9a52-6b0f2d9e4c11";
const PKCS11: &str = "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so";

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"))
        .join("debug")
}

fn binary(name: &str) -> PathBuf {
    let p = target_dir().join(name);
    assert!(
        p.exists(),
        "{} is missing: build it first (cargo build -p opencm -p opencm-softcard)",
        p.display()
    );
    p
}

/// Kills the child when the test ends, however it ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Stack {
    _server: Running,
    _card: Running,
    base: String,
    tokens: std::collections::HashMap<String, String>,
    dir: PathBuf,
    http: reqwest::Client,
}

/// The scratch directory goes when the test ends, after the processes using it.
impl Drop for Stack {
    fn drop(&mut self) {
        for p in [&mut self._server, &mut self._card] {
            let _ = p.0.kill();
            let _ = p.0.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Stack {
    fn start() -> Stack {
        let dir = std::env::temp_dir().join(format!("opencm-card-e2e-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let readers = Command::new("opensc-tool").arg("-l").output();
        assert!(
            readers
                .as_ref()
                .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains(READER)),
            "PC/SC has no '{READER}': start the card stack (scripts/card-stack.sh)"
        );
        let card = Command::new(binary("opencm-softcard"))
            .arg(CARD_ID)
            .env("VPCD_PORT", VPCD_PORT)
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let port = free_port();
        let mut server = Command::new(binary("opencm"))
            .args(["serve", "--demo", "--listen", &format!("127.0.0.1:{port}")])
            .current_dir(&dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // The demo realm prints one token per user, then where it listens.
        let mut tokens = std::collections::HashMap::new();
        let out = BufReader::new(server.stdout.take().unwrap());
        for line in out.lines() {
            let line = line.unwrap();
            let words: Vec<&str> = line.split_whitespace().collect();
            if let [user, token, ..] = words[..] {
                if token.starts_with("ocm_") {
                    tokens.insert(user.to_string(), token.to_string());
                }
            }
            if line.starts_with("opencm listening on") {
                break;
            }
        }
        assert!(tokens.contains_key("alice"), "no demo tokens printed");
        let stack = Stack {
            _server: Running(server),
            _card: Running(card),
            base: format!("http://127.0.0.1:{port}"),
            tokens,
            dir,
            // Below the server's 10 s header timeout, as `opencm card`'s own client: a call
            // racing the server's close of an idle kept-alive connection fails otherwise.
            http: reqwest::Client::builder()
                .pool_idle_timeout(std::time::Duration::from_secs(5))
                .build()
                .unwrap(),
        };
        // The card is in the reader once PC/SC sees it.
        let t = Instant::now();
        while !stack.card_present() {
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "the software card never showed up in {READER}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        stack
    }

    fn card_present(&self) -> bool {
        let o = Command::new("opensc-tool").arg("-l").output().unwrap();
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .any(|l| l.contains(READER) && l.contains("Yes"))
    }

    fn api(&self, path: &str) -> String {
        format!("{}/CertificateManagement/api/v1.0{path}", self.base)
    }

    async fn get(&self, who: &str, path: &str) -> (u16, Value) {
        let r = self
            .http
            .get(self.api(path))
            .bearer_auth(&self.tokens[who])
            .send()
            .await
            .unwrap();
        let s = r.status().as_u16();
        (s, r.json().await.unwrap_or(Value::Null))
    }

    async fn send(
        &self,
        who: &str,
        method: reqwest::Method,
        path: &str,
        body: Value,
    ) -> (u16, Value) {
        let r = self
            .http
            .request(method, self.api(path))
            .bearer_auth(&self.tokens[who])
            .json(&body)
            .send()
            .await
            .unwrap();
        let s = r.status().as_u16();
        (s, r.json().await.unwrap_or(Value::Null))
    }

    async fn create(&self, who: &str, body: Value) -> String {
        let (s, v) = self
            .send(who, reqwest::Method::POST, "/requests", body)
            .await;
        assert_eq!(s, 201, "{v}");
        v.as_str().unwrap().rsplit('/').next().unwrap().to_string()
    }

    /// Runs `opencm-card` as `who`.
    fn card(&self, who: &str, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_opencm-card"))
            .args(args)
            .env("OPENCM_SERVER", &self.base)
            .env("OPENCM_TOKEN", &self.tokens[who])
            .env("OPENCM_READER", READER)
            .output()
            .unwrap()
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).to_string_lossy().into_owned()
    }
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn run(cmd: &str, args: &[&str], env: &[(&str, &str)]) -> (bool, String) {
    let o = Command::new(cmd)
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap_or_else(|e| panic!("{cmd}: {e}"));
    (o.status.success(), text(&o))
}

/// 24 bytes as piv-tool reads a key file: `xx:xx:…`.
fn key_file(path: &str, key: &[u8]) {
    let hex: Vec<String> = key.iter().map(|b| format!("{b:02x}")).collect();
    std::fs::write(path, hex.join(":")).unwrap();
}

#[tokio::test]
async fn a_piv_card_is_enrolled_through_opencm_and_checked_by_opensc_and_openssl() {
    let s = Stack::start();

    // The card as the client sees it, before opencm knows it.
    let listed = s.card("alice", &["list"]);
    let out = text(&listed);
    assert!(listed.status.success(), "{out}");
    assert!(
        out.contains(&format!("PIV card {CARD_ID}")) && out.contains("not known"),
        "{out}"
    );

    // Someone who may not execute alice's request gets nothing, and changes nothing.
    let req = s
        .create(
            "alice",
            json!({"type": "Enroll", "profiletemplateuuid": PIV}),
        )
        .await;
    let refused = s.card("bob", &["enroll", "--request", &req]);
    assert!(!refused.status.success());
    assert!(text(&refused).contains("404"), "{}", text(&refused));
    let (_, r) = s.get("alice", &format!("/requests/{req}")).await;
    assert_eq!(
        (r["Status"].as_i64(), r["NewSmartcardUuid"].as_str()),
        (Some(3), Some("00000000-0000-0000-0000-000000000000"))
    );

    // A step that fails after binding (a wrong PIN) abandons the request: the server retires the
    // half-enrolled card, and nothing is left bound.
    let failed = s.card("alice", &["enroll", "--request", &req, "--pin", "999999"]);
    let out = text(&failed);
    assert!(!failed.status.success(), "{out}");
    assert!(out.contains("63C2") && out.contains("abandoned"), "{out}");
    let (_, r) = s.get("alice", &format!("/requests/{req}")).await;
    assert_eq!(r["Status"], 9, "abandoned: {r}");
    let (_, half) = s
        .get(
            "alice",
            &format!("/smartcards/{}", r["NewSmartcardUuid"].as_str().unwrap()),
        )
        .await;
    assert_eq!(half["Status"], 6, "retired: {half}");

    // The enrolment, timed.
    let req = s
        .create(
            "alice",
            json!({"type": "Enroll", "profiletemplateuuid": PIV}),
        )
        .await;
    let t = Instant::now();
    let enrolled = s.card("alice", &["enroll", "--request", &req]);
    let took = t.elapsed();
    let out = text(&enrolled);
    assert!(enrolled.status.success(), "{out}");
    println!(
        "opencm-card enroll took {:.0} ms:\n{out}",
        took.as_secs_f64() * 1000.0
    );
    let pin = out
        .lines()
        .find_map(|l| l.strip_prefix("The card's PIN is "))
        .and_then(|l| l.split_whitespace().next())
        .expect("the PIN is told")
        .to_string();
    assert!(
        (6..=8).contains(&pin.len()) && pin.bytes().all(|b| b.is_ascii_digit()),
        "{pin}"
    );

    // The server's view: request Completed, the card Active with this card id, one certificate,
    // every secret release in the history and no secret in it.
    let (_, r) = s.get("alice", &format!("/requests/{req}")).await;
    assert_eq!(r["Status"], 8, "{r}");
    let card = r["NewSmartcardUuid"].as_str().unwrap().to_string();
    let (_, c) = s.get("alice", &format!("/smartcards/{card}")).await;
    assert_eq!(
        (c["Status"].as_i64(), c["SerialNumber"].as_str()),
        (Some(2), Some(format!("{{{CARD_ID}}}").as_str())),
        "{c}"
    );
    let (_, certs) = s
        .get("alice", &format!("/smartcards/{card}/certificates"))
        .await;
    assert_eq!(certs.as_array().unwrap().len(), 1, "{certs}");
    let (_, history) = s.get("alice", &format!("/requests/{req}/history")).await;
    let h = history.to_string();
    for action in [
        "BindSmartcard",
        "AuthenticationResponse",
        "ReleaseAdminKey",
        "ProposePin",
    ] {
        assert!(h.contains(action), "{action} missing: {h}");
    }
    assert!(!h.contains(&pin), "{h}");

    // OpenSC: the certificate and the key are on the card, the key never extractable; PKCS#15
    // lists the certificate.
    let (ok, objects) = run(
        "pkcs11-tool",
        &["--module", PKCS11, "-l", "--pin", &pin, "-O"],
        &[],
    );
    assert!(ok, "{objects}");
    assert!(
        objects.contains("Private Key Object; EC") && objects.contains("never extractable"),
        "{objects}"
    );
    assert!(
        objects.contains("Certificate Object") && objects.contains("CN=Alice Example"),
        "{objects}"
    );
    let (ok, p15) = run("pkcs15-tool", &["--reader", READER_INDEX, "-c"], &[]);
    assert!(
        ok && p15.contains("Certificate for PIV Authentication"),
        "{p15}"
    );

    // openssl: the card's certificate chains to opencm's CA and is a logon certificate for
    // alice; a signature the card makes verifies against it.
    let ca = s
        .http
        .get(format!("{}/pki/ca.pem", s.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    std::fs::write(s.path("ca.pem"), ca).unwrap();
    certificate_on_card(&s, "cert");
    let (ok, o) = run(
        "openssl",
        &["verify", "-CAfile", &s.path("ca.pem"), &s.path("cert.pem")],
        &[],
    );
    assert!(ok, "{o}");
    let (_, o) = run(
        "openssl",
        &["x509", "-in", &s.path("cert.pem"), "-noout", "-text"],
        &[],
    );
    assert!(
        o.contains("Microsoft Smartcard Login") && o.contains("UPN::alice"),
        "{o}"
    );
    std::fs::write(s.path("msg.txt"), "signed on the card").unwrap();
    let (ok, o) = run(
        "pkcs11-tool",
        &[
            "--module",
            PKCS11,
            "-l",
            "--pin",
            &pin,
            "--sign",
            "-m",
            "ECDSA-SHA256",
            "--signature-format",
            "openssl",
            "--id",
            "01",
            "-i",
            &s.path("msg.txt"),
            "-o",
            &s.path("sig.der"),
        ],
        &[],
    );
    assert!(ok, "{o}");
    let (_, pubkey) = run(
        "openssl",
        &["x509", "-in", &s.path("cert.pem"), "-pubkey", "-noout"],
        &[],
    );
    std::fs::write(s.path("pub.pem"), pubkey).unwrap();
    let (ok, o) = run(
        "openssl",
        &[
            "dgst",
            "-sha256",
            "-verify",
            &s.path("pub.pem"),
            "-signature",
            &s.path("sig.der"),
            &s.path("msg.txt"),
        ],
        &[],
    );
    assert!(ok && o.contains("Verified OK"), "{o}");

    // The factory admin key no longer opens the card; the card's own does (OpenSC's piv-tool,
    // mutual authentication). The executor of a new request on the card may have that key.
    key_file(
        &s.path("factory.key"),
        &hex_literal("010203040506070801020304050607080102030405060708"),
    );
    let (ok, o) = run(
        "piv-tool",
        &["-r", READER_INDEX, "-A", "M:9B:03"],
        &[("PIV_EXT_AUTH_KEY", &s.path("factory.key"))],
    );
    assert!(!ok, "the factory key still works: {o}");
    let unblock = s
        .create("alice", json!({"type": "Unblock", "smartcard": card}))
        .await;
    let (st, key) = s
        .get(
            "alice",
            &format!("/requests/{unblock}/smartcards/{card}/diversifiedkey?cardid={CARD_ID}"),
        )
        .await;
    assert_eq!(st, 200, "{key}");
    use base64::Engine;
    let key = base64::engine::general_purpose::STANDARD
        .decode(key.as_str().unwrap())
        .unwrap();
    key_file(&s.path("card.key"), &key);
    let (ok, o) = run(
        "piv-tool",
        &["-r", READER_INDEX, "-A", "M:9B:03"],
        &[("PIV_EXT_AUTH_KEY", &s.path("card.key"))],
    );
    assert!(ok, "the card's own key does not work: {o}");

    // `status`: the card as opencm has it, with what alice may start on it.
    let st = s.card("alice", &["status"]);
    let out = text(&st);
    assert!(st.status.success(), "{out}");
    assert!(
        out.contains("status 2 (Active)")
            && out.contains("opencmPivAuthentication")
            && out.contains("unblock"),
        "{out}"
    );

    // The PIN blocked by three wrong tries (OpenSC refuses the right one then), unblocked through
    // that Unblock request: the server releases the card's PUK and a new PIN to its executor.
    for _ in 0..3 {
        let (ok, _) = run(
            "pkcs11-tool",
            &["--module", PKCS11, "-l", "--pin", "000000", "-O"],
            &[],
        );
        assert!(!ok);
    }
    let (ok, o) = run(
        "pkcs11-tool",
        &["--module", PKCS11, "-l", "--pin", &pin, "-O"],
        &[],
    );
    assert!(!ok && o.contains("CKR_PIN_LOCKED"), "{o}");
    let unblocked = s.card("alice", &["unblock", "--request", &unblock]);
    let out = text(&unblocked);
    assert!(unblocked.status.success(), "{out}");
    let new_pin = out
        .lines()
        .find_map(|l| l.split("Its new PIN is ").nth(1))
        .and_then(|l| l.split_whitespace().next())
        .expect("the new PIN is told")
        .to_string();
    let (ok, o) = run(
        "pkcs11-tool",
        &["--module", PKCS11, "-l", "--pin", &new_pin, "-O"],
        &[],
    );
    assert!(ok && o.contains("Private Key Object; EC"), "{o}");
    let (_, r) = s.get("alice", &format!("/requests/{unblock}")).await;
    assert_eq!(r["Status"], 8, "{r}");
    let (_, history) = s
        .get("alice", &format!("/requests/{unblock}/history"))
        .await;
    let h = history.to_string();
    assert!(
        h.contains("ReleasePuk") && h.contains("ProposePin") && !h.contains(&new_pin),
        "{h}"
    );
    let (_, c) = s.get("alice", &format!("/smartcards/{card}")).await;
    assert_eq!(c["Status"], 2, "an unblock leaves the card in service: {c}");
    let (_, certs) = s
        .get("alice", &format!("/smartcards/{card}/certificates"))
        .await;
    assert_eq!(
        certs.as_array().unwrap().len(),
        1,
        "and its certificates as they were: {certs}"
    );

    // OnlineUpdate: new keys and certificates on the same card; the old certificate is revoked
    // as superseded, and the card's own admin key opens it (no factory key involved).
    let update = s
        .create("alice", json!({"type": "OnlineUpdate", "smartcard": card}))
        .await;
    let updated = s.card(
        "alice",
        &["update", "--request", &update, "--pin", &new_pin],
    );
    let out = text(&updated);
    assert!(updated.status.success(), "{out}");
    let (_, r) = s.get("alice", &format!("/requests/{update}")).await;
    assert_eq!(r["Status"], 8, "{r}");
    let profile = |id: &Value| {
        let id = id.as_str().unwrap().to_string();
        let s = &s;
        async move { s.get("alice", &format!("/profiles/{id}")).await.1 }
    };
    assert_eq!(
        profile(&r["OldProfileUuid"]).await["Status"],
        6,
        "superseded"
    );
    assert_eq!(profile(&r["NewProfileUuid"]).await["Status"], 2);
    let updated_profile = r["NewProfileUuid"].clone();
    let (_, certs) = s
        .get("alice", &format!("/smartcards/{card}/certificates"))
        .await;
    assert_eq!(certs.as_array().unwrap().len(), 2, "{certs}");
    certificate_on_card(&s, "new");
    assert_ne!(
        std::fs::read(s.path("new.der")).unwrap(),
        std::fs::read(s.path("cert.der")).unwrap(),
        "a new certificate on the card"
    );
    let crl_check = |leaf: String| {
        let base = s.base.clone();
        let crl = s.path("crl.pem");
        let ca = s.path("ca.pem");
        async move {
            let pem = reqwest::get(format!("{base}/pki/crl.pem"))
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            std::fs::write(&crl, pem).unwrap();
            run(
                "openssl",
                &[
                    "verify",
                    "-crl_check",
                    "-CRLfile",
                    &crl,
                    "-CAfile",
                    &ca,
                    &leaf,
                ],
                &[],
            )
        }
    };
    let (ok, o) = crl_check(s.path("cert.pem")).await;
    assert!(!ok && o.contains("certificate revoked"), "{o}");
    let (ok, o) = crl_check(s.path("new.pem")).await;
    assert!(ok, "{o}");

    // Retire: the card Retired on the server, its certificate revoked, and the card reset — its
    // certificate gone and the factory admin key working again.
    let retire = s
        .create("alice", json!({"type": "Retire", "smartcard": card}))
        .await;
    let retired = s.card("alice", &["retire", "--request", &retire]);
    let out = text(&retired);
    assert!(retired.status.success(), "{out}");
    assert!(out.contains("retired and reset"), "{out}");
    let (_, c) = s.get("alice", &format!("/smartcards/{card}")).await;
    assert_eq!(c["Status"], 6, "{c}");
    assert_eq!(
        profile(&updated_profile).await["Status"],
        6,
        "the profile retired with it"
    );
    let (ok, o) = crl_check(s.path("new.pem")).await;
    assert!(!ok && o.contains("certificate revoked"), "{o}");
    let (_, p15) = run("pkcs15-tool", &["--reader", READER_INDEX, "-c"], &[]);
    assert!(!p15.contains("X.509 Certificate"), "{p15}");
    let (ok, o) = run(
        "piv-tool",
        &["-r", READER_INDEX, "-A", "M:9B:03"],
        &[("PIV_EXT_AUTH_KEY", &s.path("factory.key"))],
    );
    assert!(ok, "the reset card takes its factory key again: {o}");

    // What the client now says of the card, run as `opencm card` (the server binary hands the
    // command to the client beside it).
    let listed = Command::new(binary("opencm"))
        .args(["card", "list"])
        .env(
            "PATH",
            format!(
                "{}:{}",
                target_dir().display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        )
        .env("OPENCM_SERVER", &s.base)
        .env("OPENCM_TOKEN", &s.tokens["alice"])
        .output()
        .unwrap();
    let out = text(&listed);
    assert!(
        out.contains(&format!("PIV card {CARD_ID}")) && out.contains("status 6 (Retired)"),
        "{out}"
    );
}

/// The certificate in the card's slot 9a (PKCS#11 id 01), read by pkcs11-tool, as `name`.der
/// and `name`.pem.
fn certificate_on_card(s: &Stack, name: &str) {
    let (der, pem) = (
        s.path(&format!("{name}.der")),
        s.path(&format!("{name}.pem")),
    );
    let (ok, o) = run(
        "pkcs11-tool",
        &[
            "--module", PKCS11, "-r", "--type", "cert", "--id", "01", "-o", &der,
        ],
        &[],
    );
    assert!(ok, "{o}");
    let (ok, o) = run(
        "openssl",
        &["x509", "-inform", "DER", "-in", &der, "-out", &pem],
        &[],
    );
    assert!(ok, "{o}");
}

fn hex_literal(h: &str) -> Vec<u8> {
    hex::decode(h).unwrap()
}
