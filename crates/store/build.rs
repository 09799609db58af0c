//! Turns `OPENCM_TEST_POSTGRES_URL` into the `opencm_postgres_tests` cfg, so the PostgreSQL half
//! of the test suite is compiled as ignored (and shown as such in the summary) when no server is
//! configured, instead of passing without running. Setting or clearing the variable rebuilds.
fn main() {
    println!("cargo::rustc-check-cfg=cfg(opencm_postgres_tests)");
    println!("cargo::rerun-if-env-changed=OPENCM_TEST_POSTGRES_URL");
    if std::env::var("OPENCM_TEST_POSTGRES_URL").is_ok_and(|v| !v.is_empty()) {
        println!("cargo::rustc-cfg=opencm_postgres_tests");
    }
}
