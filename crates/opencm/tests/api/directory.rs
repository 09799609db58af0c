//! Users and groups from a real LDAP server: OpenLDAP's slapd, started for the test on a loopback
//! port with a small schema of Active Directory's attributes (Microsoft's OIDs) and the memberof
//! overlay, seeded with binary objectSid and objectGUID values as AD stores them. Checked through
//! the binary (`opencm directory test`, a request on behalf of a directory user) and the adapter.

use crate::blackbox::start_with;
use crate::helpers::{json_of, openssl_ok, p256_csr, scratch_dir, self_signed_p256};
use opencm_store::testing::fresh_sqlite_url;
use reqwest::StatusCode;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Command;

pub(crate) const BASE: &str = "dc=example,dc=test";
const ADMIN_DN: &str = "cn=admin,dc=example,dc=test";
const ADMIN_PW: &str = "directory-admin-secret";
pub(crate) const JDOE_GUID: &str = "5f1c9e2a-7b3d-4c8e-9a10-2b3c4d5e6f70";
const KROE_GUID: &str = "6a2d0f3b-8c4e-4d9f-8b21-3c4d5e6f7081";
pub(crate) const DOMAIN: &str = "S-1-5-21-1004336348-1177238915-682003330";
/// kroe's strong explicit certificate mapping in the directory.
const KROE_MAPPING: &str = "X509:<I>DC=test,DC=example,CN=Example Issuing CA<SR>2b0a00000061";
pub(crate) const SAM_GUID: &str = "8c4f2b5d-0e6a-4fb1-8d43-5e6f708192a3";
const SCOPED: &str = "9d1e2f3a-4b5c-4d6e-8f70-81a2b3c4d5e6";

/// Microsoft's attributes, with Microsoft's OIDs; an auxiliary class (opencm's test arc) carries
/// them on inetOrgPerson users and groupOfNames groups. memberOf comes from the overlay.
const AD_SCHEMA: &str = r#"dn: cn=ad,cn=schema,cn=config
objectClass: olcSchemaConfig
cn: ad
olcAttributeTypes: ( 1.2.840.113556.1.4.146 NAME 'objectSid' EQUALITY octetStringMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.40 SINGLE-VALUE )
olcAttributeTypes: ( 1.2.840.113556.1.4.2 NAME 'objectGUID' EQUALITY octetStringMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.40 SINGLE-VALUE )
olcAttributeTypes: ( 1.2.840.113556.1.4.221 NAME 'sAMAccountName' EQUALITY caseIgnoreMatch SUBSTR caseIgnoreSubstringsMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
olcAttributeTypes: ( 1.2.840.113556.1.4.656 NAME 'userPrincipalName' EQUALITY caseIgnoreMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
olcAttributeTypes: ( 1.2.840.113556.1.4.8 NAME 'userAccountControl' EQUALITY integerMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE )
olcAttributeTypes: ( 1.2.840.113556.1.4.867 NAME 'altSecurityIdentities' EQUALITY caseIgnoreMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 )
olcObjectClasses: ( 1.3.6.1.4.1.32473.1.1 NAME 'opencmTestAdObject' AUXILIARY MAY ( objectSid $ objectGUID $ sAMAccountName $ userPrincipalName $ userAccountControl $ altSecurityIdentities ) )
"#;

fn sid_bytes(sid: &str) -> Vec<u8> {
    let parts: Vec<u64> = sid
        .trim_start_matches("S-1-")
        .split('-')
        .map(|p| p.parse().unwrap())
        .collect();
    let mut out = vec![1u8, (parts.len() - 1) as u8];
    out.extend_from_slice(&parts[0].to_be_bytes()[2..]);
    for p in &parts[1..] {
        out.extend_from_slice(&(*p as u32).to_le_bytes());
    }
    out
}

fn guid_bytes(g: &str) -> Vec<u8> {
    uuid::Uuid::parse_str(g).unwrap().to_bytes_le().to_vec()
}

fn b64(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(b)
}

pub(crate) struct Slapd {
    child: std::process::Child,
    pub url: String,
    /// The same directory over LDAPS, with a certificate from `dir/ca.pem`.
    pub ldaps: String,
    pub dir: PathBuf,
}

impl Drop for Slapd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub(crate) fn run(cmd: &str, args: &[&str], stdin: Option<&str>) -> String {
    use std::io::Write;
    let mut c = Command::new(cmd)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{cmd}: {e}"));
    if let Some(input) = stdin {
        c.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    }
    let out = c.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{cmd} {args:?}: {text}");
    text
}

impl Slapd {
    /// Stops the server (its files stay until it is dropped).
    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// A fresh slapd with the schema, the overlay and the example users and groups.
    pub(crate) fn start() -> Slapd {
        let dir = scratch_dir("slapd");
        std::fs::create_dir_all(dir.join("slapd.d")).unwrap();
        std::fs::create_dir_all(dir.join("db")).unwrap();
        std::fs::write(dir.join("ad.ldif"), AD_SCHEMA).unwrap();
        // A CA of the test's own and a certificate for 127.0.0.1 signed by it: LDAPS, checked
        // by opencm against that CA file.
        let p = |n: &str| dir.join(n).to_string_lossy().into_owned();
        self_signed_p256(
            "/CN=Directory Test CA",
            "2",
            &p("ca.key"),
            &p("ca.pem"),
            &[],
        );
        p256_csr("/CN=127.0.0.1", &p("ldap.key"), &p("ldap.csr"));
        std::fs::write(
            p("ext.cnf"),
            "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        openssl_ok(&[
            "x509",
            "-req",
            "-in",
            &p("ldap.csr"),
            "-CA",
            &p("ca.pem"),
            "-CAkey",
            &p("ca.key"),
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            &p("ext.cnf"),
            "-out",
            &p("ldap.pem"),
        ]);
        let config = format!(
            "dn: cn=config\nobjectClass: olcGlobal\ncn: config\nolcPidFile: {d}/slapd.pid\nolcTLSCertificateFile: {d}/ldap.pem\nolcTLSCertificateKeyFile: {d}/ldap.key\n\n\
dn: cn=module{{0}},cn=config\nobjectClass: olcModuleList\ncn: module{{0}}\nolcModulePath: /usr/lib/ldap\nolcModuleLoad: back_mdb\nolcModuleLoad: memberof\n\n\
dn: cn=schema,cn=config\nobjectClass: olcSchemaConfig\ncn: schema\n\n\
include: file:///etc/ldap/schema/core.ldif\n\n\
include: file:///etc/ldap/schema/cosine.ldif\n\n\
include: file:///etc/ldap/schema/inetorgperson.ldif\n\n\
include: file://{d}/ad.ldif\n\n\
dn: olcDatabase={{1}}mdb,cn=config\nobjectClass: olcDatabaseConfig\nobjectClass: olcMdbConfig\nolcDatabase: {{1}}mdb\nolcSuffix: {BASE}\nolcRootDN: {ADMIN_DN}\nolcRootPW: {ADMIN_PW}\nolcDbDirectory: {d}/db\nolcDbMaxSize: 104857600\n\n\
dn: olcOverlay={{0}}memberof,olcDatabase={{1}}mdb,cn=config\nobjectClass: olcOverlayConfig\nobjectClass: olcMemberOf\nolcOverlay: {{0}}memberof\nolcMemberOfRefInt: TRUE\n",
            d = dir.display()
        );
        std::fs::write(dir.join("config.ldif"), &config).unwrap();
        let conf_dir = dir.join("slapd.d");
        run(
            "/usr/sbin/slapadd",
            &[
                "-n",
                "0",
                "-F",
                &conf_dir.to_string_lossy(),
                "-l",
                &dir.join("config.ldif").to_string_lossy(),
            ],
            None,
        );
        let port = free_port();
        let url = format!("ldap://127.0.0.1:{port}");
        let tls_port = free_port();
        let ldaps = format!("ldaps://127.0.0.1:{tls_port}");
        let child = Command::new("/usr/sbin/slapd")
            .args([
                "-d",
                "0",
                "-F",
                &conf_dir.to_string_lossy(),
                "-h",
                &format!("{url}/ {ldaps}/"),
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start slapd");
        let slapd = Slapd {
            child,
            url,
            ldaps,
            dir,
        };
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        slapd.add(&seed());
        slapd
    }

    fn add(&self, ldif: &str) {
        run(
            "ldapadd",
            &["-x", "-H", &self.url, "-D", ADMIN_DN, "-w", ADMIN_PW],
            Some(ldif),
        );
    }

    /// The LDAP adapter over this directory, in process (groups from memberOf), keeping answers
    /// for `cache_ttl`.
    fn directory(&self, cache_ttl: std::time::Duration) -> opencm_directory::LdapDirectory {
        let mut settings = opencm_directory::LdapSettings::active_directory(
            &self.url,
            ADMIN_DN,
            ADMIN_PW,
            &format!("ou=people,{BASE}"),
        );
        settings.user_filter =
            "(&(objectClass=inetOrgPerson)(|(sAMAccountName={login})(userPrincipalName={login})))"
                .into();
        settings.groups = opencm_directory::GroupSource::MemberOf;
        settings.cache_ttl = cache_ttl;
        opencm_directory::LdapDirectory::new(settings).unwrap()
    }

    /// A configuration file naming this directory (groups from memberOf, no cache unless told).
    pub(crate) fn config_file(&self, cache_secs: u64) -> PathBuf {
        self.config_at(&self.url, None, "opencm.toml", cache_secs)
    }

    /// The same over `url`, trusting `ca_file` for TLS.
    fn config_at(&self, url: &str, ca_file: Option<&Path>, name: &str, cache_secs: u64) -> PathBuf {
        let pw = self.dir.join("bind.pw");
        std::fs::write(&pw, format!("{ADMIN_PW}\n")).unwrap();
        let path = self.dir.join(name);
        let ca = ca_file
            .map(|c| format!("ca_file = \"{}\"\n", c.display()))
            .unwrap_or_default();
        std::fs::write(
            &path,
            format!(
                "[directory]\n{ca}url = \"{}\"\nbind_dn = \"{ADMIN_DN}\"\nbind_password_file = \"{}\"\nuser_base = \"ou=people,{BASE}\"\nuser_filter = \"(&(objectClass=inetOrgPerson)(|(sAMAccountName={{login}})(userPrincipalName={{login}})))\"\ngroups = \"member_of\"\ncache_secs = {cache_secs}\ntimeout_secs = 2\n",
                url,
                pw.display()
            ),
        )
        .unwrap();
        path
    }
}

/// jdoe and sam in "PKI Helpdesk", which is in "Site A" (nested); kroe in no group; bob
/// disabled.
fn seed() -> String {
    let user = |uid: &str, name: &str, rid: u32, guid: &str, uac: u32| {
        format!(
            "dn: uid={uid},ou=people,{BASE}\nobjectClass: inetOrgPerson\nobjectClass: opencmTestAdObject\nuid: {uid}\ncn: {name}\nsn: {name}\ndisplayName: {name}\nmail: {uid}@example.test\nsAMAccountName: {uid}\nuserPrincipalName: {uid}@example.test\nuserAccountControl: {uac}\nobjectSid:: {}\nobjectGUID:: {}\n\n",
            b64(&sid_bytes(&format!("{DOMAIN}-{rid}"))),
            b64(&guid_bytes(guid))
        )
    };
    let group = |cn: &str, rid: u32, members: &[String]| {
        let members: String = members.iter().map(|m| format!("member: {m}\n")).collect();
        format!(
            "dn: cn={cn},ou=groups,{BASE}\nobjectClass: groupOfNames\nobjectClass: opencmTestAdObject\ncn: {cn}\n{members}objectSid:: {}\n\n",
            b64(&sid_bytes(&format!("{DOMAIN}-{rid}")))
        )
    };
    [
        format!("dn: {BASE}\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example\n\n"),
        format!("dn: ou=people,{BASE}\nobjectClass: organizationalUnit\nou: people\n\n"),
        format!("dn: ou=groups,{BASE}\nobjectClass: organizationalUnit\nou: groups\n\n"),
        user("jdoe", "Jane Doe", 1201, JDOE_GUID, 512),
        // kroe's explicit certificate mappings, as Active Directory keeps them: one strong
        // (issuer and serial), one weak (subject).
        user("kroe", "Kim Roe", 1202, KROE_GUID, 512).replace(
            "\n\n",
            &format!("\naltSecurityIdentities: {KROE_MAPPING}\naltSecurityIdentities: X509:<S>CN=Kim Roe\n\n"),
        ),
        user("bob", "Bob Gone", 1203, "7b3e1a4c-9d5f-4ea0-9c32-4d5e6f708192", 514),
        user("sam", "Sam Approver", 1204, SAM_GUID, 512),
        group(
            "PKI Helpdesk",
            3101,
            &[
                format!("uid=jdoe,ou=people,{BASE}"),
                format!("uid=sam,ou=people,{BASE}"),
            ],
        ),
        group("Site A", 3102, &[format!("cn=PKI Helpdesk,ou=groups,{BASE}")]),
    ]
    .concat()
}

/// Imports software template `uuid`, "Site A Workflow": self-service Enroll with one approval by
/// a member of Site A (jdoe and sam, through the nested PKI Helpdesk).
pub(crate) fn import_site_workflow(slapd: &Slapd, config: &Path, db: &str, uuid: &str) {
    import_template(
        slapd,
        config,
        db,
        &format!(
            "[[template]]\nuuid = \"{uuid}\"\nname = \"Site A Workflow\"\nkind = \"software\"\nsecurity_descriptor = \"O:BAD:(A;;RCCR;;;AU)(A;;GA;;;BA)\"\n\n[template.policies.Enroll]\nself_service_enabled = true\napprovals_needed = 1\nauthorized_approver = \"D:(A;;CR;;;{DOMAIN}-3102)\"\n"
        ),
    );
}

/// `opencm template import` of `toml` into `db`.
fn import_template(slapd: &Slapd, config: &Path, db: &str, toml: &str) {
    let file = slapd
        .dir
        .join(format!("template-{}.toml", uuid::Uuid::new_v4()));
    std::fs::write(&file, toml).unwrap();
    let (ok, out) = opencm(config, db, &["template", "import", &file.to_string_lossy()]);
    assert!(ok, "{out}");
}

pub(crate) fn opencm(config: &Path, db: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_opencm"))
        .args(args)
        .env("OPENCM_CONFIG", config)
        .env("OPENCM_DATABASE_URL", db)
        .env("OPENCM_CA_KEK_FILE", crate::blackbox::kek_file(db))
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[tokio::test]
#[cfg_attr(
    not(opencm_slapd_tests),
    ignore = "LDAP: install slapd and ldap-utils (apt-get install slapd ldap-utils) to run"
)]
async fn directory_users_come_with_their_guid_sid_upn_and_nested_groups() {
    let mut slapd = Slapd::start();
    let config = slapd.config_file(0);
    let db = fresh_sqlite_url();

    // What opencm sees for a directory user: the GUID as its uuid, the binary SID, UPN, mail,
    // and both groups — the nested one too.
    let (ok, out) = opencm(&config, &db, &["directory", "test", "jdoe"]);
    assert!(ok, "{out}");
    for expected in [
        "jdoe (from the directory)",
        JDOE_GUID,
        "Jane Doe",
        "jdoe@example.test",
        &format!("{DOMAIN}-1201"),
        &format!("{DOMAIN}-3101"),
        &format!("{DOMAIN}-3102"),
    ] {
        assert!(out.contains(expected), "{expected} missing: {out}");
    }
    // Over LDAPS, trusting the directory's CA file; without it the system roots do not know
    // that CA, and the directory is unreachable rather than empty.
    let tls = slapd.config_at(&slapd.ldaps, Some(&slapd.dir.join("ca.pem")), "tls.toml", 0);
    let (ok, out) = opencm(&tls, &db, &["directory", "test", "jdoe"]);
    assert!(ok && out.contains(JDOE_GUID), "{out}");
    let untrusted = slapd.config_at(&slapd.ldaps, None, "untrusted.toml", 0);
    let (ok, out) = opencm(&untrusted, &db, &["directory", "test", "jdoe"]);
    assert!(!ok && out.contains("unreachable"), "{out}");

    // Tokens, disabling and group membership are for opencm's own users: a directory user is
    // managed in the directory, and the CLI says so instead of failing on a missing row.
    for args in [
        &["token", "create", "jdoe"][..],
        &["user", "disable", "jdoe"][..],
    ] {
        let (ok, out) = opencm(&config, &db, args);
        assert!(
            !ok && out.contains("managed in the directory") && !out.contains("database"),
            "{args:?}: {out}"
        );
    }

    // By UPN as well, in any case, with its explicit certificate mappings (altSecurityIdentities);
    // a disabled account and an unknown login are nobody.
    let (ok, out) = opencm(&config, &db, &["directory", "test", "KROE@example.test"]);
    assert!(
        ok && out.contains(KROE_GUID) && out.contains("groups        -"),
        "{out}"
    );
    assert!(
        out.contains(&format!("certificate   {KROE_MAPPING} (strong)"))
            && out.contains("certificate   X509:<S>CN=Kim Roe (weak, ignored)"),
        "{out}"
    );
    for nobody in ["bob", "nobody", "*"] {
        let (ok, out) = opencm(&config, &db, &["directory", "test", nobody]);
        assert!(!ok && out.contains("no user"), "{nobody}: {out}");
    }

    // The server: the helpdesk starts a request for a directory user, named by its GUID; the
    // request's target is that user.
    let cfg = config.to_string_lossy().into_owned();
    let s = start_with(&db, true, &[("OPENCM_CONFIG", &cfg)])
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let piv = "7c3e51a4-1f0d-4e8b-9a52-6b0f2d9e4c11";
    let r = http
        .post(s.api("/requests"))
        .bearer_auth(&s.tokens["carol"])
        .json(&json!({"profiletemplateuuid": piv, "type": "Enroll", "target": JDOE_GUID}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let id: String = r.json().await.unwrap();
    let r: serde_json::Value = json_of(
        http.get(s.api(&format!("/requests/{}", id.rsplit('/').next().unwrap())))
            .bearer_auth(&s.tokens["carol"]),
    )
    .await;
    assert_eq!(r["TargetUserUuid"], JDOE_GUID, "{r}");

    // A helpdesk scoped to one site (the policy names Site A): it may act for jdoe, a member
    // through PKI Helpdesk, and not for kroe; both exist in the directory.
    import_template(
        &slapd,
        &config,
        &db,
        &format!(
            "[[template]]\nuuid = \"{SCOPED}\"\nname = \"Site A Users\"\nkind = \"software\"\nsecurity_descriptor = \"O:BAD:(A;;RCCR;;;AU)(A;;GA;;;BA)\"\n\n[[template.certificates]]\ncommon_name = \"siteUser\"\nkey_usages = [\"digital_signature\"]\nextended_key_usages = [\"client_auth\"]\n\n[template.policies.Enroll]\nself_service_enabled = true\nauthorized_initiator = \"D:(A;;CR;;;S-1-5-21-1000-1000-1000-2002)\"\ninitiator_target_groups = [\"{DOMAIN}-3102\"]\n"
        ),
    );
    let mut jdoe_request = String::new();
    for (target, expected) in [
        (JDOE_GUID, StatusCode::CREATED),
        (KROE_GUID, StatusCode::FORBIDDEN),
    ] {
        let r = http
            .post(s.api("/requests"))
            .bearer_auth(&s.tokens["carol"])
            .json(&json!({"profiletemplateuuid": SCOPED, "type": "Enroll", "target": target}))
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            expected,
            "{target}: {}",
            r.text().await.unwrap()
        );
        if expected == StatusCode::CREATED {
            let location: String = r.json().await.unwrap();
            jdoe_request = location.rsplit('/').next().unwrap().to_string();
        }
    }
    // jdoe's certificate (executed by an administrator: jdoe has no token here) carries her
    // directory SID for strong mapping (KB5014754), as AD CS would write it.
    let w = crate::issuance::Work::new();
    let r: serde_json::Value = json_of(http
        .post(s.api(&format!("/requests/{jdoe_request}/certificatedata")))
        .bearer_auth(&s.tokens["admin"])
        .json(&json!({"certificaterequests": [crate::issuance::csr(&w, "jdoe", crate::issuance::P256)]}))).await;
    let leaf = crate::issuance::leaf_of(&w, r[0]["Pkcs7"].as_str().unwrap());
    let presented = opencm_ca::presented_certificate(
        &std::fs::read(&leaf)
            .map(|pem| opencm_ca::pem_decode(&String::from_utf8(pem).unwrap()).remove(0))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        presented
            .sids
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>(),
        vec![format!("{DOMAIN}-1201")],
        "{r}"
    );

    // The directory gone: a lookup is 503, never "no such user".
    slapd.stop();
    let r = http
        .post(s.api("/requests"))
        .bearer_auth(&s.tokens["carol"])
        .json(&json!({"profiletemplateuuid": piv, "type": "Enroll", "target": KROE_GUID}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(!body.to_string().contains(ADMIN_PW), "{body}");
    let (ok, out) = opencm(&config, &db, &["directory", "test", "jdoe"]);
    assert!(!ok && out.contains("unreachable"), "{out}");
}

/// A software template whose requests one member of Site A (nested: through PKI Helpdesk) must
/// approve.
const SITE_WORKFLOW: &str = "9d1e2f3a-4b5c-4d6e-8f70-81a2b3c4d5e7";

#[tokio::test]
#[cfg_attr(
    not(all(opencm_slapd_tests, opencm_oidc_tests)),
    ignore = "LDAP and OIDC: install slapd and ldap-utils, and `npm ci --prefix scripts/oidc`, to run"
)]
async fn directory_users_sign_in_with_oidc_and_their_nested_groups_approve() {
    let slapd = Slapd::start();
    let provider = crate::oidc::Provider::start();
    let db = fresh_sqlite_url();
    // The directory and the provider together: tokens name users by UPN, the directory says who
    // they are and what groups they are in.
    let config = slapd.config_file(0);
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!(
        "\n[oidc]\nissuer = \"{}\"\naudience = [\"api://opencm\"]\nalgorithms = [\"ES256\"]\n",
        provider.base
    ));
    std::fs::write(&config, text).unwrap();
    import_site_workflow(&slapd, &config, &db, SITE_WORKFLOW);
    let cfg = config.to_string_lossy().into_owned();
    let s = start_with(&db, true, &[("OPENCM_CONFIG", &cfg)])
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let token = |upn: &'static str| {
        let p = &provider;
        async move { p.token(upn, "api://opencm", 600).await }
    };
    let (jdoe, sam, kroe) = (
        token("jdoe@example.test").await,
        token("sam@example.test").await,
        token("kroe@example.test").await,
    );

    // jdoe signs in with the provider's token; opencm knows her by her directory GUID.
    let r = http
        .post(s.api("/requests"))
        .bearer_auth(&jdoe)
        .json(&json!({"profiletemplateuuid": SITE_WORKFLOW, "type": "Enroll"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let id: String = r.json().await.unwrap();
    let id = id.rsplit('/').next().unwrap().to_string();
    let get = |token: &str, path: String| {
        let (http, url, token) = (http.clone(), s.api(&path), token.to_string());
        async move {
            let r = http.get(url).bearer_auth(token).send().await.unwrap();
            let st = r.status();
            (st, r.json::<serde_json::Value>().await.unwrap_or_default())
        }
    };
    let (st, r) = get(&jdoe, format!("/requests/{id}")).await;
    assert_eq!(
        (st, r["Status"].as_i64()),
        (StatusCode::OK, Some(16)),
        "{r}"
    );
    assert_eq!(r["OriginatorUserUuid"], JDOE_GUID);

    // kroe, in no group, neither sees it nor may approve it; sam, a member of Site A through
    // PKI Helpdesk, approves it.
    let (st, _) = get(&kroe, format!("/requests/{id}")).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (_, list) = get(&kroe, "/requests".to_string()).await;
    assert!(!list.to_string().contains(&id), "{list}");
    let approve = |token: String| {
        let (http, url) = (http.clone(), s.api(&format!("/requests/{id}/approvals")));
        async move {
            http.post(url)
                .bearer_auth(token)
                .json(&json!({"decision": "Approve"}))
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(approve(kroe.clone()).await, StatusCode::NOT_FOUND);
    assert_eq!(approve(sam.clone()).await, StatusCode::OK);
    let (_, r) = get(&jdoe, format!("/requests/{id}")).await;
    assert_eq!(r["Status"], 3, "approved: {r}");
    let (_, list) = get(&jdoe, "/requests".to_string()).await;
    assert!(list.to_string().contains(&id), "{list}");

    // A disabled account is nobody, token or not.
    let bob = token("bob@example.test").await;
    let (st, _) = get(&bob, "/requests".to_string()).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
#[cfg_attr(
    not(opencm_slapd_tests),
    ignore = "LDAP: install slapd and ldap-utils (apt-get install slapd ldap-utils) to run"
)]
async fn a_user_removed_from_a_group_or_disabled_loses_it_within_the_cache_lifetime() {
    use opencm_app::ports::Directory;
    let slapd = Slapd::start();
    let d = slapd.directory(std::time::Duration::from_millis(800));
    let helpdesk = opencm_domain::Sid::parse(&format!("{DOMAIN}-3101")).unwrap();
    let site = opencm_domain::Sid::parse(&format!("{DOMAIN}-3102")).unwrap();
    let groups = || async { d.user_by_login("jdoe").await.unwrap().map(|p| p.groups) };
    assert_eq!(groups().await, Some(vec![helpdesk.clone(), site.clone()]));

    // Out of PKI Helpdesk (and so of Site A): still cached for now, gone after the lifetime.
    run(
        "ldapmodify",
        &["-x", "-H", &slapd.url, "-D", ADMIN_DN, "-w", ADMIN_PW],
        Some(&format!(
            "dn: cn=PKI Helpdesk,ou=groups,{BASE}\nchangetype: modify\ndelete: member\nmember: uid=jdoe,ou=people,{BASE}\n"
        )),
    );
    assert_eq!(
        groups().await,
        Some(vec![helpdesk, site]),
        "within the lifetime"
    );
    tokio::time::sleep(std::time::Duration::from_millis(900)).await;
    assert_eq!(groups().await, Some(vec![]), "after it");

    // Disabled: nobody, once the lifetime has passed.
    run(
        "ldapmodify",
        &["-x", "-H", &slapd.url, "-D", ADMIN_DN, "-w", ADMIN_PW],
        Some(&format!(
            "dn: uid=jdoe,ou=people,{BASE}\nchangetype: modify\nreplace: userAccountControl\nuserAccountControl: 514\n"
        )),
    );
    tokio::time::sleep(std::time::Duration::from_millis(900)).await;
    assert_eq!(d.user_by_login("jdoe").await.unwrap(), None);
}

/// Who notifications reach in the directory: the members of an approvers group, nested groups
/// followed and disabled accounts left out; a user named by SID; a user's manager (`manager`);
/// the language of their e-mails (`preferredLanguage`).
#[tokio::test]
#[cfg_attr(
    not(opencm_slapd_tests),
    ignore = "LDAP: install slapd and ldap-utils (apt-get install slapd ldap-utils) to run"
)]
async fn notifications_find_group_members_managers_and_languages_in_the_directory() {
    use opencm_app::ports::Directory;
    let slapd = Slapd::start();
    let d = slapd.directory(std::time::Duration::ZERO);
    let sid = |rid: u32| opencm_domain::Sid::parse(&format!("{DOMAIN}-{rid}")).unwrap();
    // bob (disabled) joins PKI Helpdesk: he is not told.
    run(
        "ldapmodify",
        &["-x", "-H", &slapd.url, "-D", ADMIN_DN, "-w", ADMIN_PW],
        Some(&format!(
            "dn: cn=PKI Helpdesk,ou=groups,{BASE}\nchangetype: modify\nadd: member\nmember: uid=bob,ou=people,{BASE}\n\n\
             dn: uid=jdoe,ou=people,{BASE}\nchangetype: modify\nadd: manager\nmanager: uid=sam,ou=people,{BASE}\n\n\
             dn: uid=sam,ou=people,{BASE}\nchangetype: modify\nadd: preferredLanguage\npreferredLanguage: es-ES\n"
        )),
    );
    let logins = |ps: Vec<opencm_domain::Principal>| {
        let mut l: Vec<String> = ps.into_iter().map(|p| p.login).collect();
        l.sort();
        l
    };
    // Site A holds PKI Helpdesk, which holds jdoe and sam.
    assert_eq!(
        logins(d.members_of(&sid(3102)).await.unwrap()),
        ["jdoe", "sam"]
    );
    assert_eq!(
        logins(d.members_of(&sid(3101)).await.unwrap()),
        ["jdoe", "sam"]
    );
    // A user's own SID names the user; an unknown SID nobody.
    assert_eq!(logins(d.members_of(&sid(1202)).await.unwrap()), ["kroe"]);
    assert!(d.members_of(&sid(9999)).await.unwrap().is_empty());
    let jdoe = d.user_by_login("jdoe").await.unwrap().unwrap();
    assert_eq!(jdoe.email.as_deref(), Some("jdoe@example.test"));
    assert_eq!(jdoe.language, None);
    let manager = d.manager_of(&jdoe).await.unwrap().unwrap();
    assert_eq!(manager.login, "sam");
    assert_eq!(manager.language.as_deref(), Some("es-ES"));
    let sam = d.user_by_login("sam").await.unwrap().unwrap();
    assert_eq!(d.manager_of(&sam).await.unwrap(), None);
}
