//! The listener: opencm's own accept loop around hyper, so the server's edge has the limits a
//! security product needs (axum::serve has none of them):
//!
//! - a cap on open connections: beyond it the loop stops accepting, and new connections wait in
//!   the kernel's listen backlog instead of taking descriptors the database and the CA need;
//! - the soft open-file limit raised to the hard limit at start, and the cap kept below it;
//! - a header timeout (hyper's, which for HTTP/1.1 also bounds the wait for the next request on
//!   a kept-alive connection), an idle timeout for any connection that sends nothing (HTTP/2 and
//!   TLS included), and a TLS handshake bounded by the header timeout; the body timeout is the
//!   JSON extractor's;
//! - TLS with rustls when configured, HTTP/2 where the client offers it (ALPN, or prior knowledge
//!   on plain HTTP);
//! - graceful shutdown: on SIGTERM the loop stops accepting and in-flight requests finish.

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt;

mod canned;
mod idle;

use canned::CannedErrors;
use idle::IdleTimeout;

/// Descriptors kept free for the database, its WAL, logs and the CA when the connection cap is
/// derived from the open-file limit.
const RESERVED_DESCRIPTORS: u64 = 64;

#[derive(Clone, Debug)]
pub struct Limits {
    pub max_connections: usize,
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    /// Largest request head (request line and headers) hyper buffers; beyond it, 431.
    pub max_header_bytes: usize,
}

/// Raises the soft open-file limit to the hard one, logs both, and returns the connection cap:
/// the configured one, lowered to fit under the limit with room to spare.
pub fn fit_connection_cap(configured: usize) -> usize {
    let before = rlimit::getrlimit(rlimit::Resource::NOFILE).ok();
    let soft = rlimit::increase_nofile_limit(u64::MAX).ok();
    let hard = before.map(|(_, h)| h);
    let cap = match soft {
        Some(s) => configured.min(s.saturating_sub(RESERVED_DESCRIPTORS).max(1) as usize),
        None => configured,
    };
    tracing::info!(
        soft_limit_before = before.map(|(s, _)| s),
        soft_limit = soft,
        hard_limit = hard,
        max_connections = cap,
        "open-file limit"
    );
    if cap < configured {
        tracing::warn!(
            configured,
            max_connections = cap,
            "max_connections lowered to fit the open-file limit (raise `ulimit -n` to allow more)"
        );
    }
    cap
}

/// Serves `service` on `listener` until `shutdown` resolves, then waits for open connections to
/// finish their requests.
pub async fn run<S>(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    service: S,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) where
    S: tower::Service<
            axum::extract::Request,
            Response = axum::response::Response,
            Error = std::convert::Infallible,
        > + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
{
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(limits.max_header_bytes.max(8192));
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(128)
        .max_header_list_size(limits.max_header_bytes as u32);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let mut descriptor_warning: Option<Instant> = None;
    tokio::pin!(shutdown);
    loop {
        // A slot first, then accept: at the cap, connections queue in the kernel's backlog.
        let slot = tokio::select! {
            s = slots.clone().acquire_owned() => match s { Ok(s) => s, Err(_) => break },
            _ = &mut shutdown => break,
        };
        let stream = tokio::select! {
            r = listener.accept() => r,
            _ = &mut shutdown => break,
        };
        let (stream, peer) = match stream {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of descriptors (or a connection reset before accept): wait a little rather
                // than spin, and say so once a minute rather than per attempt.
                if descriptor_warning.is_none_or(|t| t.elapsed() > Duration::from_secs(60)) {
                    tracing::warn!(error = %e, "accept failed; retrying");
                    descriptor_warning = Some(Instant::now());
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        // Every request carries its connection's peer address (sign-in attempts are limited
        // per address).
        let svc = service
            .clone()
            .map_request(move |r: hyper::Request<hyper::body::Incoming>| {
                let mut r = r.map(axum::body::Body::new);
                r.extensions_mut()
                    .insert(opencm_portal::ClientAddress(peer));
                r
            });
        let builder = builder.clone();
        let watcher = graceful.watcher();
        let tls = tls.clone();
        let header_timeout = limits.header_timeout;
        let max_header_bytes = limits.max_header_bytes;
        let idle_timeout = limits.idle_timeout;
        tokio::spawn(async move {
            let _slot = slot;
            let result = match tls {
                Some(acceptor) => {
                    let io = IdleTimeout::new(stream, idle_timeout);
                    match tokio::time::timeout(header_timeout, acceptor.accept(io)).await {
                        Ok(Ok(tls)) => {
                            // The client certificate the handshake verified, if the client sent
                            // one: every request of the connection carries it.
                            let peer = tls
                                .get_ref()
                                .1
                                .peer_certificates()
                                .and_then(|c| c.first())
                                .map(|c| opencm_app::PeerCertificate(Arc::new(c.to_vec())));
                            let svc = TowerToHyperService::new(svc.map_request(
                                move |mut r: hyper::Request<hyper::body::Incoming>| {
                                    if let Some(p) = &peer {
                                        r.extensions_mut().insert(p.clone());
                                    }
                                    r
                                },
                            ));
                            let io = TokioIo::new(CannedErrors::new(tls, max_header_bytes));
                            let conn = builder.serve_connection_with_upgrades(io, svc);
                            watcher.watch(conn.into_owned()).await
                        }
                        Ok(Err(e)) => {
                            tracing::debug!(error = %e, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!("TLS handshake timed out");
                            return;
                        }
                    }
                }
                None => {
                    // A connection must start its request within the header timeout (hyper's
                    // own timer starts only once it knows the protocol).
                    let mut first = [0u8; 1];
                    if !matches!(
                        tokio::time::timeout(header_timeout, stream.peek(&mut first)).await,
                        Ok(Ok(1))
                    ) {
                        tracing::debug!("no request within the header timeout");
                        return;
                    }
                    let io =
                        CannedErrors::new(IdleTimeout::new(stream, idle_timeout), max_header_bytes);
                    let svc = TowerToHyperService::new(svc);
                    let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), svc);
                    watcher.watch(conn.into_owned()).await
                }
            };
            if let Err(e) = result {
                tracing::debug!(error = %e, "connection closed with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
}
