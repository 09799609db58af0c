#![allow(clippy::unwrap_used)]
use super::*;

/// One test owns the OPENCM_* variables (tests in a binary share the environment).
#[test]
fn file_then_environment_then_flags() {
    let dir = std::env::temp_dir().join(format!("opencm-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("opencm.toml");
    std::fs::write(
        &file,
        "database_url = 'sqlite://from-file.db'\nlisten = '0.0.0.0:9000'\nlog_format = 'json'\n",
    )
    .unwrap();
    std::env::remove_var("OPENCM_DATABASE_URL");
    std::env::remove_var("OPENCM_LISTEN");
    let c = Config::load(&Overrides {
        config_file: Some(file.clone()),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(
        (c.database_url.expose(), c.listen.as_str(), c.log_format),
        ("sqlite://from-file.db", "0.0.0.0:9000", LogFormat::Json)
    );
    std::env::set_var("OPENCM_LISTEN", "127.0.0.1:9100");
    let c = Config::load(&Overrides {
        config_file: Some(file.clone()),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(
        (c.database_url.expose(), c.listen.as_str()),
        ("sqlite://from-file.db", "127.0.0.1:9100")
    );
    let c = Config::load(&Overrides {
        config_file: Some(file.clone()),
        listen: Some("127.0.0.1:1".into()),
        database_url: Some("postgres://h/db".into()),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(
        (c.database_url.expose(), c.listen.as_str()),
        ("postgres://h/db", "127.0.0.1:1")
    );
    std::env::remove_var("OPENCM_LISTEN");
    let c = Config::load(&Overrides::default()).unwrap();
    assert_eq!(
        (
            c.database_url.expose(),
            c.listen.as_str(),
            c.sqlite_synchronous
        ),
        (
            "sqlite://opencm.db",
            "127.0.0.1:8080",
            SqliteSynchronous::Full
        )
    );
    // data_dir keeps the database and the KEK together, unless they are named explicitly.
    std::fs::write(&file, "data_dir = '/srv/opencm'\n").unwrap();
    let c = Config::load(&Overrides {
        config_file: Some(file.clone()),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(c.database_url.expose(), "sqlite:///srv/opencm/opencm.db");
    assert_eq!(
        c.ca_kek_file,
        std::path::Path::new("/srv/opencm/opencm-ca.kek")
    );
    let c = Config::load(&Overrides {
        config_file: Some(file.clone()),
        database_url: Some("postgres://h/db".into()),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(c.database_url.expose(), "postgres://h/db");
    assert_eq!(
        c.ca_kek_file,
        std::path::Path::new("/srv/opencm/opencm-ca.kek")
    );
    std::fs::write(&file, "header_timeout_secs = 0\n").unwrap();
    let e = Config::load(&Overrides {
        config_file: Some(file.clone()),
        ..Default::default()
    })
    .unwrap_err();
    assert!(
        format!("{e:#}").contains("header_timeout_secs must be 1 to 86400 seconds"),
        "{e:#}"
    );
    std::fs::write(&file, "databse_url = 'typo'\n").unwrap();
    let e = Config::load(&Overrides {
        config_file: Some(file.clone()),
        ..Default::default()
    })
    .unwrap_err();
    assert!(format!("{e:#}").contains("unknown field"), "{e:#}");
    std::fs::write(&file, "sqlite_synchronous = 'off'\n").unwrap();
    assert!(Config::load(&Overrides {
        config_file: Some(file),
        ..Default::default()
    })
    .is_err());
    environment_values_take_each_keys_type();
    let _ = std::fs::remove_dir_all(&dir);
}

/// Every key is set from `OPENCM_<KEY>` in its own type, with no code of its own; a variable
/// that names no key is somebody else's; a value of the wrong type is refused by the variable's
/// name, never shown. (Called by the one test that owns the environment.)
fn environment_values_take_each_keys_type() {
    let vars = [
        ("OPENCM_MAX_BODY_BYTES", "2048"),
        ("OPENCM_CLIENT_CERTIFICATE_AUTH", "false"),
        ("OPENCM_TLS_NAMES", "pki.example.com, 10.0.0.1,"),
        ("OPENCM_CLIENT_CERTIFICATE_ANCHORS", "/etc/adcs.pem"),
        ("OPENCM_SQLITE_SYNCHRONOUS", "NORMAL"),
        ("OPENCM_CA_KEY_ALGORITHM", "RSA-3072"),
        ("OPENCM_PUBLIC_URL", "https://pki.example.com"),
        // Not keys: read elsewhere, or another program's.
        ("OPENCM_CA_KEK", "not-a-key-of-the-file"),
        ("OPENCM_SOMETHING_ELSE", "42"),
    ];
    for (k, v) in vars {
        std::env::set_var(k, v);
    }
    let c = Config::load(&Overrides::default());
    for (k, _) in vars {
        std::env::remove_var(k);
    }
    let c = c.unwrap();
    assert_eq!(c.max_body_bytes, 2048);
    assert!(!c.client_certificate_auth);
    assert_eq!(c.tls_names, ["pki.example.com", "10.0.0.1"]);
    assert_eq!(
        c.client_certificate_anchors,
        [std::path::PathBuf::from("/etc/adcs.pem")]
    );
    assert_eq!(c.sqlite_synchronous, SqliteSynchronous::Normal);
    assert_eq!(c.ca_key_algorithm, opencm_ca::CaKeyAlgorithm::Rsa(3072));
    assert_eq!(c.public_url.as_deref(), Some("https://pki.example.com"));

    for (k, v) in [
        ("OPENCM_MAX_BODY_BYTES", "S3cret-size"),
        ("OPENCM_CLIENT_CERTIFICATE_WEAK_MAPPING", "S3cret-bool"),
        ("OPENCM_LOG_FORMAT", "S3cret-format"),
        ("OPENCM_DIRECTORY", "S3cret-table"),
    ] {
        std::env::set_var(k, v);
        let e = Config::load(&Overrides::default()).map(|_| ());
        std::env::remove_var(k);
        let e = format!("{:#}", e.unwrap_err());
        assert!(e.contains(k) && !e.contains("S3cret"), "{k}: {e}");
    }
}

#[test]
fn tls_names_are_dns_names_or_addresses() {
    for good in [
        "pki.example.com",
        "localhost",
        "10.0.0.1",
        "::1",
        "*.example.com",
        "a-b.c.",
    ] {
        assert!(is_host_name(good), "{good}");
    }
    for bad in [
        "a;b",
        "bad name!",
        "[::1]",
        "",
        "*.com",
        "-a.b",
        "a..b",
        "a_b.c",
    ] {
        assert!(!is_host_name(bad), "{bad}");
    }
}

#[test]
fn passwords_are_masked_in_logs() {
    let c = Config {
        database_url: DatabaseUrl::from("postgres://opencm:s3cret@db.example/opencm"),
        ..Default::default()
    };
    assert_eq!(
        c.database_url.to_string(),
        "postgres://***@db.example/opencm"
    );
    let query = Config {
        database_url: DatabaseUrl::from("postgres://db.example/opencm?user=u&password=s3cret"),
        ..Default::default()
    };
    assert_eq!(
        query.database_url.to_string(),
        "postgres://db.example/opencm?…"
    );
    let debug = format!("{c:?}");
    assert!(
        !debug.contains("s3cret") && debug.contains("***@db.example"),
        "{debug}"
    );
}
