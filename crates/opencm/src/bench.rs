//! `opencm bench`: drives a running server over HTTP with N concurrent clients for a fixed time and
//! prints throughput and latency percentiles. In the same run it measures the baseline the issue
//! asks for: bare single-row durable UPDATE commits per second on the same database engine with
//! the same durability settings, and prints the ratio.

use crate::config::Config;
use anyhow::{bail, Context};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct BenchArgs {
    /// Base URL of the running server.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// Bearer token of the user the clients act as (e.g. alice's from `serve --demo`).
    #[arg(long, env = "OPENCM_BENCH_TOKEN")]
    token: String,
    /// create-complete, read, or all.
    #[arg(long, default_value = "all")]
    scenario: String,
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Seconds per scenario.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Profile template to enroll from (default: the first whose Enroll policy needs no approval).
    #[arg(long)]
    template: Option<String>,
    /// Seconds for the baseline commit measurement (0 skips it).
    #[arg(long, default_value_t = 3.0)]
    baseline_seconds: f64,
    /// Print one JSON object per scenario instead of text.
    #[arg(long)]
    json: bool,
}

struct Client {
    http: reqwest::Client,
    base: String,
    auth: String,
}

impl Client {
    async fn create(&self, template: &str) -> anyhow::Result<String> {
        let body = json!({"profiletemplateuuid": template, "type": "Enroll", "datacollection": "[]", "comment": "bench"});
        let r = self
            .http
            .post(format!(
                "{}/CertificateManagement/api/v1.0/requests",
                self.base
            ))
            .header("authorization", &self.auth)
            .json(&body)
            .send()
            .await?;
        if r.status() != 201 {
            bail!(
                "create answered {}: {}",
                r.status(),
                r.text().await.unwrap_or_default()
            );
        }
        let rel: String = r.json().await?;
        Ok(rel.rsplit('/').next().unwrap_or_default().to_string())
    }

    async fn complete(&self, id: &str) -> anyhow::Result<()> {
        let r = self
            .http
            .put(format!(
                "{}/CertificateManagement/api/v1.0/requests/{id}",
                self.base
            ))
            .header("authorization", &self.auth)
            .json(&json!({"status": "Completed"}))
            .send()
            .await?;
        if r.status() != 200 {
            bail!("complete answered {}", r.status());
        }
        let _ = r.bytes().await?;
        Ok(())
    }

    /// One whole enrolment: create, generation options, certificate data, complete.
    async fn enroll(&self, template: &str, csr: &str) -> anyhow::Result<()> {
        let id = self.create(template).await?;
        let r = self.http.get(format!("{}/CertificateManagement/api/v1.0/requests/{id}/certificaterequestgenerationoptions", self.base)).header("authorization", &self.auth).send().await?;
        if r.status() != 200 {
            bail!("generation options answered {}", r.status());
        }
        let _ = r.bytes().await?;
        let r = self
            .http
            .post(format!(
                "{}/CertificateManagement/api/v1.0/requests/{id}/certificatedata",
                self.base
            ))
            .header("authorization", &self.auth)
            .json(&json!({ "certificaterequests": [csr] }))
            .send()
            .await?;
        if r.status() != 200 {
            bail!(
                "certificatedata answered {}: {}",
                r.status(),
                r.text().await.unwrap_or_default()
            );
        }
        let _ = r.bytes().await?;
        self.complete(&id).await
    }

    async fn read(&self, id: &str) -> anyhow::Result<()> {
        let r = self
            .http
            .get(format!(
                "{}/CertificateManagement/api/v1.0/requests/{id}",
                self.base
            ))
            .header("authorization", &self.auth)
            .send()
            .await?;
        if r.status() != 200 {
            bail!("read answered {}", r.status());
        }
        let _ = r.bytes().await?;
        Ok(())
    }
}

#[derive(Default)]
struct Sample {
    ops: u64,
    errors: u64,
    first_error: Option<String>,
    latencies_us: Vec<u32>,
}

fn pct(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    f64::from(sorted[i]) / 1000.0
}

pub async fn run(args: BenchArgs, cfg: &Config) -> anyhow::Result<()> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency * 2)
        .tcp_nodelay(true)
        .build()?;
    let client = std::sync::Arc::new(Client {
        http,
        base: args.url.trim_end_matches('/').to_string(),
        auth: format!("Bearer {}", args.token),
    });
    let template = match &args.template {
        Some(t) => t.clone(),
        None => find_auto_approved_template(&client).await?,
    };
    let baseline = if args.baseline_seconds > 0.0 {
        Some(baseline_commits(cfg, args.baseline_seconds).await?)
    } else {
        None
    };
    let scenarios: Vec<&str> = match args.scenario.as_str() {
        "all" => vec!["create-complete", "read", "enroll"],
        s @ ("create-complete" | "read" | "enroll") => vec![s],
        other => bail!("unknown scenario '{other}' (create-complete, read, enroll, all)"),
    };
    // Client keys are made before the clock starts: the benchmark measures the server.
    let csrs: std::sync::Arc<Vec<String>> = std::sync::Arc::new(if scenarios.contains(&"enroll") {
        client_csrs(64)?
    } else {
        Vec::new()
    });
    let signing = if scenarios.contains(&"enroll") && args.baseline_seconds > 0.0 {
        Some(ca_signing_rate(args.baseline_seconds)?)
    } else {
        None
    };
    for scenario in scenarios {
        let read_id = if scenario == "read" {
            Some(client.create(&template).await?)
        } else {
            None
        };
        let deadline = Instant::now() + Duration::from_secs_f64(args.duration);
        let started = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..args.concurrency {
            let c = client.clone();
            let template = template.clone();
            let read_id = read_id.clone();
            let csrs = csrs.clone();
            let enroll = scenario == "enroll";
            tasks.push(tokio::spawn(async move {
                let mut s = Sample::default();
                let mut n = 0usize;
                while Instant::now() < deadline {
                    let t0 = Instant::now();
                    let r = match &read_id {
                        Some(id) => c.read(id).await,
                        None if enroll => {
                            n += 1;
                            let r = c.enroll(&template, &csrs[n % csrs.len()]).await;
                            s.latencies_us
                                .push(t0.elapsed().as_micros().min(u32::MAX as u128) as u32);
                            r
                        }
                        None => match c.create(&template).await {
                            // The latency that counts is the complete call; creation is setup.
                            Ok(id) => {
                                let t1 = Instant::now();
                                let r = c.complete(&id).await;
                                s.latencies_us
                                    .push(t1.elapsed().as_micros().min(u32::MAX as u128) as u32);
                                r
                            }
                            Err(e) => Err(e),
                        },
                    };
                    if read_id.is_some() {
                        s.latencies_us
                            .push(t0.elapsed().as_micros().min(u32::MAX as u128) as u32);
                    }
                    match r {
                        Ok(()) => s.ops += 1,
                        Err(e) => {
                            s.errors += 1;
                            s.first_error.get_or_insert(e.to_string());
                        }
                    }
                }
                s
            }));
        }
        let mut all = Sample::default();
        for t in tasks {
            let s = t.await?;
            all.ops += s.ops;
            all.errors += s.errors;
            all.latencies_us.extend(s.latencies_us);
            if all.first_error.is_none() {
                all.first_error = s.first_error;
            }
        }
        let secs = started.elapsed().as_secs_f64();
        all.latencies_us.sort_unstable();
        let rate = all.ops as f64 / secs;
        let (p50, p99, p999) = (
            pct(&all.latencies_us, 0.50),
            pct(&all.latencies_us, 0.99),
            pct(&all.latencies_us, 0.999),
        );
        // Each scenario against its own baseline: durable commits for transitions, bare CA
        // signatures for enrolments; reads have none.
        let ratio = match scenario {
            "create-complete" => baseline.as_ref().map(|b| rate / b.commits_per_s),
            "enroll" => signing.map(|s| rate / s),
            _ => None,
        };
        if args.json {
            println!(
                "{}",
                json!({
                    "scenario": scenario, "concurrency": args.concurrency, "seconds": secs, "ops": all.ops, "errors": all.errors,
                    "ops_per_s": rate, "p50_ms": p50, "p99_ms": p99, "p999_ms": p999,
                    "baseline": match scenario {
                        "create-complete" => baseline.as_ref().map(|b| json!({"kind": "durable single-row commits", "engine": b.engine, "durability": b.durability, "per_s": b.commits_per_s})),
                        "enroll" => signing.map(|s| json!({"kind": "bare CA signatures, one thread", "per_s": s})),
                        _ => None,
                    },
                    "ratio_to_baseline": ratio,
                })
            );
        } else {
            let what = match scenario {
                "read" => "GET /requests/{id}",
                "enroll" => {
                    "create, generation options, certificatedata with a P-256 CSR, complete"
                }
                _ => "create + PUT Completed",
            };
            println!(
                "scenario {scenario} ({what}): {} clients, {secs:.1} s",
                args.concurrency
            );
            println!(
                "  throughput  {rate:>10.0} ops/s   ({} ops, {} errors)",
                all.ops, all.errors
            );
            let lat = match scenario {
                "read" => "GET",
                "enroll" => "whole enrolment",
                _ => "PUT Completed",
            };
            println!(
                "  latency     p50 {p50:.2} ms   p99 {p99:.2} ms   p99.9 {p999:.2} ms   ({lat})"
            );
            if let (true, Some(sig), Some(r)) = (scenario == "enroll", signing, ratio) {
                println!("  baseline    {sig:>10.0} signatures/s (bare CA issuance in this process, one thread)   ratio {r:.2}x");
            } else if let (Some(b), Some(r)) = (&baseline, ratio) {
                println!("  baseline    {:>10.0} commits/s ({} {}, single-row UPDATE, one connection)   ratio {r:.2}x", b.commits_per_s, b.engine, b.durability);
            }
        }
        if let Some(e) = all.first_error {
            eprintln!("  first error: {e}");
        }
    }
    Ok(())
}

async fn find_auto_approved_template(c: &Client) -> anyhow::Result<String> {
    let list: Vec<Value> = c
        .http
        .get(format!(
            "{}/CertificateManagement/api/v1.0/profiletemplates",
            c.base
        ))
        .header("authorization", &c.auth)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    for t in list {
        let Some(id) = t["Uuid"].as_str() else {
            continue;
        };
        let p = c
            .http
            .get(format!(
                "{}/CertificateManagement/api/v1.0/profiletemplates/{id}/policies/enroll",
                c.base
            ))
            .header("authorization", &c.auth)
            .send()
            .await?;
        if p.status() == 200 {
            let p: Value = p.json().await?;
            if p["ApprovalsNeeded"] == 0
                && p["SelfServiceEnabled"] == true
                && !p["CollectComments"].as_bool().unwrap_or(false)
            {
                return Ok(id.to_string());
            }
        }
    }
    bail!("no template this user may enroll from without approval; pass --template")
}

struct Baseline {
    engine: &'static str,
    durability: String,
    commits_per_s: f64,
}

/// Sequential autocommit single-row UPDATEs on one connection, on the configured engine.
async fn baseline_commits(cfg: &Config, seconds: f64) -> anyhow::Result<Baseline> {
    use sqlx::Connection;
    let until = Duration::from_secs_f64(seconds);
    if let Some(path) = cfg
        .database_url
        .strip_prefix("sqlite://")
        .or_else(|| cfg.database_url.strip_prefix("sqlite:"))
    {
        let path = path.split('?').next().unwrap_or(path);
        let scratch = format!("{path}.bench-baseline");
        let full = cfg.sqlite_synchronous == "full";
        let opts = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(&scratch)
            .create_if_missing(true)
            .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
            .synchronous(if full {
                sqlx::sqlite::SqliteSynchronous::Full
            } else {
                sqlx::sqlite::SqliteSynchronous::Normal
            });
        let mut conn = sqlx::SqliteConnection::connect_with(&opts)
            .await
            .context("opening the baseline database")?;
        sqlx::query("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v INTEGER NOT NULL)")
            .execute(&mut conn)
            .await?;
        sqlx::query("INSERT OR IGNORE INTO t VALUES (1, 0)")
            .execute(&mut conn)
            .await?;
        let n = count_updates(&mut conn, until).await?;
        conn.close().await?;
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{scratch}{suffix}"));
        }
        Ok(Baseline {
            engine: "sqlite",
            durability: format!("WAL synchronous={}", cfg.sqlite_synchronous),
            commits_per_s: n as f64 / seconds,
        })
    } else {
        let mut conn = sqlx::PgConnection::connect(&cfg.database_url)
            .await
            .context("opening the baseline database")?;
        sqlx::query("CREATE TABLE IF NOT EXISTS opencm_bench_baseline (id BIGINT PRIMARY KEY, v BIGINT NOT NULL)").execute(&mut conn).await?;
        sqlx::query("INSERT INTO opencm_bench_baseline VALUES (1, 0) ON CONFLICT DO NOTHING")
            .execute(&mut conn)
            .await?;
        let n = count_updates_pg(&mut conn, until).await?;
        sqlx::query("DROP TABLE opencm_bench_baseline")
            .execute(&mut conn)
            .await?;
        Ok(Baseline {
            engine: "postgres",
            durability: "synchronous_commit=on".into(),
            commits_per_s: n as f64 / seconds,
        })
    }
}

async fn count_updates(conn: &mut sqlx::SqliteConnection, until: Duration) -> anyhow::Result<u64> {
    let t0 = Instant::now();
    let mut n = 0;
    while t0.elapsed() < until {
        sqlx::query("UPDATE t SET v = v + 1 WHERE id = 1")
            .execute(&mut *conn)
            .await?;
        n += 1;
    }
    Ok(n)
}

async fn count_updates_pg(conn: &mut sqlx::PgConnection, until: Duration) -> anyhow::Result<u64> {
    let t0 = Instant::now();
    let mut n = 0;
    while t0.elapsed() < until {
        sqlx::query("UPDATE opencm_bench_baseline SET v = v + 1 WHERE id = 1")
            .execute(&mut *conn)
            .await?;
        n += 1;
    }
    Ok(n)
}

/// `n` P-256 client keys and their CSRs (base64 DER), as a client would make them.
fn client_csrs(n: usize) -> anyhow::Result<Vec<String>> {
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

/// Certificates per second the embedded CA signs, bare (P-256 CA, P-256 subject keys).
fn ca_signing_rate(seconds: f64) -> anyhow::Result<f64> {
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
            key_usages: &[opencm_ca::KeyUsagePurpose::DigitalSignature],
            extended_key_usages: &[opencm_ca::ExtendedKeyUsagePurpose::ClientAuth],
            not_before: now,
            not_after: now + time::Duration::days(365),
            serial: [7; 16],
        })?;
        n += 1;
    }
    Ok(n as f64 / t0.elapsed().as_secs_f64())
}
