//! Turns an installed slapd into the `opencm_slapd_tests` cfg, an installed KDC into
//! `opencm_kerberos_tests`, Python's asn1crypto into `opencm_asn1crypto_tests`, and
//! `OPENCM_TEST_POSTGRES_URL`
//! into the `opencm_postgres_tests` cfg, so the PostgreSQL half
//! of the test suite is compiled as ignored (and shown as such in the summary) when no server is
//! configured, instead of passing without running. Setting or clearing the variable rebuilds.
fn main() {
    // The directory tests run an OpenLDAP server: compiled in where slapd is installed (CI
    // installs it), shown as ignored elsewhere.
    println!("cargo::rustc-check-cfg=cfg(opencm_slapd_tests)");
    println!("cargo::rerun-if-changed=/usr/sbin");
    if std::path::Path::new("/usr/sbin/slapd").exists() {
        println!("cargo::rustc-cfg=opencm_slapd_tests");
    }
    // The OIDC tests run a real OpenID provider (panva's oidc-provider, on Node): compiled in
    // once `npm ci --prefix scripts/oidc` installed it (CI does), shown as ignored elsewhere.
    println!("cargo::rustc-check-cfg=cfg(opencm_oidc_tests)");
    println!("cargo::rerun-if-changed=../../scripts/oidc/node_modules");
    if std::path::Path::new("../../scripts/oidc/node_modules/oidc-provider").exists() {
        println!("cargo::rustc-cfg=opencm_oidc_tests");
    }
    // The Kerberos test makes its own MIT KDC realm: compiled in where krb5-kdc is installed
    // (CI installs it) and the server is built with `--features kerberos`.
    println!("cargo::rustc-check-cfg=cfg(opencm_kerberos_tests)");
    if std::path::Path::new("/usr/sbin/krb5kdc").exists() {
        println!("cargo::rustc-cfg=opencm_kerberos_tests");
    }
    // The strong-mapping test reads the SID extension with a second ASN.1 parser, Python's
    // asn1crypto: compiled in where `python3 -c 'import asn1crypto'` works (CI installs it with
    // pip), shown as ignored elsewhere.
    println!("cargo::rustc-check-cfg=cfg(opencm_asn1crypto_tests)");
    let asn1crypto = std::process::Command::new("python3")
        .args(["-c", "import asn1crypto"])
        .output()
        .is_ok_and(|o| o.status.success());
    if asn1crypto {
        println!("cargo::rustc-cfg=opencm_asn1crypto_tests");
    }
    // The notification tests send to Debian's aiosmtpd (python3-aiosmtpd, for /usr/bin/python3;
    // CI installs it): compiled in where it imports, shown as ignored elsewhere.
    println!("cargo::rustc-check-cfg=cfg(opencm_smtp_tests)");
    let aiosmtpd = std::process::Command::new("/usr/bin/python3")
        .args(["-c", "import aiosmtpd"])
        .output()
        .is_ok_and(|o| o.status.success());
    if aiosmtpd {
        println!("cargo::rustc-cfg=opencm_smtp_tests");
    }
    // The OCSP responder is checked by GnuTLS's ocsptool (gnutls-bin) besides openssl, and the
    // metrics by Prometheus' promtool (prometheus): compiled in where they are installed (CI
    // installs both), shown as ignored elsewhere.
    println!("cargo::rustc-check-cfg=cfg(opencm_ocsptool_tests)");
    println!("cargo::rerun-if-changed=/usr/bin");
    if std::path::Path::new("/usr/bin/ocsptool").exists() {
        println!("cargo::rustc-cfg=opencm_ocsptool_tests");
    }
    println!("cargo::rustc-check-cfg=cfg(opencm_promtool_tests)");
    if std::path::Path::new("/usr/bin/promtool").exists() {
        println!("cargo::rustc-cfg=opencm_promtool_tests");
    }
    // The HSM test makes a SoftHSM2 token (softhsm2, with OpenSC's pkcs11-tool): compiled in
    // where both are installed (CI installs them), shown as ignored elsewhere.
    println!("cargo::rustc-check-cfg=cfg(opencm_softhsm_tests)");
    if std::path::Path::new("/usr/lib/softhsm/libsofthsm2.so").exists()
        && std::path::Path::new("/usr/bin/pkcs11-tool").exists()
    {
        println!("cargo::rustc-cfg=opencm_softhsm_tests");
    }
    println!("cargo::rustc-check-cfg=cfg(opencm_postgres_tests)");
    println!("cargo::rerun-if-env-changed=OPENCM_TEST_POSTGRES_URL");
    if std::env::var("OPENCM_TEST_POSTGRES_URL").is_ok_and(|v| !v.is_empty()) {
        println!("cargo::rustc-cfg=opencm_postgres_tests");
    }
}
