//! The approval flow: distinct approvers, the last approval approves, any deny denies, no
//! self-approval, and who may see the approvals.

use crate::helpers::*;
use reqwest::StatusCode;

async fn two_distinct_approvers_are_needed_and_the_second_approves(app: TestApp) {
    let id = app.create("alice", TWO_APPROVALS).await;
    assert_eq!(app.status_of(&id).await, 16);
    let (s, v) = app.decide("bob", &id, "Approve").await;
    assert_eq!(
        (s, v["Status"].as_i64()),
        (StatusCode::OK, Some(16)),
        "{}",
        app.engine()
    );
    let (s, v) = app.decide("bob", &id, "approve").await;
    assert_eq!(
        (s, v["ErrorCode"].as_str()),
        (StatusCode::CONFLICT, Some("AlreadyDecided"))
    );
    let (s, v) = app.decide("dave", &id, "Approve").await;
    assert_eq!((s, v["Status"].as_i64()), (StatusCode::OK, Some(3)));
    assert_eq!(v["Completed"], "0001-01-01T00:00:00");
    let (s, list) = app.get("alice", &format!("/requests/{id}/approvals")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert_eq!(list[0]["Decision"], "Approve");
    // Further decisions on an approved request are a state conflict.
    assert_eq!(
        app.decide("admin", &id, "Deny").await.0,
        StatusCode::CONFLICT
    );
    assert_eq!(
        app.put_status("alice", &id, "Completed").await.0,
        StatusCode::OK
    );
}
on_each_engine!(two_distinct_approvers_are_needed_and_the_second_approves);

#[tokio::test]
async fn a_deny_ends_the_request_as_denied() {
    let app = TestApp::sqlite().await;
    let id = app.create("alice", VSC).await;
    let (s, v, _) = app
        .send(
            "bob",
            reqwest::Method::POST,
            &format!("/requests/{id}/approvals"),
            Some(serde_json::json!({"Decision": "Deny", "Comment": "not today"})),
        )
        .await;
    assert_eq!((s, v["Status"].as_i64()), (StatusCode::OK, Some(4)));
    let h = app.history(&id).await;
    assert_eq!(h.last().unwrap()["Action"], "Deny");
    assert_eq!(h.last().unwrap()["Detail"], "not today");
    assert_eq!(
        app.put_status("alice", &id, "Completed").await.0,
        StatusCode::CONFLICT
    );
}

#[tokio::test]
async fn nobody_approves_their_own_request_and_non_approvers_are_refused() {
    let app = TestApp::sqlite().await;
    // bob is an approver, but this is his own request: the request descriptor denies him LC.
    let id = app.create("bob", VSC).await;
    let (s, v) = app.decide("bob", &id, "Approve").await;
    assert_eq!(
        (s, v["ErrorCode"].as_str()),
        (StatusCode::FORBIDDEN, Some("AccessDenied"))
    );
    // eve cannot even see it.
    assert_eq!(
        app.decide("eve", &id, "Approve").await.0,
        StatusCode::NOT_FOUND
    );
    // dave, another approver, can.
    assert_eq!(app.decide("dave", &id, "Approve").await.1["Status"], 3);
    // Unknown decisions are 400 and change nothing.
    let id2 = app.create("alice", VSC).await;
    let (s, v) = app.decide("bob", &id2, "Maybe").await;
    assert_eq!(
        (s, v["ErrorCode"].as_str()),
        (StatusCode::BAD_REQUEST, Some("InvalidDecision"))
    );
    assert_eq!(app.status_of(&id2).await, 16);
    assert_eq!(app.history(&id2).await.len(), 1);
}

async fn concurrent_approvals_by_different_approvers_count_once_each(app: TestApp) {
    let id = app.create("alice", TWO_APPROVALS).await;
    let (a, b) = tokio::join!(
        app.decide("bob", &id, "Approve"),
        app.decide("dave", &id, "Approve")
    );
    assert_eq!(
        (a.0, b.0),
        (StatusCode::OK, StatusCode::OK),
        "{}",
        app.engine()
    );
    assert_eq!(app.status_of(&id).await, 3);
    assert_eq!(app.history(&id).await.len(), 3);
}
on_each_engine!(concurrent_approvals_by_different_approvers_count_once_each);
