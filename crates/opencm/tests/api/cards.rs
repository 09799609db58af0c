//! The card lifecycle over HTTP, on the demo PIV template: enrol onto a bound card (challenge
//! responses checked with `openssl enc -des-ede3`, the diversified key's parity, the proposed PIN,
//! the certificate verified by openssl), then unblock, suspend and reinstate, retire — each
//! checking the card, its profile, its certificates and the CRL afterwards. Card secrets go only to
//! the executor of an executing request on that card, and each release is in the history.

use crate::helpers::*;
use crate::issuance::{crl_check, csr, leaf_of, post_csrs, save_ca, serial_of, Work, P256};
use base64::Engine;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

pub const PIV: &str = "7c3e51a4-1f0d-4e8b-9a52-6b0f2d9e4c11";
const PIV_DEFAULT_KEY: &str = "010203040506070801020304050607080102030405060708";
pub(crate) const ATR: &str = "3b8d0180fba000000397425446590301c8";

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

fn unb64(s: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}

/// E(key, challenge) by openssl: 3DES-EDE in ECB, one block, no padding.
fn openssl_3des(w: &Work, key: &[u8], challenge: &[u8]) -> Vec<u8> {
    openssl_ecb(w, "-des-ede3", key, challenge)
}

/// E(key, challenge) by openssl with `cipher` (`-des-ede3`, `-aes-128-ecb`…), one block, no padding.
fn openssl_ecb(w: &Work, cipher: &str, key: &[u8], challenge: &[u8]) -> Vec<u8> {
    let (input, output) = (w.p("challenge"), w.p("response"));
    std::fs::write(&input, challenge).unwrap();
    let (ok, msg) = openssl(&[
        "enc",
        cipher,
        "-nopad",
        "-K",
        &hex::encode(key),
        "-in",
        &input,
        "-out",
        &output,
    ]);
    assert!(ok, "{msg}");
    std::fs::read(&output).unwrap()
}

pub(crate) async fn bind(
    app: &TestApp,
    who: &str,
    request: &str,
    card_id: &str,
) -> (StatusCode, Value) {
    let (s, v, _) = app
        .send(
            who,
            Method::POST,
            "/smartcards",
            Some(json!({"requestid": request, "cardid": card_id, "atr": ATR})),
        )
        .await;
    (s, v)
}

pub(crate) fn secret_path(req: &str, card: &str, what: &str, query: &str) -> String {
    format!("/requests/{req}/smartcards/{card}/{what}?{query}")
}

pub(crate) async fn card_request(
    app: &TestApp,
    who: &str,
    kind: &str,
    card: &str,
) -> (StatusCode, Value) {
    let (s, v, _) = app
        .post_request(who, json!({"type": kind, "smartcard": card}))
        .await;
    (s, v)
}

/// An enrolled PIV card: the request, the card's uuid and card id, the leaf certificate's path.
pub struct Enrolled {
    pub request: String,
    /// The PIN the server proposed and keeps.
    pub pin: String,
    pub card: String,
    pub card_id: String,
    pub leaf: String,
}

/// Enrols alice's PIV card the way a client does, checking every answer on the way.
pub(crate) async fn enrol_card(app: &TestApp, w: &Work) -> Enrolled {
    let request = app.create("alice", PIV).await;
    assert_eq!(app.status_of(&request).await, 3, "approved automatically");

    // Nothing can be issued, nor the request completed, before a card is bound.
    let (s, v) = post_csrs(
        app,
        "alice",
        &request,
        json!({"certificaterequests": [csr(w, "early", P256)]}),
    )
    .await;
    assert_eq!(
        (s, v["ErrorCode"].as_str()),
        (StatusCode::CONFLICT, Some("SmartcardNotBound")),
        "{v}"
    );
    let (s, v) = app.put_status("alice", &request, "Completed").await;
    assert_eq!(
        (s, v["ErrorCode"].as_str()),
        (StatusCode::CONFLICT, Some("SmartcardNotBound"))
    );

    let card_id = uuid::Uuid::new_v4().to_string();
    let (s, v) = bind(app, "alice", &request, &card_id).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let card = id_of(&v);

    // Admin authentication with the factory key, as the client does first.
    let challenge: [u8; 8] = rand_bytes();
    let q = format!(
        "cardid={card_id}&challenge={}&diversified=false&atr={ATR}",
        urlencoding(&b64(&challenge))
    );
    let (s, v) = app
        .get(
            "alice",
            &secret_path(&request, &card, "authenticationresponse", &q),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let factory = hex::decode(PIV_DEFAULT_KEY).unwrap();
    assert_eq!(
        unb64(v.as_str().unwrap()),
        openssl_3des(w, &factory, &challenge)
    );

    // The card's own key: 24 bytes, odd DES parity, the same on every call; the diversified
    // response is E(that key, challenge) by openssl.
    let q = format!("cardid={card_id}&atr={ATR}");
    let (s, v) = app
        .get("alice", &secret_path(&request, &card, "diversifiedkey", &q))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let key = unb64(v.as_str().unwrap());
    assert_eq!(key.len(), 24);
    assert!(key.iter().all(|b| b.count_ones() % 2 == 1), "odd parity");
    assert_ne!(key, factory);
    let (_, again) = app
        .get("alice", &secret_path(&request, &card, "diversifiedkey", &q))
        .await;
    assert_eq!(unb64(again.as_str().unwrap()), key, "one card, one key");
    let challenge: [u8; 8] = rand_bytes();
    let q = format!(
        "cardid={card_id}&challenge={}&diversified=true",
        urlencoding(&b64(&challenge))
    );
    let (s, v) = app
        .get(
            "alice",
            &secret_path(&request, &card, "authenticationresponse", &q),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        unb64(v.as_str().unwrap()),
        openssl_3des(w, &key, &challenge)
    );

    // A PIN by the template's policy (6 to 8 digits), kept sealed: the same on a second call.
    let q = format!("cardid={card_id}&atr={ATR}");
    let (s, pin) = app
        .get(
            "alice",
            &format!("/smartcards/{card}/serverproposedpin?{q}"),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{pin}");
    let pin = pin.as_str().unwrap().to_string();
    assert!(
        (6..=8).contains(&pin.len()) && pin.bytes().all(|b| b.is_ascii_digit()),
        "{pin}"
    );
    let (_, again) = app
        .get(
            "alice",
            &secret_path(&request, &card, "serverproposedpin", &q),
        )
        .await;
    assert_eq!(again, json!(pin));

    // Issue onto the card, then complete.
    let (s, resp) = post_csrs(
        app,
        "alice",
        &request,
        json!({"certificaterequests": [csr(w, "piv", P256)]}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{resp}");
    let leaf = leaf_of(w, resp[0]["Pkcs7"].as_str().unwrap());
    let (s, done) = app.put_status("alice", &request, "Completed").await;
    assert_eq!(s, StatusCode::OK, "{done}");
    assert_eq!(done["Status"], 8);
    assert_eq!(done["NewSmartcardUuid"], card.as_str());
    assert_ne!(done["NewProfileUuid"], json!(NIL));
    // Cards, like requests and profiles, get time-ordered (version 7) GUIDs.
    assert_eq!(card.chars().nth(14), Some('7'), "{card}");
    assert!(
        card.as_str() > request.as_str(),
        "{card} sorts after {request}"
    );

    // Every release is in the history, and no secret is.
    let history = app.history(&request).await;
    let text = serde_json::to_string(&history).unwrap();
    for action in [
        "BindSmartcard",
        "AuthenticationResponse",
        "ReleaseAdminKey",
        "ProposePin",
        "ReleasePin",
    ] {
        assert!(text.contains(action), "{action} missing: {text}");
    }
    assert!(!text.contains(&pin) && !text.contains(&b64(&key)), "{text}");
    Enrolled {
        request,
        pin,
        card,
        card_id,
        leaf,
    }
}

pub(crate) const NIL: &str = "00000000-0000-0000-0000-000000000000";

fn rand_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    for (i, x) in b.iter_mut().enumerate() {
        *x = (uuid::Uuid::new_v4().as_bytes()[i % 16]) ^ (i as u8);
    }
    b
}

/// Query values in base64 hold `+`, `/` and `=`.
fn urlencoding(s: &str) -> String {
    s.replace('+', "%2B")
        .replace('/', "%2F")
        .replace('=', "%3D")
}

pub(crate) async fn card_of(app: &TestApp, who: &str, id: &str) -> Value {
    let (s, v) = app.get(who, &format!("/smartcards/{id}")).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v
}

on_each_engine!(a_piv_card_is_enrolled_unblocked_suspended_reinstated_and_retired);
async fn a_piv_card_is_enrolled_unblocked_suspended_reinstated_and_retired(app: TestApp) {
    let w = Work::new();
    save_ca(&app, &w).await;
    let e = enrol_card(&app, &w).await;
    let serial = serial_of(&e.leaf);

    // A logon certificate as Windows wants it, and relying parties can find its CRL and issuer.
    let (ok, text) = openssl(&["x509", "-in", &e.leaf, "-noout", "-text"]);
    assert!(ok, "{text}");
    for want in [
        "Microsoft Smartcard Login",
        "TLS Web Client Authentication",
        "UPN:",
        &format!("URI:{PUBLIC_URL}/pki/crl"),
        &format!("CA Issuers - URI:{PUBLIC_URL}/pki/ca.cer"),
    ] {
        assert!(text.contains(want), "{want} missing:\n{text}");
    }
    let der = app
        .http
        .get(format!("{}/pki/ca.cer", app.base))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    std::fs::write(w.p("ca.cer"), &der).unwrap();
    let (ok, out) = openssl(&[
        "verify",
        "-attime",
        "1436312300",
        "-CAfile",
        &w.p("ca.pem"),
        &e.leaf,
    ]);
    assert!(ok, "{out}");
    let (ok, subject) = openssl(&[
        "x509",
        "-inform",
        "DER",
        "-in",
        &w.p("ca.cer"),
        "-noout",
        "-subject",
    ]);
    assert!(ok && subject.contains("opencm Test CA"), "{subject}");

    // Active, with its profile and certificate; the operations a self-service user may start.
    assert_eq!(card_of(&app, "alice", &e.card).await["Status"], 2);
    let (s, certs) = app
        .get("alice", &format!("/smartcards/{}/certificates", e.card))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(certs.as_array().unwrap().len(), 1, "{certs}");
    assert_eq!(certs[0]["SerialNumber"], serial.as_str());
    let (_, ops) = app
        .get("alice", &format!("/smartcards/{}/operations", e.card))
        .await;
    for op in ["renew", "retire", "suspend", "onlineupdate", "unblock"] {
        assert!(ops.as_array().unwrap().contains(&json!(op)), "{op}: {ops}");
    }
    assert!(!ops.as_array().unwrap().contains(&json!("reinstate")));
    let (_, eve_sees) = app
        .get("eve", &format!("/smartcards/{}/operations", e.card))
        .await;
    assert_eq!(eve_sees["ErrorCode"], "SmartcardNotFound");

    // After the enrolment the executor gets no more secrets; holders of DistributeSecrets on the
    // request (BA) read the kept PIN, and that is recorded too.
    let pin_path = secret_path(
        &e.request,
        &e.card,
        "serverproposedpin",
        &format!("cardid={}", e.card_id),
    );
    let (s, v) = app.get("alice", &pin_path).await;
    assert_eq!(
        (s, v["ErrorCode"].as_str()),
        (StatusCode::CONFLICT, Some("InvalidTransition"))
    );
    let (s, v) = app.get("admin", &pin_path).await;
    assert_eq!((s, v), (StatusCode::OK, json!(e.pin)));
    assert!(app
        .history(&e.request)
        .await
        .iter()
        .any(|h| h["Action"] == "DistributePin"));

    // Unblock: on the card in place, no certificate change.
    let (s, v) = card_request(&app, "alice", "Unblock", &e.card).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let unblock = id_of(&v);
    let (_, r) = app.get("alice", &format!("/requests/{unblock}")).await;
    assert_eq!(
        (&r["OldSmartcardUuid"], &r["NewSmartcardUuid"]),
        (&json!(e.card), &json!(e.card))
    );
    // The unblock's PIN is a new one, kept for this request; a stranger asking for the card's PIN
    // learns nothing, not even which request the card belongs to.
    let (s, new_pin) = app
        .get(
            "alice",
            &secret_path(
                &unblock,
                &e.card,
                "serverproposedpin",
                &format!("cardid={}", e.card_id),
            ),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{new_pin}");
    assert_ne!(new_pin, json!(e.pin));
    let (s, v) = app
        .get(
            "eve",
            &format!(
                "/smartcards/{}/serverproposedpin?cardid={}",
                e.card, e.card_id
            ),
        )
        .await;
    assert_eq!(
        (s, v["ErrorCode"].as_str()),
        (StatusCode::NOT_FOUND, Some("SmartcardNotFound"))
    );
    assert!(!v.to_string().contains(&e.request), "{v}");
    let (s, v) = app.put_status("alice", &unblock, "Completed").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(card_of(&app, "alice", &e.card).await["Status"], 2);
    let (text, ok, _) = crl_check(&app, &w, &e.leaf).await;
    assert!(ok && !text.contains(&serial), "unblocking revokes nothing");

    // Suspend: card Suspended, certificate on hold in the CRL; reinstate undoes both.
    let (s, v) = card_request(&app, "alice", "SuspendOrReinstate", &e.card).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, v) = app.put_status("alice", &id_of(&v), "Completed").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(card_of(&app, "alice", &e.card).await["Status"], 4);
    let (text, ok, _) = crl_check(&app, &w, &e.leaf).await;
    assert!(
        !ok && text.contains(&serial) && text.contains("Certificate Hold"),
        "{text}"
    );
    let (_, ops) = app
        .get("alice", &format!("/smartcards/{}/operations", e.card))
        .await;
    assert_eq!(ops, json!(["disable", "retire", "reinstate"]));
    // A suspended card cannot be unblocked: 409 naming the card's status, nothing created.
    let (s, v) = card_request(&app, "alice", "Unblock", &e.card).await;
    assert_eq!(
        (s, v["ErrorCode"].as_str()),
        (StatusCode::CONFLICT, Some("ProfileSuspended")),
        "{v}"
    );
    let (s, v) = card_request(&app, "alice", "SuspendOrReinstate", &e.card).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, v) = app.put_status("alice", &id_of(&v), "Completed").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(card_of(&app, "alice", &e.card).await["Status"], 2);
    let (_, ok, out) = crl_check(&app, &w, &e.leaf).await;
    assert!(ok, "reinstated: {out}");

    // Retire as MIM's client does it: set the card Retired during execution (the published
    // example's answer), then complete. The certificate is revoked and in the CRL.
    let (s, v) = card_request(&app, "alice", "Retire", &e.card).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let retire = id_of(&v);
    let set = |status: Value| {
        let (app, retire, card) = (&app, retire.clone(), e.card.clone());
        async move {
            let (s, v, _) = app
                .send(
                    "alice",
                    Method::PUT,
                    &format!("/requests/{retire}/smartcards/{card}"),
                    Some(json!({ "status": status })),
                )
                .await;
            (s, v)
        }
    };
    let (s, v) = set(json!("Suspended")).await;
    assert_eq!(
        (s, v["ErrorCode"].as_str()),
        (StatusCode::CONFLICT, Some("SmartcardStatusNotAllowed")),
        "{v}"
    );
    let (s, v) = set(json!("Broken")).await;
    assert_eq!(
        (s, v["ErrorCode"].as_str()),
        (StatusCode::BAD_REQUEST, Some("InvalidStatus"))
    );
    assert_eq!(
        card_of(&app, "alice", &e.card).await["Status"],
        2,
        "unchanged"
    );
    let (s, v) = set(json!(6)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["Status"], 6);
    assert_eq!(v["Uuid"], e.card.as_str());
    let (s, v) = app.put_status("alice", &retire, "Completed").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(card_of(&app, "alice", &e.card).await["Status"], 6);
    let (_, profile) = app
        .get(
            "alice",
            &format!("/profiles/{}", v["OldProfileUuid"].as_str().unwrap()),
        )
        .await;
    assert_eq!(profile["Status"], 6, "Retired: {profile}");
    let (text, ok, _) = crl_check(&app, &w, &e.leaf).await;
    assert!(!ok && text.contains(&serial), "{text}");
    assert!(text.contains("Cessation Of Operation"), "{text}");

    // A retired card takes no more requests; the template reuses cards, so its id can be bound
    // to a new enrolment as a new card.
    let (s, v) = card_request(&app, "alice", "Unblock", &e.card).await;
    assert_eq!(
        (s, v["ErrorCode"].as_str()),
        (StatusCode::CONFLICT, Some("SmartcardRetired")),
        "{v}"
    );
    let again = app.create("alice", PIV).await;
    let (s, v) = bind(&app, "alice", &again, &e.card_id).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_ne!(id_of(&v), e.card);
}

on_each_engine!(card_secrets_go_only_to_the_executor_of_the_request_on_that_card);
async fn card_secrets_go_only_to_the_executor_of_the_request_on_that_card(app: TestApp) {
    let request = app.create("alice", PIV).await;
    let card_id = uuid::Uuid::new_v4().to_string();
    let (s, v) = bind(&app, "alice", &request, &card_id).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let card = id_of(&v);
    let key_path = |who_card: &str| {
        secret_path(
            &request,
            &card,
            "diversifiedkey",
            &format!("cardid={who_card}"),
        )
    };
    let before = app.history(&request).await.len();

    // Strangers and readers without the Execute right: 404, as if the request did not exist.
    for who in ["eve", "bob"] {
        let (s, v) = app.get(who, &key_path(&card_id)).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{who}: {v}");
    }
    // The card id the card reports must be the bound card's; the path's card must be the request's.
    let (s, v) = app
        .get("alice", &key_path(&uuid::Uuid::new_v4().to_string()))
        .await;
    assert_eq!(
        (s, v["ErrorCode"].as_str()),
        (StatusCode::CONFLICT, Some("SmartcardMismatch"))
    );
    let (s, v) = app
        .get(
            "alice",
            &format!(
                "/requests/{request}/smartcards/{}/diversifiedkey?cardid={card_id}",
                uuid::Uuid::new_v4()
            ),
        )
        .await;
    assert_eq!(
        (s, v["ErrorCode"].as_str()),
        (StatusCode::CONFLICT, Some("SmartcardMismatch"))
    );
    // Bad challenges: not base64, the wrong length, missing; a bad `diversified`; no cardid.
    for q in [
        format!("cardid={card_id}&challenge=%E2%80%9Cnot%20base64"),
        format!("cardid={card_id}&challenge=AAECAwQFBg%3D%3D"),
        format!("cardid={card_id}"),
        format!("cardid={card_id}&challenge=AAECAwQFBgc%3D&diversified=maybe"),
        "challenge=AAECAwQFBgc%3D".to_string(),
    ] {
        let (s, v) = app
            .get(
                "alice",
                &secret_path(&request, &card, "authenticationresponse", &q),
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{q}: {v}");
    }
    // Nothing above was released, so nothing was recorded.
    assert_eq!(app.history(&request).await.len(), before);

    // The published vector: the all-zero 3DES key answers 1hFD+cz/0so= with F0Zudm4wPLY=. The VSC
    // template's default key is the zero key.
    let vsc = app.create("alice", VSC).await;
    assert_eq!(app.decide("bob", &vsc, "Approve").await.0, StatusCode::OK);
    let vsc_card_id = uuid::Uuid::new_v4().to_string();
    let (s, v) = bind(&app, "alice", &vsc, &vsc_card_id).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let vsc_card = id_of(&v);
    let (s, v) = app
        .get(
            "alice",
            &secret_path(
                &vsc,
                &vsc_card,
                "authenticationresponse",
                &format!("cardid={vsc_card_id}&challenge=1hFD%2Bcz%2F0so%3D&diversified=false"),
            ),
        )
        .await;
    assert_eq!((s, v), (StatusCode::OK, json!("F0Zudm4wPLY=")));
    // Randomized PINs are never kept: two calls, two PINs of ten digits.
    let pin_path = format!("/smartcards/{vsc_card}/serverproposedpin?cardid={vsc_card_id}");
    let (s, a) = app.get("alice", &pin_path).await;
    assert_eq!(s, StatusCode::OK, "{a}");
    let (_, b) = app.get("alice", &pin_path).await;
    assert_ne!(a, b);
    assert_eq!(a.as_str().unwrap().len(), 10);

    // Once the request is over, nothing more is released.
    assert_eq!(
        app.put_status("alice", &request, "Canceled").await.0,
        StatusCode::OK
    );
    let (s, v) = app.get("alice", &key_path(&card_id)).await;
    assert_eq!(
        (s, v["ErrorCode"].as_str()),
        (StatusCode::CONFLICT, Some("InvalidTransition")),
        "{v}"
    );
    // Canceling the enrolment retired its card; the card id can be bound again.
    assert_eq!(card_of(&app, "alice", &card).await["Status"], 6);
}

on_each_engine!(two_cards_get_different_keys_and_a_rotated_master_keeps_old_cards_working);
async fn two_cards_get_different_keys_and_a_rotated_master_keeps_old_cards_working(app: TestApp) {
    let key_of = |request: String, card: String, card_id: String| {
        let app = &app;
        async move {
            let (s, v) = app
                .get(
                    "alice",
                    &secret_path(
                        &request,
                        &card,
                        "diversifiedkey",
                        &format!("cardid={card_id}"),
                    ),
                )
                .await;
            assert_eq!(s, StatusCode::OK, "{v}");
            unb64(v.as_str().unwrap())
        }
    };
    let mut cards = Vec::new();
    for _ in 0..2 {
        let request = app.create("alice", PIV).await;
        let card_id = uuid::Uuid::new_v4().to_string();
        let (s, v) = bind(&app, "alice", &request, &card_id).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        cards.push((request, id_of(&v), card_id));
    }
    let first = key_of(cards[0].0.clone(), cards[0].1.clone(), cards[0].2.clone()).await;
    let second = key_of(cards[1].0.clone(), cards[1].1.clone(), cards[1].2.clone()).await;
    assert_ne!(first, second);

    // Rotate: the old card keeps its key; a card bound now gets a key under the new version.
    assert_eq!(app.core.rotate_card_master().await.unwrap(), 2);
    let again = key_of(cards[0].0.clone(), cards[0].1.clone(), cards[0].2.clone()).await;
    assert_eq!(again, first);
    let request = app.create("alice", PIV).await;
    let card_id = uuid::Uuid::new_v4().to_string();
    let (s, v) = bind(&app, "alice", &request, &card_id).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let third = key_of(request, id_of(&v), card_id).await;
    assert!(third != first && third != second);
}

on_each_engine!(two_revocations_of_one_card_at_once_apply_exactly_once);
async fn two_revocations_of_one_card_at_once_apply_exactly_once(app: TestApp) {
    let w = Work::new();
    save_ca(&app, &w).await;
    let e = enrol_card(&app, &w).await;
    let mut requests = Vec::new();
    for _ in 0..4 {
        let (s, v) = card_request(&app, "alice", "Revoke", &e.card).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        requests.push(id_of(&v));
    }
    let outcomes = futures::future::join_all(
        requests
            .iter()
            .map(|r| app.put_status("alice", r, "Completed")),
    )
    .await;
    let won: Vec<_> = outcomes
        .iter()
        .filter(|(s, _)| *s == StatusCode::OK)
        .collect();
    assert_eq!(won.len(), 1, "{outcomes:?}");
    for (s, v) in outcomes.iter().filter(|(s, _)| *s != StatusCode::OK) {
        assert_eq!(
            (*s, v["ErrorCode"].as_str()),
            (StatusCode::CONFLICT, Some("SmartcardDisabled")),
            "{v}"
        );
    }
    assert_eq!(
        card_of(&app, "alice", &e.card).await["Status"],
        3,
        "Disabled"
    );
    let (text, ok, _) = crl_check(&app, &w, &e.leaf).await;
    assert!(
        !ok && text.matches(&serial_of(&e.leaf)).count() == 1,
        "{text}"
    );
    // The losers changed nothing: each is still Approved.
    let approved = futures::future::join_all(requests.iter().map(|r| app.status_of(r))).await;
    assert_eq!(
        approved.iter().filter(|s| **s == 3).count(),
        3,
        "{approved:?}"
    );
}

on_each_engine!(renewing_a_card_issues_onto_the_same_card_and_supersedes_the_old_certificate);
async fn renewing_a_card_issues_onto_the_same_card_and_supersedes_the_old_certificate(
    app: TestApp,
) {
    let w = Work::new();
    save_ca(&app, &w).await;
    let e = enrol_card(&app, &w).await;
    let (s, v) = card_request(&app, "alice", "Renew", &e.card).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let renew = id_of(&v);
    let (s, resp) = post_csrs(
        &app,
        "alice",
        &renew,
        json!({"certificaterequests": [csr(&w, "renewed", P256)]}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{resp}");
    let (s, r) = app.put_status("alice", &renew, "Completed").await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(r["NewSmartcardUuid"], e.card.as_str());
    assert_eq!(
        card_of(&app, "alice", &e.card).await["Status"],
        2,
        "still in service"
    );
    let (_, certs) = app
        .get("alice", &format!("/smartcards/{}/certificates", e.card))
        .await;
    assert_eq!(certs.as_array().unwrap().len(), 2, "{certs}");
    let (text, ok, _) = crl_check(&app, &w, &e.leaf).await;
    assert!(!ok && text.contains("Superseded"), "{text}");
    let (_, ops) = app
        .get("alice", &format!("/smartcards/{}/operations", e.card))
        .await;
    assert!(ops.as_array().unwrap().contains(&json!("unblock")), "{ops}");
}

const SMALL_CARD: &str = r#"
[[template]]
uuid = "7c3e51a4-1f0d-4e8b-9a52-6b0f2d9e4c99"
name = "One Slot Card"
kind = "smartcard"
version = 1
security_descriptor = "O:BAD:(A;;RCCR;;;AU)(A;;GA;;;BA)"

[[template.certificates]]
common_name = "first"
key_algorithm = "ECDSA_P256"
key_usages = ["digital_signature"]
extended_key_usages = ["client_auth"]

[[template.certificates]]
common_name = "second"
key_algorithm = "ECDSA_P256"
key_usages = ["digital_signature"]
extended_key_usages = ["client_auth"]

[template.smartcard]
max_number_of_certificates = 1
admin_key_algorithm = "aes128"

[template.policies.Enroll]
enabled = true
self_service_enabled = true
"#;

on_each_engine!(a_card_takes_no_more_certificates_than_its_template_allows);
async fn a_card_takes_no_more_certificates_than_its_template_allows(app: TestApp) {
    let w = Work::new();
    app.core.import_templates(SMALL_CARD).await.unwrap();
    let request = app
        .create("alice", "7c3e51a4-1f0d-4e8b-9a52-6b0f2d9e4c99")
        .await;
    let (s, v) = bind(&app, "alice", &request, &uuid::Uuid::new_v4().to_string()).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, v) = post_csrs(
        &app,
        "alice",
        &request,
        json!({"certificaterequests": [csr(&w, "one", P256), csr(&w, "two", P256)]}),
    )
    .await;
    assert_eq!(
        (s, v["ErrorCode"].as_str()),
        (StatusCode::CONFLICT, Some("SmartcardFull")),
        "{v}"
    );
    let (_, r) = app.get("alice", &format!("/requests/{request}")).await;
    assert_eq!(r["NewProfileUuid"], json!(NIL), "nothing reserved");
}

// The small card template has an AES-128 admin key (the all-zero factory key, diversified per
// card) and leaves the PIN to the user: answers checked by `openssl enc -aes-128-ecb`.
on_each_engine!(an_aes_admin_key_answers_16_byte_challenges_and_a_user_pin_is_not_proposed);
async fn an_aes_admin_key_answers_16_byte_challenges_and_a_user_pin_is_not_proposed(app: TestApp) {
    let w = Work::new();
    app.core.import_templates(SMALL_CARD).await.unwrap();
    let request = app
        .create("alice", "7c3e51a4-1f0d-4e8b-9a52-6b0f2d9e4c99")
        .await;
    let card_id = uuid::Uuid::new_v4().to_string();
    let (s, v) = bind(&app, "alice", &request, &card_id).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let card = id_of(&v);
    let respond = |challenge: Vec<u8>, diversified: bool| {
        let (app, request, card, card_id) = (&app, request.clone(), card.clone(), card_id.clone());
        async move {
            let q = format!(
                "cardid={card_id}&challenge={}&diversified={diversified}",
                urlencoding(&b64(&challenge))
            );
            app.get(
                "alice",
                &secret_path(&request, &card, "authenticationresponse", &q),
            )
            .await
        }
    };
    let challenge: [u8; 16] = rand_bytes();
    let (s, v) = respond(challenge.to_vec(), false).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        unb64(v.as_str().unwrap()),
        openssl_ecb(&w, "-aes-128-ecb", &[0u8; 16], &challenge)
    );
    let (s, key) = app
        .get(
            "alice",
            &secret_path(
                &request,
                &card,
                "diversifiedkey",
                &format!("cardid={card_id}"),
            ),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{key}");
    let key = unb64(key.as_str().unwrap());
    assert_eq!(key.len(), 16);
    let (s, v) = respond(challenge.to_vec(), true).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        unb64(v.as_str().unwrap()),
        openssl_ecb(&w, "-aes-128-ecb", &key, &challenge)
    );
    // A 3DES-sized challenge is the wrong length for an AES key.
    let (s, v) = respond(challenge[..8].to_vec(), false).await;
    assert_eq!(
        (s, v["ErrorCode"].as_str()),
        (StatusCode::BAD_REQUEST, Some("InvalidQuery"))
    );
    assert!(v["Message"].as_str().unwrap().contains("16-byte"), "{v}");

    // The user chooses the PIN: the server proposes none.
    let (s, v) = app
        .get(
            "alice",
            &secret_path(
                &request,
                &card,
                "serverproposedpin",
                &format!("cardid={card_id}"),
            ),
        )
        .await;
    assert_eq!(
        (s, v["ErrorCode"].as_str()),
        (StatusCode::CONFLICT, Some("PinNotServerProposed"))
    );
    // The card status route refuses a card that is not the request's.
    let other = app
        .create("alice", "7c3e51a4-1f0d-4e8b-9a52-6b0f2d9e4c99")
        .await;
    let (s, v) = bind(&app, "alice", &other, &uuid::Uuid::new_v4().to_string()).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, v, _) = app
        .send(
            "alice",
            Method::PUT,
            &format!("/requests/{request}/smartcards/{}", id_of(&v)),
            Some(json!({"status": "Active"})),
        )
        .await;
    assert_eq!(
        (s, v["ErrorCode"].as_str()),
        (StatusCode::CONFLICT, Some("SmartcardMismatch")),
        "{v}"
    );
}

on_each_engine!(a_cards_puk_goes_to_the_request_that_personalises_it_and_to_unblocks_only);
async fn a_cards_puk_goes_to_the_request_that_personalises_it_and_to_unblocks_only(app: TestApp) {
    let w = Work::new();
    save_ca(&app, &w).await;
    // Before completion, the enrolment that bound the card may have the PUK (to replace the
    // factory PUK); it is 8 digits by the demo template's AdminPinPolicy.
    let request = app.create("alice", PIV).await;
    let card_id = uuid::Uuid::new_v4().to_string();
    let (s, v) = bind(&app, "alice", &request, &card_id).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let card = id_of(&v);
    let q = format!("cardid={card_id}");
    let (s, puk) = app
        .get("alice", &secret_path(&request, &card, "puk", &q))
        .await;
    assert_eq!(s, StatusCode::OK, "{puk}");
    let puk = puk.as_str().unwrap().to_string();
    assert!(
        puk.len() == 8 && puk.bytes().all(|b| b.is_ascii_digit()),
        "{puk}"
    );
    // Not to anyone else, nor for another card id.
    let (s, _) = app
        .get("bob", &secret_path(&request, &card, "puk", &q))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, v) = app
        .get(
            "alice",
            &secret_path(
                &request,
                &card,
                "puk",
                &format!("cardid={}", uuid::Uuid::new_v4()),
            ),
        )
        .await;
    assert_eq!(
        (s, v["ErrorCode"].as_str()),
        (StatusCode::CONFLICT, Some("SmartcardMismatch")),
        "{v}"
    );
    let (s, resp) = post_csrs(
        &app,
        "alice",
        &request,
        json!({"certificaterequests": [csr(&w, "puk", P256)]}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{resp}");
    let (s, _) = app.put_status("alice", &request, "Completed").await;
    assert_eq!(s, StatusCode::OK);

    // An Unblock on the card gets the same PUK; a Revoke gets none.
    let (_, v) = card_request(&app, "alice", "Unblock", &card).await;
    let unblock = id_of(&v);
    let (s, again) = app
        .get("alice", &secret_path(&unblock, &card, "puk", &q))
        .await;
    assert_eq!((s, again.as_str()), (StatusCode::OK, Some(puk.as_str())));
    let (_, v) = card_request(&app, "alice", "Revoke", &card).await;
    let revoke = id_of(&v);
    let (s, v) = app
        .get("alice", &secret_path(&revoke, &card, "puk", &q))
        .await;
    assert_eq!(
        (s, v["ErrorCode"].as_str()),
        (StatusCode::CONFLICT, Some("PukNotReleased")),
        "{v}"
    );
    // Each release is in the history; the PUK is not.
    for r in [&request, &unblock] {
        let text = serde_json::to_string(&app.history(r).await).unwrap();
        assert!(
            text.contains("ReleasePuk") && !text.contains(&puk),
            "{text}"
        );
    }
    // Another card has another PUK.
    let other = app.create("alice", PIV).await;
    let other_id = uuid::Uuid::new_v4().to_string();
    let (_, v) = bind(&app, "alice", &other, &other_id).await;
    let (_, other_puk) = app
        .get(
            "alice",
            &secret_path(&other, &id_of(&v), "puk", &format!("cardid={other_id}")),
        )
        .await;
    assert_ne!(other_puk.as_str(), Some(puk.as_str()));
}
