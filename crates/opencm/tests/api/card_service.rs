//! Cards out of service and card secrets over time (issue #21): requests, cards, profiles and
//! users interleaved as a careless or hostile client would, each checked by what a user sees —
//! the card, its profile, the CRL read by openssl, the history, the status codes — on both
//! engines.

use crate::card_types::{issue, profile};
use crate::cards::{bind, card_of, card_request, enrol_card, secret_path, Enrolled, ATR, PIV};
use crate::helpers::*;
use crate::issuance::{crl_check, csr, post_csrs, save_ca, serial_of, Work, P256};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

fn code(v: &Value) -> Option<&str> {
    v["ErrorCode"].as_str()
}

/// The answer was `status` with error code `want` (`context` says which case).
#[track_caller]
fn refused(s: StatusCode, v: &Value, status: StatusCode, want: &str, context: &str) {
    assert_eq!((s, code(v)), (status, Some(want)), "{context}: {v}");
}

/// A request of `kind` on the card, as `who`; its id.
async fn on_card(app: &TestApp, who: &str, kind: &str, card: &str) -> String {
    let (s, v) = card_request(app, who, kind, card).await;
    assert_eq!(s, StatusCode::CREATED, "{kind}: {v}");
    id_of(&v)
}

async fn set_card(
    app: &TestApp,
    who: &str,
    request: &str,
    card: &str,
    status: &str,
) -> (StatusCode, Value) {
    let (s, v, _) = app
        .send(
            who,
            Method::PUT,
            &format!("/requests/{request}/smartcards/{card}"),
            Some(json!({ "status": status })),
        )
        .await;
    (s, v)
}

/// A card secret (`diversifiedkey`, `puk`, `serverproposedpin`, `authenticationresponse`) as
/// `who` asks it under `request`.
async fn secret(
    app: &TestApp,
    who: &str,
    request: &str,
    card: &str,
    what: &str,
    card_id: &str,
) -> (StatusCode, Value) {
    let q = match what {
        "authenticationresponse" => {
            format!("cardid={card_id}&challenge=AAECAwQFBgc%3D&diversified=true")
        }
        _ => format!("cardid={card_id}"),
    };
    app.get(who, &secret_path(request, card, what, &q)).await
}

const SECRETS: [&str; 4] = [
    "diversifiedkey",
    "authenticationresponse",
    "puk",
    "serverproposedpin",
];

/// `who`'s request, executing onto `card` (`card_id`): issuance, each of the card's secrets and
/// completion are all refused with 409 `want`.
async fn refused_onward(
    app: &TestApp,
    w: &Work,
    who: &str,
    request: &str,
    card: &str,
    card_id: &str,
    want: &str,
) {
    let (s, v) = post_csrs(
        app,
        who,
        request,
        json!({"certificaterequests": [csr(w, "onward", P256)]}),
    )
    .await;
    refused(s, &v, StatusCode::CONFLICT, want, "");
    for what in SECRETS {
        let (s, v) = secret(app, who, request, card, what, card_id).await;
        refused(s, &v, StatusCode::CONFLICT, want, what);
    }
    let (s, v) = app.put_status(who, request, "Completed").await;
    refused(s, &v, StatusCode::CONFLICT, want, "");
}

/// The enrolment's PIN is still the one it kept, as administrators read it.
async fn assert_kept_pin(app: &TestApp, p: &Enrolled) {
    let (s, v) = secret(
        app,
        "admin",
        &p.request,
        &p.card,
        "serverproposedpin",
        &p.card_id,
    )
    .await;
    assert_eq!((s, v.as_str()), (StatusCode::OK, Some(p.pin.as_str())));
}

/// The profile on the enrolled card (the enrolment's new profile).
async fn card_profile(app: &TestApp, e: &Enrolled) -> String {
    let (_, r) = app.get("admin", &format!("/requests/{}", e.request)).await;
    r["NewProfileUuid"].as_str().unwrap().to_string()
}

on_each_engine!(a_status_set_out_of_service_during_execution_stands_and_takes_the_profile_and_certificates_along);
async fn a_status_set_out_of_service_during_execution_stands_and_takes_the_profile_and_certificates_along(
    app: TestApp,
) {
    let w = Work::new();
    save_ca(&app, &w).await;
    // (request type, status the client sets, what the card, profile and certificate end as)
    for (kind, set, card_to, revoked) in [
        ("Retire", "Retired", 6, true),
        ("Revoke", "Disabled", 3, true),
        ("SuspendOrReinstate", "Suspended", 4, false),
    ] {
        for ending in ["Canceled", "Abandoned"] {
            let e = enrol_card(&app, &w).await;
            let p = card_profile(&app, &e).await;
            let request = on_card(&app, "alice", kind, &e.card).await;
            let (s, v) = set_card(&app, "alice", &request, &e.card, set).await;
            assert_eq!(s, StatusCode::OK, "{kind}: {v}");
            // The profile and the certificate follow the card at once.
            let ctx = format!("{kind} set {set}, then {ending}");
            assert_eq!(profile(&app, &json!(p)).await["Status"], card_to, "{ctx}");
            let (text, ok, _) = crl_check(&app, &w, &e.leaf).await;
            assert!(!ok && text.contains(&serial_of(&e.leaf)), "{ctx}: {text}");
            if !revoked {
                assert!(text.contains("Certificate Hold"), "{ctx}: {text}");
            }
            let (s, v) = app.put_status("alice", &request, ending).await;
            assert_eq!(s, StatusCode::OK, "{ctx}: {v}");
            // Nothing half-done: card, profile and certificate agree, and stay out of service.
            assert_eq!(
                card_of(&app, "alice", &e.card).await["Status"],
                card_to,
                "{ctx}"
            );
            assert_eq!(profile(&app, &json!(p)).await["Status"], card_to, "{ctx}");
            let (text, ok, _) = crl_check(&app, &w, &e.leaf).await;
            assert!(!ok && text.contains(&serial_of(&e.leaf)), "{ctx}: {text}");
            let (_, ops) = app
                .get("alice", &format!("/smartcards/{}/operations", e.card))
                .await;
            for op in ops.as_array().unwrap() {
                // Whatever the card still offers can be started.
                let kind = match op.as_str().unwrap() {
                    "disable" => "Revoke",
                    "reinstate" | "suspend" => "SuspendOrReinstate",
                    "retire" => "Retire",
                    other => panic!("{ctx}: a card out of service offers {other}"),
                };
                let (s, v) = card_request(&app, "alice", kind, &e.card).await;
                assert_eq!(s, StatusCode::CREATED, "{ctx}: {op} offered but {v}");
                app.put_status("alice", &id_of(&v), "Canceled").await;
            }
        }
    }

    // A reinstatement set during execution brings the profile and the certificate back with the
    // card; canceled, it is undone: card, profile and certificate suspended again.
    let e = enrol_card(&app, &w).await;
    let p = card_profile(&app, &e).await;
    let suspend = on_card(&app, "alice", "SuspendOrReinstate", &e.card).await;
    assert_eq!(
        app.put_status("alice", &suspend, "Completed").await.0,
        StatusCode::OK
    );
    let reinstate = on_card(&app, "alice", "SuspendOrReinstate", &e.card).await;
    let (s, v) = set_card(&app, "alice", &reinstate, &e.card, "Active").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(profile(&app, &json!(p)).await["Status"], 2);
    let (text, ok, _) = crl_check(&app, &w, &e.leaf).await;
    assert!(ok, "back in service with its card: {text}");
    let (s, v) = set_card(&app, "alice", &reinstate, &e.card, "Suspended").await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::CONFLICT, Some("SmartcardStatusNotAllowed")),
        "one direction per request: {v}"
    );
    assert_eq!(
        app.put_status("alice", &reinstate, "Canceled").await.0,
        StatusCode::OK
    );
    assert_eq!(card_of(&app, "alice", &e.card).await["Status"], 4);
    assert_eq!(profile(&app, &json!(p)).await["Status"], 4);
    let (text, ok, _) = crl_check(&app, &w, &e.leaf).await;
    assert!(!ok && text.contains("Certificate Hold"), "{text}");

    // The published Retire — set Retired, then complete — still ends as before.
    let e = enrol_card(&app, &w).await;
    let retire = on_card(&app, "alice", "Retire", &e.card).await;
    assert_eq!(
        set_card(&app, "alice", &retire, &e.card, "Retired").await.0,
        StatusCode::OK
    );
    let (s, done) = app.put_status("alice", &retire, "Completed").await;
    assert_eq!(s, StatusCode::OK, "{done}");
    assert_eq!(card_of(&app, "alice", &e.card).await["Status"], 6);
    let history = app.history(&retire).await;
    assert!(
        history.iter().any(|h| h["Action"] == "SetSmartcardRetired"),
        "{history:?}"
    );
}

on_each_engine!(nothing_is_issued_onto_a_card_out_of_service_nor_for_one);
async fn nothing_is_issued_onto_a_card_out_of_service_nor_for_one(app: TestApp) {
    let w = Work::new();
    save_ca(&app, &w).await;
    let e = enrol_card(&app, &w).await;
    let revoke = on_card(&app, "alice", "Revoke", &e.card).await;
    assert_eq!(
        app.put_status("alice", &revoke, "Completed").await.0,
        StatusCode::OK
    );
    let suspended = enrol_card(&app, &w).await;
    let s_req = on_card(&app, "alice", "SuspendOrReinstate", &suspended.card).await;
    assert_eq!(
        app.put_status("alice", &s_req, "Completed").await.0,
        StatusCode::OK
    );

    // An Enroll never names an existing card, in service or not.
    for card in [&e.card, &suspended.card, &enrol_card(&app, &w).await.card] {
        let (s, v, _) = app
            .post_request(
                "alice",
                json!({"type": "Enroll", "profiletemplateuuid": PIV, "smartcard": card}),
            )
            .await;
        refused(s, &v, StatusCode::BAD_REQUEST, "SmartcardNotAllowed", "");
    }

    // A temporary card is not made for a permanent card that left service after the request was
    // made: neither bound, nor issued onto, nor completed; canceling retires what was bound.
    let permanent = enrol_card(&app, &w).await;
    let before_bind = on_card(&app, "carol", "TemporaryCards", &permanent.card).await;
    let bound = on_card(&app, "carol", "TemporaryCards", &permanent.card).await;
    let temp_id = uuid::Uuid::new_v4().to_string();
    let (s, v) = bind(&app, "carol", &bound, &temp_id).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let temp = id_of(&v);
    let suspend = on_card(&app, "alice", "SuspendOrReinstate", &permanent.card).await;
    assert_eq!(
        app.put_status("alice", &suspend, "Completed").await.0,
        StatusCode::OK
    );

    let (s, v) = bind(
        &app,
        "carol",
        &before_bind,
        &uuid::Uuid::new_v4().to_string(),
    )
    .await;
    refused(s, &v, StatusCode::CONFLICT, "SmartcardSuspended", "");
    refused_onward(
        &app,
        &w,
        "carol",
        &bound,
        &temp,
        &temp_id,
        "SmartcardSuspended",
    )
    .await;
    assert_eq!(
        app.put_status("carol", &bound, "Canceled").await.0,
        StatusCode::OK
    );
    assert_eq!(card_of(&app, "admin", &temp).await["Status"], 6);
    let (_, certs) = app
        .get("admin", &format!("/smartcards/{temp}/certificates"))
        .await;
    assert_eq!(certs, json!([]), "nothing was issued onto it");

    // The same when the permanent card is retired or revoked after a temporary card was issued
    // onto but before the request completed.
    for (kind, code_want) in [
        ("Revoke", "SmartcardDisabled"),
        ("Retire", "SmartcardRetired"),
    ] {
        let permanent = enrol_card(&app, &w).await;
        let request = on_card(&app, "carol", "TemporaryCards", &permanent.card).await;
        let (s, v) = bind(&app, "carol", &request, &uuid::Uuid::new_v4().to_string()).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        let temp = id_of(&v);
        let leaf = issue(&app, &w, "carol", &request, "t").await;
        let gone = on_card(&app, "alice", kind, &permanent.card).await;
        assert_eq!(
            app.put_status("alice", &gone, "Completed").await.0,
            StatusCode::OK
        );
        let (s, v) = app.put_status("carol", &request, "Completed").await;
        refused(s, &v, StatusCode::CONFLICT, code_want, kind);
        assert_eq!(
            app.put_status("carol", &request, "Abandoned").await.0,
            StatusCode::OK
        );
        assert_eq!(card_of(&app, "admin", &temp).await["Status"], 6, "{kind}");
        let (text, ok, _) = crl_check(&app, &w, &leaf).await;
        assert!(!ok && text.contains(&serial_of(&leaf)), "{kind}: {text}");
    }

    // A temporary card past its expiry takes nothing, and its request does not complete.
    let permanent = enrol_card(&app, &w).await;
    let request = on_card(&app, "carol", "TemporaryCards", &permanent.card).await;
    let temp_id = uuid::Uuid::new_v4().to_string();
    let (s, v) = bind(&app, "carol", &request, &temp_id).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let temp = id_of(&v);
    app.clock.advance_ms(8 * 86_400_000);
    refused_onward(
        &app,
        &w,
        "carol",
        &request,
        &temp,
        &temp_id,
        "SmartcardDisabled",
    )
    .await;
}

on_each_engine!(a_cards_secrets_belong_to_its_binding_and_its_request);
async fn a_cards_secrets_belong_to_its_binding_and_its_request(app: TestApp) {
    let w = Work::new();
    save_ca(&app, &w).await;
    let e = enrol_card(&app, &w).await;
    let key_q = |id: &str| format!("cardid={id}&atr={ATR}");

    // alice's Unblock, approved now and left waiting.
    let stale = on_card(&app, "alice", "Unblock", &e.card).await;
    let (s, alice_puk) = secret(&app, "alice", &stale, &e.card, "puk", &e.card_id).await;
    assert_eq!(s, StatusCode::OK, "{alice_puk}");
    let (s, alice_key) = app
        .get(
            "alice",
            &secret_path(&stale, &e.card, "diversifiedkey", &key_q(&e.card_id)),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{alice_key}");

    // The card is retired and, reset, handed to dave with the same card id.
    let retire = on_card(&app, "alice", "Retire", &e.card).await;
    assert_eq!(
        app.put_status("alice", &retire, "Completed").await.0,
        StatusCode::OK
    );
    let dave = app.create("dave", PIV).await;
    let (s, v) = bind(&app, "dave", &dave, &e.card_id).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let daves_card = id_of(&v);
    let (s, dave_key) = app
        .get(
            "dave",
            &secret_path(&dave, &daves_card, "diversifiedkey", &key_q(&e.card_id)),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{dave_key}");
    let (s, dave_puk) = secret(&app, "dave", &dave, &daves_card, "puk", &e.card_id).await;
    assert_eq!(s, StatusCode::OK, "{dave_puk}");
    // dave's secrets are his binding's, not alice's.
    assert_ne!(dave_key, alice_key);
    assert_ne!(dave_puk, alice_puk);
    // The factory key still opens the reset card for dave's executor.
    let (s, v) = secret(
        &app,
        "dave",
        &dave,
        &daves_card,
        "authenticationresponse",
        &e.card_id,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");

    // alice's stale Unblock releases nothing while the card is in dave's service — not for the
    // record it names, not for dave's.
    let before = app.history(&stale).await.len();
    for what in SECRETS {
        let (s, v) = secret(&app, "alice", &stale, &e.card, what, &e.card_id).await;
        refused(s, &v, StatusCode::CONFLICT, "SmartcardRetired", what);
        let (s, v) = secret(&app, "alice", &stale, &daves_card, what, &e.card_id).await;
        refused(s, &v, StatusCode::CONFLICT, "SmartcardMismatch", what);
    }
    assert_eq!(
        app.history(&stale).await.len(),
        before,
        "nothing released, nothing recorded"
    );

    // The helpdesk executing a TemporaryCards request gets the temporary card's secrets, never
    // those of the permanent card it stands in for; its PIN call leaves the permanent card's
    // kept PIN alone.
    let p = enrol_card(&app, &w).await;
    let temp_req = on_card(&app, "carol", "TemporaryCards", &p.card).await;
    let temp_id = uuid::Uuid::new_v4().to_string();
    let (s, v) = bind(&app, "carol", &temp_req, &temp_id).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let temp = id_of(&v);
    for what in SECRETS {
        let (s, v) = secret(&app, "carol", &temp_req, &p.card, what, &p.card_id).await;
        refused(s, &v, StatusCode::CONFLICT, "SmartcardMismatch", what);
        let (s, v) = secret(&app, "carol", &temp_req, &temp, what, &temp_id).await;
        assert_eq!(s, StatusCode::OK, "{what}: {v}");
    }
    // Only the request's own card is settable: the permanent card, suspended meanwhile, cannot be
    // set Active by the temporary card's request.
    let suspend = on_card(&app, "alice", "SuspendOrReinstate", &p.card).await;
    assert_eq!(
        app.put_status("alice", &suspend, "Completed").await.0,
        StatusCode::OK
    );
    let (s, v) = set_card(&app, "carol", &temp_req, &p.card, "Active").await;
    refused(s, &v, StatusCode::CONFLICT, "SmartcardMismatch", "");
    assert_eq!(card_of(&app, "alice", &p.card).await["Status"], 4);
    let reinstate = on_card(&app, "alice", "SuspendOrReinstate", &p.card).await;
    assert_eq!(
        app.put_status("alice", &reinstate, "Completed").await.0,
        StatusCode::OK
    );
    // The kept enrolment PIN is still the enrolment's (administrators distribute it).
    assert_kept_pin(&app, &p).await;

    // PINs go only to requests that set one; a Retire's PIN call does not replace the kept one.
    let retire = on_card(&app, "alice", "Retire", &p.card).await;
    let (s, v) = secret(
        &app,
        "alice",
        &retire,
        &p.card,
        "serverproposedpin",
        &p.card_id,
    )
    .await;
    refused(s, &v, StatusCode::CONFLICT, "PinNotReleased", "");
    let (s, v) = secret(&app, "alice", &retire, &p.card, "puk", &p.card_id).await;
    refused(s, &v, StatusCode::CONFLICT, "PukNotReleased", "");
    assert_kept_pin(&app, &p).await;
    app.put_status("alice", &retire, "Canceled").await;

    // No secret for a card that left service through a request approved before.
    let unblock = on_card(&app, "alice", "Unblock", &p.card).await;
    let revoke = on_card(&app, "alice", "Revoke", &p.card).await;
    assert_eq!(
        app.put_status("alice", &revoke, "Completed").await.0,
        StatusCode::OK
    );
    let before = app.history(&unblock).await.len();
    for what in SECRETS {
        let (s, v) = secret(&app, "alice", &unblock, &p.card, what, &p.card_id).await;
        refused(s, &v, StatusCode::CONFLICT, "SmartcardDisabled", what);
    }
    assert_eq!(app.history(&unblock).await.len(), before);
    // Nor by the administrators' distribution of a kept PIN.
    let (s, v) = app
        .get(
            "admin",
            &format!(
                "/requests/{}/smartcards/{}/serverproposedpin?cardid={}",
                p.request, p.card, p.card_id
            ),
        )
        .await;
    refused(s, &v, StatusCode::CONFLICT, "SmartcardDisabled", "");
}

on_each_engine!(card_secrets_answer_uncached_to_the_card_presented_and_all_at_once);
async fn card_secrets_answer_uncached_to_the_card_presented_and_all_at_once(app: TestApp) {
    let request = app.create("alice", PIV).await;
    let card_id = uuid::Uuid::new_v4().to_string();

    // The nil GUID names no card.
    let (s, v) = bind(
        &app,
        "alice",
        &request,
        "00000000-0000-0000-0000-000000000000",
    )
    .await;
    refused(s, &v, StatusCode::BAD_REQUEST, "InvalidBody", "");
    let (s, v) = bind(&app, "alice", &request, &card_id).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let card = id_of(&v);

    // Someone else binding the same card learns neither whose card it is nor its status.
    let other = app.create("dave", PIV).await;
    let (s, v) = bind(&app, "dave", &other, &card_id).await;
    refused(s, &v, StatusCode::CONFLICT, "SmartcardInUse", "");
    let message = v["Message"].as_str().unwrap();
    assert!(
        !message.contains(&card) && !message.contains("Assigned"),
        "{message}"
    );

    let path = |what: &str, q: &str| secret_path(&request, &card, what, q);
    // cardid: the nil GUID; atr: as at binding, and the bound card's.
    let nil = "cardid=00000000-0000-0000-0000-000000000000";
    let (s, v) = app.get("alice", &path("diversifiedkey", nil)).await;
    refused(s, &v, StatusCode::BAD_REQUEST, "InvalidQuery", "");
    for bad in ["3b8", "zz00", &"00".repeat(34)] {
        let (s, v) = app
            .get(
                "alice",
                &path("diversifiedkey", &format!("cardid={card_id}&atr={bad}")),
            )
            .await;
        refused(s, &v, StatusCode::BAD_REQUEST, "InvalidQuery", bad);
    }
    let (s, v) = app
        .get(
            "alice",
            &path("diversifiedkey", &format!("cardid={card_id}&atr=3b00")),
        )
        .await;
    refused(s, &v, StatusCode::CONFLICT, "SmartcardMismatch", "");
    let upper = ATR.to_ascii_uppercase();
    let (s, v) = app
        .get(
            "alice",
            &path("diversifiedkey", &format!("cardid={card_id}&atr={upper}")),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "the ATR in any case: {v}");

    // Every answer carrying a secret is not to be stored by any cache.
    for what in SECRETS {
        let q = match what {
            "authenticationresponse" => format!("cardid={card_id}&challenge=AAECAwQFBgc%3D"),
            _ => format!("cardid={card_id}"),
        };
        let (s, v, h) = app.send("alice", Method::GET, &path(what, &q), None).await;
        assert_eq!(s, StatusCode::OK, "{what}: {v}");
        assert_eq!(h["cache-control"], "no-store", "{what}");
        assert_eq!(h["pragma"], "no-cache", "{what}");
    }

    // Forty releases at once on one request, ten of each secret, all succeed, each in the
    // history: one key, one PUK and — the PIN being kept — one PIN among them.
    let before = app.history(&request).await.len();
    let paths: Vec<(&str, String)> = SECRETS
        .iter()
        .flat_map(|what| {
            let q = match *what {
                "authenticationresponse" => {
                    format!("cardid={card_id}&challenge=AAECAwQFBgc%3D&diversified=true")
                }
                _ => format!("cardid={card_id}"),
            };
            std::iter::repeat_n((*what, path(what, &q)), 10)
        })
        .collect();
    let calls = paths.iter().map(|(_, p)| app.get("alice", p));
    let answers = futures::future::join_all(calls).await;
    for what in SECRETS {
        let mine: Vec<&Value> = paths
            .iter()
            .zip(&answers)
            .filter(|((w, _), _)| *w == what)
            .map(|(_, (s, v))| {
                assert_eq!(*s, StatusCode::OK, "{what}: {v}");
                v
            })
            .collect();
        assert!(mine.iter().all(|v| *v == mine[0]), "{what}: {mine:?}");
    }
    let after = app.history(&request).await;
    assert_eq!(after.len(), before + 40, "{after:?}");

    // HEAD would release a secret and throw the answer away: refused, nothing recorded.
    let res = app
        .http
        .head(app.api(&path("diversifiedkey", &format!("cardid={card_id}"))))
        .header("authorization", app.auth("alice"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(res.headers()["allow"], "GET");
    assert_eq!(app.history(&request).await.len(), before + 40);
}

on_each_engine!(a_disabled_user_is_given_nothing_but_their_cards_can_still_be_taken_out_of_service);
async fn a_disabled_user_is_given_nothing_but_their_cards_can_still_be_taken_out_of_service(
    app: TestApp,
) {
    let w = Work::new();
    save_ca(&app, &w).await;
    let alice = app.users["alice"].uuid.to_string();
    let e = enrol_card(&app, &w).await;
    let pending = app.create("alice", VSC).await;
    let unbound = on_card(&app, "carol", "TemporaryCards", &e.card).await;
    let issued = on_card(&app, "carol", "TemporaryCards", &e.card).await;
    let temp_id = uuid::Uuid::new_v4().to_string();
    let (s, v) = bind(&app, "carol", &issued, &temp_id).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let temp = id_of(&v);
    let leaf = issue(&app, &w, "carol", &issued, "t").await;

    // alice is offboarded.
    let (s, v) = crate::offboarding::admin(
        &app,
        "admin",
        Method::POST,
        "/users/disable",
        Some(json!({"Login": "alice"})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");

    // Nothing new for her: no request on her behalf, no temporary card.
    let (s, v, _) = app
        .post_request(
            "carol",
            json!({"type": "Enroll", "profiletemplateuuid": SOFTWARE, "target": alice}),
        )
        .await;
    refused(s, &v, StatusCode::CONFLICT, "UserDisabled", "");
    let (s, v) = card_request(&app, "carol", "TemporaryCards", &e.card).await;
    refused(s, &v, StatusCode::CONFLICT, "UserDisabled", "");
    // Her pending request is not approved (it may be denied).
    let (s, v) = app.decide("bob", &pending, "Approve").await;
    refused(s, &v, StatusCode::CONFLICT, "UserDisabled", "");
    assert_eq!(app.status_of(&pending).await, 16);
    assert_eq!(app.decide("bob", &pending, "Deny").await.0, StatusCode::OK);
    // What was approved before does not go on: no card bound, no secret, no completion.
    let (s, v) = bind(&app, "carol", &unbound, &uuid::Uuid::new_v4().to_string()).await;
    refused(s, &v, StatusCode::CONFLICT, "UserDisabled", "");
    for what in SECRETS {
        let (s, v) = secret(&app, "carol", &issued, &temp, what, &temp_id).await;
        refused(s, &v, StatusCode::CONFLICT, "UserDisabled", what);
    }
    let (s, v) = app.put_status("carol", &issued, "Completed").await;
    refused(s, &v, StatusCode::CONFLICT, "UserDisabled", "");
    // Canceling goes on, and revokes what it issued.
    assert_eq!(
        app.put_status("carol", &issued, "Canceled").await.0,
        StatusCode::OK
    );
    let (text, ok, _) = crl_check(&app, &w, &leaf).await;
    assert!(!ok && text.contains(&serial_of(&leaf)), "{text}");
    assert_eq!(card_of(&app, "admin", &temp).await["Status"], 6);
    // Her card can still be taken out of service: the helpdesk starts it, an administrator
    // executes it (she cannot sign in to).
    let revoke = on_card(&app, "carol", "Revoke", &e.card).await;
    let (s, v) = app.put_status("admin", &revoke, "Completed").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (text, ok, _) = crl_check(&app, &w, &e.leaf).await;
    assert!(!ok && text.contains(&serial_of(&e.leaf)), "{text}");
}

/// A PIV template that never takes a card back once it was in service.
const NO_REUSE: &str = "5f0c1b7e-2d7c-4f43-9a55-0d6d3c1e0a21";
const NO_REUSE_TEMPLATE: &str = r#"
[[template]]
uuid = "5f0c1b7e-2d7c-4f43-9a55-0d6d3c1e0a21"
name = "PIV, no reuse"
kind = "smartcard"
security_descriptor = "D:(A;;RCCR;;;AU)"
[[template.certificates]]
common_name = "opencmPivAuthentication"
key_algorithm = "ECDSA_P256"
key_usages = ["digital_signature"]
extended_key_usages = ["smartcard_logon", "client_auth"]
[template.smartcard]
user_pin_option = "randomized"
default_admin_key_hex = "010203040506070801020304050607080102030405060708"
allow_smartcard_reuse = false
[template.policies.Enroll]
self_service_enabled = true
[template.policies.Retire]
self_service_enabled = true
"#;

on_each_engine!(a_card_whose_enrolment_never_finished_starts_afresh_where_cards_are_not_reused);
async fn a_card_whose_enrolment_never_finished_starts_afresh_where_cards_are_not_reused(
    app: TestApp,
) {
    let w = Work::new();
    save_ca(&app, &w).await;
    app.core.import_templates(NO_REUSE_TEMPLATE).await.unwrap();
    let card_id = uuid::Uuid::new_v4().to_string();
    for ending in ["Abandoned", "Canceled"] {
        let r = app.create("alice", NO_REUSE).await;
        let (s, v) = bind(&app, "alice", &r, &card_id).await;
        assert_eq!(s, StatusCode::CREATED, "after an enrolment {ending}: {v}");
        assert_eq!(app.put_status("alice", &r, ending).await.0, StatusCode::OK);
    }
    // This time the enrolment finishes: the card is in service, then retired.
    let r = app.create("alice", NO_REUSE).await;
    let (s, v) = bind(&app, "alice", &r, &card_id).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let card = id_of(&v);
    issue(&app, &w, "alice", &r, "nr").await;
    assert_eq!(
        app.put_status("alice", &r, "Completed").await.0,
        StatusCode::OK
    );
    let retire = on_card(&app, "alice", "Retire", &card).await;
    assert_eq!(
        app.put_status("alice", &retire, "Completed").await.0,
        StatusCode::OK
    );
    // A card that was in service is not taken back.
    let r = app.create("alice", NO_REUSE).await;
    let (s, v) = bind(&app, "alice", &r, &card_id).await;
    refused(s, &v, StatusCode::CONFLICT, "SmartcardNotReusable", "");
}

on_each_engine!(administration_refuses_a_users_sid_as_a_group_and_echoes_little);
async fn administration_refuses_a_users_sid_as_a_group_and_echoes_little(app: TestApp) {
    use crate::offboarding::admin;
    let alice_sid = app.users["alice"].sid.to_string();
    let (s, v) = admin(
        &app,
        "admin",
        Method::POST,
        "/groups/members",
        Some(json!({"Login": "eve", "Sid": alice_sid})),
    )
    .await;
    refused(s, &v, StatusCode::BAD_REQUEST, "InvalidRequest", "");
    let (_, who) = app
        .http
        .get(format!("{}/opencm/v1/whoami", app.base))
        .header("authorization", app.auth("eve"))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .map(|v| (StatusCode::OK, v))
        .unwrap();
    assert!(!who["TokenSids"].to_string().contains(&alice_sid), "{who}");
    // Nor can a user be added with a SID users are members of, or that names a group.
    let members = "S-1-5-21-1000-1000-1000-1199";
    let (s, v) = admin(
        &app,
        "admin",
        Method::POST,
        "/groups/members",
        Some(json!({"Login": "eve", "Sid": members})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    for sid in [members, "S-1-5-21-1000-1000-1000-2002"] {
        let err = app
            .core
            .add_user(&opencm_app::ports::NewUser {
                uuid: opencm_domain::Guid::new_random().into(),
                login: format!("late-{sid}"),
                display_name: "Late".into(),
                sid: sid.into(),
                groups: Vec::new(),
                email: None,
                language: None,
            })
            .await
            .unwrap_err();
        assert_eq!(
            err.code,
            opencm_app::ErrorCode::AlreadyExists,
            "{sid}: {err}"
        );
    }
    // Logins differ in more than case.
    let err = app
        .core
        .add_user(&opencm_app::ports::NewUser {
            uuid: opencm_domain::Guid::new_random().into(),
            login: "ALICE".into(),
            display_name: "Alice again".into(),
            sid: "S-1-5-21-1000-1000-1000-1198".into(),
            groups: Vec::new(),
            email: None,
            language: None,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code, opencm_app::ErrorCode::AlreadyExists, "{err}");
    // A real group still takes members.
    let (s, v) = admin(
        &app,
        "admin",
        Method::POST,
        "/groups/members",
        Some(json!({"Login": "eve", "Sid": "S-1-5-21-1000-1000-1000-2001"})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");

    // A long token id is answered with an excerpt of it, not all of it.
    let long = "a".repeat(30_000);
    let (s, v) = admin(
        &app,
        "admin",
        Method::DELETE,
        &format!("/tokens/{long}"),
        None,
    )
    .await;
    refused(s, &v, StatusCode::NOT_FOUND, "TokenNotFound", "");
    assert!(v["Message"].as_str().unwrap().len() < 200, "{v}");
}

on_each_engine!(a_secret_racing_a_revocation_is_released_before_it_or_not_at_all);
async fn a_secret_racing_a_revocation_is_released_before_it_or_not_at_all(app: TestApp) {
    let w = Work::new();
    save_ca(&app, &w).await;
    let e = enrol_card(&app, &w).await;
    let unblock = on_card(&app, "alice", "Unblock", &e.card).await;
    let revoke = on_card(&app, "alice", "Revoke", &e.card).await;
    let before = app.history(&unblock).await.len();
    let pukq = format!("cardid={}", e.card_id);
    let puk_path = secret_path(&unblock, &e.card, "puk", &pukq);
    let releases = futures::future::join_all((0..6).map(|_| app.get("alice", &puk_path)));
    let (answers, (s, v)) = tokio::join!(releases, app.put_status("alice", &revoke, "Completed"));
    assert_eq!(s, StatusCode::OK, "{v}");
    // Every answer is a PUK released while the card was in service, recorded, or a refusal
    // because it no longer is (the card or its profile read first says so); none goes
    // unrecorded.
    let released = answers.iter().filter(|(s, _)| *s == StatusCode::OK).count();
    for (s, v) in &answers {
        assert!(
            *s == StatusCode::OK
                || (*s == StatusCode::CONFLICT
                    && matches!(code(v), Some("SmartcardDisabled" | "ProfileDisabled"))),
            "{s}: {v}"
        );
    }
    let history = app.history(&unblock).await;
    let recorded = history[before..]
        .iter()
        .filter(|h| h["Action"] == "ReleasePuk")
        .count();
    assert_eq!(recorded, released, "{history:?}");
    // Afterwards, nothing.
    let (s, v) = app.get("alice", &puk_path).await;
    refused(s, &v, StatusCode::CONFLICT, "SmartcardDisabled", "");
}

on_each_engine!(a_card_leaving_service_takes_what_requests_in_flight_issued_for_it);
async fn a_card_leaving_service_takes_what_requests_in_flight_issued_for_it(app: TestApp) {
    let w = Work::new();
    save_ca(&app, &w).await;
    // A renewal on the card has its new certificate, not yet completed; the card is revoked.
    let e = enrol_card(&app, &w).await;
    let renew = on_card(&app, "alice", "Renew", &e.card).await;
    let renewed = issue(&app, &w, "alice", &renew, "renewed").await;
    let revoke = on_card(&app, "alice", "Revoke", &e.card).await;
    assert_eq!(
        app.put_status("alice", &revoke, "Completed").await.0,
        StatusCode::OK
    );
    let (text, ok, _) = crl_check(&app, &w, &renewed).await;
    assert!(
        !ok && text.contains(&serial_of(&renewed)),
        "the renewal's certificate left with the card: {text}"
    );
    let (s, v) = app.put_status("alice", &renew, "Completed").await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert_eq!(
        app.put_status("alice", &renew, "Canceled").await.0,
        StatusCode::OK
    );

    // A temporary card in the making, its certificate issued; the permanent card is retired by
    // a status set during execution (then the retirement is even canceled).
    let p = enrol_card(&app, &w).await;
    let temp_req = on_card(&app, "carol", "TemporaryCards", &p.card).await;
    let (s, v) = bind(&app, "carol", &temp_req, &uuid::Uuid::new_v4().to_string()).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let temp = id_of(&v);
    let temp_leaf = issue(&app, &w, "carol", &temp_req, "temp").await;
    let retire = on_card(&app, "alice", "Retire", &p.card).await;
    let (s, v) = set_card(&app, "alice", &retire, &p.card, "Retired").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (text, ok, _) = crl_check(&app, &w, &temp_leaf).await;
    assert!(!ok && text.contains(&serial_of(&temp_leaf)), "{text}");
    assert_eq!(
        app.put_status("alice", &retire, "Canceled").await.0,
        StatusCode::OK
    );
    let (text, ok, _) = crl_check(&app, &w, &temp_leaf).await;
    assert!(!ok, "and stays revoked: {text}");
    let (s, v) = app.put_status("carol", &temp_req, "Completed").await;
    refused(s, &v, StatusCode::CONFLICT, "SmartcardRetired", "");
    assert_eq!(
        app.put_status("carol", &temp_req, "Canceled").await.0,
        StatusCode::OK
    );
    assert_eq!(card_of(&app, "admin", &temp).await["Status"], 6);

    // A temporary card completed while its permanent card was in service is a card of its own:
    // the permanent card's later revocation leaves it as it is.
    let p = enrol_card(&app, &w).await;
    let temp_req = on_card(&app, "carol", "TemporaryCards", &p.card).await;
    let (s, v) = bind(&app, "carol", &temp_req, &uuid::Uuid::new_v4().to_string()).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let temp_leaf = issue(&app, &w, "carol", &temp_req, "temp2").await;
    assert_eq!(
        app.put_status("carol", &temp_req, "Completed").await.0,
        StatusCode::OK
    );
    let revoke = on_card(&app, "alice", "Revoke", &p.card).await;
    assert_eq!(
        app.put_status("alice", &revoke, "Completed").await.0,
        StatusCode::OK
    );
    let (text, ok, _) = crl_check(&app, &w, &temp_leaf).await;
    assert!(ok, "{text}");
}

on_each_engine!(users_are_named_and_identified_as_accounts_are);
async fn users_are_named_and_identified_as_accounts_are(app: TestApp) {
    use opencm_app::ports::NewUser;
    let user = |login: &str, sid: &str| NewUser {
        uuid: opencm_domain::Guid::new_random().into(),
        login: login.into(),
        display_name: "X".into(),
        sid: sid.into(),
        groups: Vec::new(),
        email: None,
        language: None,
    };
    // Logins that print like another's, or a SID that is no account's: refused.
    for (login, sid) in [
        (" alice", "S-1-5-21-9-9-9-2201"),
        ("alice ", "S-1-5-21-9-9-9-2202"),
        ("al\u{0}ice", "S-1-5-21-9-9-9-2203"),
        ("system", "S-1-5-18"),
        ("users", "S-1-5-32-545"),
    ] {
        let e = app.core.add_user(&user(login, sid)).await.unwrap_err();
        assert_eq!(
            e.code,
            opencm_app::ErrorCode::InvalidRequest,
            "{login:?}: {e}"
        );
    }
    // Tokens are listed by login in any case.
    let tokens = app
        .core
        .tokens(opencm_app::Actor::Cli, Some("ALICE"))
        .await
        .unwrap();
    assert!(!tokens.is_empty());
}
