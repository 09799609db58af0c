//! Offboarding: tokens revoked, users disabled and memberships changed — from another node, the
//! CLI or the admin API — take effect at the next request, with no cache window.

use crate::helpers::{opencm_cli, TestApp};
use opencm_app::ports::SystemClock;
use opencm_app::{Actor, App, Settings};
use opencm_store::StoreOptions;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::sync::Arc;

/// A second opencm node on the same database, as another server process would be.
async fn other_node(app: &TestApp) -> App {
    let store = opencm_store::connect(&app.db_url, StoreOptions::default())
        .await
        .unwrap();
    App::new(store, Arc::new(SystemClock), Settings::default())
}

async fn status(app: &TestApp, who: &str, path: &str) -> StatusCode {
    app.send(who, Method::GET, path, None).await.0
}

pub(crate) async fn admin(
    app: &TestApp,
    who: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut r = app
        .http
        .request(method, format!("{}/opencm/v1{path}", app.base))
        .header("authorization", app.auth(who));
    if let Some(b) = body {
        r = r.json(&b);
    }
    let res = r.send().await.unwrap();
    let s = res.status();
    (s, res.json().await.unwrap_or(Value::Null))
}

on_each_engine!(changes_made_on_another_node_take_effect_at_the_next_request);
async fn changes_made_on_another_node_take_effect_at_the_next_request(app: TestApp) {
    let node = other_node(&app).await;
    // Each caller has been seen (and cached) by this node first.
    for who in ["alice", "bob", "admin"] {
        assert_eq!(
            status(&app, who, "/requests").await,
            StatusCode::OK,
            "{who}"
        );
    }
    let alice = node
        .tokens(opencm_app::Actor::Cli, Some("alice"))
        .await
        .unwrap();
    assert_eq!(alice.len(), 1);
    node.revoke_token(Actor::Cli, &alice[0].id[..8])
        .await
        .unwrap();
    assert_eq!(
        status(&app, "alice", "/requests").await,
        StatusCode::UNAUTHORIZED
    );

    assert!(node
        .set_user_enabled(Actor::Cli, "bob", false)
        .await
        .unwrap());
    assert_eq!(
        status(&app, "bob", "/requests").await,
        StatusCode::UNAUTHORIZED
    );
    assert!(
        !node
            .set_user_enabled(Actor::Cli, "bob", false)
            .await
            .unwrap(),
        "already disabled"
    );
    assert!(node
        .set_user_enabled(Actor::Cli, "bob", true)
        .await
        .unwrap());
    assert_eq!(status(&app, "bob", "/requests").await, StatusCode::OK);

    let (s, _) = admin(&app, "admin", Method::GET, "/tokens", None).await;
    assert_eq!(s, StatusCode::OK);
    assert!(node
        .set_member(Actor::Cli, "admin", "S-1-5-32-544", false)
        .await
        .unwrap());
    let (s, body) = admin(&app, "admin", Method::GET, "/tokens", None).await;
    assert_eq!(
        (s, body["ErrorCode"].as_str()),
        (StatusCode::FORBIDDEN, Some("AccessDenied"))
    );
    assert!(node
        .set_member(Actor::Cli, "admin", "S-1-5-32-544", true)
        .await
        .unwrap());
    let (s, _) = admin(&app, "admin", Method::GET, "/tokens", None).await;
    assert_eq!(s, StatusCode::OK);
}

on_each_engine!(the_admin_api_offboards_and_only_administrators_may_use_it);
async fn the_admin_api_offboards_and_only_administrators_may_use_it(app: TestApp) {
    for (method, path, body) in [
        (Method::GET, "/tokens", None),
        (Method::DELETE, "/tokens/0123456789ab", None),
        (
            Method::POST,
            "/users/disable",
            Some(json!({"Login": "bob"})),
        ),
        (
            Method::POST,
            "/groups/members",
            Some(json!({"Login": "alice", "Sid": "S-1-5-32-544"})),
        ),
    ] {
        let (s, b) = admin(&app, "alice", method.clone(), path, body).await;
        assert_eq!(
            (s, b["ErrorCode"].as_str()),
            (StatusCode::FORBIDDEN, Some("AccessDenied")),
            "{method} {path}"
        );
    }
    assert_eq!(
        status(&app, "bob", "/requests").await,
        StatusCode::OK,
        "alice changed nothing"
    );

    let (s, list) = admin(&app, "admin", Method::GET, "/tokens?user=carol", None).await;
    assert_eq!(s, StatusCode::OK);
    let list = list.as_array().unwrap().clone();
    assert_eq!(list.len(), 1);
    let id = list[0]["Id"].as_str().unwrap().to_string();
    let text = serde_json::to_string(&list).unwrap();
    assert!(
        !text.contains(&app.tokens["carol"]),
        "the token itself is never listed"
    );
    // Never by the secret; at least 8 characters; unknown ids are 404.
    let (s, b) = admin(
        &app,
        "admin",
        Method::DELETE,
        &format!("/tokens/{}", app.tokens["carol"]),
        None,
    )
    .await;
    assert_eq!(
        (s, b["ErrorCode"].as_str()),
        (StatusCode::BAD_REQUEST, Some("InvalidRequest"))
    );
    let (s, _) = admin(
        &app,
        "admin",
        Method::DELETE,
        &format!("/tokens/{}", &id[..5]),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, b) = admin(&app, "admin", Method::DELETE, "/tokens/ffffffffffff", None).await;
    assert_eq!(
        (s, b["ErrorCode"].as_str()),
        (StatusCode::NOT_FOUND, Some("TokenNotFound"))
    );
    let (s, b) = admin(
        &app,
        "admin",
        Method::DELETE,
        &format!("/tokens/{}", &id[..8]),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b["Id"], id.as_str());
    assert!(b["Revoked"].is_string());
    assert_eq!(
        status(&app, "carol", "/requests").await,
        StatusCode::UNAUTHORIZED
    );
    let (s, b) = admin(
        &app,
        "admin",
        Method::DELETE,
        &format!("/tokens/{id}"),
        None,
    )
    .await;
    assert_eq!(
        (s, b["ErrorCode"].as_str()),
        (StatusCode::CONFLICT, Some("AlreadyRevoked"))
    );

    let (s, b) = admin(
        &app,
        "admin",
        Method::POST,
        "/users/disable",
        Some(json!({"login": "dave"})),
    )
    .await;
    assert_eq!((s, b["Changed"].as_bool()), (StatusCode::OK, Some(true)));
    assert_eq!(
        status(&app, "dave", "/requests").await,
        StatusCode::UNAUTHORIZED
    );
    let (s, b) = admin(
        &app,
        "admin",
        Method::POST,
        "/users/enable",
        Some(json!({"login": "dave"})),
    )
    .await;
    assert_eq!((s, b["Changed"].as_bool()), (StatusCode::OK, Some(true)));
    assert_eq!(status(&app, "dave", "/requests").await, StatusCode::OK);
    let (s, b) = admin(
        &app,
        "admin",
        Method::POST,
        "/users/disable",
        Some(json!({"login": "nobody"})),
    )
    .await;
    assert_eq!(
        (s, b["ErrorCode"].as_str()),
        (StatusCode::NOT_FOUND, Some("UserNotFound"))
    );

    // Group membership: eve becomes an approver and stops being one.
    let (s, b) = admin(
        &app,
        "admin",
        Method::POST,
        "/groups/members",
        Some(json!({"Login": "eve", "Sid": "not-a-sid"})),
    )
    .await;
    assert_eq!(
        (s, b["ErrorCode"].as_str()),
        (StatusCode::BAD_REQUEST, Some("InvalidRequest"))
    );
    let approvers = app.users["bob"].groups[0].to_string();
    let (s, b) = admin(
        &app,
        "admin",
        Method::POST,
        "/groups/members",
        Some(json!({"Login": "eve", "Sid": approvers})),
    )
    .await;
    assert_eq!((s, b["Changed"].as_bool()), (StatusCode::OK, Some(true)));
    let eve = app.core.user_by_login("eve").await.unwrap().unwrap();
    assert!(eve.groups.iter().any(|g| g.to_string() == approvers));
    let (s, b) = admin(
        &app,
        "admin",
        Method::POST,
        "/groups/members/remove",
        Some(json!({"Login": "eve", "Sid": approvers})),
    )
    .await;
    assert_eq!((s, b["Changed"].as_bool()), (StatusCode::OK, Some(true)));
    let eve = app.core.user_by_login("eve").await.unwrap().unwrap();
    assert!(eve.groups.is_empty());
}

#[tokio::test]
async fn the_cli_lists_and_revokes_tokens_by_id_and_disables_users() {
    let db = opencm_store::testing::fresh_sqlite_url();
    let (ok, _, err) = opencm_cli(&db, &["user", "add", "zoe", "--sid", "S-1-5-21-9-9-9-1001"]);
    assert!(ok, "{err}");
    let (ok, token, err) = opencm_cli(&db, &["token", "create", "zoe"]);
    assert!(ok, "{err}");
    let token = token.trim().to_string();
    let id = err
        .split_whitespace()
        .skip_while(|w| *w != "id")
        .nth(1)
        .unwrap_or_else(|| panic!("no token id in {err:?}"))
        .to_string();
    let (ok, list, _) = opencm_cli(&db, &["token", "list"]);
    assert!(ok);
    assert!(
        list.contains(&id) && list.contains("zoe") && !list.contains(&token),
        "{list}"
    );
    let (ok, _, err) = opencm_cli(&db, &["token", "revoke", &token]);
    assert!(!ok && err.contains("not the token itself"), "{err}");
    let (ok, out, err) = opencm_cli(&db, &["token", "revoke", &id]);
    assert!(ok, "{err}");
    assert!(out.contains(&format!("revoked token {id} of zoe")), "{out}");
    let (ok, list, _) = opencm_cli(&db, &["token", "list", "--user", "zoe"]);
    assert!(ok);
    let line = list.lines().find(|l| l.starts_with(&id)).unwrap();
    assert!(
        !line.trim_end().ends_with('-'),
        "revoked date shown: {line}"
    );
    let (ok, out, _) = opencm_cli(&db, &["user", "disable", "zoe"]);
    assert!(ok && out.contains("zoe disabled"), "{out}");
    let (ok, out, _) = opencm_cli(&db, &["user", "disable", "zoe"]);
    assert!(ok && out.contains("already disabled"), "{out}");
    let (ok, _, err) = opencm_cli(
        &db,
        &["token", "create", "zoe", "--expires-in", "99999999999999d"],
    );
    assert!(!ok && err.contains("too long"), "{err}");
    let rows: i64 = crate::helpers::sqlite_file(&db)
        .query_row(
            "SELECT COUNT(*) FROM admin_events WHERE actor = 'cli'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        rows, 2,
        "the revocation and the disabling are audited; the no-op is not"
    );
}

on_each_engine!(
    every_administrative_use_case_refuses_a_non_administrator_whatever_front_end_calls_it
);
async fn every_administrative_use_case_refuses_a_non_administrator_whatever_front_end_calls_it(
    app: crate::helpers::TestApp,
) {
    use opencm_app::{Actor, ErrorKind};
    let core = &app.core;
    let alice = &app.users["alice"];
    let token_id = core.tokens(Actor::Cli, Some("bob")).await.unwrap()[0]
        .id
        .clone();
    let forbidden = |r: Result<(), opencm_app::AppError>, what: &str| {
        let e = r.expect_err(what);
        assert_eq!(
            (e.kind(), e.code.as_str()),
            (ErrorKind::Forbidden, "AccessDenied"),
            "{what}: {e}"
        );
    };
    // Called directly, as a portal or any other front end would: no HTTP handler in between.
    forbidden(
        core.tokens(Actor::User(alice), None).await.map(|_| ()),
        "tokens",
    );
    forbidden(
        core.revoke_token(Actor::User(alice), &token_id)
            .await
            .map(|_| ()),
        "revoke",
    );
    forbidden(
        core.set_user_enabled(Actor::User(alice), "bob", false)
            .await
            .map(|_| ()),
        "disable",
    );
    forbidden(
        core.set_member(Actor::User(alice), "alice", "S-1-5-32-544", true)
            .await
            .map(|_| ()),
        "membership",
    );
    forbidden(
        core.set_certificate_mapping(Actor::User(alice), "alice", "X509:<SKI>00ff", true)
            .await
            .map(|_| ()),
        "certificate mapping",
    );
    // Nothing changed: bob's token and account still work, alice is no administrator.
    assert_eq!(status(&app, "bob", "/requests").await, StatusCode::OK);
    let admin = &app.users["admin"];
    assert!(core
        .tokens(Actor::User(admin), Some("bob"))
        .await
        .unwrap()
        .iter()
        .all(|t| t.record.revoked.is_none()));
    let me = core.user_by_login("alice").await.unwrap().unwrap();
    assert!(!me.groups.iter().any(|g| g.as_str() == "S-1-5-32-544"));
    assert!(me.certificate_mappings.is_empty());
    // An administrator, directly too.
    assert!(core
        .set_user_enabled(Actor::User(admin), "bob", false)
        .await
        .unwrap());
}
