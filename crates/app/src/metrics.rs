//! Prometheus metrics (`GET /metrics`): counters and histograms this process keeps, registered once
//! in one registry, plus gauges read from the database at each scrape (cards by status,
//! certificates about to expire, the outbox's rows), which are the whole cluster's — every node
//! reports the same values for them.
//!
//! Names and units follow Prometheus' conventions: `opencm_` prefix, `_total` for counters,
//! `_seconds` for durations; histograms have explicit buckets. The `prometheus` crate (TiKV's)
//! writes the text exposition format that Prometheus and `promtool check metrics` read.

use crate::App;
use opencm_domain::RequestType;
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec, Opts,
    Registry, TextEncoder,
};
use std::sync::LazyLock;

/// Latency buckets from half a millisecond to ten seconds: the API's answers are sub-millisecond
/// to a few milliseconds; RSA issuance and slow directories reach seconds.
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
const BATCH_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0];

pub(crate) struct Metrics {
    registry: Registry,
    http_requests: IntCounterVec,
    http_duration: HistogramVec,
    requests: IntCounterVec,
    certificates_issued: IntCounter,
    certificates_revoked: IntGaugeVec,
    card_secrets: IntCounterVec,
    auth_failures: IntCounterVec,
    batch_size: Histogram,
    commit_seconds: Histogram,
    crl_responses: IntCounter,
    ocsp_responses: IntCounterVec,
    smartcards: IntGaugeVec,
    expiring: IntGaugeVec,
    outbox: IntGaugeVec,
}

// Registering a metric fails only for a name or label registered twice, which these constant
// definitions never do; a failure would be a defect caught by the first test that scrapes.
#[allow(clippy::expect_used)]
static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let registry = Registry::new();
    let counter = |name: &str, help: &str| {
        let c = IntCounter::new(name, help).expect("metric");
        registry.register(Box::new(c.clone())).expect("register");
        c
    };
    let counters = |name: &str, help: &str, labels: &[&str]| {
        let c = IntCounterVec::new(Opts::new(name, help), labels).expect("metric");
        registry.register(Box::new(c.clone())).expect("register");
        c
    };
    let gauges = |name: &str, help: &str, labels: &[&str]| {
        let g = IntGaugeVec::new(Opts::new(name, help), labels).expect("metric");
        registry.register(Box::new(g.clone())).expect("register");
        g
    };
    let histogram = |name: &str, help: &str, buckets: &[f64]| {
        let h = Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets.to_vec()))
            .expect("metric");
        registry.register(Box::new(h.clone())).expect("register");
        h
    };
    let http_duration = HistogramVec::new(
        HistogramOpts::new(
            "opencm_http_request_duration_seconds",
            "Time to answer an HTTP request, by method and route template.",
        )
        .buckets(LATENCY_BUCKETS.to_vec()),
        &["method", "route"],
    )
    .expect("metric");
    registry
        .register(Box::new(http_duration.clone()))
        .expect("register");
    let build = gauges(
        "opencm_build_info",
        "The running version (always 1).",
        &["version"],
    );
    build.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
    Metrics {
        http_requests: counters(
            "opencm_http_requests_total",
            "HTTP requests answered, by method, route template and status code.",
            &["method", "route", "status"],
        ),
        http_duration,
        requests: counters(
            "opencm_requests_total",
            "Certificate management requests by type and outcome (created, approved, denied, completed, canceled, failed).",
            &["type", "outcome"],
        ),
        certificates_issued: counter(
            "opencm_certificates_issued_total",
            "Certificates signed by the CA for users (responder certificates excluded).",
        ),
        certificates_revoked: gauges(
            "opencm_certificates_revoked",
            "Certificates revoked or on hold now, by CRL reason (read from the database at each scrape).",
            &["reason"],
        ),
        card_secrets: counters(
            "opencm_card_secrets_released_total",
            "Smart card secrets released to a caller, by kind.",
            &["kind"],
        ),
        auth_failures: counters(
            "opencm_authentication_failures_total",
            "Credentials refused, by scheme.",
            &["scheme"],
        ),
        batch_size: histogram(
            "opencm_database_write_batch_size",
            "Writes committed together in one database transaction (group commit).",
            BATCH_BUCKETS,
        ),
        commit_seconds: histogram(
            "opencm_database_commit_duration_seconds",
            "Time to apply and commit one batch of writes.",
            LATENCY_BUCKETS,
        ),
        crl_responses: counter("opencm_crl_responses_total", "CRLs served."),
        ocsp_responses: counters(
            "opencm_ocsp_responses_total",
            "OCSP responses served, by response status (successful, malformedRequest, unauthorized, tryLater, internalError).",
            &["status"],
        ),
        smartcards: gauges(
            "opencm_smartcards",
            "Smart cards by status (read from the database at each scrape).",
            &["status"],
        ),
        expiring: gauges(
            "opencm_certificates_expiring",
            "Valid certificates whose validity ends within the given number of days (read from the database at each scrape).",
            &["within_days"],
        ),
        outbox: gauges(
            "opencm_outbox_rows",
            "Notification outbox rows by state (read from the database at each scrape).",
            &["state"],
        ),
        registry,
    }
});

pub(crate) fn metrics() -> &'static Metrics {
    &METRICS
}

/// One HTTP request answered: `route` is the route template (`/requests/{id}`), never the path.
pub fn observe_http(method: &str, route: &str, status: u16, seconds: f64) {
    let m = metrics();
    m.http_requests
        .with_label_values(&[method, route, status.to_string().as_str()])
        .inc();
    m.http_duration
        .with_label_values(&[method, route])
        .observe(seconds);
}

/// One batch of writes committed (or attempted).
pub fn observe_commit(writes: usize, seconds: f64) {
    let m = metrics();
    m.batch_size.observe(writes as f64);
    m.commit_seconds.observe(seconds);
}

/// A credential refused; `scheme` is `bearer`, `client_certificate`, `negotiate`, `password` or
/// `metrics_token`.
pub fn authentication_failed(scheme: &str) {
    metrics().auth_failures.with_label_values(&[scheme]).inc();
}

pub fn crl_served() {
    metrics().crl_responses.inc();
}

pub fn ocsp_served(status: &str) {
    metrics().ocsp_responses.with_label_values(&[status]).inc();
}

fn card_secret_released(kind: &str) {
    metrics().card_secrets.with_label_values(&[kind]).inc();
}

pub(crate) fn request_outcome(kind: RequestType, outcome: &str) {
    metrics()
        .requests
        .with_label_values(&[kind.name(), outcome])
        .inc();
}

impl App {
    /// The text exposition of every metric, the database's gauges read now. A database that
    /// does not answer leaves those gauges at their last values (and is logged); the process's
    /// own counters are always served.
    pub async fn metrics_text(&self) -> String {
        let m = metrics();
        match self.db.gauges(self.clock.now()).await {
            Ok(g) => {
                m.smartcards.reset();
                for (status, n) in g.smartcards_by_status {
                    m.smartcards.with_label_values(&[status.name()]).set(n);
                }
                m.expiring.with_label_values(&["7"]).set(g.expiring_7_days);
                m.expiring
                    .with_label_values(&["30"])
                    .set(g.expiring_30_days);
                m.certificates_revoked.reset();
                for (reason, n) in g.revoked_by_reason {
                    let name = reason_name(reason);
                    let gauge = m.certificates_revoked.with_label_values(&[name]);
                    // Reasons stored apart that name one CRL reason add up.
                    gauge.add(n);
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "metrics: the database's gauges could not be read")
            }
        }
        match self.outbox.outbox_counts().await {
            Ok(counts) => {
                m.outbox.reset();
                for (state, n) in counts {
                    m.outbox.with_label_values(&[state.name()]).set(n);
                }
            }
            Err(e) => tracing::warn!(error = %e, "metrics: the outbox counts could not be read"),
        }
        let mut out = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&m.registry.gather(), &mut out) {
            tracing::error!(error = %e, "metrics: encoding failed");
        }
        String::from_utf8(out).unwrap_or_default()
    }
}

/// A committed change's counts: the request's outcome when its status moved, the card secret it
/// released (by its audit action), and how many certificates it issued.
pub(crate) fn record_change(
    before: Option<opencm_domain::RequestStatus>,
    next: &opencm_domain::request::Request,
    action: opencm_domain::decided::AuditAction,
    certificates_issued: usize,
) {
    use opencm_domain::decided::AuditAction;
    use opencm_domain::RequestStatus as S;
    if before.is_none() {
        request_outcome(next.request_type, "created");
    }
    if before != Some(next.status) {
        let outcome = match next.status {
            S::Approved if action == AuditAction::Approve => Some("approved"),
            S::Denied => Some("denied"),
            S::Completed => Some("completed"),
            S::Canceled => Some("canceled"),
            S::Failed => Some("failed"),
            _ => None,
        };
        if let Some(o) = outcome {
            request_outcome(next.request_type, o);
        }
    }
    // Every release of a card secret is a change with its audit action.
    let secret = match action {
        AuditAction::ReleaseAdminKey => Some("admin_key"),
        AuditAction::AuthenticationResponse => Some("authentication_response"),
        AuditAction::ReleasePuk => Some("puk"),
        AuditAction::ReleasePin | AuditAction::ProposePin | AuditAction::DistributePin => {
            Some("pin")
        }
        AuditAction::ReleaseOneTimePassword => Some("one_time_password"),
        _ => None,
    };
    if let Some(kind) = secret {
        card_secret_released(kind);
    }
    if certificates_issued > 0 {
        metrics()
            .certificates_issued
            .inc_by(certificates_issued as u64);
    }
}

/// A CRL reason as RFC 5280 names it.
fn reason_name(r: opencm_domain::issued::RevocationReason) -> &'static str {
    use opencm_domain::issued::RevocationReason as R;
    match r {
        R::Unspecified => "unspecified",
        R::KeyCompromise => "keyCompromise",
        R::CaCompromise => "cACompromise",
        R::AffiliationChanged => "affiliationChanged",
        R::Superseded => "superseded",
        R::CessationOfOperation => "cessationOfOperation",
        R::CertificateHold => "certificateHold",
        R::PrivilegeWithdrawn => "privilegeWithdrawn",
        R::AaCompromise => "aACompromise",
    }
}
