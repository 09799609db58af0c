//! The wire format against the MIM CM reference examples (tests/fixtures/mimcm-examples.json, every
//! request/response example of Microsoft's MIM CM REST API reference pages, kept as published):
//! property names and order, enum numbers, timestamps, 201 + Location, paths and GUIDs in any case.

use crate::helpers::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

fn examples() -> Vec<Value> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/mimcm-examples.json"
    );
    let text = std::fs::read_to_string(path).expect("mimcm-examples.json");
    let v: Value = serde_json::from_str(&text).unwrap();
    v["examples"].as_array().unwrap().clone()
}

fn keys(v: &Value) -> Vec<String> {
    v.as_object().unwrap().keys().cloned().collect()
}

/// The response of the published example whose path matches, parsed, with its raw text.
fn example_response(path_matches: impl Fn(&str) -> bool) -> (Value, String) {
    let e = examples()
        .into_iter()
        .find(|e| e["path"].as_str().is_some_and(&path_matches))
        .unwrap();
    let text = e["response_body"].as_str().unwrap().to_string();
    (serde_json::from_str(&text).unwrap(), text)
}

/// The top-level property names of `v` in the order they stand in `text` (serde_json::Value
/// sorts its keys).
fn keys_in_order(v: &Value, text: &str) -> Vec<String> {
    let mut ks = keys(v);
    ks.sort_by_key(|k| text.find(&format!("\"{k}\":")).unwrap());
    ks
}

/// GET `path` as `who`: the parsed body and its raw text.
async fn get_text(app: &TestApp, who: &str, path: &str) -> (Value, String) {
    let r = app
        .http
        .get(app.api(path))
        .header("authorization", app.auth(who))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let text = r.text().await.unwrap();
    (serde_json::from_str(&text).unwrap(), text)
}

#[tokio::test]
async fn a_request_has_exactly_the_21_properties_of_the_reference_example_in_order() {
    let app = TestApp::sqlite().await;
    let reference = examples()
        .into_iter()
        .find(|e| e["page"] == "get-request")
        .unwrap();
    let reference: Value =
        serde_json::from_str(reference["response_body"].as_str().unwrap()).unwrap();
    let id = app.create("alice", VSC).await;
    let r = app
        .http
        .get(app.api(&format!("/requests/{id}")))
        .header("authorization", app.auth("alice"))
        .send()
        .await
        .unwrap();
    let text = r.text().await.unwrap();
    // serde_json::Value sorts keys, so compare the order in the raw text.
    let order = |t: &str, ks: &[String]| -> Vec<usize> {
        ks.iter()
            .map(|k| t.find(&format!("\"{k}\":")).unwrap())
            .collect()
    };
    let ours: Value = serde_json::from_str(&text).unwrap();
    let mut ref_keys = keys(&reference);
    ref_keys.sort();
    let mut our_keys = keys(&ours);
    our_keys.sort();
    assert_eq!(our_keys, ref_keys);
    assert_eq!(ref_keys.len(), 21);
    let ref_text = examples()
        .into_iter()
        .find(|e| e["page"] == "get-request")
        .unwrap()["response_body"]
        .as_str()
        .unwrap()
        .to_string();
    let mut by_ref: Vec<String> = ref_keys.clone();
    by_ref.sort_by_key(|k| ref_text.find(&format!("\"{k}\":")).unwrap());
    let pos = order(&text, &by_ref);
    assert!(
        pos.windows(2).all(|w| w[0] < w[1]),
        "properties in the reference order: {text}"
    );
    // Values and types.
    assert_eq!(ours["Uuid"], id);
    assert_eq!(
        (
            ours["RequestType"].as_i64(),
            ours["Status"].as_i64(),
            ours["Flags"].as_i64()
        ),
        (Some(1), Some(16), Some(2))
    );
    assert_eq!(ours["Submitted"], "2015-07-07T23:36:21.93Z");
    assert_eq!(ours["Completed"], "0001-01-01T00:00:00");
    assert_eq!(
        ours["OldProfileUuid"],
        "00000000-0000-0000-0000-000000000000"
    );
    assert_eq!(
        ours["OriginatorUserUuid"],
        app.users["alice"].uuid.to_string()
    );
    assert_eq!(
        ours["DataCollection"],
        json!([{"Name": "Request Reason", "Value": "new laptop"}])
    );
    assert_eq!(
        (
            ours["IsSmartcard"].as_bool(),
            ours["IsEnrollmentAgent"].as_bool()
        ),
        (Some(true), Some(false))
    );
    assert!(ours["SecurityDescriptor"]
        .as_str()
        .unwrap()
        .starts_with("O:S-1-5-21-1000-1000-1000-1101D:(D;;LC;;;"));
    assert!(!ours["SecurityDescriptor"].as_str().unwrap().contains('\0'));
}

#[tokio::test]
async fn the_reference_create_bodies_answer_201_with_location_and_a_relative_uri_string() {
    let app = TestApp::sqlite().await;
    // The reference body (datacollection as a string) against our VSC template, which has the same uuid.
    let ex = examples()
        .into_iter()
        .find(|e| e["page"] == "create-request")
        .unwrap();
    let mut body: Value = serde_json::from_str(ex["request_body"].as_str().unwrap()).unwrap();
    body["datacollection"] = json!("[{\"Request Reason\": \"Need VPN Certs\"}]");
    body["comment"] = json!("from the reference");
    let (s, v, h) = app
        .send(
            "alice",
            Method::POST,
            "/CertificateManagement/api/v1.0/requests"
                .trim_start_matches("/CertificateManagement/api/v1.0"),
            Some(body),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let rel = v.as_str().unwrap();
    assert!(rel.starts_with("api/v1.0/requests/"), "{rel}");
    let id = rel.rsplit('/').next().unwrap();
    assert_eq!(
        h["location"].to_str().unwrap(),
        format!("/CertificateManagement/api/v1.0/requests/{id}")
    );
    // The "name: value" array form with a numeric-string priority (the third reference example).
    let body = json!({"profiletemplateuuid": SOFTWARE.to_uppercase(), "datacollection": [{"Request Reason": "pavle"}], "type": "enroll", "comment": "LALALALA", "priority": "4"});
    let (s, v, _) = app.post_request("alice", body).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let id = id_of(&v);
    let (_, r) = app.get("alice", &format!("/requests/{id}")).await;
    assert_eq!(
        (r["Priority"].as_i64(), r["Status"].as_i64()),
        (Some(4), Some(3))
    );
    assert_eq!(
        r["DataCollection"],
        json!([{"Name": "Request Reason", "Value": "pavle"}])
    );
    // The {"Name", "Value"} object form.
    let body = json!({"profiletemplateuuid": SOFTWARE, "datacollection": [{"name": "Request Reason", "value": "x"}], "type": 1});
    assert_eq!(app.post_request("alice", body).await.0, StatusCode::CREATED);
}

#[tokio::test]
async fn paths_and_guids_match_in_any_case_with_or_without_braces() {
    let app = TestApp::sqlite().await;
    let id = app.create("alice", SOFTWARE).await;
    for path in [
        format!("/certificatemanagement/api/v1.0/requests/{id}"),
        format!(
            "/CERTIFICATEMANAGEMENT/API/V1.0/REQUESTS/{}",
            id.to_uppercase()
        ),
        format!(
            "/CertificateManagement/api/v1.0/requests/%7B{}%7D",
            id.to_uppercase()
        ),
        format!("/CertificateManagement/api/v1.0/requests/{id}/"),
    ] {
        let r = app
            .http
            .get(format!("{}{path}", app.base))
            .header("authorization", app.auth("alice"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["Uuid"], id, "GUIDs are written lowercase");
    }
}

#[tokio::test]
async fn every_response_carries_a_correlation_id_and_a_valid_one_is_echoed() {
    let app = TestApp::sqlite().await;
    let mine = "0c96d73f-967b-420e-854a-43ad2a1504bc";
    let r = app
        .http
        .get(app.api("/profiletemplates"))
        .header("authorization", app.auth("alice"))
        .header("x-correlation-id", mine.to_uppercase())
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-correlation-id"], mine);
    let r = app
        .http
        .get(app.api("/profiletemplates"))
        .header("authorization", app.auth("alice"))
        .header("x-correlation-id", "junk")
        .send()
        .await
        .unwrap();
    assert!(r.headers()["x-correlation-id"]
        .to_str()
        .unwrap()
        .parse::<opencm_domain::Guid>()
        .is_ok());
    let r = app
        .http
        .get(format!("{}/healthz", app.base))
        .send()
        .await
        .unwrap();
    assert!(r.headers().contains_key("x-correlation-id"));
}

#[tokio::test]
async fn the_smart_card_configuration_answers_as_the_published_example() {
    let app = TestApp::sqlite().await;
    let (reference, ref_text) = example_response(|p| p.ends_with("/configuration/smartcards"));
    let path = format!(
        "/profiletemplates/{}/configuration/smartcards",
        VSC.to_uppercase()
    );
    let (ours, text) = get_text(&app, "alice", &path).await;
    // Every published property, with the published value (numbers as numbers, nested objects
    // alike), in the published order; opencm's own follow.
    let mut last = 0;
    for k in keys_in_order(&reference, &ref_text) {
        assert_eq!(ours[&k], reference[&k], "{k}");
        let at = text.find(&format!("\"{k}\":")).unwrap();
        assert!(at >= last, "{k} is out of the published order");
        last = at;
    }
    let mut extra: Vec<String> = keys(&ours)
        .into_iter()
        .filter(|k| reference.get(k).is_none())
        .collect();
    extra.sort();
    assert_eq!(
        extra,
        [
            "AdminKeyAlgorithm",
            "PivSlots",
            "ResetOnRetire",
            "TemporaryCardDays"
        ]
    );
    assert_eq!(ours["ResetOnRetire"], true);
    assert_eq!(ours["TemporaryCardDays"], 7);
    assert_eq!(ours["AdminKeyAlgorithm"], "tdes");

    let (s, v) = app
        .get(
            "alice",
            &format!("/profiletemplates/{SOFTWARE}/configuration/smartcards"),
        )
        .await;
    assert_eq!(
        (s, v["ErrorCode"].as_str()),
        (
            StatusCode::NOT_FOUND,
            Some("SmartcardConfigurationNotFound")
        )
    );
    let (s, v) = app
        .get(
            "alice",
            &format!("/profiletemplates/{HIDDEN}/configuration/smartcards"),
        )
        .await;
    assert_eq!(
        (s, v["ErrorCode"].as_str()),
        (StatusCode::NOT_FOUND, Some("ProfileTemplateNotFound"))
    );
}

/// A template file is imported whole or not at all, and a template an earlier version stored
/// that this one refuses hides no other.
#[tokio::test]
async fn a_template_file_is_imported_whole_or_not_at_all() {
    let app = TestApp::sqlite().await;
    let template = |uuid: &str, name: &str| {
        format!(
            "[[template]]\nuuid = \"{uuid}\"\nname = \"{name}\"\nkind = \"software\"\n\
             security_descriptor = \"D:(A;;RCCR;;;AU)\"\n[template.policies.Enroll]\n"
        )
    };
    const FRESH: &str = "5f0c1b7e-2d7c-4f43-9a55-0d6d3c1e0a31";
    for (second, says) in [
        // The demo realm's software template already has this name, under another uuid.
        (
            template(
                "5f0c1b7e-2d7c-4f43-9a55-0d6d3c1e0a32",
                "Software User Certificate",
            ),
            "already has this name",
        ),
        (
            template("5f0c1b7e-2d7c-4f43-9a55-0d6d3c1e0a33", "Fresh"),
            "its name",
        ),
        (template(FRESH, "Other"), "its uuid"),
    ] {
        let e = app
            .core
            .import_templates(&format!("{}{second}", template(FRESH, "Fresh")))
            .await
            .unwrap_err();
        assert!(e.to_string().contains(says), "{e}");
        let (s, _) = app
            .get("alice", &format!("/profiletemplates/{FRESH}"))
            .await;
        assert_eq!(s, StatusCode::NOT_FOUND, "nothing of the file was imported");
    }
    // An earlier version stored a template this one refuses (an EKU of one arc).
    let legacy = json!({
        "uuid": "5f0c1b7e-2d7c-4f43-9a55-0d6d3c1e0a34",
        "name": "Legacy",
        "kind": "software",
        "security_descriptor": "D:(A;;RCCR;;;AU)",
        "certificates": [{"common_name": "c", "extended_key_usages": ["1"]}],
    });
    sqlite_file(&app.db_url)
        .execute(
            "INSERT INTO profile_templates (uuid, name, body, updated_at) VALUES (?1, 'Legacy', ?2, 0)",
            rusqlite::params![legacy["uuid"].as_str().unwrap(), legacy.to_string()],
        )
        .unwrap();
    let (s, v) = app.get("alice", "/profiletemplates").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let names: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["Name"].as_str())
        .collect();
    assert!(
        names.contains(&"Software User Certificate") && !names.contains(&"Legacy"),
        "{names:?}"
    );
}

#[tokio::test]
async fn a_template_file_with_a_wrong_card_configuration_is_refused_and_changes_nothing() {
    let app = TestApp::sqlite().await;
    let base = r#"
[[template]]
uuid = "5f0c1b7e-2d7c-4f43-9a55-0d6d3c1e0a99"
name = "PIV Logon"
kind = "smartcard"
security_descriptor = "D:(A;;RCCR;;;AU)"
[[template.certificates]]
common_name = "opencmPivLogon"
key_algorithm = "ECDSA_P256"
key_usages = ["digital_signature"]
extended_key_usages = ["smartcard_logon", "client_auth"]
[template.smartcard]
admin_key_algorithm = "aes192"
"#;
    for (bad, says) in [
        ("default_admin_key_hex = \"0011\"", "holds 2 bytes"),
        (
            "piv_slots = { opencmPivLogon = \"9b\" }",
            "not a PIV key slot",
        ),
        (
            "piv_slots = { Nothing = \"9a\" }",
            "not a certificate of this template",
        ),
        (
            "use_virtual_smartcards = true",
            "use_virtual_smartcards must be false",
        ),
        ("user_pin_policy = { min_length = 0 }", "min_length"),
        ("user_pin_option = \"sometimes\"", "unknown variant"),
        (
            "piv_slots = { opencmPivLogon = \"9a\", OPENCMPIVLOGON = \"9c\" }",
            "names one certificate twice",
        ),
        // A mistyped key is refused without being quoted back.
        (
            "default_admin_key_hex = \"S3CRET0405060708010203040506070801020304050607AA\"",
            "not hexadecimal",
        ),
    ] {
        let e = app
            .core
            .import_templates(&format!("{base}{bad}\n"))
            .await
            .unwrap_err();
        assert!(e.to_string().contains(says), "{bad}: {e}");
        assert!(!e.to_string().contains("S3CRET"), "{bad}: {e}");
    }
    let (s, _) = app
        .get(
            "alice",
            "/profiletemplates/5f0c1b7e-2d7c-4f43-9a55-0d6d3c1e0a99/configuration/smartcards",
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "nothing was imported");
    app.core
        .import_templates(&format!(
            "{base}piv_slots = {{ opencmPivLogon = \"9A\" }}\n"
        ))
        .await
        .unwrap();
    let (s, v) = app
        .get(
            "alice",
            "/profiletemplates/5f0c1b7e-2d7c-4f43-9a55-0d6d3c1e0a99/configuration/smartcards",
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["AdminKeyAlgorithm"], "aes192");
    assert_eq!(v["PivSlots"], json!({"opencmPivLogon": "9a"}));
    assert_eq!(v["UseVirtualSmartcards"], false);
    assert_eq!(
        v["UserPinOption"], 1,
        "UserProvided unless the file says otherwise"
    );
}

#[tokio::test]
async fn a_smart_card_has_the_properties_of_the_published_example_in_order() {
    let app = TestApp::sqlite().await;
    let (reference, ref_text) = example_response(|p| p.contains("/smartcards?cardid="));
    let id = app.create("alice", VSC).await;
    assert_eq!(app.decide("bob", &id, "Approve").await.0, StatusCode::OK);
    let card_id = "d1ef6869-5517-42a0-8f05-16ca1a0b834d";
    let (s, _, _) = app
        .send(
            "alice",
            Method::POST,
            "/smartcards",
            Some(json!({"requestid": id, "cardid": card_id, "atr": reference["Atr"]})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let (ours, text) = get_text(&app, "alice", &format!("/smartcards?cardid={card_id}")).await;
    assert_eq!(
        keys_in_order(&ours, &text),
        keys_in_order(&reference, &ref_text)
    );
    for k in [
        "SerialNumber",
        "Atr",
        "ProfileTemplateUuid",
        "Flags",
        "ParentSmartcardUuid",
    ] {
        assert_eq!(ours[k], reference[k], "{k}");
    }
    assert_eq!(ours["Status"], 1, "Assigned until its request completes");
}

/// The published card examples after an enrolment: the card's certificates, its operations, the
/// diversified key, and the card answered by `PUT /requests/{reqid}/smartcards/{scid}` in a Retire
/// (status 6), each in the published shape.
#[tokio::test]
async fn card_answers_have_the_shapes_of_the_published_examples() {
    use crate::cards::{card_request, enrol_card};
    let app = TestApp::sqlite().await;
    let w = crate::issuance::Work::new();
    let e = enrol_card(&app, &w).await;

    let (reference, ref_text) =
        example_response(|p| p.contains("/smartcards/") && p.ends_with("/certificates"));
    let (ours, text) = get_text(
        &app,
        "alice",
        &format!("/smartcards/{}/certificates", e.card),
    )
    .await;
    let ref_item = &reference[0];
    let ref_item_text = &ref_text[ref_text.find('{').unwrap()..];
    let our_item_text = &text[text.find('{').unwrap()..];
    assert_eq!(
        keys_in_order(&ours[0], our_item_text),
        keys_in_order(ref_item, ref_item_text)
    );

    let (reference, _) =
        example_response(|p| p.ends_with("/operations") && p.contains("/smartcards/"));
    let (ours, _) = get_text(&app, "alice", &format!("/smartcards/{}/operations", e.card)).await;
    let ours: Vec<&str> = ours
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    // The published card offers renew, unblock and retire, in that order; ours offers those in
    // the same order among the others its template enables.
    let published: Vec<&str> = reference
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let common: Vec<&str> = ours
        .iter()
        .copied()
        .filter(|o| published.contains(o))
        .collect();
    assert_eq!(common, published);

    let (reference, _) = example_response(|p| p.contains("/diversifiedkey?"));
    let (s, v) = app
        .get(
            "alice",
            &format!(
                "/requests/{}/smartcards/{}/diversifiedkey?cardid={}",
                e.request, e.card, e.card_id
            ),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "the enrolment is over: {v}");
    let (s, v) = card_request(&app, "alice", "Unblock", &e.card).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let unblock = id_of(&v);
    let (key, _) = get_text(
        &app,
        "alice",
        &format!(
            "/requests/{unblock}/smartcards/{}/diversifiedkey?cardid={}",
            e.card, e.card_id
        ),
    )
    .await;
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    assert_eq!(
        b64.decode(key.as_str().unwrap()).unwrap().len(),
        b64.decode(reference.as_str().unwrap()).unwrap().len()
    );

    let (reference, ref_text) = example_response(|p| {
        p.starts_with("/certificatemanagement/api/v1.0/requests/")
            && p.contains("/smartcards/")
            && !p.contains('?')
    });
    let (s, v) = card_request(&app, "alice", "Retire", &e.card).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let retire = id_of(&v);
    let r = app
        .http
        .put(app.api(&format!("/requests/{retire}/smartcards/{}", e.card)))
        .header("authorization", app.auth("alice"))
        .json(&json!({"status": 6}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let text = r.text().await.unwrap();
    let ours: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        keys_in_order(&ours, &text),
        keys_in_order(&reference, &ref_text)
    );
    assert_eq!(
        (ours["Status"].clone(), reference["Status"].clone()),
        (json!(6), json!(6))
    );
}
