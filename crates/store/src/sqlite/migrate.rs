//! The SQLite schema: the files of `migrations/sqlite`, applied in order, each in its own
//! transaction, and recorded in `_sqlx_migrations` — the table (and SHA-384 checksums) sqlx used
//! when it ran them, so a database made by an earlier opencm upgrades in place.

use crate::error::sqlite_err;
use opencm_app::ports::StoreError;
use rusqlite::{params, Connection, OptionalExtension};
use sha2::{Digest, Sha384};

const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "initial",
        include_str!("../../migrations/sqlite/0001_initial.sql"),
    ),
    (
        2,
        "ca profiles certificates",
        include_str!("../../migrations/sqlite/0002_ca_profiles_certificates.sql"),
    ),
    (
        3,
        "template revision",
        include_str!("../../migrations/sqlite/0003_template_revision.sql"),
    ),
    (
        4,
        "profile version",
        include_str!("../../migrations/sqlite/0004_profile_version.sql"),
    ),
    (
        5,
        "offboarding",
        include_str!("../../migrations/sqlite/0005_offboarding.sql"),
    ),
    (
        6,
        "smartcards",
        include_str!("../../migrations/sqlite/0006_smartcards.sql"),
    ),
    (
        7,
        "card lifecycle",
        include_str!("../../migrations/sqlite/0007_card_lifecycle.sql"),
    ),
    (
        8,
        "card relations",
        include_str!("../../migrations/sqlite/0008_card_relations.sql"),
    ),
    (
        9,
        "card secret binding",
        include_str!("../../migrations/sqlite/0009_card_secret_binding.sql"),
    ),
    (
        10,
        "logins and certificate mappings",
        include_str!("../../migrations/sqlite/0010_logins_and_certificate_mappings.sql"),
    ),
    (
        11,
        "kerberos replay",
        include_str!("../../migrations/sqlite/0011_kerberos_replay.sql"),
    ),
    (
        12,
        "portal",
        include_str!("../../migrations/sqlite/0012_portal.sql"),
    ),
    (
        13,
        "notifications",
        include_str!("../../migrations/sqlite/0013_notifications.sql"),
    ),
];

pub(crate) fn run(conn: &mut Connection) -> Result<(), StoreError> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS _sqlx_migrations (
            version BIGINT PRIMARY KEY,
            description TEXT NOT NULL,
            installed_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
            success BOOLEAN NOT NULL,
            checksum BLOB NOT NULL,
            execution_time BIGINT NOT NULL
        );",
    )
    .map_err(sqlite_err)?;
    for (version, description, sql) in MIGRATIONS {
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(sqlite_err)?;
        let applied: Option<bool> = tx
            .query_row(
                "SELECT success FROM _sqlx_migrations WHERE version = ?1",
                [version],
                |r| r.get(0),
            )
            .optional()
            .map_err(sqlite_err)?;
        match applied {
            Some(true) => continue,
            Some(false) => {
                return Err(StoreError::Database(format!(
                    "migration {version} ({description}) failed earlier; restore a backup"
                )))
            }
            None => {}
        }
        let started = std::time::Instant::now();
        tx.execute_batch(sql)
            .map_err(|e| StoreError::Database(format!("migration {version} failed: {e}")))?;
        tx.execute(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES (?1, ?2, TRUE, ?3, ?4)",
            params![
                version,
                description,
                Sha384::digest(sql.as_bytes()).to_vec(),
                started.elapsed().as_nanos() as i64
            ],
        )
        .map_err(sqlite_err)?;
        tx.commit().map_err(sqlite_err)?;
    }
    Ok(())
}
