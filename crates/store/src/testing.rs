#![allow(clippy::expect_used)] // test support: a failed setup should stop the test loudly
//! Throwaway databases for tests: fresh SQLite files, fresh PostgreSQL databases on the server of
//! `OPENCM_TEST_POSTGRES_URL`. Whether PostgreSQL tests run is decided when they are built (each
//! test crate's `build.rs`): without the URL they are reported as ignored, never as passed.

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

/// The PostgreSQL server of `OPENCM_TEST_POSTGRES_URL`. PostgreSQL tests are ignored (and say
/// so in the summary) when it was not set at build time, so reaching here without it is a setup
/// error, reported as such.
pub fn postgres_base_url() -> String {
    match std::env::var("OPENCM_TEST_POSTGRES_URL") {
        Ok(u) if !u.is_empty() => u,
        _ => panic!(
            "OPENCM_TEST_POSTGRES_URL is not set: run with OPENCM_TEST_POSTGRES_URL=postgres://127.0.0.1/test"
        ),
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
