//! Sign-in with OpenID Connect access tokens, against a real OpenID provider: panva's
//! oidc-provider (OpenID Certified) on Node, issuing ES256 JWT access tokens for `api://opencm`
//! with the `upn` and `groups` claims ADFS and Entra ID use, its keys published through its own
//! discovery document and JWKS (`scripts/oidc/provider.mjs`).

use crate::blackbox::start_with;
use crate::helpers::scratch_dir;
use opencm_store::testing::fresh_sqlite_url;
use reqwest::StatusCode;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

pub(crate) struct Provider {
    child: Child,
    pub(crate) base: String,
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Provider {
    pub(crate) fn start() -> Provider {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../scripts/oidc/provider.mjs"
        );
        let mut child = Command::new("node")
            .args([script, &port.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("node runs the OpenID provider");
        let out = BufReader::new(child.stdout.take().unwrap());
        for line in out.lines() {
            if line.unwrap().contains("listening on") {
                break;
            }
        }
        Provider {
            child,
            base: format!("http://127.0.0.1:{port}"),
        }
    }

    /// An access token the provider issues for `sub` (its `upn`), for audience `aud`.
    pub(crate) async fn token(&self, sub: &str, aud: &str, ttl: u32) -> String {
        reqwest::get(format!(
            "{}/test/token?sub={sub}&aud={aud}&ttl={ttl}",
            self.base
        ))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
    }
}

fn config(dir: &std::path::Path, issuer: &str) -> String {
    let path = dir.join("oidc.toml");
    std::fs::write(
        &path,
        format!(
            "[oidc]\nissuer = \"{issuer}\"\naudience = [\"api://opencm\"]\nalgorithms = [\"ES256\"]\nleeway_secs = 0\n"
        ),
    )
    .unwrap();
    path.to_string_lossy().into_owned()
}

#[tokio::test]
#[cfg_attr(
    not(opencm_oidc_tests),
    ignore = "OIDC: install the test provider with `npm ci --prefix scripts/oidc` to run"
)]
async fn access_tokens_from_an_openid_provider_sign_users_in_and_bad_ones_do_not() {
    let provider = Provider::start();
    let dir = scratch_dir("oidc");
    let cfg = config(&dir, &provider.base);
    let db = fresh_sqlite_url();
    let s = start_with(&db, true, &[("OPENCM_CONFIG", &cfg)])
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let whoami = format!("{}/opencm/v1/whoami", s.base);
    let call = |token: String| {
        let (http, url) = (http.clone(), whoami.clone());
        async move {
            let r = http.get(url).bearer_auth(token).send().await.unwrap();
            let status = r.status();
            (
                status,
                r.json::<serde_json::Value>().await.unwrap_or_default(),
            )
        }
    };

    // alice's access token signs her in, on opencm's routes and MIM's.
    let token = provider.token("alice", "api://opencm", 600).await;
    assert_eq!(token.split('.').count(), 3, "a JWT: {token}");
    let (st, me) = call(token.clone()).await;
    assert_eq!(st, StatusCode::OK, "{me}");
    assert_eq!(me["Login"], "alice");
    assert_eq!(me["AuthenticatedBy"], "OpenID Connect access token");
    let r = http
        .get(s.api("/profiletemplates"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // opencm's own tokens keep working beside them.
    let (st, me) = call(s.tokens["bob"].clone()).await;
    assert_eq!((st, me["Login"].as_str()), (StatusCode::OK, Some("bob")));

    // Without a directory, a user opencm does not know comes from the token's claims — Entra's
    // oid as its GUID, its on-premises SID, its group SIDs — and acts with them: carl, in the
    // approvers' group by his token, approves alice's virtual smart card request.
    let carl_claims = r#"{"oid":"3f2a1b4c-5d6e-4f70-8192-a3b4c5d6e7f8","onprem_sid":"S-1-5-21-1000-1000-1000-1500","name":"Carl External"}"#;
    let carl = reqwest::get(format!(
        "{}/test/token?sub=carl@example.test&groups=S-1-5-21-1000-1000-1000-2001&claims={}",
        provider.base,
        carl_claims
            .replace('"', "%22")
            .replace('{', "%7B")
            .replace('}', "%7D")
    ))
    .await
    .unwrap()
    .text()
    .await
    .unwrap();
    let (st, me) = call(carl.clone()).await;
    assert_eq!(st, StatusCode::OK, "{me}");
    assert_eq!(me["Uuid"], "3f2a1b4c-5d6e-4f70-8192-a3b4c5d6e7f8");
    assert_eq!(me["Sid"], "S-1-5-21-1000-1000-1000-1500");
    assert_eq!(
        me["GroupSids"],
        serde_json::json!(["S-1-5-21-1000-1000-1000-2001"])
    );
    assert_eq!(me["DisplayName"], "Carl External");
    let r = http
        .post(s.api("/requests"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"profiletemplateuuid": "a039b4d0-5ce8-4eff-8651-181c6576fda3", "type": "Enroll", "datacollection": [{"Request Reason": "new laptop"}], "comment": "please"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let id: String = r.json().await.unwrap();
    let id = id.rsplit('/').next().unwrap().to_string();
    let r = http
        .post(s.api(&format!("/requests/{id}/approvals")))
        .bearer_auth(&carl)
        .json(&serde_json::json!({"decision": "Approve"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());

    // Refused: another audience, an unknown user, a token altered after signing, one with no
    // signature at all (alg none), one that has expired.
    let other = provider.token("alice", "api://other", 600).await;
    assert_eq!(call(other).await.0, StatusCode::UNAUTHORIZED);
    let nobody = provider.token("nobody", "api://opencm", 600).await;
    assert_eq!(call(nobody).await.0, StatusCode::UNAUTHORIZED);
    let parts: Vec<&str> = token.split('.').collect();
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let payload = String::from_utf8(b64.decode(parts[1]).unwrap()).unwrap();
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        b64.encode(payload.replace("\"alice\"", "\"admin\"")),
        parts[2]
    );
    assert_eq!(call(forged).await.0, StatusCode::UNAUTHORIZED);
    let none = format!(
        "{}.{}.",
        b64.encode(r#"{"alg":"none","typ":"at+jwt"}"#),
        b64.encode(payload.replace("\"alice\"", "\"admin\""))
    );
    assert_eq!(call(none).await.0, StatusCode::UNAUTHORIZED);
    // A key id the provider never published (the JWKS is fetched again, and still lacks it).
    let header = String::from_utf8(b64.decode(parts[0]).unwrap()).unwrap();
    let mut header: serde_json::Value = serde_json::from_str(&header).unwrap();
    header["kid"] = serde_json::json!("not-a-published-key");
    let unknown_kid = format!(
        "{}.{}.{}",
        b64.encode(header.to_string()),
        parts[1],
        parts[2]
    );
    assert_eq!(call(unknown_kid).await.0, StatusCode::UNAUTHORIZED);
    let short = provider.token("alice", "api://opencm", 1).await;
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_eq!(call(short).await.0, StatusCode::UNAUTHORIZED);

    // alice disabled in opencm: her provider's token signs nobody in.
    let (ok, out) = crate::directory::opencm(
        std::path::Path::new(&cfg),
        &db,
        &["user", "disable", "alice"],
    );
    assert!(ok, "{out}");
    assert_eq!(call(token.clone()).await.0, StatusCode::UNAUTHORIZED);

    // Another provider's token: another issuer, signed with a key this one never published.
    let stranger = Provider::start();
    let foreign = stranger.token("alice", "api://opencm", 600).await;
    assert_eq!(call(foreign).await.0, StatusCode::UNAUTHORIZED);
    drop(stranger);

    // The provider gone before a server ever fetched its keys: 503, not "signed out".
    let fresh = provider.token("alice", "api://opencm", 600).await;
    drop(provider);
    let s2 = start_with(&fresh_sqlite_url(), true, &[("OPENCM_CONFIG", &cfg)])
        .await
        .unwrap();
    let r = http
        .get(format!("{}/opencm/v1/whoami", s2.base))
        .bearer_auth(fresh)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    // Its own code: the directory (LDAP) is not what is down.
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["ErrorCode"], "IdentityProviderUnavailable", "{body}");
    let _ = std::fs::remove_dir_all(&dir);
}
