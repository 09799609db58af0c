//! Kerberos sign-in (`Authorization: Negotiate`) against a real MIT Kerberos KDC made for the
//! test in a temporary directory (kdb5_util, kadmin.local, krb5kdc on a loopback port), with
//! `kinit` and `curl --negotiate` as the client, and users and nested groups from the test slapd:
//! the Kerberos principal `jdoe@OPENCM.TEST` is the directory's sAMAccountName `jdoe`.

use crate::blackbox::start_with;
use crate::directory::{free_port, import_site_workflow, opencm, Slapd, DOMAIN, JDOE_GUID};
use crate::helpers::{id_of, scratch_dir};
use crate::kdc::{run_env, Kdc, REALM};
use opencm_store::testing::fresh_sqlite_url;
use std::path::PathBuf;
use std::process::Command;

const WORKFLOW: &str = "2c7d8e9f-0a1b-4c2d-8e3f-4a5b6c7d8e9f";

/// What curl saw: status, the `WWW-Authenticate` values, the body as JSON.
struct Seen {
    status: u16,
    challenges: Vec<String>,
    body: serde_json::Value,
}

/// curl in the test realm: `--negotiate` as the holder of `cache`, or with no ticket at all.
fn curl_as(kdc: &Kdc, cache: Option<&PathBuf>) -> Command {
    let mut c = Command::new("curl");
    c.env("KRB5_CONFIG", kdc.dir.join("krb5.conf"));
    match cache {
        Some(cache) => {
            c.env("KRB5CCNAME", format!("FILE:{}", cache.display()))
                .args(["--negotiate", "-u", ":"]);
        }
        None => {
            c.env("KRB5CCNAME", format!("FILE:{}/none", kdc.dir.display()));
        }
    }
    c
}

/// `curl --negotiate` as the holder of `cache` (or with `extra` headers only when None).
fn curl(
    kdc: &Kdc,
    cache: Option<&PathBuf>,
    method: &str,
    url: &str,
    body: Option<&str>,
    extra: &[&str],
) -> Seen {
    let mut c = curl_as(kdc, cache);
    c.args(["-s", "-i", "-X", method, url]);
    for h in extra {
        c.args(["-H", h]);
    }
    if let Some(b) = body {
        c.args(["-H", "content-type: application/json", "--data", b]);
    }
    let (ok, out) = run_env(&mut c, None);
    assert!(ok, "curl: {out}");
    // With --negotiate curl shows the 401 it was challenged with, then the answer: keep the last.
    let last = out.rfind("HTTP/1.1 ").map(|i| &out[i..]).unwrap_or(&out);
    let (head, body) = last.split_once("\r\n\r\n").unwrap_or((last, ""));
    let status = head[9..12].parse().unwrap();
    let challenges = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .filter(|(k, _)| k.eq_ignore_ascii_case("www-authenticate"))
        .map(|(_, v)| v.trim().to_string())
        .collect();
    Seen {
        status,
        challenges,
        body: serde_json::from_str(body).unwrap_or_default(),
    }
}

#[tokio::test]
#[cfg_attr(
    not(all(feature = "kerberos", opencm_kerberos_tests, opencm_slapd_tests)),
    ignore = "Kerberos: build with --features kerberos and install krb5-kdc, krb5-admin-server, krb5-user, slapd and ldap-utils to run"
)]
async fn kerberos_tickets_sign_directory_users_in_and_nested_groups_approve() {
    let slapd = Slapd::start();
    let kdc = Kdc::start(
        scratch_dir("kdc"),
        free_port(),
        &["jdoe", "sam", "kroe", "bob", "zed", "CAROL"],
    );
    let db = fresh_sqlite_url();
    let config = slapd.config_file(0);
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!(
        "\n[kerberos]\nkeytab = \"{}/http.keytab\"\nservice_principal = \"HTTP/localhost@{REALM}\"\nrealms = [\"{REALM}\"]\n",
        kdc.dir.display()
    ));
    std::fs::write(&config, text).unwrap();
    import_site_workflow(&slapd, &config, &db, WORKFLOW);
    let cfg = config.to_string_lossy().into_owned();
    let krb5_conf = kdc.dir.join("krb5.conf").to_string_lossy().into_owned();
    let rcache = kdc.dir.to_string_lossy().into_owned();
    let mut s = start_with(
        &db,
        true,
        &[
            ("OPENCM_CONFIG", &cfg),
            ("KRB5_CONFIG", &krb5_conf),
            ("KRB5RCACHEDIR", &rcache),
        ],
    )
    .await
    .unwrap();
    // curl asks for the service of the URL's host: HTTP/localhost.
    let port = s.base.rsplit(':').next().unwrap().to_string();
    let url = |path: &str| format!("http://localhost:{port}{path}");
    let api = |path: &str| url(&format!("/certificatemanagement/api/v1.0{path}"));
    let whoami = |cache: Option<&PathBuf>, headers: &[&str]| {
        curl(&kdc, cache, "GET", &url("/opencm/v1/whoami"), None, headers)
    };

    // Without credentials, a 401 offers Negotiate and Bearer.
    let seen = whoami(None, &[]);
    assert_eq!(seen.status, 401);
    assert_eq!(
        seen.challenges,
        vec![
            "Negotiate".to_string(),
            r#"Bearer realm="opencm""#.to_string()
        ]
    );

    // jdoe's ticket signs her in as the directory's jdoe, and the server proves itself back
    // (mutual authentication: curl checks the reply token it is sent).
    let (jdoe, sam, kroe) = (kdc.kinit("jdoe"), kdc.kinit("sam"), kdc.kinit("kroe"));
    let me = whoami(Some(&jdoe), &[]);
    assert_eq!(me.status, 200, "{}", me.body);
    assert_eq!(me.body["Login"], "jdoe");
    assert_eq!(me.body["Uuid"], JDOE_GUID);
    assert_eq!(me.body["AuthenticatedBy"], "Kerberos (Negotiate)");
    assert!(
        me.body["GroupSids"]
            .to_string()
            .contains(&format!("{DOMAIN}-3102")),
        "nested group through PKI Helpdesk: {}",
        me.body
    );
    assert!(
        me.challenges.iter().any(|c| c.starts_with("Negotiate ")),
        "mutual authentication token: {:?}",
        me.challenges
    );

    // She asks for a certificate; kroe (in no group) neither sees it nor may approve it; sam,
    // in Site A through PKI Helpdesk, approves it; she sees it approved and in her list.
    let created = curl(
        &kdc,
        Some(&jdoe),
        "POST",
        &api("/requests"),
        Some(&format!(
            r#"{{"profiletemplateuuid": "{WORKFLOW}", "type": "Enroll"}}"#
        )),
        &[],
    );
    assert_eq!(created.status, 201, "{}", created.body);
    let id = id_of(&created.body);
    let request = api(&format!("/requests/{id}"));
    let seen = curl(&kdc, Some(&jdoe), "GET", &request, None, &[]);
    assert_eq!((seen.status, seen.body["Status"].as_i64()), (200, Some(16)));
    assert_eq!(seen.body["OriginatorUserUuid"], JDOE_GUID);
    assert_eq!(
        curl(&kdc, Some(&kroe), "GET", &request, None, &[]).status,
        404
    );
    let kroe_list = curl(&kdc, Some(&kroe), "GET", &api("/requests"), None, &[]);
    assert_eq!(kroe_list.status, 200);
    assert!(!kroe_list.body.to_string().contains(&id));
    let approvals = api(&format!("/requests/{id}/approvals"));
    let approve = r#"{"decision": "Approve"}"#;
    let seen = curl(&kdc, Some(&kroe), "POST", &approvals, Some(approve), &[]);
    assert_eq!(seen.status, 404);
    let seen = curl(&kdc, Some(&sam), "POST", &approvals, Some(approve), &[]);
    assert_eq!(seen.status, 200, "{}", seen.body);
    let seen = curl(&kdc, Some(&jdoe), "GET", &request, None, &[]);
    assert_eq!(seen.body["Status"], 3, "approved: {}", seen.body);
    let list = curl(&kdc, Some(&jdoe), "GET", &api("/requests"), None, &[]);
    assert!(list.body.to_string().contains(&id));

    // The portal: jdoe's ticket starts a browser session (single sign-on), back on the page she
    // asked for; her session cookie then shows her pages. Without a ticket, the sign-in page
    // challenges with Negotiate.
    let (head, _) = portal_get(
        &kdc,
        Some(&jdoe),
        &url("/sign-in/kerberos?next=%2Fapprovals"),
        None,
    );
    assert!(head.starts_with("HTTP/1.1 303"), "{head}");
    assert!(head.contains("\r\nlocation: /approvals\r\n"), "{head}");
    let cookie = head
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: opencm_session="))
        .and_then(|c| c.split(';').next())
        .unwrap_or_else(|| panic!("a session cookie: {head}"))
        .to_string();
    let (head, page) = portal_get(
        &kdc,
        None,
        &url("/"),
        Some(&format!("opencm_session={cookie}")),
    );
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(page.contains("Jane Doe"), "jdoe's own home page: {page}");
    let (head, page) = portal_get(&kdc, None, &url("/sign-in/kerberos"), None);
    assert!(head.starts_with("HTTP/1.1 401"), "{head}");
    assert!(
        head.contains("\r\nwww-authenticate: Negotiate\r\n"),
        "{head}"
    );
    assert!(page.contains("id=\"sign-in-error\""), "{page}");
    let (head, _) = portal_get(&kdc, None, &url("/sign-in/kerberos"), Some("x=1"));
    assert!(
        !head.contains("opencm_session=ocm_"),
        "no session without a ticket: {head}"
    );

    // Refused: bob — the demo's local bob, once disabled, and the directory's bob, disabled
    // there; zed, whom no directory knows; a
    // ticket for another service (HTTP/other.test, whose key opencm does not hold); a token
    // that is not Kerberos at all. Each 401 still offers both schemes.
    let bob = kdc.kinit("bob");
    let seen = whoami(Some(&bob), &[]);
    assert_eq!(
        (seen.status, seen.body["Login"].as_str()),
        (200, Some("bob")),
        "opencm's own bob, as long as he is enabled"
    );
    let (ok, out) = opencm(&config, &db, &["user", "disable", "bob"]);
    assert!(ok, "{out}");
    let zed = kdc.kinit("zed");
    for cache in [&bob, &zed] {
        let seen = whoami(Some(cache), &[]);
        assert_eq!(seen.status, 401, "{}", seen.body);
        assert_eq!(seen.body["ErrorCode"], "Unauthorized");
    }
    let other = format!("http://other.test:{port}/opencm/v1/whoami");
    let mut c = Command::new("curl");
    c.env("KRB5_CONFIG", kdc.dir.join("krb5.conf"))
        .env("KRB5CCNAME", format!("FILE:{}", jdoe.display()))
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--negotiate",
            "-u",
            ":",
            "--resolve",
            &format!("other.test:{port}:127.0.0.1"),
            &other,
        ]);
    let (_, code) = run_env(&mut c, None);
    assert_eq!(code, "401", "a ticket for HTTP/other.test");
    let seen = whoami(
        None,
        &["Authorization: Negotiate TlRMTVNTUAABAAAAB4IIogAAAAAAAAAAAAAAAAAAAAAKAGFKAAAADw=="],
    );
    assert_eq!(seen.status, 401);
    assert_eq!(seen.challenges.len(), 2, "{:?}", seen.challenges);
    assert!(seen.challenges[0] == "Negotiate");
    let seen = whoami(None, &["Authorization: Negotiate not base64!"]);
    assert_eq!(seen.status, 401);
    // A token presented twice: the first use signs in, the replay is refused (MIT's replay cache).
    let mut c = Command::new("curl");
    c.env("KRB5_CONFIG", kdc.dir.join("krb5.conf"))
        .env("KRB5CCNAME", format!("FILE:{}", jdoe.display()))
        .args(["-s", "-v", "-o", "/dev/null", "--negotiate", "-u", ":"])
        .arg(url("/opencm/v1/whoami"));
    let (ok, verbose) = run_env(&mut c, None);
    assert!(ok && verbose.contains("< HTTP/1.1 200"), "{verbose}");
    let sent = verbose
        .lines()
        .find_map(|l| l.strip_prefix("> Authorization: Negotiate "))
        .unwrap_or_else(|| panic!("curl -v shows the token it sent: {verbose}"))
        .trim()
        .to_string();
    let replay = format!("Authorization: Negotiate {sent}");
    let seen = whoami(None, &[&replay]);
    assert_eq!(seen.status, 401, "a replayed ticket: {}", seen.body);
    // opencm's own tokens keep working beside Kerberos.
    let bearer = format!("Authorization: Bearer {}", s.tokens["alice"]);
    let seen = whoami(None, &[&bearer]);
    assert_eq!(
        (seen.status, seen.body["Login"].as_str()),
        (200, Some("alice"))
    );
    // Each refusal was logged with GSSAPI's reason, never with the token.
    let log = s.stop_and_read_log().await;
    assert!(log.to_lowercase().contains("replay"), "{log}");
    assert!(!log.contains(&sent), "the token is never logged");
}

/// A portal page by curl (`--negotiate` as the holder of `cache`, if given), with a cookie: the
/// last response's head and body.
fn portal_get(
    kdc: &Kdc,
    cache: Option<&PathBuf>,
    url: &str,
    cookie: Option<&str>,
) -> (String, String) {
    let mut c = curl_as(kdc, cache);
    c.args(["-s", "-i", url]);
    if let Some(k) = cookie {
        c.args(["-H", &format!("cookie: {k}")]);
    }
    let (ok, out) = run_env(&mut c, None);
    assert!(ok, "curl: {out}");
    let last = out.rfind("HTTP/1.1 ").map(|i| &out[i..]).unwrap_or(&out);
    let (head, body) = last.split_once("\r\n\r\n").unwrap_or((last, ""));
    (format!("{head}\r\n"), body.to_string())
}

/// `curl -v --negotiate` as the holder of `cache` against `url`: the status line seen and the
/// token curl sent.
fn negotiate_once(kdc: &Kdc, cache: &std::path::Path, url: &str) -> (String, String) {
    let mut c = Command::new("curl");
    c.env("KRB5_CONFIG", kdc.dir.join("krb5.conf"))
        .env("KRB5CCNAME", format!("FILE:{}", cache.display()))
        .args(["-s", "-v", "-o", "/dev/null", "--negotiate", "-u", ":"])
        .arg(url);
    let (ok, verbose) = run_env(&mut c, None);
    assert!(ok, "{verbose}");
    let status = verbose
        .lines()
        .rev()
        .find(|l| l.starts_with("< HTTP/1.1 "))
        .unwrap_or_default()
        .to_string();
    let token = verbose
        .lines()
        .find_map(|l| l.strip_prefix("> Authorization: Negotiate "))
        .unwrap_or_else(|| panic!("curl -v shows the token it sent: {verbose}"))
        .trim()
        .to_string();
    (status, token)
}

#[tokio::test]
#[cfg_attr(
    not(all(feature = "kerberos", opencm_kerberos_tests, opencm_postgres_tests)),
    ignore = "Kerberos on two nodes: build with --features kerberos, install krb5-kdc, krb5-admin-server and krb5-user, and set OPENCM_TEST_POSTGRES_URL"
)]
async fn a_kerberos_token_accepted_by_one_node_is_refused_by_every_other() {
    use opencm_store::testing::{fresh_postgres_url, postgres_base_url};
    let kdc = Kdc::start(
        scratch_dir("kdc"),
        free_port(),
        &["jdoe", "sam", "kroe", "bob", "zed", "CAROL"],
    );
    let db = fresh_postgres_url(&postgres_base_url()).await;
    let config = kdc.dir.join("opencm.toml");
    std::fs::write(
        &config,
        format!(
            "[kerberos]\nkeytab = \"{}/http.keytab\"\nservice_principal = \"HTTP/localhost@{REALM}\"\nrealms = [\"{REALM}\"]\n",
            kdc.dir.display()
        ),
    )
    .unwrap();
    let cfg = config.to_string_lossy().into_owned();
    let krb5_conf = kdc.dir.join("krb5.conf").to_string_lossy().into_owned();
    // Each node its own MIT replay cache, as on two hosts; one keytab, one database.
    let node = |name: &str| {
        let dir = kdc.dir.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        dir.to_string_lossy().into_owned()
    };
    let (rc_a, rc_b) = (node("rcache-a"), node("rcache-b"));
    let env = |rcache: &str| -> Vec<(String, String)> {
        vec![
            ("OPENCM_CONFIG".into(), cfg.clone()),
            ("KRB5_CONFIG".into(), krb5_conf.clone()),
            ("KRB5RCACHEDIR".into(), rcache.to_string()),
        ]
    };
    let start = |demo: bool, vars: Vec<(String, String)>| {
        let db = db.clone();
        async move {
            let vars: Vec<(&str, &str)> =
                vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            start_with(&db, demo, &vars).await.unwrap()
        }
    };
    let a = start(true, env(&rc_a)).await;
    let mut b = start(false, env(&rc_b)).await;
    let whoami = |s: &crate::blackbox::Server| {
        let port = s.base.rsplit(':').next().unwrap().to_string();
        format!("http://localhost:{port}/opencm/v1/whoami")
    };

    // bob signs in on node A; the very same token, replayed to node B, is refused there.
    let bob = kdc.kinit("bob");
    let (status, token) = negotiate_once(&kdc, &bob, &whoami(&a));
    assert!(status.contains("200"), "{status}");
    let replay = format!("Authorization: Negotiate {token}");
    let seen = curl(&kdc, None, "GET", &whoami(&b), None, &[&replay]);
    assert_eq!(seen.status, 401, "replayed on another node: {}", seen.body);
    // Node B itself works: a fresh token from the same ticket signs bob in.
    let (status, _) = negotiate_once(&kdc, &bob, &whoami(&b));
    assert!(status.contains("200"), "{status}");

    // A principal in capitals names the same account, as Active Directory matches logins.
    let carol = kdc.kinit("CAROL");
    let seen = curl(&kdc, Some(&carol), "GET", &whoami(&a), None, &[]);
    assert_eq!(
        (seen.status, seen.body["Login"].as_str()),
        (200, Some("carol")),
        "{}",
        seen.body
    );
    let log = b.stop_and_read_log().await;
    assert!(log.contains("a replay of one accepted before"), "{log}");
    assert!(!log.contains(&token), "the token is never logged");
}
