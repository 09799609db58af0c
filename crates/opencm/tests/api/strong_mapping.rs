//! Certificates a Windows domain accepts for logon since KB5014754 (strong certificate mapping):
//! every certificate opencm issues to a user with a domain account SID — software, PIV card and
//! virtual smart card alike — carries that SID in Active
//! Directory's `szOID_NTDS_CA_SECURITY_EXT` extension — read back by openssl and by a second,
//! independent ASN.1 parser (Python's asn1crypto) — unless its template turns it off; the SAN
//! URI form where the template asks for it.

use crate::cards::enrol_card;
use crate::helpers::*;
use crate::issuance::{csr, enrol, issue_from, leaf_of, post_csrs, save_ca, Work};
use reqwest::StatusCode;
use serde_json::{json, Value};

const SID_EXT: &str = "1.3.6.1.4.1.311.25.2";
const ALICE_SID: &str = "S-1-5-21-1000-1000-1000-1101";

/// The SID extension of a PEM certificate as asn1crypto reads it: whether it is critical, the
/// otherName's type and the SID; `Value::Null` when the certificate has none.
fn asn1crypto(leaf: &str) -> Value {
    const SCRIPT: &str = r#"
import json, sys
from asn1crypto import core, pem, x509
data = open(sys.argv[1], 'rb').read()
if pem.detect(data):
    _, _, data = pem.unarmor(data)
cert = x509.Certificate.load(data)
found = None
for ext in cert['tbs_certificate']['extensions']:
    if ext['extn_id'].dotted == sys.argv[2]:
        names = x509.GeneralNames.load(ext['extn_value'].contents)
        other = names[0]
        found = {
            'critical': ext['critical'].native,
            'count': len(names),
            'choice': other.name,
            'type': other.chosen['type_id'].dotted,
            'sid': other.chosen['value'].parse(core.OctetString).native.decode('ascii'),
        }
print(json.dumps(found))
"#;
    let out = std::process::Command::new("python3")
        .args(["-c", SCRIPT, leaf, SID_EXT])
        .output()
        .expect("python3 is installed");
    assert!(
        out.status.success(),
        "asn1crypto (`python3 -m pip install asn1crypto`; .ci/run installs it): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// What openssl says of the certificate's extensions.
fn openssl_text(leaf: &str) -> String {
    openssl_ok(&["x509", "-in", leaf, "-noout", "-text"])
}

fn carries_sid(leaf: &str, sid: &str) {
    let text = openssl_text(leaf);
    // openssl names the extension by its OID and marks critical extensions "critical".
    let line = text
        .lines()
        .find(|l| l.contains(SID_EXT))
        .unwrap_or_else(|| panic!("no SID extension:\n{text}"));
    assert!(!line.contains("critical"), "{line}");
    assert_eq!(
        asn1crypto(leaf),
        json!({"critical": false, "count": 1, "choice": "other_name",
               "type": "1.3.6.1.4.1.311.25.2.1", "sid": sid})
    );
}

const NO_SID_TEMPLATE: &str = "5f0c1b7e-2d7c-4f43-9a55-0d6d3c1e0a31";

#[cfg_attr(
    not(opencm_asn1crypto_tests),
    ignore = "asn1crypto: `python3 -m pip install asn1crypto` (.ci/run installs it)"
)]
#[tokio::test]
async fn every_certificate_carries_its_users_sid_as_active_directory_maps_it() {
    let app = TestApp::sqlite().await;
    let w = Work::new();
    save_ca(&app, &w).await;
    // A software certificate and a PIV card's logon certificate alike.
    let (_, software) = enrol(&app, &w, "alice", "software").await;
    carries_sid(&software, ALICE_SID);
    let card = enrol_card(&app, &w).await;
    carries_sid(&card.leaf, ALICE_SID);
    // A virtual smart card's (approved by bob, an RSA key made on the card).
    let vsc = app.create("alice", VSC).await;
    assert_eq!(app.decide("bob", &vsc, "Approve").await.0, StatusCode::OK);
    let (s, v, _) = app
        .send(
            "alice",
            reqwest::Method::POST,
            "/smartcards",
            Some(json!({"requestid": vsc, "cardid": uuid::Uuid::new_v4().to_string(), "atr": "3b8d0180fba000000397425446590301c8"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, resp) = post_csrs(
        &app,
        "alice",
        &vsc,
        json!({"certificaterequests": [csr(&w, "vsc", &["-newkey", "rsa:2048"])]}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{resp}");
    carries_sid(&leaf_of(&w, resp[0]["Pkcs7"].as_str().unwrap()), ALICE_SID);

    // A template may turn the extension off, and ask for the SAN URI form instead.
    app.core
        .import_templates(&format!(
            r#"
[[template]]
uuid = "{NO_SID_TEMPLATE}"
name = "SAN URI only"
kind = "software"
security_descriptor = "D:(A;;RCCR;;;AU)"
[[template.certificates]]
common_name = "uriOnly"
key_usages = ["digital_signature"]
extended_key_usages = ["client_auth"]
sid_extension = false
sid_san_uri = true
[template.policies.Enroll]
self_service_enabled = true
"#
        ))
        .await
        .unwrap();
    let (_, leaf) = issue_from(&app, &w, "alice", NO_SID_TEMPLATE, "uri").await;
    assert_eq!(asn1crypto(&leaf), Value::Null);
    let san = openssl_ok(&["x509", "-in", &leaf, "-noout", "-ext", "subjectAltName"]);
    assert!(
        san.contains(&format!("URI:tag:microsoft.com,2022-09-14:sid:{ALICE_SID}")),
        "{san}"
    );

    // A user whose SID is no domain account's (a domain controller could map it to nobody)
    // gets no extension.
    app.core
        .add_user(&opencm_app::ports::NewUser {
            uuid: opencm_domain::Guid::new_random().into(),
            login: "kiosk".into(),
            display_name: "Kiosk".into(),
            sid: "S-1-5-21-77".into(),
            groups: Vec::new(),
            email: None,
            language: None,
        })
        .await
        .unwrap();
    let mut app = app;
    let token = app.core.create_token("kiosk", None).await.unwrap();
    app.tokens.insert("kiosk", token);
    let (_, leaf) = enrol(&app, &w, "kiosk", "kiosk").await;
    assert_eq!(asn1crypto(&leaf), Value::Null);
    assert!(!openssl_text(&leaf).contains(SID_EXT));
}
