//! The baselines every scenario is divided by, measured in the same run on the same machine:
//! the database engine's own durable single-row commit rate (not through the server's driver),
//! and the bare CA's signing rate.

use anyhow::Context;
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
    if let Some(path) = database_url
        .strip_prefix("sqlite://")
        .or_else(|| database_url.strip_prefix("sqlite:"))
    {
        let path = path.split('?').next().unwrap_or(path);
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
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{scratch}{suffix}"));
        }
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
