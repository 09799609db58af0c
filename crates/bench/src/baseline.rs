//! The baselines every scenario is divided by, measured in the same run on the same machine:
//! the database engine's own durable single-row commit rate (not through the server's driver),
//! and the bare CA's signing rate.

use anyhow::Context;
use rusqlite::OptionalExtension;
use std::time::{Duration, Instant};

pub struct Engine {
    pub name: &'static str,
    pub settings: String,
    pub commits_per_s: f64,
}

/// Sequential autocommit single-row UPDATEs for `seconds`, through the engine itself: SQLite's C
/// API (rusqlite) on a plain thread with the server's journal mode and `synchronous`, on a scratch
/// file beside the server's database (same file system, same fsync); PostgreSQL over one plain
/// connection to the server's database.
pub async fn engine(database_url: &str, synchronous: &str, seconds: f64) -> anyhow::Result<Engine> {
    let until = Duration::from_secs_f64(seconds);
    if let Some(path) = sqlite_path(database_url) {
        let scratch = format!("{path}.bench-baseline");
        let sync = synchronous.to_ascii_uppercase();
        let n = tokio::task::spawn_blocking({
            let scratch = scratch.clone();
            let sync = sync.clone();
            move || -> anyhow::Result<u64> {
                let c = rusqlite::Connection::open(&scratch)
                    .context("opening the baseline database")?;
                c.pragma_update(None, "journal_mode", "WAL")?;
                c.pragma_update(None, "synchronous", &sync)?;
                c.execute_batch(
                    "CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v INTEGER NOT NULL);
                     INSERT OR IGNORE INTO t VALUES (1, 0);",
                )?;
                let mut st = c.prepare("UPDATE t SET v = v + 1 WHERE id = 1")?;
                let t0 = Instant::now();
                let mut n = 0;
                while t0.elapsed() < until {
                    st.execute([])?;
                    n += 1;
                }
                Ok(n)
            }
        })
        .await??;
        remove_database(&scratch);
        Ok(Engine {
            name: "sqlite",
            settings: format!("WAL, synchronous={sync}, rusqlite on a plain thread"),
            commits_per_s: n as f64 / seconds,
        })
    } else {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(database_url)
            .await
            .context("opening the baseline database")?;
        sqlx::query("CREATE TABLE IF NOT EXISTS opencm_bench_baseline (id BIGINT PRIMARY KEY, v BIGINT NOT NULL)")
            .execute(&mut conn)
            .await?;
        sqlx::query("INSERT INTO opencm_bench_baseline VALUES (1, 0) ON CONFLICT DO NOTHING")
            .execute(&mut conn)
            .await?;
        let t0 = Instant::now();
        let mut n = 0u64;
        while t0.elapsed() < until {
            sqlx::query("UPDATE opencm_bench_baseline SET v = v + 1 WHERE id = 1")
                .execute(&mut conn)
                .await?;
            n += 1;
        }
        sqlx::query("DROP TABLE opencm_bench_baseline")
            .execute(&mut conn)
            .await?;
        Ok(Engine {
            name: "postgres",
            settings: "synchronous_commit=on, one connection".into(),
            commits_per_s: n as f64 / seconds,
        })
    }
}

/// Removes a scratch SQLite database and its WAL files.
fn remove_database(path: &str) {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{path}{suffix}"));
    }
}

/// The SQLite file of a `sqlite://` URL, if it is one.
pub fn sqlite_path(database_url: &str) -> Option<&str> {
    let path = database_url
        .strip_prefix("sqlite://")
        .or_else(|| database_url.strip_prefix("sqlite:"))?;
    Some(path.split('?').next().unwrap_or(path))
}

/// What the engine alone does with the writes of `PUT {"status":"Completed"}`: a copy of the
/// server's database taken after the requests were prepared (`VACUUM INTO`), then for each prepared
/// request, in the order the clients complete them, exactly the statements the server's writer
/// runs for it — the profile's version check, the versioned request `UPDATE`, the profile `UPDATE`,
/// the audit `INSERT` — in group commits of `batch`, on one plain thread with the server's journal
/// mode and `synchronous`, while nothing else runs. No HTTP, no reads, no decisions: the ceiling
/// the storage engine puts on completions on this machine. Returns completions per second.
pub async fn sqlite_completions(
    path: &str,
    synchronous: &str,
    ids: &[Vec<String>],
    batch: usize,
) -> anyhow::Result<f64> {
    use opencm_domain::profile::ProfileStatus;
    use opencm_domain::RequestStatus;
    // The clients' order: each takes the next of its own list, all at about the same pace.
    let longest = ids.iter().map(Vec::len).max().unwrap_or(0);
    let order: Vec<String> = (0..longest)
        .flat_map(|i| ids.iter().filter_map(move |l| l.get(i).cloned()))
        .collect();
    let copy = format!("{path}.bench-completions");
    let sync = synchronous.to_ascii_uppercase();
    let result = tokio::task::spawn_blocking({
        let (path, copy) = (path.to_string(), copy.clone());
        move || -> anyhow::Result<f64> {
            remove_database(&copy);
            rusqlite::Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?
                .execute("VACUUM INTO ?1", [&copy])
                .context("copying the server's database")?;
            let mut c = rusqlite::Connection::open(&copy)?;
            c.pragma_update(None, "journal_mode", "WAL")?;
            c.pragma_update(None, "synchronous", &sync)?;
            // What each write carries, read before the clock starts (the server reads it too,
            // on its HTTP workers, before the write reaches the writer).
            let mut rows = Vec::with_capacity(order.len());
            {
                let mut st = c.prepare(
                    "SELECT flags, data_collection, data_collection_flags, new_profile_uuid, \
                     old_profile_uuid, new_smartcard_uuid, old_smartcard_uuid, priority, comment, \
                     version, status, originator_uuid FROM requests WHERE uuid = ?1",
                )?;
                for id in &order {
                    rows.push(st.query_row([id], |r| {
                        Ok(Completion {
                            id: id.clone(),
                            flags: r.get(0)?,
                            data_collection: r.get(1)?,
                            data_collection_flags: r.get(2)?,
                            new_profile: r.get(3)?,
                            old_profile: r.get(4)?,
                            new_smartcard: r.get(5)?,
                            old_smartcard: r.get(6)?,
                            priority: r.get(7)?,
                            comment: r.get(8)?,
                            version: r.get(9)?,
                            from: r.get(10)?,
                            actor: r.get(11)?,
                        })
                    })?);
                }
            }
            let completed = RequestStatus::Completed.number();
            let active = ProfileStatus::Active.number();
            let t0 = Instant::now();
            for chunk in rows.chunks(batch.max(1)) {
                let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                for w in chunk {
                    let now = time::OffsetDateTime::now_utc().unix_timestamp_nanos() as i64 / 1000;
                    let _: Option<i64> = tx
                        .prepare_cached("SELECT version FROM profiles WHERE uuid = ?1")?
                        .query_row([&w.new_profile], |r| r.get(0))
                        .optional()?;
                    tx.prepare_cached(
                        "UPDATE requests SET status = ?1, flags = ?2, data_collection = ?3, data_collection_flags = ?4, \
                         completed = ?5, new_profile_uuid = ?6, old_profile_uuid = ?7, new_smartcard_uuid = ?8, \
                         old_smartcard_uuid = ?9, priority = ?10, comment = ?11, version = version + 1 \
                         WHERE uuid = ?12 AND version = ?13",
                    )?
                    .execute(rusqlite::params![
                        completed,
                        w.flags,
                        w.data_collection,
                        w.data_collection_flags,
                        now,
                        w.new_profile,
                        w.old_profile,
                        w.new_smartcard,
                        w.old_smartcard,
                        w.priority,
                        w.comment,
                        w.id,
                        w.version
                    ])?;
                    tx.prepare_cached(
                        "UPDATE profiles SET status = ?1, flags = flags | ?2, version = version + 1 WHERE uuid = ?3",
                    )?
                    .execute(rusqlite::params![active, 0, w.new_profile])?;
                    tx.prepare_cached(
                        "INSERT INTO audit_events (request_uuid, at, actor_uuid, action, from_status, to_status, detail) \
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    )?
                    .execute(rusqlite::params![w.id, now, w.actor, "Completed", w.from, completed, ""])?;
                }
                tx.commit()?;
            }
            Ok(rows.len() as f64 / t0.elapsed().as_secs_f64())
        }
    })
    .await?;
    remove_database(&copy);
    result
}

/// One prepared request's completion, as the server's writer receives it.
struct Completion {
    id: String,
    flags: i64,
    data_collection: String,
    data_collection_flags: i64,
    new_profile: String,
    old_profile: String,
    new_smartcard: String,
    old_smartcard: String,
    priority: i64,
    comment: String,
    version: i64,
    from: i64,
    actor: String,
}

/// `n` P-256 client keys' CSRs (base64 DER), made before any clock starts.
pub fn client_csrs(n: usize) -> anyhow::Result<Vec<String>> {
    (0..n)
        .map(|_| {
            let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
            let csr =
                rcgen::CertificateParams::new(Vec::<String>::new())?.serialize_request(&key)?;
            Ok(csr
                .pem()?
                .lines()
                .filter(|l| !l.starts_with("-----"))
                .collect::<String>())
        })
        .collect()
}

/// Certificates per second the embedded CA signs on one thread (P-256 CA and subject keys).
pub fn ca_signatures(seconds: f64) -> anyhow::Result<f64> {
    use opencm_ca::CertificateAuthority;
    let now = time::OffsetDateTime::now_utc();
    let (ca, _) = opencm_ca::EmbeddedCa::generate("bench", now, 1)?;
    let csr = opencm_ca::parse_csr(&client_csrs(1)?[0]).map_err(|e| anyhow::anyhow!("{e}"))?;
    let t0 = Instant::now();
    let mut n = 0u64;
    while t0.elapsed().as_secs_f64() < seconds {
        ca.issue(&opencm_ca::IssueRequest {
            key: &csr,
            common_name: "Bench User",
            upn: Some("bench@example.test"),
            sid_extension: None,
            sid_uri: None,
            email: None,
            server_names: &[],
            key_usages: &[opencm_domain::certificate::KeyUsage::DigitalSignature],
            extended_key_usages: &["1.3.6.1.5.5.7.3.2".to_string()],
            not_before: now,
            not_after: now + time::Duration::days(365),
            serial: [7; 16],
        })?;
        n += 1;
    }
    Ok(n as f64 / t0.elapsed().as_secs_f64())
}
