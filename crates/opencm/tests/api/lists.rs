//! `GET /requests` and `GET /profiletemplates`: visibility, filters, keyset pagination.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::json;

fn ids(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|r| r["Uuid"].as_str().unwrap().to_string())
        .collect()
}

async fn callers_see_only_requests_they_may_read(app: TestApp) {
    let a1 = app.create("alice", SOFTWARE).await;
    let a2 = app.create("alice", VSC).await;
    let d1 = app.create("dave", SOFTWARE).await;
    assert_eq!(
        ids(&app.get("alice", "/requests").await.1),
        vec![a1.clone(), a2.clone()],
        "{}",
        app.engine()
    );
    // eve has no role; carol is an enrollment agent, but neither template requires one.
    assert_eq!(app.get("eve", "/requests").await.1, serde_json::json!([]));
    assert_eq!(app.get("carol", "/requests").await.1, serde_json::json!([]));
    // bob and dave approve for both demo templates, so their group reads every request.
    assert_eq!(
        ids(&app.get("bob", "/requests").await.1),
        vec![a1.clone(), a2.clone(), d1.clone()]
    );
    assert_eq!(
        ids(&app.get("dave", "/requests?targetuser=current").await.1),
        vec![d1.clone()]
    );
    assert_eq!(
        ids(&app.get("admin", "/requests").await.1),
        vec![a1.clone(), a2.clone(), d1.clone()]
    );
    assert_eq!(
        app.get("eve", &format!("/requests/{a1}")).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        ids(&app.get("admin", "/requests?status=pending").await.1),
        vec![a2.clone()]
    );
    assert_eq!(
        ids(&app.get("admin", "/requests?targetuser=current").await.1),
        Vec::<String>::new()
    );
    assert_eq!(
        ids(&app
            .get("alice", "/requests?TargetUser=current&Status=Approved")
            .await
            .1),
        vec![a1.clone()]
    );
}
on_each_engine!(callers_see_only_requests_they_may_read);

#[tokio::test]
async fn pages_follow_the_link_header_to_the_end() {
    let app = TestApp::sqlite().await;
    let mut created = Vec::new();
    for _ in 0..7 {
        created.push(app.create("alice", SOFTWARE).await);
    }
    let mut seen = Vec::new();
    let mut url = app.api("/requests?limit=3");
    let mut pages = 0;
    loop {
        let r = app
            .http
            .get(&url)
            .header("authorization", app.auth("alice"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let link = r
            .headers()
            .get("link")
            .map(|l| l.to_str().unwrap().to_string());
        seen.extend(ids(&r.json().await.unwrap()));
        pages += 1;
        match link {
            Some(l) => {
                assert!(l.ends_with(r#">; rel="next""#), "{l}");
                url = format!("{}{}", app.base, &l[1..l.find('>').unwrap()]);
            }
            None => break,
        }
    }
    assert_eq!(seen, created);
    assert_eq!(pages, 3);
    for bad in ["limit=0", "limit=x", "after=zzz"] {
        assert_eq!(
            app.get("alice", &format!("/requests?{bad}")).await.0,
            StatusCode::BAD_REQUEST,
            "{bad}"
        );
    }
}

#[tokio::test]
async fn templates_list_those_the_caller_may_enroll_from() {
    let app = TestApp::sqlite().await;
    let (s, v) = app
        .get("alice", "/profiletemplates?targetuser=current")
        .await;
    assert_eq!(s, StatusCode::OK);
    let names: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["Name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "Agent Required",
            "PIV Smart Card",
            "Server Keys",
            "Software User Certificate",
            "Two Approvals",
            "Virtual Smart Card Logon",
            "Wi-Fi Certificate",
            "Workflow Only"
        ]
    );
    let (_, v) = app.get("admin", "/profiletemplates").await;
    assert_eq!(v.as_array().unwrap().len(), 9, "admin also sees Hidden");
    // A template the caller may not read is 404 for its policy too.
    assert_eq!(
        app.get(
            "alice",
            &format!("/profiletemplates/{HIDDEN}/policies/enroll")
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );
    let (s, p) = app
        .get(
            "alice",
            &format!("/profiletemplates/{VSC}/policy/workflow/Enroll"),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(p["ApprovalsNeeded"], 1);
}

/// `limit` is 1–1000 on every list (1001 used to be capped silently on /requests and ignored on
/// /profiles and /certificates); /profiles pages by uuid with a `Link` to the next page.
async fn every_list_takes_limit_from_1_to_1000_and_profiles_page(app: TestApp) {
    let w = crate::issuance::Work::new();
    for tag in ["a", "b", "c"] {
        crate::issuance::enrol(&app, &w, "alice", tag).await;
    }
    for list in ["/requests", "/profiles", "/certificates"] {
        for bad in ["0", "1001", "1000000000000", "ten", "-1"] {
            let (s, v) = app.get("alice", &format!("{list}?limit={bad}")).await;
            assert_eq!(
                (s, v["ErrorCode"].as_str()),
                (StatusCode::BAD_REQUEST, Some("InvalidQuery")),
                "{list}?limit={bad}: {v}"
            );
        }
    }
    let (_, all) = app.get("alice", "/profiles").await;
    let all: Vec<String> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["Uuid"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(all.len(), 3);
    let mut seen = Vec::new();
    let mut url = app.api("/profiles?limit=2");
    loop {
        let r = app
            .http
            .get(&url)
            .header("authorization", app.auth("alice"))
            .send()
            .await
            .unwrap();
        let next = r
            .headers()
            .get("link")
            .map(|l| l.to_str().unwrap().to_string());
        let page: serde_json::Value = r.json().await.unwrap();
        seen.extend(
            page.as_array()
                .unwrap()
                .iter()
                .map(|p| p["Uuid"].as_str().unwrap().to_string()),
        );
        match next {
            Some(l) => {
                let path = l.trim_start_matches('<').split('>').next().unwrap();
                url = format!("{}{path}", app.base);
            }
            None => break,
        }
    }
    assert_eq!(seen, all, "{}", app.engine());
    let (_, certs) = app.get("alice", "/certificates?limit=2").await;
    assert_eq!(certs.as_array().unwrap().len(), 2);
}
on_each_engine!(every_list_takes_limit_from_1_to_1000_and_profiles_page);

/// Parsed templates are cached above the store; a re-import is seen by the very next request
/// (the cache checks the template's revision on every read), on both engines.
async fn a_reimported_template_takes_effect_on_the_next_request(app: TestApp) {
    let create = || {
        app.post_request(
            "alice",
            json!({"profiletemplateuuid": WORKFLOW, "type": "Enroll"}),
        )
    };
    assert_eq!(create().await.0, StatusCode::CREATED);
    let disabled = WORKFLOW_TEMPLATE.replace(
        "[template.policies.Enroll]\n",
        "[template.policies.Enroll]\nenabled = false\n",
    );
    assert_ne!(disabled, WORKFLOW_TEMPLATE);
    app.core.import_templates(&disabled).await.unwrap();
    let (s, v, _) = create().await;
    assert_eq!(
        (s, v["ErrorCode"].as_str()),
        (StatusCode::BAD_REQUEST, Some("PolicyNotEnabled")),
        "{}: {v}",
        app.engine()
    );
    app.core.import_templates(WORKFLOW_TEMPLATE).await.unwrap();
    assert_eq!(create().await.0, StatusCode::CREATED);
}
on_each_engine!(a_reimported_template_takes_effect_on_the_next_request);

#[tokio::test]
async fn whoami_shows_the_identity_and_every_sid_access_checks_use() {
    let app = TestApp::sqlite().await;
    let url = format!("{}/opencm/v1/whoami", app.base);
    let r = app
        .http
        .get(&url)
        .bearer_auth(&app.tokens["dave"])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["Login"], "dave");
    assert_eq!(v["Uuid"], app.users["dave"].uuid.to_string());
    assert_eq!(v["Sid"], "S-1-5-21-1000-1000-1000-1104");
    assert_eq!(v["GroupSids"], json!(["S-1-5-21-1000-1000-1000-2001"]));
    assert_eq!(
        v["TokenSids"],
        json!([
            "S-1-5-21-1000-1000-1000-1104",
            "S-1-5-21-1000-1000-1000-2001",
            "S-1-1-0",
            "S-1-5-11"
        ])
    );
    assert_eq!(v["UserPrincipalName"], "dave");
    assert_eq!(v["AuthenticatedBy"], "opencm bearer token");
    let r = app.http.get(&url).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}
