//! A real MIT Kerberos realm for tests, made in a directory of its own (kdb5_util,
//! kadmin.local, krb5kdc on a loopback port): shared by the API's Kerberos tests and the portal's
//! browser tests (which include this file by path). Needs krb5-kdc, krb5-admin-server and
//! krb5-user.

use std::path::PathBuf;
use std::process::{Child, Command};

pub const REALM: &str = "OPENCM.TEST";

/// A KDC for OPENCM.TEST: the users it is given (each with the password `{user}-password`), the
/// service HTTP/localhost (its key in `http.keytab`) and HTTP/other.test (a service whose key
/// opencm does not have).
pub struct Kdc {
    child: Child,
    pub dir: PathBuf,
}

impl Drop for Kdc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Kdc {
    /// A new realm in `dir` (created empty), its KDC on `port`.
    pub fn start(dir: PathBuf, port: u16, users: &[&str]) -> Kdc {
        std::fs::create_dir_all(&dir).unwrap();
        let d = dir.display();
        std::fs::write(
            dir.join("krb5.conf"),
            format!(
                "[libdefaults]\n default_realm = {REALM}\n dns_lookup_kdc = false\n dns_lookup_realm = false\n dns_canonicalize_hostname = false\n rdns = false\n udp_preference_limit = 1\n\n[realms]\n {REALM} = {{\n  kdc = 127.0.0.1:{port}\n }}\n\n[domain_realm]\n localhost = {REALM}\n other.test = {REALM}\n"
            ),
        )
        .unwrap();
        std::fs::write(
            dir.join("kdc.conf"),
            format!(
                "[kdcdefaults]\n kdc_ports = {port}\n kdc_tcp_ports = {port}\n\n[realms]\n {REALM} = {{\n  database_name = {d}/principal\n  key_stash_file = {d}/stash\n  acl_file = {d}/kadm5.acl\n  max_life = 1h\n }}\n\n[logging]\n kdc = FILE:{d}/kdc.log\n"
            ),
        )
        .unwrap();
        let env = |c: &mut Command| {
            c.env("KRB5_CONFIG", dir.join("krb5.conf"))
                .env("KRB5_KDC_PROFILE", dir.join("kdc.conf"));
        };
        let admin = |query: &str| {
            let mut c = Command::new("/usr/sbin/kadmin.local");
            env(&mut c);
            let out = c.args(["-q", query]).output().unwrap();
            assert!(out.status.success(), "kadmin.local {query}: {out:?}");
        };
        let mut c = Command::new("/usr/sbin/kdb5_util");
        env(&mut c);
        let out = c
            .args(["-r", REALM, "create", "-s", "-P", "kdc-master-secret"])
            .output()
            .unwrap();
        assert!(out.status.success(), "kdb5_util create: {out:?}");
        for user in users {
            admin(&format!("addprinc -pw {user}-password {user}"));
        }
        admin("addprinc -randkey HTTP/localhost");
        admin("addprinc -randkey HTTP/other.test");
        admin(&format!("ktadd -k {d}/http.keytab HTTP/localhost"));
        let mut c = Command::new("/usr/sbin/krb5kdc");
        env(&mut c);
        let child = c
            .arg("-n")
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("krb5kdc runs");
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Kdc { child, dir }
    }

    /// `kinit user`: a credential cache holding the user's ticket-granting ticket.
    pub fn kinit(&self, user: &str) -> PathBuf {
        let cache = self.dir.join(format!("{user}.ccache"));
        let out = run_env(
            Command::new("kinit")
                .arg(format!("{user}@{REALM}"))
                .env("KRB5_CONFIG", self.dir.join("krb5.conf"))
                .env("KRB5CCNAME", format!("FILE:{}", cache.display())),
            Some(&format!("{user}-password\n")),
        );
        assert!(out.0, "kinit {user}: {}", out.1);
        cache
    }
}

pub fn run_env(c: &mut Command, stdin: Option<&str>) -> (bool, String) {
    use std::io::Write;
    let mut child = c
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}
