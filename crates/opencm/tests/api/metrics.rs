//! `/metrics` as Prometheus scrapes it, on the real binary: Prometheus' own `promtool check
//! metrics` accepts the exposition; a token keeps strangers out; counters move as the API is
//! used (requests by type and outcome, authentication failures, CRLs and OCSP responses, HTTP
//! requests by route template, group commits) and the database's gauges follow its rows; a
//! separate listener takes `/metrics` off the main one.

use crate::blackbox::{create, put, start_with};
use opencm_store::testing::{fresh_sqlite_url, scratch_dir};
use std::collections::HashMap;

/// Every sample of the exposition: `name{labels}` → value.
fn samples(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            Some((k.to_string(), v.parse().ok()?))
        })
        .collect()
}

fn value(s: &HashMap<String, f64>, key: &str) -> f64 {
    s.get(key).copied().unwrap_or(0.0)
}

fn promtool(text: &str) -> (bool, String) {
    use std::io::Write;
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run promtool (Debian's prometheus)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[tokio::test]
#[cfg_attr(
    not(opencm_promtool_tests),
    ignore = "Prometheus' promtool: apt-get install prometheus"
)]
async fn promtool_accepts_the_metrics_and_counters_move_as_the_api_is_used() {
    let dir = scratch_dir("metrics");
    std::fs::write(dir.join("token"), "scrape-me-please\n").unwrap();
    let config = dir.join("opencm.toml");
    std::fs::write(
        &config,
        format!(
            "[metrics]\ntoken_file = \"{}\"\n",
            dir.join("token").display()
        ),
    )
    .unwrap();
    let db = fresh_sqlite_url();
    let s = start_with(&db, true, &[("OPENCM_CONFIG", config.to_str().unwrap())])
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let scrape = || async {
        let r = http
            .get(format!("{}/metrics", s.base))
            .bearer_auth("scrape-me-please")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(
            r.headers()["content-type"],
            "text/plain; version=0.0.4; charset=utf-8"
        );
        r.text().await.unwrap()
    };

    // Without the token, or with another: 401, and the failure is counted.
    for auth in [None, Some("Bearer nope")] {
        let mut r = http.get(format!("{}/metrics", s.base));
        if let Some(a) = auth {
            r = r.header("authorization", a);
        }
        let r = r.send().await.unwrap();
        assert_eq!(r.status(), 401);
        assert!(r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer"));
    }

    let before = scrape().await;
    let (ok, lint) = promtool(&before);
    assert!(ok, "promtool check metrics: {lint}\n{before}");
    let b = samples(&before);

    // Act: two requests created, one completed; a refused token; a CRL; an OCSP request.
    let alice = s.tokens["alice"].clone();
    let first = create(&http, &s, &alice).await;
    create(&http, &s, &alice).await;
    assert_eq!(
        put(
            &http,
            s.api(&format!("/requests/{first}")),
            &alice,
            "Completed"
        )
        .await,
        Some(200)
    );
    let r = http
        .get(s.api("/requests"))
        .bearer_auth("ocm_not-a-token")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        http.get(format!("{}/pki/crl", s.base))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    http.post(format!("{}/ocsp", s.base))
        .header("content-type", "application/ocsp-request")
        .body(vec![0x30, 0x00])
        .send()
        .await
        .unwrap();

    let after = scrape().await;
    let (ok, lint) = promtool(&after);
    assert!(ok, "promtool check metrics: {lint}\n{after}");
    let a = samples(&after);
    let moved = |key: &str| value(&a, key) - value(&b, key);
    assert_eq!(
        moved(r#"opencm_requests_total{outcome="created",type="Enroll"}"#),
        2.0,
        "{after}"
    );
    assert_eq!(
        moved(r#"opencm_requests_total{outcome="completed",type="Enroll"}"#),
        1.0
    );
    assert_eq!(
        moved(r#"opencm_authentication_failures_total{scheme="bearer"}"#),
        1.0
    );
    assert_eq!(
        moved(r#"opencm_authentication_failures_total{scheme="metrics_token"}"#),
        0.0,
        "counted before the first scrape"
    );
    assert_eq!(
        value(
            &a,
            r#"opencm_authentication_failures_total{scheme="metrics_token"}"#
        ),
        2.0
    );
    assert_eq!(moved("opencm_crl_responses_total"), 1.0);
    assert_eq!(
        moved(r#"opencm_ocsp_responses_total{status="malformedRequest"}"#),
        1.0
    );
    // HTTP requests by route template, not by path.
    assert_eq!(
        moved(
            r#"opencm_http_requests_total{method="PUT",route="/certificatemanagement/api/v1.0/requests/{id}",status="200"}"#
        ),
        1.0,
        "{after}"
    );
    assert!(!after.contains(&first), "no request id in a label");
    assert!(
        moved(
            r#"opencm_http_request_duration_seconds_count{method="POST",route="/certificatemanagement/api/v1.0/requests"}"#
        ) >= 2.0
    );
    // Three commits at least (two creations and a completion), in batches of one or more.
    assert!(
        moved("opencm_database_write_batch_size_count") >= 1.0,
        "{after}"
    );
    assert!(value(&a, "opencm_database_write_batch_size_sum") >= 3.0);
    assert!(
        value(
            &a,
            r#"opencm_database_commit_duration_seconds_bucket{le="+Inf"}"#
        ) >= 1.0
    );
    assert_eq!(
        value(&a, r#"opencm_certificates_expiring{within_days="30"}"#),
        0.0
    );
    assert!(after.contains("# TYPE opencm_certificates_expiring gauge"));
    assert!(after.contains(&format!(
        "opencm_build_info{{version=\"{}\"}} 1",
        env!("CARGO_PKG_VERSION")
    )));
    drop(s);

    // A separate listener: /metrics there, not on the main one.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    std::fs::write(
        &config,
        format!("[metrics]\nlisten = \"127.0.0.1:{port}\"\n"),
    )
    .unwrap();
    let s = start_with(
        &db,
        false,
        &[
            ("OPENCM_CONFIG", config.to_str().unwrap()),
            ("OPENCM_HEADER_TIMEOUT_SECS", "1"),
            ("OPENCM_IDLE_TIMEOUT_SECS", "2"),
        ],
    )
    .await
    .unwrap();
    // That listener has the main one's timeouts: a connection that sends a header line and then
    // nothing is closed (it would otherwise hold a file for ever, whatever the token).
    {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut silent = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        silent
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        let mut buf = Vec::new();
        let closed = tokio::time::timeout(
            std::time::Duration::from_secs(20),
            silent.read_to_end(&mut buf),
        )
        .await;
        assert!(
            closed.is_ok(),
            "the silent connection is still open after 20 s"
        );
    }
    assert_eq!(
        http.get(format!("{}/metrics", s.base))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    let text = http
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(promtool(&text).0, "{text}");
    assert!(text.contains("opencm_http_requests_total") || text.contains("opencm_build_info"));
}
