//! docs/API.md, "The request lifecycle" over HTTP: every row of the PUT transition table, idempotent repeats, timestamps, audit
//! events, and concurrent PUTs on one request — on SQLite and on PostgreSQL.

use crate::helpers::*;
use reqwest::StatusCode;

/// Puts a fresh request owned by alice into `state` and returns its id.
async fn request_in(app: &TestApp, state: &str) -> String {
    match state {
        "Pending" => app.create("alice", VSC).await,
        "Approved" => app.create("alice", WORKFLOW).await,
        "Executing" => {
            let id = app.create("alice", WORKFLOW).await;
            app.begin_execution("alice", &id).await;
            id
        }
        "Denied" => {
            let id = app.create("alice", VSC).await;
            assert_eq!(app.decide("bob", &id, "Deny").await.0, StatusCode::OK);
            id
        }
        "Completed" | "Canceled" | "Abandoned" => {
            let id = app.create("alice", WORKFLOW).await;
            assert_eq!(app.put_status("alice", &id, state).await.0, StatusCode::OK);
            id
        }
        _ => unreachable!(),
    }
}

/// docs/API.md, "The request lifecycle": (starting state, body status, expected HTTP status, expected final Status number).
pub const TRANSITIONS: &[(&str, &str, u16, i64)] = &[
    ("Pending", "Completed", 409, 16),
    ("Pending", "Canceled", 200, 17),
    ("Pending", "Abandoned", 409, 16),
    ("Approved", "Completed", 200, 8),
    ("Approved", "Canceled", 200, 17),
    ("Approved", "Abandoned", 200, 9),
    ("Executing", "Completed", 200, 8),
    ("Executing", "Canceled", 200, 17),
    ("Executing", "Abandoned", 200, 9),
    ("Denied", "Completed", 409, 4),
    ("Denied", "Canceled", 409, 4),
    ("Denied", "Abandoned", 409, 4),
    ("Completed", "Completed", 200, 8),
    ("Completed", "Canceled", 409, 8),
    ("Completed", "Abandoned", 409, 8),
    ("Canceled", "Completed", 409, 17),
    ("Canceled", "Canceled", 200, 17),
    ("Canceled", "Abandoned", 409, 17),
    ("Abandoned", "Completed", 409, 9),
    ("Abandoned", "Canceled", 409, 9),
    ("Abandoned", "Abandoned", 200, 9),
];

async fn every_row_of_the_put_transition_table(app: TestApp) {
    let table = TRANSITIONS;
    for (from, to, code, final_status) in table {
        let id = request_in(&app, from).await;
        let events_before = app.history(&id).await.len();
        app.clock.advance_ms(1500);
        let (s, v) = app.put_status("alice", &id, to).await;
        let ctx = format!("{} {from} -> {to}: {v}", app.engine());
        assert_eq!(s.as_u16(), *code, "{ctx}");
        assert_eq!(app.status_of(&id).await, *final_status, "{ctx}");
        let events_after = app.history(&id).await.len();
        let changed = *code == 200 && !["Completed", "Canceled", "Abandoned"].contains(from);
        assert_eq!(events_after, events_before + usize::from(changed), "{ctx}");
        if *code == 200 {
            assert_eq!(v["Status"], *final_status, "{ctx}");
            assert!(v["Completed"].as_str().unwrap().ends_with('Z'), "{ctx}");
            if changed {
                assert_eq!(v["Completed"], app.clock_now_string(), "{ctx}");
            }
        } else {
            assert_eq!(v["ErrorCode"], "InvalidTransition", "{ctx}");
            let current = if *from == "Abandoned" { "Failed" } else { from };
            assert!(v["Message"].as_str().unwrap().contains(current), "{ctx}");
        }
    }
}
on_each_engine!(every_row_of_the_put_transition_table);

impl TestApp {
    pub fn clock_now_string(&self) -> String {
        use opencm_app::ports::Clock;
        self.clock.now().to_string()
    }
}

async fn a_repeated_put_returns_the_unchanged_request_without_a_new_timestamp_or_event(
    app: TestApp,
) {
    let id = app.create("alice", WORKFLOW).await;
    let (s, first) = app.put_status("alice", &id, "Completed").await;
    assert_eq!(s, StatusCode::OK);
    app.clock.advance_ms(60_000);
    let (s, again) = app.put_status("alice", &id, "completed").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(first, again, "{}", app.engine());
    let h = app.history(&id).await;
    assert_eq!(
        h.iter()
            .map(|e| e["Action"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["Create", "Complete"]
    );
}
on_each_engine!(a_repeated_put_returns_the_unchanged_request_without_a_new_timestamp_or_event);

#[tokio::test]
async fn other_status_names_are_400_listing_the_three_allowed() {
    let app = TestApp::sqlite().await;
    let id = app.create("alice", WORKFLOW).await;
    for bad in ["Approved", "Failed", "Pending", "Done", "8"] {
        let (s, v) = app.put_status("alice", &id, bad).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(v["ErrorCode"], "InvalidStatus");
        let m = v["Message"].as_str().unwrap();
        assert!(m.contains("Completed, Canceled, Abandoned"), "{m}");
    }
    assert_eq!(app.status_of(&id).await, 3);
}

#[tokio::test]
async fn rights_decide_who_may_complete_cancel_or_abandon() {
    let app = TestApp::sqlite().await;
    let id = app.create("alice", WORKFLOW).await;
    // eve cannot read it: 404, not 403.
    assert_eq!(
        app.put_status("eve", &id, "Completed").await.0,
        StatusCode::NOT_FOUND
    );
    // Approvers may read (LCRC) but not execute.
    let (s, v) = app.put_status("bob", &id, "Completed").await;
    assert_eq!(
        (s, v["ErrorCode"].as_str()),
        (StatusCode::FORBIDDEN, Some("AccessDenied"))
    );
    assert_eq!(app.status_of(&id).await, 3);
    // With an enrollment agent required, the agent executes and the target may only cancel.
    let body = serde_json::json!({"profiletemplateuuid": AGENT_REQUIRED, "type": "Enroll", "datacollection": [{"Employee Number": "123456"}], "comment": "badge"});
    let (s, v, _) = app
        .send("alice", reqwest::Method::POST, "/requests", Some(body))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let agent_req = id_of(&v);
    assert_eq!(
        app.put_status("alice", &agent_req, "Completed").await.0,
        StatusCode::FORBIDDEN
    );
    // The agent may execute: on this smart card template, completing without a card is
    // refused for that reason (409), not for a missing right; abandoning is allowed.
    let (s, v) = app.put_status("carol", &agent_req, "Completed").await;
    assert_eq!(
        (s, v["ErrorCode"].as_str()),
        (StatusCode::CONFLICT, Some("SmartcardNotBound")),
        "{v}"
    );
    assert_eq!(
        app.put_status("carol", &agent_req, "Abandoned").await.0,
        StatusCode::OK
    );
    let id2 = app.create("alice", WORKFLOW).await;
    assert_eq!(
        app.put_status("admin", &id2, "Abandoned").await.0,
        StatusCode::OK
    );
    assert_eq!(app.status_of(&id2).await, 9);
}

async fn concurrent_puts_on_one_request_never_both_succeed(app: TestApp) {
    for round in 0..5 {
        let id = app.create("alice", WORKFLOW).await;
        let mut tasks = Vec::new();
        for i in 0..24 {
            let http = app.http.clone();
            let url = app.api(&format!("/requests/{id}"));
            let auth = app.auth("alice");
            let status = ["Completed", "Canceled", "Abandoned"][i % 3];
            tasks.push(tokio::spawn(async move {
                let r = http
                    .put(url)
                    .header("authorization", auth)
                    .json(&serde_json::json!({ "status": status }))
                    .send()
                    .await
                    .unwrap();
                (status, r.status().as_u16())
            }));
        }
        let mut results = Vec::new();
        for t in tasks {
            results.push(t.await.unwrap());
        }
        let winners: std::collections::HashSet<&str> = results
            .iter()
            .filter(|(_, c)| *c == 200)
            .map(|(s, _)| *s)
            .collect();
        assert_eq!(
            winners.len(),
            1,
            "{} round {round}: {results:?}",
            app.engine()
        );
        assert!(
            results
                .iter()
                .all(|(s, c)| *c == 409 || winners.contains(s)),
            "{results:?}"
        );
        let winner = *winners.iter().next().unwrap();
        let expected = match winner {
            "Completed" => 8,
            "Canceled" => 17,
            _ => 9,
        };
        assert_eq!(app.status_of(&id).await, expected);
        let h = app.history(&id).await;
        assert_eq!(h.len(), 2, "exactly one transition recorded: {h:?}");
    }
}
on_each_engine!(concurrent_puts_on_one_request_never_both_succeed);
