//! The administration CLI as an operator uses it, then the server honouring what it created; and
//! graceful shutdown on SIGTERM.

use crate::helpers::json_of;
use opencm_store::testing::{fresh_sqlite_url, scratch_dir};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::process::Command;

fn opencm(db: &str, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_opencm"))
        .args(args)
        .env("OPENCM_DATABASE_URL", db)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// As `opencm`, with `input` on stdin.
fn opencm_with_input(db: &str, args: &[&str], input: &str) -> (bool, String, String) {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_opencm"))
        .args(args)
        .env("OPENCM_DATABASE_URL", db)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn a_password_set_from_the_cli_signs_in_to_the_portal_and_a_new_one_ends_its_sessions() {
    let db = fresh_sqlite_url();
    assert!(opencm(&db, &["migrate"]).0);
    let (ok, _, err) = opencm(
        &db,
        &[
            "user",
            "add",
            "jdoe",
            "--sid",
            "S-1-5-21-42-1301",
            "--display-name",
            "Jane Doe",
        ],
    );
    assert!(ok, "{err}");
    let (ok, _, err) = opencm_with_input(&db, &["user", "passwd", "jdoe"], "too short\n");
    assert!(!ok && err.contains("at least 12 characters"), "{err}");
    let (ok, _, err) = opencm_with_input(
        &db,
        &["user", "passwd", "nobody"],
        "correct horse battery\n",
    );
    assert!(!ok && err.contains("nobody"), "{err}");
    let (ok, out, err) =
        opencm_with_input(&db, &["user", "passwd", "jdoe"], "correct horse battery\n");
    assert!(ok && out.contains("password set"), "{out}{err}");

    let mut server = crate::blackbox::start(&db, false).await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let sign_in = |password: &'static str| {
        http.post(format!("{}/sign-in", server.base))
            .form(&[("login", "JDOE"), ("password", password), ("next", "/")])
            .send()
    };
    let wrong = sign_in("correct horse batterY").await.unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(wrong
        .text()
        .await
        .unwrap()
        .contains("The user name or the password is not right."));
    let r = sign_in("correct horse battery").await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let set = r.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Lax"),
        "{set}"
    );
    let cookie = set.split(';').next().unwrap().to_string();
    let home = http
        .get(format!("{}/", server.base))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(home.status(), StatusCode::OK);
    assert!(home.text().await.unwrap().contains("Hello, Jane Doe"));

    // A new password ends the sessions opened with the old one.
    let (ok, _, err) = opencm_with_input(
        &db,
        &["user", "passwd", "jdoe"],
        "another long passphrase\n",
    );
    assert!(ok, "{err}");
    let after = http
        .get(format!("{}/", server.base))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), StatusCode::SEE_OTHER);
    assert!(after.headers()["location"]
        .to_str()
        .unwrap()
        .contains("ended=1"));
    let log = server.stop_and_read_log().await;
    assert!(
        !log.contains("correct horse") && !log.contains("another long"),
        "{log}"
    );
}

const TEMPLATE: &str = r#"
[[template]]
uuid = "7d1b5b1e-0000-4000-8000-000000000001"
name = "CLI Template"
kind = "software"
security_descriptor = "D:(A;;RCCR;;;S-1-5-21-42-3000)"
[template.policies.Enroll]
self_service_enabled = true
"#;

#[tokio::test]
async fn an_operator_sets_up_users_groups_tokens_and_templates_from_the_cli() {
    let db = fresh_sqlite_url();
    let (ok, out, _) = opencm(&db, &["migrate"]);
    assert!(ok && out.contains("up to date"), "{out}");
    assert!(
        opencm(
            &db,
            &["group", "add", "PKI Users", "--sid", "S-1-5-21-42-3000"]
        )
        .0
    );
    let (ok, uuid, err) = opencm(
        &db,
        &[
            "user",
            "add",
            "jdoe",
            "--sid",
            "s-1-5-21-42-1201",
            "--display-name",
            "Jane Doe",
            "--group",
            "S-1-5-21-42-3000",
        ],
    );
    assert!(ok, "{err}");
    let uuid = uuid.trim().to_string();
    assert!(
        uuid.parse::<opencm_domain::Guid>().is_ok(),
        "prints the new user's uuid: {uuid}"
    );
    // Mistakes are refused with a reason and a failing exit code.
    let (ok, _, err) = opencm(&db, &["user", "add", "jdoe", "--sid", "S-1-5-21-42-1202"]);
    assert!(!ok && err.contains("already exists"), "{err}");
    let (ok, _, err) = opencm(&db, &["user", "add", "bad", "--sid", "S-1-x"]);
    assert!(!ok && err.contains("not a SID"), "{err}");
    let (ok, _, err) = opencm(&db, &["token", "create", "nobody"]);
    assert!(!ok && err.contains("No user with login 'nobody'"), "{err}");
    let (ok, _, err) = opencm(&db, &["token", "create", "jdoe", "--expires-in", "soon"]);
    assert!(!ok && err.contains("duration"), "{err}");
    for huge in ["9223372036854775807d", "99999999999999d", "200000d"] {
        let (ok, _, err) = opencm(&db, &["token", "create", "jdoe", "--expires-in", huge]);
        assert!(!ok && err.contains("too long"), "{huge}: {err}");
    }
    // The token is printed alone on stdout.
    let (ok, token, _) = opencm(&db, &["token", "create", "jdoe", "--expires-in", "30d"]);
    assert!(ok);
    let token = token.trim().to_string();
    assert!(
        token.starts_with("ocm_") && !token.contains('\n'),
        "{token}"
    );
    let file = scratch_dir("cli").join("templates.toml");
    std::fs::write(&file, TEMPLATE).unwrap();
    let (ok, out, err) = opencm(&db, &["template", "import", file.to_str().unwrap()]);
    assert!(ok && out.contains("imported CLI Template"), "{out}{err}");
    let (ok, out, _) = opencm(&db, &["template", "list"]);
    assert!(
        ok && out.contains("7d1b5b1e-0000-4000-8000-000000000001") && out.contains("[Enroll]"),
        "{out}"
    );
    std::fs::write(
        &file,
        "[[template]]\nname = 'x'\nkind = 'software'\nbogus = 1\n",
    )
    .unwrap();
    let (ok, _, err) = opencm(&db, &["template", "import", file.to_str().unwrap()]);
    assert!(!ok && err.contains("not valid"), "{err}");
    // A file whose second template has an unusable certificate imports nothing at all.
    let bad = format!("{TEMPLATE}\n[[template]]\nuuid = '7d1b5b1e-0000-4000-8000-000000000002'\nname = 'Weak'\nkind = 'software'\nsecurity_descriptor = 'D:'\n[[template.certificates]]\ncommon_name = 'weak'\nkey_algorithm = 'RSA'\nkey_size = 1024\n")
        .replace("CLI Template", "CLI Template Renamed");
    std::fs::write(&file, bad).unwrap();
    let (ok, _, err) = opencm(&db, &["template", "import", file.to_str().unwrap()]);
    assert!(
        !ok && err
            .contains("template 'Weak': certificate 'weak': RSA keys must have at least 2048 bits"),
        "{err}"
    );
    let (_, out, _) = opencm(&db, &["template", "list"]);
    assert!(
        out.contains("CLI Template") && !out.contains("Renamed") && !out.contains("Weak"),
        "{out}"
    );

    // The server accepts the token, knows the user's group, and lets them enroll.
    let server = crate::blackbox::start(&db, false).await;
    let http = reqwest::Client::new();
    let r = http
        .get(server.api("/profiletemplates"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let list: Value = r.json().await.unwrap();
    assert_eq!(list[0]["Name"], "CLI Template");
    let r = http.post(server.api("/requests")).bearer_auth(&token).json(&json!({"profiletemplateuuid": "7d1b5b1e-0000-4000-8000-000000000001", "type": "Enroll"})).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let rel: String = r.json().await.unwrap();
    let req: Value = json_of(
        http.get(format!("{}/CertificateManagement/{rel}", server.base))
            .bearer_auth(&token),
    )
    .await;
    assert_eq!(req["TargetUserUuid"], uuid);
    assert!(req["SecurityDescriptor"]
        .as_str()
        .unwrap()
        .starts_with("O:S-1-5-21-42-1201D:"));
}

#[tokio::test]
async fn sigterm_finishes_and_exits_cleanly() {
    let db = fresh_sqlite_url();
    let mut server = crate::blackbox::start(&db, true).await;
    let pid = server.child.id().unwrap().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let status = tokio::time::timeout(std::time::Duration::from_secs(10), server.child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status:?}");
    // Restarting on the same file works (nothing left locked or half-written).
    let again = crate::blackbox::start(&db, false).await;
    let r = reqwest::get(format!("{}/readyz", again.base))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

/// `opencm … | head -1`: a reader that goes away ends the command the way it ends any Unix tool
/// (exit status 141), not with a panic on stderr.
#[test]
fn output_to_a_reader_that_went_away_ends_quietly() {
    let db = fresh_sqlite_url();
    let mut child = Command::new(env!("CARGO_BIN_EXE_opencm"))
        .arg("migrate")
        .env("OPENCM_DATABASE_URL", &db)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The reader goes away before the command writes (it opens the database first).
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(out.status.code(), Some(141), "{err}");
}

/// A directory URL with credentials in it is never echoed, not even in the no-TLS warning.
#[test]
fn a_directory_url_with_credentials_is_masked_in_warnings() {
    let dir = scratch_dir("ldap-url");
    let config = dir.join("opencm.toml");
    std::fs::write(
        &config,
        "[directory]\nurl = \"ldap://admin:s3cret-pw@dc1.invalid\"\nbind_dn = \"CN=opencm\"\n\
         user_base = \"DC=example,DC=com\"\ntimeout_secs = 1\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_opencm"))
        .args([
            "--config",
            config.to_str().unwrap(),
            "directory",
            "test",
            "alice",
        ])
        .env("OPENCM_DATABASE_URL", fresh_sqlite_url())
        .env("OPENCM_DIRECTORY_BIND_PASSWORD", "bind-pw")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("ldap://***@dc1.invalid without TLS"), "{err}");
    assert!(!err.contains("s3cret-pw"), "{err}");
}
