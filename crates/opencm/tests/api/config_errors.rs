//! A refused configuration, as an operator meets it: `opencm serve` says what is wrong — the key,
//! the line — and exits, without printing any secret written in the file or the environment,
//! and without creating a database, a CA or a key-encryption key first.

use opencm_store::testing::scratch_dir;
use std::process::Command;

/// `opencm serve --config opencm.toml` in a fresh directory holding only that file, with only
/// `env` in its environment: whether it failed, what it printed (stdout, stderr and its log
/// together), and the files the directory holds afterwards.
fn serve_with(toml: &str, env: &[(&str, &str)]) -> (bool, String, Vec<String>) {
    // The file's own listen address when it names one (a flag would override it), else any
    // free port.
    let mut args = vec!["serve", "--config", "opencm.toml"];
    if !toml.contains("listen") {
        args.extend(["--listen", "127.0.0.1:0"]);
    }
    run_with(&args, toml, env)
}

fn run_with(args: &[&str], toml: &str, env: &[(&str, &str)]) -> (bool, String, Vec<String>) {
    let dir = scratch_dir("config");
    std::fs::write(dir.join("opencm.toml"), toml).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_opencm"))
        .args(args)
        .current_dir(&dir)
        .env_clear()
        .env("OPENCM_LOG", "trace")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    let _ = std::fs::remove_dir_all(&dir);
    (
        !out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
        files,
    )
}

const DIRECTORY: &str =
    "[directory]\nurl = 'ldap://127.0.0.1:1'\nbind_dn = 'cn=opencm'\nuser_base = 'dc=example'\n";
const OIDC: &str = "[oidc]\nissuer = 'https://idp.example'\naudience = ['opencm']\n";

/// What an operator wrote, the environment, the secret in it, what the message must name.
type Case = (
    String,
    Vec<(&'static str, &'static str)>,
    &'static str,
    &'static str,
);

#[test]
fn a_refused_configuration_names_what_is_wrong_prints_no_secret_and_creates_nothing() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    // (what an operator wrote, the environment, the secret, what the message must name)
    let cases: &[Case] = &[
        // A password written in the file where opencm takes none: refused as an unknown key,
        // the value never shown.
        (
            format!("{DIRECTORY}bind_password = 'S3cret-bind-pw'\n"),
            vec![],
            "S3cret-bind-pw",
            "bind_password",
        ),
        (
            format!("{OIDC}client_secret = \"S3cret-client\"\n"),
            vec![],
            "S3cret-client",
            "client_secret",
        ),
        // A secret where a value of another type belongs.
        (
            "client_certificate_weak_mapping = 'S3cret-in-a-bool'\n".into(),
            vec![],
            "S3cret-in-a-bool",
            "line 1",
        ),
        (
            "database_url = 'postgres://opencm:S3cret-db@127.0.0.1:1/x'\nmax_body_bytes = 'S3cret-size'\n".into(),
            vec![],
            "S3cret",
            "line 2",
        ),
        // A string left open: the parser's error must not quote the line.
        (
            "database_url = \"postgres://opencm:S3cret-open@db/x\n".into(),
            vec![],
            "S3cret-open",
            "line 1",
        ),
        // Valid files whose other settings are refused: the database URL's password stays out.
        (
            "database_url = 'postgres://opencm:S3cret-url@127.0.0.1:1/x'\n[oidc]\nissuer = 'idp'\naudience = ['opencm']\n".to_string(),
            vec![],
            "S3cret-url",
            "[oidc] issuer",
        ),
        // The directory's bind password from the environment, with an unreadable CA file.
        (
            format!("{DIRECTORY}ca_file = '/nonexistent/ca.pem'\n"),
            vec![("OPENCM_DIRECTORY_BIND_PASSWORD", "S3cret-env-bind")],
            "S3cret-env-bind",
            "ca.pem",
        ),
        // Environment variables are typed like the file's keys, refused by name.
        (
            String::new(),
            vec![("OPENCM_MAX_BODY_BYTES", "S3cret-env-size")],
            "S3cret-env-size",
            "OPENCM_MAX_BODY_BYTES",
        ),
        (
            OIDC.replace("https://idp.example", "idp"),
            vec![("OPENCM_DATABASE_URL", "postgres://opencm:S3cret-env-db@127.0.0.1:1/x")],
            "S3cret-env-db",
            "[oidc] issuer",
        ),
        // A quote inside a refused value does not end its hiding.
        (
            "max_connections = 'abc\"S3cret-quoted'\n".into(),
            vec![],
            "S3cret-quoted",
            "line 1",
        ),
        (
            String::new(),
            vec![("OPENCM_MAX_CONNECTIONS", "abc\"S3cret-env-quoted")],
            "S3cret-env-quoted",
            "OPENCM_MAX_CONNECTIONS",
        ),
        // A password written unescaped in the database URL stays out, `?` and all.
        (
            OIDC.replace("https://idp.example", "idp"),
            vec![("OPENCM_DATABASE_URL", "postgres://opencm:S3c?ret-db@127.0.0.1:1/x")],
            "S3c?ret",
            "[oidc] issuer",
        ),
        // A KEK that is not one.
        (
            String::new(),
            vec![("OPENCM_CA_KEK", "S3cret-kek-not-base64")],
            "S3cret-kek",
            "OPENCM_CA_KEK",
        ),
        // Sign-in settings refused before anything exists.
        (
            "[oidc]\nissuer = 'https://idp.example'\naudience = []\n".into(),
            vec![],
            "no secret here",
            "audience",
        ),
        (
            "client_certificate_anchors = ['/nonexistent/adcs.pem']\ntls_names = ['localhost']\nclient_certificate_crls = ['/nonexistent/adcs.crl']\n".into(),
            vec![],
            "no secret here",
            "adcs.pem",
        ),
        // A password in the URL's query string stays out too.
        (
            "database_url = 'postgres://127.0.0.1:1/x?user=opencm&password=S3cret-query'\n[oidc]\nissuer = 'idp'\naudience = ['a']\n".into(),
            vec![],
            "S3cret-query",
            "[oidc] issuer",
        ),
        // An address it cannot listen on, and a KEK file in no directory: refused before the
        // database is made.
        (
            "listen = 'not-an-address'\n".into(),
            vec![],
            "no secret here",
            "cannot listen",
        ),
        (
            format!("listen = '{}'\n", taken.local_addr().unwrap()),
            vec![],
            "no secret here",
            "cannot listen",
        ),
        (
            "ca_kek_file = 'no/such/dir/opencm-ca.kek'\n".into(),
            vec![],
            "no secret here",
            "no/such/dir",
        ),
    ];
    for (toml, env, secret, names) in cases {
        let (failed, printed, files) = serve_with(toml, env);
        assert!(failed, "{toml}: {printed}");
        assert!(
            !printed.contains(secret),
            "{toml}: the secret is out:\n{printed}"
        );
        assert!(
            printed.contains(names),
            "{toml}: does not name {names}:\n{printed}"
        );
        assert_eq!(files, vec!["opencm.toml".to_string()], "{toml}: {printed}");
    }
    // The same directory listing sees what a command that succeeds creates.
    let (failed, printed, files) = run_with(&["migrate", "--config", "opencm.toml"], "", &[]);
    assert!(!failed, "{printed}");
    assert!(files.contains(&"opencm.db".to_string()), "{files:?}");
}

/// Variables that are not UTF-8: somebody else's are not looked at; one of opencm's is refused by
/// its name, not printed.
#[test]
fn environment_variables_that_are_not_utf8_are_named_not_printed() {
    use std::os::unix::ffi::OsStrExt;
    let bytes = |b: &[u8]| std::ffi::OsStr::from_bytes(b).to_os_string();
    let run = |name: &[u8], value: &[u8]| {
        let dir = scratch_dir("config-env");
        let out = Command::new(env!("CARGO_BIN_EXE_opencm"))
            .args(["template", "list"])
            .current_dir(&dir)
            .env_clear()
            .env(bytes(name), bytes(value))
            .output()
            .unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        (
            out.status.code(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    };
    let (code, printed) = run(b"SOME_PASSWORD", b"p\xe4ssw0rd-S3cret");
    assert_eq!(code, Some(0), "{printed}");
    assert!(!printed.contains("S3cret"), "{printed}");
    let (code, printed) = run(b"OPENCM_LISTEN", b"127.0.0.1:\xff-S3cret");
    assert_eq!(code, Some(1), "{printed}");
    assert!(
        printed.contains("OPENCM_LISTEN is not valid UTF-8") && !printed.contains("S3cret"),
        "{printed}"
    );
}
