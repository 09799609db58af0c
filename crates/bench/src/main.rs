//! `opencm-bench`: drives a running opencm server over HTTP with N concurrent keep-alive clients
//! and prints each scenario's throughput and latency percentiles as ratios of baselines measured
//! in the same run — the server's own HTTP floor (`GET /healthz` under the same load generator and
//! concurrency), the database engine's bare durable commit rate, and the bare CA's signing rate —
//! because on these machines absolute figures move from run to run (fsync from 40 to 100+ µs,
//! CPU ±40%) while the ratios hold.

mod baseline;
mod client;
mod load;

use anyhow::bail;
use clap::Parser;
use client::Client;
use futures::{StreamExt, TryStreamExt};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

/// Every scenario, in the order `all` runs them.
const SCENARIOS: &[(&str, &str)] = &[
    ("healthz", "GET /healthz: the server's HTTP floor, the baseline of every other scenario"),
    ("read", "GET /requests/{id}"),
    (
        "portal",
        "GET / signed in: the portal's home page of a user with 1,000 requests (a page of them, profiles, cards, the approval count)",
    ),
    (
        "complete",
        "PUT {\"status\":\"Completed\"} on requests created (and issued, when the template issues certificates) before the clock starts",
    ),
    (
        "enroll",
        "a whole software enrolment: create, generation options, certificatedata with a P-256 CSR, PUT Completed",
    ),
    (
        "card-enroll",
        "a whole card enrolment: create, bind a card, two challenge responses, diversified key, proposed PIN, generation options, certificatedata, PUT Completed (cards/s)",
    ),
    (
        "ocsp",
        "POST /ocsp for one certificate without a nonce (RFC 5019's form), a mix of good and revoked, SHA-1 and SHA-256 CertIDs",
    ),
    (
        "ocsp-nonce",
        "POST /ocsp with a fresh nonce each time: every response signed",
    ),
];

#[derive(Parser)]
#[command(
    name = "opencm-bench",
    version,
    about = "Benchmark a running opencm server; every figure is also printed as a ratio of baselines measured in the same run.",
    after_help = "Scenarios (--scenario):\n  healthz   GET /healthz, the HTTP floor (always measured: it is the baseline)\n  read      GET /requests/{id}\n  portal    GET / signed in (--login, --password): the portal's home page of a user with 1,000 requests\n  complete  PUT {\"status\":\"Completed\"} on prepared requests (on SQLite, also the engine alone replaying\n            the same writes on a copy of the database: the storage ceiling)\n  enroll    create, generation options, certificatedata, complete\n  ocsp      POST /ocsp, good and revoked certificates, no nonce (responses kept)\n  ocsp-nonce  POST /ocsp with a nonce (each response signed)\n  card-enroll  create, bind, challenge responses, diversified key, PIN, certificatedata, complete\n  all       every scenario above (the default)"
)]
struct Args {
    /// Base URL of the running server.
    #[arg(
        long,
        env = "OPENCM_BENCH_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    url: String,
    /// Bearer token of the user the clients act as (e.g. alice's from `opencm serve --demo`).
    #[arg(long, env = "OPENCM_BENCH_TOKEN", hide_env_values = true)]
    token: String,
    /// The portal user of the `portal` scenario (the token's user) and their password (printed by
    /// `opencm serve --demo`).
    #[arg(long, env = "OPENCM_BENCH_LOGIN", default_value = "alice")]
    login: String,
    #[arg(long, env = "OPENCM_BENCH_PASSWORD", hide_env_values = true)]
    password: Option<String>,
    /// The server's database, for the engine baseline (a scratch file beside it for SQLite).
    #[arg(
        long,
        env = "OPENCM_DATABASE_URL",
        default_value = "sqlite://opencm.db",
        hide_env_values = true
    )]
    database_url: String,
    /// The server's SQLite durability setting, for the engine baseline.
    #[arg(long, env = "OPENCM_SQLITE_SYNCHRONOUS", default_value = "full")]
    sqlite_synchronous: String,
    /// healthz, read, portal, complete, enroll, card-enroll, ocsp, ocsp-nonce, a comma-separated
    /// list of them, or all.
    #[arg(long, default_value = "all")]
    scenario: String,
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Seconds per scenario.
    #[arg(long, default_value_t = 8.0)]
    duration: f64,
    /// Requests prepared for the `complete` scenario (it ends early when they run out).
    #[arg(long, default_value_t = 40_000)]
    prepare: usize,
    /// Profile template to enroll from (default: the first software template the user may
    /// enroll from without approval).
    #[arg(long)]
    template: Option<String>,
    /// Smart card template for `card-enroll` (default: the first smart card template the user may
    /// enroll from without approval).
    #[arg(long)]
    card_template: Option<String>,
    /// Seconds for each bare baseline (engine commits, CA signatures).
    #[arg(long, default_value_t = 3.0)]
    baseline_seconds: f64,
    /// One JSON object per scenario instead of text.
    #[arg(long)]
    json: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // `all`, or a comma-separated list; `healthz` always runs first (it is the baseline).
    let wanted: Vec<&str> = if args.scenario == "all" {
        SCENARIOS.iter().map(|(n, _)| *n).collect()
    } else {
        let mut w = vec!["healthz"];
        for s in args.scenario.split(',').map(str::trim) {
            match SCENARIOS.iter().find(|(n, _)| *n == s) {
                Some((n, _)) if !w.contains(n) => w.push(n),
                Some(_) => {}
                None => bail!(
                    "unknown scenario '{s}' (healthz, read, portal, complete, enroll, card-enroll, ocsp, ocsp-nonce, all, or a comma-separated list)"
                ),
            }
        }
        w
    };
    let client = Arc::new(Client::new(&args.url, &args.token, args.concurrency * 2)?);
    client.healthz().await.map_err(|e| {
        anyhow::anyhow!(
            "no opencm server answers at {} ({e}); start one or pass --url",
            args.url
        )
    })?;
    let template = match &args.template {
        Some(t) => t.clone(),
        None => client.auto_approved_template(false).await?,
    };
    let card_template = if wanted.contains(&"card-enroll") {
        match &args.card_template {
            Some(t) => t.clone(),
            None => client.auto_approved_template(true).await?,
        }
    } else {
        String::new()
    };
    // Client keys are made before any clock starts: the benchmark measures the server.
    let csrs = Arc::new(baseline::client_csrs(64)?);
    let engine = baseline::engine(
        &args.database_url,
        &args.sqlite_synchronous,
        args.baseline_seconds,
    )
    .await?;
    let ca = if wanted.contains(&"enroll") || wanted.contains(&"card-enroll") {
        Some(baseline::ca_signatures(args.baseline_seconds)?)
    } else {
        None
    };
    let duration = Duration::from_secs_f64(args.duration);
    if !args.json {
        println!(
            "opencm-bench: {} clients, {:.0} s per scenario, server {}",
            args.concurrency, args.duration, args.url
        );
    }
    // The floor is measured first and again last; ratios use the higher of the two, so a machine
    // that slowed down during the run cannot flatter them.
    let mut results = Vec::new();
    // (batch, completions/s) of the engine alone doing the writes of the `complete` scenario.
    let mut completions_ceiling: Vec<(usize, f64)> = Vec::new();
    let mut runs: Vec<&str> = wanted.clone();
    runs.push("healthz");
    for name in runs {
        let op: load::Op = match name {
            "healthz" => {
                let c = client.clone();
                Arc::new(move |_, _| {
                    let c = c.clone();
                    Box::pin(async move { c.healthz().await.map(|()| true) })
                })
            }
            "read" => {
                let id = Arc::new(client.create(&template).await?);
                let c = client.clone();
                Arc::new(move |_, _| {
                    let (c, id) = (c.clone(), id.clone());
                    Box::pin(async move { c.read(&id).await.map(|()| true) })
                })
            }
            "portal" => {
                let Some(password) = args.password.as_deref() else {
                    bail!("the portal scenario signs in: give --password (OPENCM_BENCH_PASSWORD)");
                };
                // The user's requests: a home page lists a page of them, however many there are.
                let t0 = std::time::Instant::now();
                let owned = client.requests_of_caller().await?;
                let more = 1000usize.saturating_sub(owned);
                futures::stream::iter(0..more)
                    .map(|_| client.create(&template))
                    .buffer_unordered(args.concurrency)
                    .try_collect::<Vec<_>>()
                    .await?;
                let cookie = Arc::new(client.sign_in(&args.login, password).await?);
                eprintln!(
                    "portal: {} requests made and signed in in {:.1} s",
                    more,
                    t0.elapsed().as_secs_f64()
                );
                let c = client.clone();
                Arc::new(move |_, _| {
                    let (c, cookie) = (c.clone(), cookie.clone());
                    Box::pin(async move { c.portal_home(&cookie).await.map(|()| true) })
                })
            }
            "complete" => {
                let t0 = std::time::Instant::now();
                let ids = Arc::new(
                    prepare(&client, &template, &csrs, args.concurrency, args.prepare).await?,
                );
                eprintln!(
                    "complete: {} requests prepared in {:.1} s",
                    args.prepare,
                    t0.elapsed().as_secs_f64()
                );
                if let Some(path) = baseline::sqlite_path(&args.database_url) {
                    for batch in [16, args.concurrency] {
                        let sync = &args.sqlite_synchronous;
                        let rate = baseline::sqlite_completions(path, sync, &ids, batch).await?;
                        completions_ceiling.push((batch, rate));
                    }
                }
                eprintln!("complete: measuring");
                let c = client.clone();
                Arc::new(move |w, i| {
                    let (c, ids) = (c.clone(), ids.clone());
                    Box::pin(async move {
                        match ids[w].get(i) {
                            Some(id) => c.complete(id).await.map(|()| true),
                            None => Ok(false),
                        }
                    })
                })
            }
            "ocsp" | "ocsp-nonce" => {
                let requests =
                    Arc::new(ocsp_requests(&client, &template, &csrs, name == "ocsp-nonce").await?);
                let c = client.clone();
                Arc::new(move |w, i| {
                    let (c, requests) = (c.clone(), requests.clone());
                    Box::pin(async move {
                        let n = requests.len();
                        c.ocsp(&requests[(w * 7 + i) % n]).await.map(|()| true)
                    })
                })
            }
            "card-enroll" => {
                let (c, t, csrs) = (
                    client.clone(),
                    Arc::new(card_template.clone()),
                    csrs.clone(),
                );
                Arc::new(move |w, i| {
                    let (c, t, csrs) = (c.clone(), t.clone(), csrs.clone());
                    Box::pin(
                        async move { card_enrolment(&c, &t, &csrs[(w + i) % csrs.len()]).await },
                    )
                })
            }
            _ => {
                let (c, t, csrs) = (client.clone(), Arc::new(template.clone()), csrs.clone());
                Arc::new(move |w, i| {
                    let (c, t, csrs) = (c.clone(), t.clone(), csrs.clone());
                    Box::pin(async move {
                        let id = c.create(&t).await?;
                        c.generation_options(&id).await?;
                        c.certificate_data(&id, &[&csrs[(w + i) % csrs.len()]])
                            .await?;
                        c.complete(&id).await.map(|()| true)
                    })
                })
            }
        };
        let s = load::run(args.concurrency, duration, op).await?;
        if let Some(e) = &s.first_error {
            eprintln!("{name}: first error: {e}");
        }
        results.push((name, s));
    }
    let floors: Vec<f64> = results
        .iter()
        .filter(|(n, _)| *n == "healthz")
        .map(|(_, s)| s.rate())
        .collect();
    let floor = floors.iter().cloned().fold(0.0, f64::max);
    if !args.json {
        println!(
            "baselines: GET /healthz {} ops/s (first / last; ratios use the higher); engine {:.0} durable commits/s ({}, {}){}",
            floors.iter().map(|f| format!("{f:.0}")).collect::<Vec<_>>().join(" / "),
            engine.commits_per_s,
            engine.name,
            engine.settings,
            ca.map(|c| format!("; bare CA {c:.0} signatures/s (one thread)"))
                .unwrap_or_default()
        );
    }
    for (name, s) in results.iter().skip(1).filter(|(n, _)| *n != "healthz") {
        let rate = s.rate();
        let vs_engine = matches!(*name, "complete" | "enroll" | "card-enroll")
            .then(|| rate / engine.commits_per_s);
        let vs_ca = matches!(*name, "enroll" | "card-enroll")
            .then_some(ca)
            .flatten()
            .map(|c| rate / c);
        if args.json {
            println!(
                "{}",
                json!({
                    "scenario": name, "concurrency": args.concurrency, "seconds": s.seconds,
                    "ops": s.ops, "errors": s.errors, "ops_per_s": rate,
                    "p50_ms": s.ms(0.50), "p99_ms": s.ms(0.99), "p999_ms": s.ms(0.999),
                    "healthz_per_s": floors, "ratio_to_healthz": rate / floor,
                    "engine": {"name": engine.name, "settings": engine.settings, "commits_per_s": engine.commits_per_s},
                    "ratio_to_engine_commits": vs_engine,
                    "engine_completions": if *name == "complete" {
                        completions_ceiling.iter().map(|(batch, c)| json!({
                            "batch": batch, "per_s": c, "ratio_to_healthz": c / floor, "ratio": rate / c,
                        })).collect::<Vec<_>>()
                    } else {
                        Vec::new()
                    },
                    "ca_signatures_per_s": ca, "ratio_to_ca": vs_ca,
                })
            );
            continue;
        }
        let what = SCENARIOS
            .iter()
            .find(|(n, _)| n == name)
            .map_or("", |(_, w)| w);
        println!("\n{name}: {what}");
        println!(
            "  {rate:>9.0} ops/s   p50 {:.2} ms   p99 {:.2} ms   p99.9 {:.2} ms   ({} ops, {} errors, {:.1} s)",
            s.ms(0.50),
            s.ms(0.99),
            s.ms(0.999),
            s.ops,
            s.errors,
            s.seconds
        );
        let mut ratios = format!("  {:.2}x /healthz", rate / floor);
        if let Some(r) = vs_engine {
            ratios.push_str(&format!("   {r:.2}x the engine's bare durable commits"));
        }
        if *name == "complete" {
            for (batch, c) in &completions_ceiling {
                ratios.push_str(&format!(
                    "\n  the engine alone, the same writes in group commits of {batch}: {c:.0}/s = {:.2}x /healthz; this scenario is {:.2}x of it",
                    c / floor,
                    rate / c
                ));
            }
        }
        if let Some(r) = vs_ca {
            ratios.push_str(&format!("   {r:.3}x the bare CA's signatures"));
        }
        println!("{ratios}");
    }
    Ok(())
}

/// One card enrolment as a card client makes it; the challenges are random, as a card's are.
async fn card_enrolment(c: &Client, template: &str, csr: &str) -> anyhow::Result<bool> {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let id = c.create(template).await?;
    let card_id = uuid::Uuid::new_v4().to_string();
    let card = c.bind(&id, &card_id).await?;
    let challenge = |n: u128| b64.encode(&n.to_le_bytes()[..8]);
    let first = challenge(uuid::Uuid::new_v4().as_u128());
    c.card_secret(
        &id,
        &card,
        "authenticationresponse",
        &[
            ("cardid", &card_id),
            ("challenge", &first),
            ("diversified", "false"),
        ],
    )
    .await?;
    c.card_secret(&id, &card, "diversifiedkey", &[("cardid", &card_id)])
        .await?;
    let second = challenge(uuid::Uuid::new_v4().as_u128());
    c.card_secret(
        &id,
        &card,
        "authenticationresponse",
        &[
            ("cardid", &card_id),
            ("challenge", &second),
            ("diversified", "true"),
        ],
    )
    .await?;
    c.card_secret(&id, &card, "serverproposedpin", &[("cardid", &card_id)])
        .await?;
    c.generation_options(&id).await?;
    c.certificate_data(&id, &[csr]).await?;
    c.complete(&id).await.map(|()| true)
}

/// `total` requests ready to be completed, split over `workers`: created, and issued when the
/// template has certificates to issue (completing one that issued nothing is refused).
async fn prepare(
    client: &Arc<Client>,
    template: &str,
    csrs: &Arc<Vec<String>>,
    workers: usize,
    total: usize,
) -> anyhow::Result<Vec<Vec<String>>> {
    let probe = client.create(template).await?;
    let needs_csrs = client.generation_options(&probe).await?;
    let per_worker = total.div_ceil(workers.max(1));
    let mut tasks = Vec::new();
    for w in 0..workers {
        let (c, t, csrs) = (client.clone(), template.to_string(), csrs.clone());
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::with_capacity(per_worker);
            for i in 0..per_worker {
                let id = c.create(&t).await?;
                if needs_csrs > 0 {
                    let mine: Vec<&str> = (0..needs_csrs)
                        .map(|k| csrs[(w + i + k) % csrs.len()].as_str())
                        .collect();
                    c.certificate_data(&id, &mine).await?;
                }
                ids.push(id);
            }
            anyhow::Ok(ids)
        }));
    }
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await??);
    }
    Ok(out)
}

/// OCSP requests about certificates enrolled for the purpose: eight completed (good) and eight
/// abandoned after issuance (revoked), SHA-1 and SHA-256 CertIDs alternating; with a fresh nonce
/// per request when `nonce` (64 of them per certificate, cycled).
async fn ocsp_requests(
    client: &Arc<client::Client>,
    template: &str,
    csrs: &[String],
    nonce: bool,
) -> anyhow::Result<Vec<Vec<u8>>> {
    for i in 0..16 {
        let id = client.create(template).await?;
        client
            .certificate_data(&id, &[&csrs[i % csrs.len()]])
            .await?;
        if i % 2 == 0 {
            client.complete(&id).await?;
        } else {
            client.abandon(&id).await?;
        }
    }
    let ca = client.ca_der().await?;
    let certs = client.certificates().await?;
    let (good, revoked) = (
        certs.iter().filter(|c| c.1 == 0).count(),
        certs.iter().filter(|c| c.1 == 1).count(),
    );
    eprintln!("ocsp: asking about {good} good and {revoked} revoked certificates");
    let mut out = Vec::new();
    use rand::RngCore;
    for (k, (serial, _)) in certs.iter().enumerate() {
        let bytes = hex::decode(serial)?;
        for j in 0..if nonce { 64 } else { 1 } {
            let n = nonce.then(|| {
                let mut b = [0u8; 16];
                rand::thread_rng().fill_bytes(&mut b);
                b
            });
            out.push(opencm_ca::ocsp::request_der(
                &ca,
                &bytes,
                (k + j) % 2 == 1,
                n.as_ref().map(|b| b.as_slice()),
            )?);
        }
    }
    if out.is_empty() {
        anyhow::bail!("ocsp: the caller has no certificates to ask about");
    }
    Ok(out)
}
