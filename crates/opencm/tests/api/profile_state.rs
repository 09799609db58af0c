//! The state of a profile is checked when a request on it executes and when it completes, not
//! only when the request is created (issue #6): a request made on an Active profile cannot run or
//! complete after someone else revoked, suspended or superseded that profile. Each refusal is a
//! 409 whose code names the profile's state, and changes nothing. Both engines.

use crate::helpers::*;
use crate::issuance::{crl_check, csr, enrol, post_csrs, save_ca, serial_of, Work, P256};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// The helpdesk (carol) revokes `profile`.
async fn revoke(app: &TestApp, profile: &str) {
    let id = app.request_on("carol", "Revoke", profile).await;
    let (s, v) = app.put_status("carol", &id, "Completed").await;
    assert_eq!(s, StatusCode::OK, "{v}");
}

async fn profile(app: &TestApp, id: &str) -> Value {
    let (s, v) = app.get("admin", &format!("/profiles/{id}")).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v
}

fn code(v: &Value) -> &str {
    v["ErrorCode"].as_str().unwrap_or_default()
}

async fn a_renew_cannot_execute_after_the_profile_was_revoked_and_issues_nothing(app: TestApp) {
    let w = Work::new();
    let (p, _) = enrol(&app, &w, "alice", "first").await;
    let renew = app.request_on("alice", "Renew", &p).await;
    revoke(&app, &p).await;
    let certs_before = app
        .get("admin", &format!("/profiles/{p}/certificates"))
        .await
        .1;
    let history_before = app.history(&renew).await.len();

    let (s, v) = post_csrs(
        &app,
        "alice",
        &renew,
        json!({"certificaterequests": [csr(&w, "renewed", P256)]}),
    )
    .await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::CONFLICT, "ProfileDisabled"),
        "{}: {v}",
        app.engine()
    );
    assert!(
        v["Message"].as_str().unwrap().contains("is Disabled"),
        "{v}"
    );
    let (_, r) = app.get("alice", &format!("/requests/{renew}")).await;
    assert_eq!(r["Status"], 3, "still Approved");
    assert_eq!(r["NewProfileUuid"], "00000000-0000-0000-0000-000000000000");
    assert_eq!(app.history(&renew).await.len(), history_before);
    assert_eq!(
        app.get("admin", &format!("/profiles/{p}/certificates"))
            .await
            .1,
        certs_before
    );
    assert_eq!(
        profile(&app, &p).await["Status"],
        3,
        "Disabled, not Retired"
    );
    // Nor can it complete: there is nothing to complete, and the profile is revoked.
    let (s, v) = app.put_status("alice", &renew, "Completed").await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert_eq!(profile(&app, &p).await["Status"], 3);
}
on_each_engine!(a_renew_cannot_execute_after_the_profile_was_revoked_and_issues_nothing);

async fn a_renew_executed_before_the_revocation_cannot_complete_and_abandoning_it_revokes_its_certificate(
    app: TestApp,
) {
    let w = Work::new();
    save_ca(&app, &w).await;
    let (p, _) = enrol(&app, &w, "alice", "first").await;
    let renew = app.request_on("alice", "Renew", &p).await;
    let (s, v) = post_csrs(
        &app,
        "alice",
        &renew,
        json!({"certificaterequests": [csr(&w, "renewed", P256)]}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let renewed = crate::issuance::leaf_of(&w, v[0]["Pkcs7"].as_str().unwrap());
    let renewed_path = w.p("renewed.crt");
    std::fs::copy(&renewed, &renewed_path).unwrap();
    revoke(&app, &p).await;

    let (s, v) = app.put_status("alice", &renew, "Completed").await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::CONFLICT, "ProfileDisabled"),
        "{}: {v}",
        app.engine()
    );
    let (_, r) = app.get("alice", &format!("/requests/{renew}")).await;
    assert_eq!(r["Status"], 18, "still Executing");
    let new_profile = r["NewProfileUuid"].as_str().unwrap().to_string();
    assert_eq!(
        profile(&app, &p).await["Status"],
        3,
        "the revoked profile stays Disabled"
    );
    assert_eq!(
        profile(&app, &p).await["Flags"].as_i64().unwrap() & 32,
        0,
        "not superseded"
    );
    assert_eq!(
        profile(&app, &new_profile).await["Status"],
        0,
        "the renewal never became Active"
    );

    // The executor gives up: what the renewal issued is revoked and on the CRL.
    let (s, _) = app.put_status("alice", &renew, "Abandoned").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(profile(&app, &new_profile).await["Status"], 3);
    let (text, ok, _) = crl_check(&app, &w, &renewed_path).await;
    assert!(!ok, "the abandoned renewal's certificate is revoked");
    assert!(text.contains(&serial_of(&renewed_path)), "{text}");
}
on_each_engine!(a_renew_executed_before_the_revocation_cannot_complete_and_abandoning_it_revokes_its_certificate);

async fn of_two_renews_on_one_profile_only_one_completes(app: TestApp) {
    let w = Work::new();
    let (p, _) = enrol(&app, &w, "alice", "first").await;
    let mut renews = Vec::new();
    for tag in ["a", "b"] {
        let id = app.request_on("alice", "Renew", &p).await;
        let (s, v) = post_csrs(
            &app,
            "alice",
            &id,
            json!({"certificaterequests": [csr(&w, tag, P256)]}),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        renews.push(id);
    }
    // Both at once: the version check lets exactly one through.
    let (a, b) = tokio::join!(
        app.put_status("alice", &renews[0], "Completed"),
        app.put_status("alice", &renews[1], "Completed")
    );
    let outcomes = [a.0, b.0];
    assert_eq!(
        outcomes.iter().filter(|s| **s == StatusCode::OK).count(),
        1,
        "{}: {a:?} {b:?}",
        app.engine()
    );
    let loser = if a.0 == StatusCode::OK { &b.1 } else { &a.1 };
    assert_eq!(code(loser), "ProfileRetired", "{loser}");
    let old = profile(&app, &p).await;
    assert_eq!(
        (old["Status"].as_i64(), old["Flags"].as_i64().unwrap() & 32),
        (Some(6), 32)
    );
    let (_, actives) = app.get("alice", "/profiles?status=Active").await;
    let children: Vec<&Value> = actives
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["ParentProfileUuid"] == p.as_str())
        .collect();
    assert_eq!(children.len(), 1, "one Active renewal: {actives}");
}
on_each_engine!(of_two_renews_on_one_profile_only_one_completes);

async fn a_suspend_on_a_revoked_profile_is_409_and_changes_nothing(app: TestApp) {
    let w = Work::new();
    save_ca(&app, &w).await;
    let (p, leaf) = enrol(&app, &w, "alice", "first").await;
    let suspend = app.request_on("alice", "Suspend", &p).await;
    revoke(&app, &p).await;
    let history_before = app.history(&suspend).await.len();
    let (s, v) = app.put_status("alice", &suspend, "Completed").await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::CONFLICT, "ProfileDisabled"),
        "{}: {v}",
        app.engine()
    );
    assert_eq!(app.status_of(&suspend).await, 3, "still Approved");
    assert_eq!(app.history(&suspend).await.len(), history_before);
    assert_eq!(profile(&app, &p).await["Status"], 3);
    // The certificate stays revoked (reason unspecified), not put on hold.
    let (text, ok, _) = crl_check(&app, &w, &leaf).await;
    assert!(!ok);
    assert!(!text.contains("Certificate Hold"), "{text}");
    // A retired profile never becomes anything else either.
    let retire = app.request_on("alice", "Retire", &p).await;
    assert_eq!(
        app.put_status("alice", &retire, "Completed").await.0,
        StatusCode::OK
    );
    for kind in ["Suspend", "Renew", "Retire"] {
        let (s, v, _) = app
            .send(
                "alice",
                Method::POST,
                "/requests",
                Some(json!({"type": kind, "profile": p})),
            )
            .await;
        assert_eq!(
            (s, code(&v)),
            (StatusCode::CONFLICT, "ProfileRetired"),
            "{kind}: {v}"
        );
    }
    assert_eq!(profile(&app, &p).await["Status"], 6);
}
on_each_engine!(a_suspend_on_a_revoked_profile_is_409_and_changes_nothing);

async fn completing_an_enroll_that_issued_nothing_is_409_and_changes_nothing(app: TestApp) {
    let id = app.create("alice", SOFTWARE).await;
    let (s, v) = app.put_status("alice", &id, "Completed").await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::CONFLICT, "NothingIssued"),
        "{}: {v}",
        app.engine()
    );
    assert!(
        v["Message"].as_str().unwrap().contains("certificatedata"),
        "{v}"
    );
    assert_eq!(app.status_of(&id).await, 3, "still Approved");
    assert_eq!(app.history(&id).await.len(), 1);
    // Canceling it is always possible.
    assert_eq!(
        app.put_status("alice", &id, "Canceled").await.0,
        StatusCode::OK
    );
}
on_each_engine!(completing_an_enroll_that_issued_nothing_is_409_and_changes_nothing);

async fn completing_a_renew_that_issued_nothing_is_409_and_leaves_the_profile_active(app: TestApp) {
    let w = Work::new();
    let (p, _) = enrol(&app, &w, "alice", "first").await;
    let id = app.request_on("alice", "Renew", &p).await;
    let (s, v) = app.put_status("alice", &id, "Completed").await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::CONFLICT, "NothingIssued"),
        "{}: {v}",
        app.engine()
    );
    assert_eq!(profile(&app, &p).await["Status"], 2, "still Active");
}
on_each_engine!(completing_a_renew_that_issued_nothing_is_409_and_leaves_the_profile_active);

async fn completing_a_recover_that_delivered_no_keys_is_409(app: TestApp) {
    // A profile with archived server-generated keys.
    let id = app.create("alice", SERVER_KEYS).await;
    let password = json!({"pfxpassword": "e3b9f0c4-4e1f-4a5e-9d55-0a1d4f7c2b6e"});
    let (s, v) = post_csrs(&app, "alice", &id, password.clone()).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        app.put_status("alice", &id, "Completed").await.0,
        StatusCode::OK
    );
    let (_, req) = app.get("alice", &format!("/requests/{id}")).await;
    let p = req["NewProfileUuid"].as_str().unwrap().to_string();
    let recover = app.request_on("alice", "Recover", &p).await;
    let (s, v) = app.put_status("alice", &recover, "Completed").await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::CONFLICT, "NothingIssued"),
        "{}: {v}",
        app.engine()
    );
    assert_eq!(app.status_of(&recover).await, 3, "still Approved");
    // Once the keys are delivered it completes.
    let (s, v) = post_csrs(&app, "alice", &recover, password).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        app.put_status("alice", &recover, "Completed").await.0,
        StatusCode::OK
    );
}
on_each_engine!(completing_a_recover_that_delivered_no_keys_is_409);

async fn a_signing_failure_gives_the_claim_back_and_certificatedata_can_run_again(app: TestApp) {
    use std::sync::atomic::Ordering;
    let w = Work::new();
    let id = app.create("alice", SOFTWARE).await;
    let body = json!({"certificaterequests": [csr(&w, "retry", P256)]});
    app.ca.fail.store(true, Ordering::SeqCst);
    let (s, v) = post_csrs(&app, "alice", &id, body.clone()).await;
    app.ca.fail.store(false, Ordering::SeqCst);
    assert_eq!(
        (s, code(&v)),
        (StatusCode::INTERNAL_SERVER_ERROR, "InternalError"),
        "{v}"
    );
    assert!(
        !v["Message"].as_str().unwrap().contains("injected"),
        "no internals: {v}"
    );
    let (_, r) = app.get("alice", &format!("/requests/{id}")).await;
    assert_eq!(r["Status"], 18, "still Executing");
    assert_eq!(r["NewProfileUuid"], "00000000-0000-0000-0000-000000000000");
    let actions: Vec<String> = app
        .history(&id)
        .await
        .iter()
        .map(|e| e["Action"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        actions,
        ["Create", "Execute", "Release"],
        "{}",
        app.engine()
    );
    let (_, reserved) = app.get("alice", &format!("/requests/{id}/profiles")).await;
    assert_eq!(
        reserved[0]["Status"], 3,
        "the empty reserved profile is disabled: {reserved}"
    );
    // The client tries again: this time it is issued and completes, with one Active profile.
    let (s, v) = post_csrs(&app, "alice", &id, body).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        app.put_status("alice", &id, "Completed").await.0,
        StatusCode::OK
    );
    let (_, actives) = app.get("alice", "/profiles?status=Active").await;
    assert_eq!(actives.as_array().unwrap().len(), 1, "{actives}");
}
on_each_engine!(a_signing_failure_gives_the_claim_back_and_certificatedata_can_run_again);
