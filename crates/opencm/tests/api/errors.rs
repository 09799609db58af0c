//! Every error class of docs/API.md, "Errors": each answers the JSON error body with a correlation id, and
//! changes nothing.

use crate::helpers::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

#[tokio::test]
async fn malformed_json_names_line_and_column() {
    let app = TestApp::sqlite().await;
    let id = app.create("alice", WORKFLOW).await;
    let (s, v, h) = raw(
        &app,
        "alice",
        Method::PUT,
        &format!("/requests/{id}"),
        Some("application/json"),
        b"{\n  \"status\": \"Completed\",\n}".to_vec(),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&v, &h), "MalformedJson");
    assert!(
        v["Message"].as_str().unwrap().contains("line 3 column 1"),
        "{v}"
    );
    assert_eq!(app.status_of(&id).await, 3);
}

#[tokio::test]
async fn typographic_quotes_get_a_message_that_says_so() {
    let app = TestApp::sqlite().await;
    let id = app.create("alice", WORKFLOW).await;
    // The Spanish edition of the MIM reference page, exactly as published.
    let body = "{\n    \u{201C}status\u{201D}:\u{201D}Completed\u{201D}\n}";
    let (s, v, h) = raw(
        &app,
        "alice",
        Method::PUT,
        &format!("/requests/{id}"),
        Some("application/json"),
        body.as_bytes().to_vec(),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&v, &h), "MalformedJson");
    let m = v["Message"].as_str().unwrap();
    assert!(
        m.contains("typographic quotes") && m.contains("line 2 column 5"),
        "{m}"
    );
    // And inside a datacollection string (the enrollment walkthrough's body).
    let body = json!({"datacollection": "[{\u{201C}Request Reason\u{201D}:\u{201D}Need VPN Certs\u{201D}}]", "type": "Enroll", "profiletemplateuuid": VSC, "comment": "x"});
    let (s, v, _) = app
        .send("alice", Method::POST, "/requests", Some(body))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        v["Message"]
            .as_str()
            .unwrap()
            .contains("'datacollection' string contains typographic quotes"),
        "{v}"
    );
    assert_eq!(app.status_of(&id).await, 3);
}

#[tokio::test]
async fn wrong_content_types_are_415_and_oversized_bodies_413() {
    let app = TestApp::sqlite().await;
    let id = app.create("alice", WORKFLOW).await;
    for ct in [
        None,
        Some("application/x-www-form-urlencoded"),
        Some("text/plain"),
    ] {
        let (s, v, h) = raw(
            &app,
            "alice",
            Method::PUT,
            &format!("/requests/{id}"),
            ct,
            br#"{"status":"Completed"}"#.to_vec(),
        )
        .await;
        assert_eq!(s, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{ct:?}");
        assert_eq!(error_code(&v, &h), "UnsupportedMediaType");
    }
    let (s, _, _) = raw(
        &app,
        "alice",
        Method::PUT,
        &format!("/requests/{id}"),
        Some("application/json; charset=utf-8"),
        br#"{"status":"Canceled"}"#.to_vec(),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let id = app.create("alice", WORKFLOW).await;
    let mut big = br#"{"status":"Completed","pad":""#.to_vec();
    big.extend(std::iter::repeat_n(b'x', 1 << 20));
    big.extend(br#""}"#);
    let (s, v, h) = raw(
        &app,
        "alice",
        Method::PUT,
        &format!("/requests/{id}"),
        Some("application/json"),
        big,
    )
    .await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(error_code(&v, &h), "PayloadTooLarge");
    assert_eq!(app.status_of(&id).await, 3);
}

#[tokio::test]
async fn unknown_properties_are_ignored_and_names_match_case_insensitively() {
    let app = TestApp::sqlite().await;
    let id = app.create("alice", WORKFLOW).await;
    let (s, v, _) = app
        .send(
            "alice",
            Method::PUT,
            &format!("/requests/{id}"),
            Some(json!({"STATUS": "completed", "Reason": "ignored"})),
        )
        .await;
    assert_eq!((s, v["Status"].as_i64()), (StatusCode::OK, Some(8)));
}

#[tokio::test]
async fn bad_guids_unknown_enums_and_unknown_objects() {
    let app = TestApp::sqlite().await;
    let (s, v) = app.get("alice", "/requests/not-a-guid").await;
    assert_eq!(
        (s, v["ErrorCode"].as_str()),
        (StatusCode::BAD_REQUEST, Some("InvalidGuid"))
    );
    let (s, v) = app
        .get("alice", "/requests/8f1590dc-d932-4b66-8e68-2e91c5880780")
        .await;
    assert_eq!(
        (s, v["ErrorCode"].as_str()),
        (StatusCode::NOT_FOUND, Some("RequestNotFound"))
    );
    let (s, v) = app.get("alice", "/requests?status=Sleeping").await;
    assert_eq!(
        (s, v["ErrorCode"].as_str()),
        (StatusCode::BAD_REQUEST, Some("InvalidStatus"))
    );
    let body = json!({"profiletemplateuuid": SOFTWARE, "type": "Enrol", "datacollection": "[]"});
    let (s, v, _) = app
        .send("alice", Method::POST, "/requests", Some(body))
        .await;
    assert_eq!(
        (s, v["ErrorCode"].as_str()),
        (StatusCode::BAD_REQUEST, Some("InvalidRequestType"))
    );
    assert!(v["Message"].as_str().unwrap().contains("Enroll, Recover"));
    let body =
        json!({"profiletemplateuuid": "{97CD65FA-AF4B-4587-9309-0DD6BFD8B4E1}", "type": "Enroll"});
    let (s, v, _) = app
        .send("alice", Method::POST, "/requests", Some(body))
        .await;
    assert_eq!(
        (s, v["ErrorCode"].as_str()),
        (StatusCode::NOT_FOUND, Some("ProfileTemplateNotFound"))
    );
    let body = json!({"profiletemplateuuid": "97CD65FA", "type": "Enroll"});
    assert_eq!(
        app.send("alice", Method::POST, "/requests", Some(body))
            .await
            .0,
        StatusCode::BAD_REQUEST
    );
    let (s, v) = app
        .get(
            "alice",
            "/profiletemplates/2b7044cf-aa96-4911-b886-177947e9271b/policies/recover",
        )
        .await;
    assert_eq!(
        (s, v["ErrorCode"].as_str()),
        (StatusCode::NOT_FOUND, Some("PolicyNotFound"))
    );
    let (s, v) = app
        .get(
            "alice",
            "/profiletemplates/2b7044cf-aa96-4911-b886-177947e9271b/policies/frobnicate",
        )
        .await;
    assert_eq!(
        (s, v["ErrorCode"].as_str()),
        (StatusCode::BAD_REQUEST, Some("InvalidRequestType"))
    );
    let (s, v) = app.get("alice", "/nothing/here").await;
    assert_eq!(
        (s, v["ErrorCode"].as_str()),
        (StatusCode::NOT_FOUND, Some("NotFound"))
    );
    let (s, v, h) = app.send("alice", Method::DELETE, "/requests", None).await;
    assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(error_code(&v, &h), "MethodNotAllowed");
    // Nothing was created by any of the above.
    assert_eq!(
        app.get("admin", "/requests")
            .await
            .1
            .as_array()
            .unwrap()
            .len(),
        0
    );
}

#[tokio::test]
async fn missing_or_bad_credentials_are_401_with_a_bearer_challenge() {
    let app = TestApp::sqlite().await;
    let r = app.http.get(app.api("/requests")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(r.headers()["www-authenticate"], r#"Bearer realm="opencm""#);
    let h = r.headers().clone();
    assert_eq!(error_code(&r.json().await.unwrap(), &h), "Unauthorized");
    for auth in ["Bearer ocm_wrong", "Basic YWxpY2U6cGFzcw==", "Bearer"] {
        let r = app
            .http
            .get(app.api("/requests"))
            .header("authorization", auth)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{auth}");
        assert!(r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer"));
    }
}

#[tokio::test]
async fn expired_tokens_are_refused() {
    let app = TestApp::sqlite().await;
    use opencm_app::ports::Clock;
    let now = app.clock.now();
    let past = opencm_domain::Timestamp::from_micros(now.micros() - 1);
    let token = app.core.create_token("alice", Some(past)).await.unwrap();
    let r = app
        .http
        .get(app.api("/requests"))
        .header("authorization", format!("Bearer {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("invalid_token"));
}

#[tokio::test]
async fn data_collection_and_policy_errors_say_what_is_wrong() {
    let app = TestApp::sqlite().await;
    let post = |body: serde_json::Value| app.send("alice", Method::POST, "/requests", Some(body));
    let (s, v, _) =
        post(json!({"profiletemplateuuid": AGENT_REQUIRED, "type": "Enroll", "comment": "c"}))
            .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        v["Message"]
            .as_str()
            .unwrap()
            .contains("'Employee Number' is required"),
        "{v}"
    );
    let (s, v, _) = post(json!({"profiletemplateuuid": AGENT_REQUIRED, "type": "Enroll", "comment": "c", "datacollection": [{"Employee Number": "12ab"}]})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        v["Message"]
            .as_str()
            .unwrap()
            .contains("'Employee Number' does not match"),
        "{v}"
    );
    let (s, v, _) = post(json!({"profiletemplateuuid": AGENT_REQUIRED, "type": "Enroll", "comment": "c", "datacollection": [{"Employee Number": "123456"}, {"Shoe Size": "44"}]})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        v["Message"]
            .as_str()
            .unwrap()
            .contains("'Shoe Size' is not part of the policy"),
        "{v}"
    );
    let (s, v, _) = post(json!({"profiletemplateuuid": AGENT_REQUIRED, "type": "Enroll", "datacollection": [{"Employee Number": "123456"}]})).await;
    assert_eq!(
        (s, v["ErrorCode"].as_str()),
        (StatusCode::BAD_REQUEST, Some("CommentRequired"))
    );
    let (s, v, _) = post(json!({"profiletemplateuuid": SOFTWARE, "type": "Recover"})).await;
    assert_eq!(
        (s, v["ErrorCode"].as_str()),
        (StatusCode::BAD_REQUEST, Some("PolicyNotEnabled"))
    );
    let (s, v, _) =
        post(json!({"profiletemplateuuid": SOFTWARE, "type": "Enroll", "priority": 300})).await;
    assert_eq!(
        (s, v["ErrorCode"].as_str()),
        (StatusCode::BAD_REQUEST, Some("InvalidPriority"))
    );
    let (s, v, _) =
        post(json!({"profiletemplateuuid": SOFTWARE, "type": "Enroll", "priority": "high"})).await;
    assert_eq!(
        (s, v["ErrorCode"].as_str()),
        (StatusCode::BAD_REQUEST, Some("InvalidBody"))
    );
    // Templates the caller may not read are 404; readable but without Enroll, 403.
    let (s, _, _) = post(json!({"profiletemplateuuid": HIDDEN, "type": "Enroll"})).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, v, _) = post(json!({"profiletemplateuuid": READ_ONLY, "type": "Enroll"})).await;
    assert_eq!(
        (s, v["ErrorCode"].as_str()),
        (StatusCode::FORBIDDEN, Some("AccessDenied"))
    );
    // Requests for others need the initiator role (carol has it, alice does not).
    let bob = app.users["bob"].uuid.to_string();
    let (s, known, _) =
        post(json!({"profiletemplateuuid": SOFTWARE, "type": "Enroll", "target": bob})).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // The same answer for a user who does not exist: alice learns nothing about who does.
    let nobody = opencm_domain::Guid::new_random().to_string();
    let (s, unknown, _) =
        post(json!({"profiletemplateuuid": SOFTWARE, "type": "Enroll", "target": nobody})).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(
        (&known["ErrorCode"], &known["Message"]),
        (&unknown["ErrorCode"], &unknown["Message"])
    );
    let (s, v, _) = app
        .send(
            "carol",
            Method::POST,
            "/requests",
            Some(json!({"profiletemplateuuid": SOFTWARE, "type": "Enroll", "target": bob})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(
        app.get("admin", "/requests")
            .await
            .1
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn a_database_outage_is_503_and_readyz_says_not_ready() {
    let app = TestApp::sqlite().await;
    let id = app.create("alice", WORKFLOW).await;
    assert_eq!(
        app.http
            .get(format!("{}/readyz", app.base))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    app.store.close().await;
    // The token is cached, so the request reaches the store and finds it unavailable.
    let (s, v, h) = app
        .send("alice", Method::GET, &format!("/requests/{id}"), None)
        .await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(error_code(&v, &h), "DatabaseUnavailable");
    assert!(
        !v["Message"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("pool"),
        "no internals: {v}"
    );
    let r = app
        .http
        .get(format!("{}/readyz", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        app.http
            .get(format!("{}/healthz", app.base))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_cached_token_stops_working_at_its_expiry() {
    let app = TestApp::sqlite().await;
    use opencm_app::ports::Clock;
    let now = app.clock.now();
    let soon = opencm_domain::Timestamp::from_micros(now.micros() + 1_000_000);
    let token = app.core.create_token("alice", Some(soon)).await.unwrap();
    let get = || {
        app.http
            .get(app.api("/requests"))
            .header("authorization", format!("Bearer {token}"))
            .send()
    };
    assert_eq!(
        get().await.unwrap().status(),
        StatusCode::OK,
        "valid, and now cached"
    );
    app.clock.advance_ms(1_500);
    let r = get().await.unwrap();
    assert_eq!(
        r.status(),
        StatusCode::UNAUTHORIZED,
        "expired even though it is in the cache"
    );
    assert!(r.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("invalid_token"));
}

/// A property named twice in different case is ambiguous: 400, and nothing changes (before, the
/// later `"Status":"Bogus"` was dropped and the request completed).
async fn a_property_named_twice_in_different_case_is_400_and_changes_nothing(app: TestApp) {
    let id = app.create("alice", WORKFLOW).await;
    let (s, v, _) = raw(
        &app,
        "alice",
        Method::PUT,
        &format!("/requests/{id}"),
        Some("application/json"),
        br#"{"status":"Completed","Status":"Bogus"}"#.to_vec(),
    )
    .await;
    assert_eq!(
        (s, v["ErrorCode"].as_str()),
        (StatusCode::BAD_REQUEST, Some("InvalidBody")),
        "{v}"
    );
    assert!(
        v["Message"].as_str().unwrap().contains("more than once"),
        "{v}"
    );
    assert_eq!(
        app.status_of(&id).await,
        3,
        "still Approved, {}",
        app.engine()
    );
    assert_eq!(app.history(&id).await.len(), 1);
}
on_each_engine!(a_property_named_twice_in_different_case_is_400_and_changes_nothing);

#[tokio::test]
async fn enum_names_match_in_any_case_but_are_not_trimmed() {
    let app = TestApp::sqlite().await;
    let id = app.create("alice", WORKFLOW).await;
    for padded in [" Completed ", "Completed\n", "\tcompleted"] {
        let (s, v, _) = app
            .send(
                "alice",
                Method::PUT,
                &format!("/requests/{id}"),
                Some(json!({ "status": padded })),
            )
            .await;
        assert_eq!(
            (s, v["ErrorCode"].as_str()),
            (StatusCode::BAD_REQUEST, Some("InvalidStatus")),
            "{padded:?}"
        );
    }
    let (s, v, _) = app
        .send(
            "alice",
            Method::POST,
            "/requests",
            Some(json!({"profiletemplateuuid": WORKFLOW, "type": " Enroll"})),
        )
        .await;
    assert_eq!(
        (s, v["ErrorCode"].as_str()),
        (StatusCode::BAD_REQUEST, Some("InvalidRequestType"))
    );
    assert_eq!(app.status_of(&id).await, 3);
    assert_eq!(
        app.put_status("alice", &id, "COMPLETED").await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn two_authorization_headers_are_400() {
    let app = TestApp::sqlite().await;
    let mut headers = reqwest::header::HeaderMap::new();
    for who in ["alice", "bob"] {
        headers.append(
            reqwest::header::AUTHORIZATION,
            app.auth(who).parse().unwrap(),
        );
    }
    let r = app
        .http
        .get(app.api("/requests"))
        .headers(headers)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["ErrorCode"], "BadRequest");
    assert!(
        v["Message"]
            .as_str()
            .unwrap()
            .contains("one Authorization header"),
        "{v}"
    );
}

/// Every text a client can store has a bound, and U+0000 (which PostgreSQL's TEXT cannot hold:
/// it was a 500 there) is refused the same way on both engines; messages quote only an excerpt.
async fn texts_past_their_bounds_and_nul_characters_are_400_and_store_nothing(app: TestApp) {
    let before = app
        .get("admin", "/requests")
        .await
        .1
        .as_array()
        .unwrap()
        .len();
    let long = "x".repeat(4_001);
    let cases = [
        (
            json!({"profiletemplateuuid": WORKFLOW, "type": "Enroll", "comment": long}),
            "InvalidBody",
            "longer than 4000",
        ),
        (
            json!({"profiletemplateuuid": WORKFLOW, "type": "Enroll", "comment": "a\u{0}b"}),
            "InvalidBody",
            "NUL",
        ),
        (
            json!({"profiletemplateuuid": WORKFLOW, "type": "Enroll", "datacollection": [{"Request Reason": "y".repeat(1_025)}]}),
            "InvalidDataCollection",
            "longer than 1024",
        ),
        (
            json!({"profiletemplateuuid": WORKFLOW, "type": "Enroll", "datacollection": [{"Request Reason": "a\u{0}"}]}),
            "InvalidDataCollection",
            "NUL",
        ),
        (
            json!({"profiletemplateuuid": WORKFLOW, "type": "z".repeat(100_000)}),
            "InvalidRequestType",
            "zzz…",
        ),
    ];
    for (body, code, text) in cases {
        let (s, v, _) = app
            .send("alice", Method::POST, "/requests", Some(body))
            .await;
        assert_eq!(
            (s, v["ErrorCode"].as_str()),
            (StatusCode::BAD_REQUEST, Some(code)),
            "{}: {v}",
            app.engine()
        );
        let message = v["Message"].as_str().unwrap();
        assert!(message.contains(text) && message.len() < 600, "{message}");
    }
    assert_eq!(
        app.get("admin", "/requests")
            .await
            .1
            .as_array()
            .unwrap()
            .len(),
        before
    );
    // Approval comments too.
    let vsc = app
        .post_request("alice", json!({"profiletemplateuuid": VSC, "type": "Enroll", "datacollection": [{"Request Reason": "laptop"}], "comment": "c"}))
        .await;
    let id = id_of(&vsc.1);
    let (s, v, _) = app
        .send(
            "bob",
            Method::POST,
            &format!("/requests/{id}/approvals"),
            Some(json!({"decision": "Approve", "comment": "x".repeat(4_001)})),
        )
        .await;
    assert_eq!(
        (s, v["ErrorCode"].as_str()),
        (StatusCode::BAD_REQUEST, Some("InvalidBody")),
        "{v}"
    );
    assert_eq!(app.status_of(&id).await, 16, "still Pending");
}
on_each_engine!(texts_past_their_bounds_and_nul_characters_are_400_and_store_nothing);
