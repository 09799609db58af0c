//! The load generator: N keep-alive clients, each running one operation after another until the
//! deadline (or until its own work runs out), with every latency recorded.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One operation of worker `w`, its `i`-th: `Ok(true)` done, `Ok(false)` no work left.
pub type Op = Arc<
    dyn Fn(usize, usize) -> Pin<Box<dyn Future<Output = anyhow::Result<bool>> + Send>>
        + Send
        + Sync,
>;

#[derive(Default)]
pub struct Sample {
    pub ops: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    pub seconds: f64,
    latencies_us: Vec<u32>,
}

impl Sample {
    pub fn rate(&self) -> f64 {
        self.ops as f64 / self.seconds.max(1e-9)
    }

    /// The `p`-quantile latency in milliseconds.
    pub fn ms(&self, p: f64) -> f64 {
        let l = &self.latencies_us;
        if l.is_empty() {
            return 0.0;
        }
        let i = ((l.len() as f64 * p).ceil() as usize).clamp(1, l.len()) - 1;
        f64::from(l[i]) / 1000.0
    }
}

pub async fn run(workers: usize, duration: Duration, op: Op) -> anyhow::Result<Sample> {
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::with_capacity(workers);
    for w in 0..workers {
        let op = op.clone();
        tasks.push(tokio::spawn(async move {
            let mut s = Sample::default();
            let mut i = 0;
            while Instant::now() < deadline {
                let t0 = Instant::now();
                match op(w, i).await {
                    Ok(true) => {
                        s.ops += 1;
                        s.latencies_us
                            .push(t0.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
                    }
                    Ok(false) => break,
                    Err(e) => {
                        s.errors += 1;
                        s.first_error.get_or_insert(e.to_string());
                    }
                }
                i += 1;
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
    // Until the last client stopped: a client that ran out of work early does not shorten it.
    all.seconds = started.elapsed().as_secs_f64();
    all.latencies_us.sort_unstable();
    Ok(all)
}
