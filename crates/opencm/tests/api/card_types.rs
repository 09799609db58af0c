//! The request types that make cards from other cards (Duplicate, TemporaryCards), replace what a
//! card holds (OnlineUpdate), or act on it without touching its certificates (OfflineUnblock,
//! Recover), and the end of temporary cards (expiry, TemporaryCardDisable, TemporaryCardRetire):
//! each over HTTP, checking the card, its profile, its certificates and the CRL afterwards.

use crate::cards::{bind, card_of, card_request, enrol_card, NIL, PIV};
use crate::helpers::id_of;
use crate::helpers::*;
use crate::issuance::{
    crl_check, csr, leaf_of, pfx_public_key, post_csrs, save_ca, serial_of, Work, P256,
};
use reqwest::StatusCode;
use serde_json::{json, Value};

/// Binds a new card id to `request`, issues one certificate onto it and completes the request.
/// Returns the card's uuid, the completed request and the certificate's path.
pub(crate) async fn issue_onto_new_card(
    app: &TestApp,
    w: &Work,
    who: &str,
    request: &str,
    name: &str,
) -> (String, Value, String) {
    let card_id = uuid::Uuid::new_v4().to_string();
    let (s, v) = bind(app, who, request, &card_id).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let card = id_of(&v);
    let leaf = issue(app, w, who, request, name).await;
    let (s, done) = app.put_status(who, request, "Completed").await;
    assert_eq!(s, StatusCode::OK, "{done}");
    assert_eq!(done["NewSmartcardUuid"], card.as_str());
    (card, done, leaf)
}

/// Issues one certificate for `request`; returns its path.
pub(crate) async fn issue(app: &TestApp, w: &Work, who: &str, request: &str, name: &str) -> String {
    let (s, resp) = post_csrs(
        app,
        who,
        request,
        json!({"certificaterequests": [csr(w, name, P256)]}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{resp}");
    leaf_of(w, resp[0]["Pkcs7"].as_str().unwrap())
}

pub(crate) async fn profile(app: &TestApp, id: &Value) -> Value {
    let (s, p) = app
        .get("admin", &format!("/profiles/{}", id.as_str().unwrap()))
        .await;
    assert_eq!(s, StatusCode::OK, "{p}");
    p
}

/// The request a 201 created, as its initiator reads it.
pub(crate) async fn created(app: &TestApp, who: &str, location: &Value) -> (String, Value) {
    let id = id_of(location);
    let (s, r) = app.get(who, &format!("/requests/{id}")).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    (id, r)
}

fn code(v: &Value) -> Option<&str> {
    v["ErrorCode"].as_str()
}

on_each_engine!(a_duplicate_is_a_new_card_that_names_the_card_it_copies);
async fn a_duplicate_is_a_new_card_that_names_the_card_it_copies(app: TestApp) {
    let w = Work::new();
    save_ca(&app, &w).await;
    let e = enrol_card(&app, &w).await;
    let (_, original) = app.get("alice", &format!("/requests/{}", e.request)).await;

    let (s, v) = card_request(&app, "alice", "Duplicate", &e.card).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (dup, v) = created(&app, "alice", &v).await;
    assert_eq!(
        (&v["OldSmartcardUuid"], &v["NewSmartcardUuid"]),
        (&json!(e.card), &json!(NIL))
    );
    let (second, done, _) = issue_onto_new_card(&app, &w, "alice", &dup, "dup").await;

    // The new card is a duplicate of the original, both in service; so is its profile.
    let card = card_of(&app, "alice", &second).await;
    assert_eq!(
        (
            &card["Status"],
            &card["Flags"],
            &card["PrimarySmartcardUuid"]
        ),
        (&json!(2), &json!(2), &json!(e.card)),
        "{card}"
    );
    assert_eq!(card["PermanentSmartcardUuid"], NIL);
    assert!(card.get("ExpirationDate").is_none(), "{card}");
    assert_eq!(card_of(&app, "alice", &e.card).await["Status"], 2);
    let p = profile(&app, &done["NewProfileUuid"]).await;
    assert_eq!(
        (&p["Status"], &p["Flags"], &p["PrimaryProfileUuid"]),
        (&json!(2), &json!(2), &original["NewProfileUuid"]),
        "{p}"
    );
    for card in [&e.card, &second] {
        let (_, certs) = app
            .get("alice", &format!("/smartcards/{card}/certificates"))
            .await;
        assert_eq!(certs.as_array().unwrap().len(), 1, "{card}: {certs}");
    }
    let (text, ok, _) = crl_check(&app, &w, &e.leaf).await;
    assert!(ok, "the original's certificate stays valid: {text}");

    // A duplicate is not copied from a card that is not in service (its profile, read first,
    // says so).
    let (s, v) = card_request(&app, "alice", "SuspendOrReinstate", &second).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, v) = app.put_status("alice", &id_of(&v), "Completed").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = card_request(&app, "alice", "Duplicate", &second).await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::CONFLICT, Some("ProfileSuspended")),
        "{v}"
    );
}

on_each_engine!(an_online_update_puts_new_certificates_on_the_same_card);
async fn an_online_update_puts_new_certificates_on_the_same_card(app: TestApp) {
    let w = Work::new();
    save_ca(&app, &w).await;
    let e = enrol_card(&app, &w).await;
    let (_, enrolment) = app.get("alice", &format!("/requests/{}", e.request)).await;
    let (s, v) = card_request(&app, "alice", "OnlineUpdate", &e.card).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (update, v) = created(&app, "alice", &v).await;
    assert_eq!(v["NewSmartcardUuid"], e.card.as_str(), "on the same card");

    // It brings the card its template's certificates: completing without them is refused.
    let (s, v) = app.put_status("alice", &update, "Completed").await;
    assert_eq!((s, code(&v)), (StatusCode::CONFLICT, Some("NothingIssued")));
    let (_, options) = app
        .get(
            "alice",
            &format!("/requests/{update}/certificaterequestgenerationoptions"),
        )
        .await;
    assert_eq!(options.as_array().unwrap().len(), 1, "{options}");
    let new_leaf = issue(&app, &w, "alice", &update, "updated").await;
    let (s, done) = app.put_status("alice", &update, "Completed").await;
    assert_eq!(s, StatusCode::OK, "{done}");

    // The card stays in service and holds both certificates; the old one is superseded.
    assert_eq!(card_of(&app, "alice", &e.card).await["Status"], 2);
    let p = profile(&app, &done["NewProfileUuid"]).await;
    assert_eq!(
        (&p["Status"], &p["ParentProfileUuid"]),
        (&json!(2), &enrolment["NewProfileUuid"]),
        "{p}"
    );
    let old = profile(&app, &enrolment["NewProfileUuid"]).await;
    assert_eq!(old["Status"], 6, "{old}");
    let (_, certs) = app
        .get("alice", &format!("/smartcards/{}/certificates", e.card))
        .await;
    assert_eq!(certs.as_array().unwrap().len(), 2, "{certs}");
    let (text, ok, _) = crl_check(&app, &w, &e.leaf).await;
    assert!(!ok && text.contains("Superseded"), "{text}");
    let (text, ok, out) = crl_check(&app, &w, &new_leaf).await;
    assert!(ok, "{out}\n{text}");
}

/// Issues alice's temporary card on her permanent card `permanent`, as the helpdesk (carol).
pub(crate) async fn temporary_card(
    app: &TestApp,
    w: &Work,
    permanent: &str,
    name: &str,
) -> (String, String) {
    let (s, v) = card_request(app, "carol", "TemporaryCards", permanent).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (request, v) = created(app, "carol", &v).await;
    assert_eq!(v["OldSmartcardUuid"], permanent);
    let (card, _, leaf) = issue_onto_new_card(app, w, "carol", &request, name).await;
    (card, leaf)
}

on_each_engine!(a_temporary_card_expires_and_is_disabled_and_retired_by_the_helpdesk);
async fn a_temporary_card_expires_and_is_disabled_and_retired_by_the_helpdesk(app: TestApp) {
    let w = Work::new();
    save_ca(&app, &w).await;
    let e = enrol_card(&app, &w).await;

    // Temporary cards are the helpdesk's: not self-service, and made from a permanent card.
    let (s, v) = card_request(&app, "alice", "TemporaryCards", &e.card).await;
    assert_eq!((s, code(&v)), (StatusCode::FORBIDDEN, Some("AccessDenied")));
    let (s, v, _) = app
        .post_request(
            "carol",
            json!({"type": "TemporaryCards", "profiletemplateuuid": PIV, "target": app.users["alice"].uuid}),
        )
        .await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::BAD_REQUEST, Some("SmartcardRequired")),
        "{v}"
    );
    let (s, v) = card_request(&app, "carol", "TemporaryCardDisable", &e.card).await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::CONFLICT, Some("SmartcardNotTemporary")),
        "{v}"
    );

    // A temporary card: alice's, naming her permanent card, with an expiry a week out; its
    // certificate ends then too (openssl reads it), not after the template's 365 days.
    let (temp, leaf) = temporary_card(&app, &w, &e.card, "temp").await;
    let card = card_of(&app, "alice", &temp).await;
    assert_eq!(
        (
            &card["Status"],
            &card["Flags"],
            &card["PermanentSmartcardUuid"]
        ),
        (&json!(2), &json!(4), &json!(e.card)),
        "{card}"
    );
    assert_eq!(
        card["AssignedUserUuid"],
        app.users["alice"].uuid.to_string()
    );
    assert_eq!(card["ExpirationDate"], "2015-07-14T23:36:21.93Z", "{card}");
    let (ok, end) = openssl(&["x509", "-in", &leaf, "-noout", "-enddate"]);
    assert!(ok && end.contains("Jul 14 23:36:21 2015 GMT"), "{end}");
    assert_eq!(card_of(&app, "alice", &e.card).await["Status"], 2);
    let (s, v) = card_request(&app, "carol", "Duplicate", &temp).await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::CONFLICT, Some("SmartcardTemporary")),
        "{v}"
    );

    // The permanent card is back: the helpdesk disables the temporary one — its certificate is
    // revoked — then retires it.
    let (s, v) = card_request(&app, "carol", "TemporaryCardDisable", &temp).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, v) = app.put_status("carol", &id_of(&v), "Completed").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(card_of(&app, "alice", &temp).await["Status"], 3);
    assert_eq!(profile(&app, &v["OldProfileUuid"]).await["Status"], 3);
    let (text, ok, _) = crl_check(&app, &w, &leaf).await;
    assert!(!ok && text.contains(&serial_of(&leaf)), "{text}");
    let (text, ok, _) = crl_check(&app, &w, &e.leaf).await;
    assert!(ok, "the permanent card's certificate stays valid: {text}");
    let (s, v) = card_request(&app, "carol", "TemporaryCardRetire", &temp).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, v) = app.put_status("carol", &id_of(&v), "Completed").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(card_of(&app, "alice", &temp).await["Status"], 6);
    assert_eq!(profile(&app, &v["OldProfileUuid"]).await["Status"], 6);

    // A second temporary card simply runs out: eight days on it reads Disabled, takes no
    // requests but retirement, and its certificate has expired with it.
    let (temp2, leaf2) = temporary_card(&app, &w, &e.card, "temp2").await;
    app.clock.advance_ms(8 * 86_400_000);
    assert_eq!(card_of(&app, "alice", &temp2).await["Status"], 3);
    assert_eq!(card_of(&app, "alice", &e.card).await["Status"], 2);
    let (_, ops) = app
        .get("carol", &format!("/smartcards/{temp2}/operations"))
        .await;
    assert!(
        !ops.as_array().unwrap().contains(&json!("unblock")),
        "{ops}"
    );
    for t in ["Unblock", "TemporaryCardDisable"] {
        let (s, v) = card_request(&app, "carol", t, &temp2).await;
        assert_eq!(
            (s, code(&v)),
            (StatusCode::CONFLICT, Some("SmartcardDisabled")),
            "{t}: {v}"
        );
    }
    let (_, certs) = app
        .get("alice", &format!("/smartcards/{temp2}/certificates"))
        .await;
    let serial = serial_of(&leaf2);
    let (_, all) = app.get("alice", "/certificates").await;
    let mine = all
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["SerialNumber"] == serial.as_str())
        .unwrap_or_else(|| panic!("{serial} in {all}"));
    assert_eq!(mine["Status"], 3, "Expired: {mine}");
    assert_eq!(certs.as_array().unwrap().len(), 1, "{certs}");
    let (s, v) = card_request(&app, "carol", "TemporaryCardRetire", &temp2).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, v) = app.put_status("carol", &id_of(&v), "Completed").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(card_of(&app, "alice", &temp2).await["Status"], 6);
}

on_each_engine!(an_offline_unblock_leaves_the_card_and_its_certificate_as_they_are);
async fn an_offline_unblock_leaves_the_card_and_its_certificate_as_they_are(app: TestApp) {
    let w = Work::new();
    save_ca(&app, &w).await;
    let e = enrol_card(&app, &w).await;
    let (s, v) = card_request(&app, "alice", "OfflineUnblock", &e.card).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (unblock, v) = created(&app, "alice", &v).await;
    assert_eq!(
        (&v["OldSmartcardUuid"], &v["NewSmartcardUuid"]),
        (&json!(e.card), &json!(e.card))
    );
    // It issues nothing.
    let (s, v) = post_csrs(
        &app,
        "alice",
        &unblock,
        json!({"certificaterequests": [csr(&w, "x", P256)]}),
    )
    .await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::BAD_REQUEST, Some("NoCertificates"))
    );
    let (s, done) = app.put_status("alice", &unblock, "Completed").await;
    assert_eq!(s, StatusCode::OK, "{done}");
    assert_eq!(card_of(&app, "alice", &e.card).await["Status"], 2);
    assert_eq!(profile(&app, &done["OldProfileUuid"]).await["Status"], 2);
    let (text, ok, _) = crl_check(&app, &w, &e.leaf).await;
    assert!(ok, "{text}");
}

/// A card whose encryption key is made by the server, injected into the card and archived, so a
/// lost PIN or a broken card does not lose what was encrypted to it.
const ESCROW_CARD: &str = r#"
[[template]]
uuid = "7c3e51a4-1f0d-4e8b-9a52-6b0f2d9e4c77"
name = "Card With Escrow"
kind = "smartcard"
version = 1
security_descriptor = "O:BAD:(A;;RCCR;;;AU)(A;;GA;;;BA)"

[[template.certificates]]
common_name = "opencmCardEncryption"
key_usages = ["key_agreement"]
extended_key_usages = ["email_protection"]
server_generated = true
archive_key = true

[template.smartcard]
use_secure_key_injection = true

[template.policies.Enroll]
self_service_enabled = true
[template.policies.Recover]
self_service_enabled = true
"#;

on_each_engine!(recovering_a_card_delivers_its_archived_key_and_leaves_the_card_in_service);
async fn recovering_a_card_delivers_its_archived_key_and_leaves_the_card_in_service(app: TestApp) {
    let w = Work::new();
    save_ca(&app, &w).await;
    app.core.import_templates(ESCROW_CARD).await.unwrap();
    let enrol = app
        .create("alice", "7c3e51a4-1f0d-4e8b-9a52-6b0f2d9e4c77")
        .await;
    let (s, v) = bind(&app, "alice", &enrol, &uuid::Uuid::new_v4().to_string()).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let card = id_of(&v);
    let (s, resp) = post_csrs(&app, "alice", &enrol, json!({"pfxpassword": "inject me"})).await;
    assert_eq!(s, StatusCode::OK, "{resp}");
    let issued = pfx_public_key(&w, resp[0]["Pfx"].as_str().unwrap(), "inject me", "issued");
    let (s, done) = app.put_status("alice", &enrol, "Completed").await;
    assert_eq!(s, StatusCode::OK, "{done}");

    let (s, v) = card_request(&app, "alice", "Recover", &card).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (recover, r) = created(&app, "alice", &v).await;
    assert_eq!(
        (&r["OldSmartcardUuid"], &r["NewSmartcardUuid"]),
        (&json!(card), &json!(card))
    );
    assert_eq!(r["OldProfileUuid"], done["NewProfileUuid"]);
    let (s, resp) = post_csrs(&app, "alice", &recover, json!({"pfxpassword": "again"})).await;
    assert_eq!(s, StatusCode::OK, "{resp}");
    let recovered = pfx_public_key(&w, resp[0]["Pfx"].as_str().unwrap(), "again", "recovered");
    assert_eq!(recovered, issued, "the archived key is the one injected");
    let (s, v) = app.put_status("alice", &recover, "Completed").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(card_of(&app, "alice", &card).await["Status"], 2);
    assert_eq!(profile(&app, &done["NewProfileUuid"]).await["Status"], 2);
    let (_, certs) = app
        .get("alice", &format!("/smartcards/{card}/certificates"))
        .await;
    assert_eq!(
        certs.as_array().unwrap().len(),
        1,
        "nothing new issued: {certs}"
    );
    assert_eq!(certs[0]["IsKeyHistory"], false, "{certs}");
}

/// Cards that are never reused: a renewal goes onto a new card, and the old one is retired.
const NO_REUSE_CARD: &str = r#"
[[template]]
uuid = "7c3e51a4-1f0d-4e8b-9a52-6b0f2d9e4c78"
name = "Card Per Renewal"
kind = "smartcard"
version = 1
security_descriptor = "O:BAD:(A;;RCCR;;;AU)(A;;GA;;;BA)"

[[template.certificates]]
common_name = "logon"
key_algorithm = "ECDSA_P256"
key_usages = ["digital_signature"]
extended_key_usages = ["smartcard_logon", "client_auth"]

[template.smartcard]
allow_smartcard_reuse = false

[template.policies.Enroll]
self_service_enabled = true
[template.policies.Renew]
self_service_enabled = true
[template.policies.Revoke]
self_service_enabled = true
"#;

on_each_engine!(a_renewal_on_a_template_that_does_not_reuse_cards_moves_to_a_new_card);
async fn a_renewal_on_a_template_that_does_not_reuse_cards_moves_to_a_new_card(app: TestApp) {
    let w = Work::new();
    save_ca(&app, &w).await;
    app.core.import_templates(NO_REUSE_CARD).await.unwrap();
    let enrol = app
        .create("alice", "7c3e51a4-1f0d-4e8b-9a52-6b0f2d9e4c78")
        .await;
    let (old, first, old_leaf) = issue_onto_new_card(&app, &w, "alice", &enrol, "first").await;

    let (s, v) = card_request(&app, "alice", "Renew", &old).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (renew, r) = created(&app, "alice", &v).await;
    assert_eq!(
        (&r["OldSmartcardUuid"], &r["NewSmartcardUuid"]),
        (&json!(old), &json!(NIL)),
        "a new card is bound later"
    );
    let (s, v) = post_csrs(
        &app,
        "alice",
        &renew,
        json!({"certificaterequests": [csr(&w, "early", P256)]}),
    )
    .await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::CONFLICT, Some("SmartcardNotBound"))
    );
    let (new, done, new_leaf) = issue_onto_new_card(&app, &w, "alice", &renew, "second").await;

    // The new card replaces the old: it names it as its parent, and the old one is retired with
    // its profile superseded and its certificate revoked.
    let card = card_of(&app, "alice", &new).await;
    assert_eq!(
        (
            &card["Status"],
            &card["Flags"],
            &card["ParentSmartcardUuid"]
        ),
        (&json!(2), &json!(1), &json!(old)),
        "{card}"
    );
    assert_eq!(card_of(&app, "alice", &old).await["Status"], 6);
    assert_eq!(profile(&app, &first["NewProfileUuid"]).await["Status"], 6);
    assert_eq!(profile(&app, &done["NewProfileUuid"]).await["Status"], 2);
    let (text, ok, _) = crl_check(&app, &w, &old_leaf).await;
    assert!(!ok && text.contains("Superseded"), "{text}");
    let (_, ok, out) = crl_check(&app, &w, &new_leaf).await;
    assert!(ok, "{out}");

    // A renewal whose old card was revoked meanwhile cannot complete, and changes nothing.
    let (s, v) = card_request(&app, "alice", "Renew", &new).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let again = id_of(&v);
    let card_id = uuid::Uuid::new_v4().to_string();
    let (s, v) = bind(&app, "alice", &again, &card_id).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let third = id_of(&v);
    issue(&app, &w, "alice", &again, "third").await;
    let (s, v) = card_request(&app, "alice", "Revoke", &new).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, v) = app.put_status("alice", &id_of(&v), "Completed").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = app.put_status("alice", &again, "Completed").await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::CONFLICT, Some("SmartcardDisabled")),
        "{v}"
    );
    assert_eq!(
        card_of(&app, "alice", &new).await["Status"],
        3,
        "stays revoked"
    );
    assert_eq!(
        card_of(&app, "alice", &third).await["Status"],
        1,
        "still only bound"
    );
    // Canceling it is always possible: the card bound for it is retired, the revoked one stays.
    let (s, v) = app.put_status("alice", &again, "Canceled").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(card_of(&app, "alice", &third).await["Status"], 6);
    assert_eq!(card_of(&app, "alice", &new).await["Status"], 3);
}
