//! `POST /smartcards` binds a card to an approved smart card request, as the published example
//! does; the card and the request's move to Executing are one change. Every refusal is a 409
//! that names its reason and changes nothing.

use crate::helpers::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const ATR: &str = "3b8d0180fba000000397425446590301c8";

async fn approved_vsc_request(app: &TestApp) -> String {
    let id = app.create("alice", VSC).await;
    let (s, v) = app.decide("bob", &id, "Approve").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    id
}

async fn bind(
    app: &TestApp,
    who: &str,
    request: &str,
    card: &str,
) -> (StatusCode, Value, reqwest::header::HeaderMap) {
    app.send(
        who,
        Method::POST,
        "/smartcards",
        Some(json!({"requestid": request, "cardid": card, "atr": ATR})),
    )
    .await
}

on_each_engine!(binding_a_card_creates_it_assigned_and_moves_the_request_to_executing);
async fn binding_a_card_creates_it_assigned_and_moves_the_request_to_executing(app: TestApp) {
    let request = approved_vsc_request(&app).await;
    let card_id = uuid::Uuid::new_v4().to_string();
    let (s, body, headers) = bind(&app, "alice", &request, &card_id.to_uppercase()).await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let rel = body.as_str().unwrap();
    assert!(rel.starts_with("api/v1.0/smartcards/"), "{rel}");
    let card = rel.rsplit('/').next().unwrap().to_string();
    assert!(headers["location"]
        .to_str()
        .unwrap()
        .ends_with(&format!("/smartcards/{card}")));

    let (s, c) = app.get("alice", &format!("/smartcards/{card}")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(c["Status"], 1, "Assigned");
    assert_eq!(c["Flags"], 1);
    assert_eq!(c["SerialNumber"], format!("{{{card_id}}}"));
    assert_eq!(c["Atr"], ATR);
    assert_eq!(c["Middleware"], "Contoso Smart Card Base CSP");
    assert_eq!(c["AssignedUserUuid"], app.users["alice"].uuid.to_string());
    assert_eq!(c["ProfileTemplateUuid"], VSC);
    let (_, r) = app.get("alice", &format!("/requests/{request}")).await;
    assert_eq!(r["Status"], 18, "Executing");
    assert_eq!(r["NewSmartcardUuid"], card.as_str());
    let history = app.history(&request).await;
    assert!(
        history.iter().any(|e| e["Action"] == "BindSmartcard"),
        "{history:?}"
    );

    // ?cardid= answers the one card, as an object; the list has it; others see nothing.
    let (s, by_id) = app
        .get("alice", &format!("/smartcards?cardid={card_id}"))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(by_id, c);
    let (_, mine) = app.get("alice", "/smartcards").await;
    assert_eq!(mine.as_array().unwrap().len(), 1);
    let (_, theirs) = app.get("eve", "/smartcards").await;
    assert_eq!(theirs, json!([]));
    let (s, _) = app.get("eve", &format!("/smartcards/{card}")).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (_, all) = app.get("admin", "/smartcards").await;
    assert_eq!(all.as_array().unwrap().len(), 1);
}

on_each_engine!(every_wrong_bind_is_refused_with_its_reason_and_changes_nothing);
async fn every_wrong_bind_is_refused_with_its_reason_and_changes_nothing(app: TestApp) {
    let request = approved_vsc_request(&app).await;
    let card_id = uuid::Uuid::new_v4().to_string();
    let code = |v: &Value| v["ErrorCode"].as_str().unwrap_or_default().to_string();

    // Not approved yet.
    let pending = app.create("alice", VSC).await;
    let (s, v, _) = bind(&app, "alice", &pending, &card_id).await;
    assert_eq!(
        (s, code(&v).as_str()),
        (StatusCode::CONFLICT, "InvalidTransition"),
        "{v}"
    );
    // A software request.
    let software = app.create("alice", SOFTWARE).await;
    let (s, v, _) = bind(&app, "alice", &software, &card_id).await;
    assert_eq!(
        (s, code(&v).as_str()),
        (StatusCode::CONFLICT, "NotASmartcardRequest"),
        "{v}"
    );
    // Bad input.
    for body in [
        json!({"requestid": request, "cardid": "not-a-guid", "atr": ATR}),
        json!({"requestid": request, "cardid": card_id, "atr": "xyz"}),
        json!({"requestid": request, "cardid": card_id, "atr": "3b".repeat(40)}),
        json!({"requestid": request, "cardid": card_id}),
    ] {
        let (s, v, _) = app
            .send("alice", Method::POST, "/smartcards", Some(body.clone()))
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body}: {v}");
    }
    // Someone who may not execute it.
    let (s, _, _) = bind(&app, "eve", &request, &card_id).await;
    assert!(
        s == StatusCode::NOT_FOUND || s == StatusCode::FORBIDDEN,
        "{s}"
    );
    let (_, r) = app.get("alice", &format!("/requests/{request}")).await;
    assert_eq!(
        (r["Status"].as_i64(), r["NewSmartcardUuid"].as_str()),
        (Some(3), Some("00000000-0000-0000-0000-000000000000")),
        "nothing changed"
    );

    let (s, _, _) = bind(&app, "alice", &request, &card_id).await;
    assert_eq!(s, StatusCode::CREATED);
    // Twice on one request; the same live card on another request.
    let (s, v, _) = bind(&app, "alice", &request, &uuid::Uuid::new_v4().to_string()).await;
    assert_eq!(
        (s, code(&v).as_str()),
        (StatusCode::CONFLICT, "SmartcardAlreadyBound"),
        "{v}"
    );
    let other = approved_vsc_request(&app).await;
    let (s, v, _) = bind(&app, "alice", &other, &card_id).await;
    assert_eq!(
        (s, code(&v).as_str()),
        (StatusCode::CONFLICT, "SmartcardInUse"),
        "{v}"
    );
    let (_, r) = app.get("alice", &format!("/requests/{other}")).await;
    assert_eq!(r["Status"], 3, "the other request is still Approved");
    let (_, all) = app.get("admin", "/smartcards").await;
    assert_eq!(all.as_array().unwrap().len(), 1, "one card in all");
}

on_each_engine!(two_concurrent_binds_of_one_card_leave_exactly_one_card);
async fn two_concurrent_binds_of_one_card_leave_exactly_one_card(app: TestApp) {
    let card_id = uuid::Uuid::new_v4().to_string();
    let mut requests = Vec::new();
    for _ in 0..6 {
        requests.push(approved_vsc_request(&app).await);
    }
    let results =
        futures::future::join_all(requests.iter().map(|r| bind(&app, "alice", r, &card_id))).await;
    let created = results
        .iter()
        .filter(|(s, _, _)| *s == StatusCode::CREATED)
        .count();
    assert_eq!(
        created,
        1,
        "{:?}",
        results
            .iter()
            .map(|r| (r.0, r.1.clone()))
            .collect::<Vec<_>>()
    );
    for (s, v, _) in &results {
        assert!(
            *s == StatusCode::CREATED || v["ErrorCode"] == "SmartcardInUse",
            "{s} {v}"
        );
    }
    let (_, all) = app.get("admin", "/smartcards").await;
    assert_eq!(all.as_array().unwrap().len(), 1);
    let mut executing = 0;
    for r in &requests {
        if app.status_of(r).await == 18 {
            executing += 1;
        }
    }
    assert_eq!(executing, 1, "only the winner's request moved");
}
