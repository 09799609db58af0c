#![allow(clippy::expect_used)] // test support: a failed setup should stop the test loudly
//! Throwaway databases for tests: fresh SQLite files, fresh PostgreSQL databases on the server of
//! `OPENCM_TEST_POSTGRES_URL`. Whether PostgreSQL tests run is decided when they are built (each
//! test crate's `build.rs`): without the URL they are reported as ignored, never as passed.

use sqlx::Connection;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// This test process's scratch directory, `<temp>/opencm-tests/<pid>`: every database, key and
/// file a test makes goes under it. The first call removes what earlier test processes left there
/// once they are no longer running, so test runs do not pile up in the temp directory: at most
/// the last run's files remain (a run of the whole suite writes ~60 MB and a few hundred entries).
pub fn scratch_root() -> &'static Path {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        let parent = std::env::temp_dir().join("opencm-tests");
        sweep_finished(&parent);
        let root = parent.join(std::process::id().to_string());
        std::fs::create_dir_all(&root).expect("create the tests' scratch directory");
        root
    })
}

/// Removes every entry of `parent` but the directories named after running processes.
fn sweep_finished(parent: &Path) {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for e in entries.flatten() {
        let running = e
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
            .is_some_and(|pid| Path::new("/proc").join(pid.to_string()).exists());
        if !running {
            let path = e.path();
            let _ = std::fs::remove_dir_all(&path).or_else(|_| std::fs::remove_file(&path));
        }
    }
}

/// A new empty directory under `scratch_root`, named after `what`.
pub fn scratch_dir(what: &str) -> PathBuf {
    let d = scratch_root().join(format!("{what}-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&d).expect("create a scratch directory");
    d
}

/// A URL for a new SQLite file in this process's scratch directory.
pub fn fresh_sqlite_url() -> String {
    format!(
        "sqlite://{}",
        scratch_root()
            .join(format!("{}.db", uuid::Uuid::new_v4().simple()))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sweep_keeps_running_processes_and_removes_the_rest() {
        let parent = std::env::temp_dir().join(format!("opencm-sweep-{}", uuid::Uuid::new_v4()));
        let mine = parent.join(std::process::id().to_string());
        // Above Linux's largest pid (2^22): never a running process.
        let finished = parent.join("999999999");
        std::fs::create_dir_all(mine.join("a")).expect("mkdir");
        std::fs::create_dir_all(finished.join("b")).expect("mkdir");
        std::fs::write(parent.join("legacy.db"), b"x").expect("write");
        std::fs::create_dir_all(parent.join("0123abcd")).expect("mkdir");
        sweep_finished(&parent);
        let mut left: Vec<String> = std::fs::read_dir(&parent)
            .expect("read")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, vec![std::process::id().to_string()]);
        assert!(mine.join("a").is_dir());
        std::fs::remove_dir_all(&parent).expect("clean up");
    }
}
