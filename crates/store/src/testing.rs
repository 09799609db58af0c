#![allow(clippy::expect_used)] // test support: a failed setup should stop the test loudly
//! Throwaway databases for tests. PostgreSQL tests run when `OPENCM_TEST_POSTGRES_URL` is set (CI
//! sets it); when it is not, they say so on stderr, and with `OPENCM_REQUIRE_POSTGRES=1` a missing
//! URL fails the test instead, so CI can never pass by skipping them.

use sqlx::Connection;

/// A URL for a new SQLite file in the system temp directory.
pub fn fresh_sqlite_url() -> String {
    let dir = std::env::temp_dir().join("opencm-tests");
    let _ = std::fs::create_dir_all(&dir);
    format!(
        "sqlite://{}",
        dir.join(format!("{}.db", uuid::Uuid::new_v4().simple()))
            .display()
    )
}

/// The PostgreSQL server tests may use, or `None` (after saying so) when not configured.
pub fn postgres_base_url() -> Option<String> {
    match std::env::var("OPENCM_TEST_POSTGRES_URL") {
        Ok(u) if !u.is_empty() => Some(u),
        _ => {
            if std::env::var("OPENCM_REQUIRE_POSTGRES").is_ok_and(|v| v == "1") {
                panic!("OPENCM_REQUIRE_POSTGRES=1 but OPENCM_TEST_POSTGRES_URL is not set");
            }
            eprintln!("PostgreSQL tests not run here: set OPENCM_TEST_POSTGRES_URL=postgres://127.0.0.1/test to run them");
            None
        }
    }
}

/// Creates a new, empty database on the test server and returns its URL.
pub async fn fresh_postgres_url(base: &str) -> String {
    let name = format!("opencm_t_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(base)
        .await
        .expect("connect to OPENCM_TEST_POSTGRES_URL");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .expect("create test database");
    let _ = conn.close().await;
    // Replace the database name (the path) of the base URL.
    let (head, tail) = match base.find('?') {
        Some(i) => (&base[..i], &base[i..]),
        None => (base, ""),
    };
    let scheme_end = head.find("://").map_or(0, |i| i + 3);
    let path_start = head[scheme_end..]
        .find('/')
        .map_or(head.len(), |i| scheme_end + i);
    format!("{}/{}{}", &head[..path_start], name, tail)
}
