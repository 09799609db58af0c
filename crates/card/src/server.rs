//! The opencm (MIM CM REST API) calls a card client makes, with a bearer token. Every error names
//! the call and carries the server's `ErrorCode` and message.

use anyhow::{anyhow, bail, Context, Result};
use base64::Engine;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

pub struct Server {
    http: reqwest::Client,
    api: String,
    /// opencm's own routes (`/opencm/v1`).
    opencm: String,
    token: String,
    /// Time spent waiting for the server, so a run can say where its time went.
    waited: std::cell::Cell<std::time::Duration>,
}

/// A refusal from the server, as its error body says it.
#[derive(Debug)]
pub struct Refused {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.code,
            self.message
        )
    }
}

impl std::error::Error for Refused {}

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

pub fn unb64(s: &str) -> Result<Vec<u8>> {
    base64::engine::general_purpose::STANDARD
        .decode(s.replace(['\r', '\n'], ""))
        .context("the server's answer is not base64")
}

impl Server {
    /// `base`: the server's address (`https://cm.example.com`); the API is under
    /// `/CertificateManagement/api/v1.0`.
    pub fn new(base: &str, token: String) -> Result<Self> {
        let base = base.trim_end_matches('/');
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            bail!("the server address must start with http:// or https:// (got '{base}')");
        }
        // A kept-alive connection is dropped on this side before the server's header timeout
        // (10 s by default) can close it: otherwise a call made just as the server closes the
        // connection, after a long step on the card (an RSA key generation), fails with
        // "connection closed before message completed".
        let http = reqwest::Client::builder()
            .pool_idle_timeout(std::time::Duration::from_secs(5))
            .build()
            .context("starting the HTTP client")?;
        Ok(Server {
            http,
            api: format!("{base}/CertificateManagement/api/v1.0"),
            opencm: format!("{base}/opencm/v1"),
            token,
            waited: Default::default(),
        })
    }

    /// How long this client has waited for the server so far.
    pub fn waited(&self) -> std::time::Duration {
        self.waited.get()
    }

    /// Presents the request's one-time password (opencm's extension: a policy with
    /// `one_time_password_policy` wants it before the request is executed).
    pub async fn present_secret(&self, request: &str, password: &str) -> Result<Value> {
        self.call_at(
            &self.opencm,
            Method::POST,
            &format!("/requests/{request}/onetimepassword"),
            &[],
            Some(json!({ "Password": password })),
        )
        .await
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<Value>,
    ) -> Result<Value> {
        self.call_at(&self.api, method, path, query, body).await
    }

    async fn call_at(
        &self,
        base: &str,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<Value>,
    ) -> Result<Value> {
        let mut req = self
            .http
            .request(method, format!("{base}{path}"))
            .bearer_auth(&self.token)
            .query(query);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let started = std::time::Instant::now();
        let resp = req
            .send()
            .await
            .with_context(|| format!("cannot reach the server for {path}"))?;
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        self.waited.set(self.waited.get() + started.elapsed());
        let value: Value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        if !status.is_success() {
            return Err(Refused {
                status,
                code: value["ErrorCode"].as_str().unwrap_or("").to_string(),
                message: value["Message"].as_str().unwrap_or("").to_string(),
            }
            .into());
        }
        Ok(value)
    }

    pub async fn request(&self, id: &str) -> Result<Value> {
        self.call(Method::GET, &format!("/requests/{id}"), &[], None)
            .await
    }

    pub async fn card_configuration(&self, template: &str) -> Result<Value> {
        self.call(
            Method::GET,
            &format!("/profiletemplates/{template}/configuration/smartcards"),
            &[],
            None,
        )
        .await
    }

    /// Binds the card to the request; returns the card's uuid on the server.
    pub async fn bind(&self, request: &str, card_id: &str, atr: &str) -> Result<String> {
        let v = self
            .call(
                Method::POST,
                "/smartcards",
                &[],
                Some(json!({"requestid": request, "cardid": card_id, "atr": atr})),
            )
            .await?;
        v.as_str()
            .and_then(|s| s.rsplit('/').next())
            .map(str::to_string)
            .ok_or_else(|| anyhow!("the server's answer to the bind names no card: {v}"))
    }

    /// The smart cards the server knows with this card id (the live one first).
    pub async fn card_by_card_id(&self, card_id: &str) -> Result<Option<Value>> {
        match self
            .call(
                Method::GET,
                "/smartcards",
                &[("cardid", card_id.to_string())],
                None,
            )
            .await
        {
            Ok(v) => Ok(Some(v)),
            Err(e)
                if e.downcast_ref::<Refused>()
                    .is_some_and(|r| r.status == StatusCode::NOT_FOUND) =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    fn card_path(request: &str, card: &str, what: &str) -> String {
        format!("/requests/{request}/smartcards/{card}/{what}")
    }

    /// E(admin key, challenge): the factory key's when `diversified` is false, the card's own
    /// when true.
    pub async fn admin_response(
        &self,
        request: &str,
        card: &str,
        card_id: &str,
        challenge: &[u8],
        diversified: bool,
    ) -> Result<Vec<u8>> {
        let v = self
            .call(
                Method::GET,
                &Self::card_path(request, card, "authenticationresponse"),
                &[
                    ("cardid", card_id.to_string()),
                    ("challenge", b64(challenge)),
                    ("diversified", diversified.to_string()),
                ],
                None,
            )
            .await?;
        unb64(v.as_str().unwrap_or_default())
    }

    pub async fn diversified_key(
        &self,
        request: &str,
        card: &str,
        card_id: &str,
    ) -> Result<Vec<u8>> {
        let v = self
            .call(
                Method::GET,
                &Self::card_path(request, card, "diversifiedkey"),
                &[("cardid", card_id.to_string())],
                None,
            )
            .await?;
        unb64(v.as_str().unwrap_or_default())
    }

    pub async fn proposed_pin(&self, request: &str, card: &str, card_id: &str) -> Result<String> {
        let v = self
            .call(
                Method::GET,
                &Self::card_path(request, card, "serverproposedpin"),
                &[("cardid", card_id.to_string())],
                None,
            )
            .await?;
        v.as_str()
            .map(str::to_string)
            .ok_or_else(|| anyhow!("the proposed PIN is not a string"))
    }

    /// A smart card as the server has it.
    pub async fn card(&self, card: &str) -> Result<Value> {
        self.call(Method::GET, &format!("/smartcards/{card}"), &[], None)
            .await
    }

    /// The certificates issued onto a card.
    pub async fn card_certificates(&self, card: &str) -> Result<Vec<Value>> {
        let v = self
            .call(
                Method::GET,
                &format!("/smartcards/{card}/certificates"),
                &[],
                None,
            )
            .await?;
        Ok(v.as_array().cloned().unwrap_or_default())
    }

    /// What the caller may start on a card now (MIM's lowercase operation names).
    pub async fn card_operations(&self, card: &str) -> Result<Vec<Value>> {
        let v = self
            .call(
                Method::GET,
                &format!("/smartcards/{card}/operations"),
                &[],
                None,
            )
            .await?;
        Ok(v.as_array().cloned().unwrap_or_default())
    }

    /// Sets the card's status during the request's execution (a Retire sets Retired).
    pub async fn set_card_status(&self, request: &str, card: &str, status: &str) -> Result<Value> {
        self.call(
            Method::PUT,
            &format!("/requests/{request}/smartcards/{card}"),
            &[],
            Some(json!({ "status": status })),
        )
        .await
    }

    /// The card's PUK (opencm): for the request that personalises the card, or unblocks it.
    pub async fn puk(&self, request: &str, card: &str, card_id: &str) -> Result<String> {
        let v = self
            .call(
                Method::GET,
                &Self::card_path(request, card, "puk"),
                &[("cardid", card_id.to_string())],
                None,
            )
            .await?;
        v.as_str()
            .map(str::to_string)
            .ok_or_else(|| anyhow!("the PUK is not a string"))
    }

    pub async fn generation_options(&self, request: &str) -> Result<Vec<Value>> {
        let v = self
            .call(
                Method::GET,
                &format!("/requests/{request}/certificaterequestgenerationoptions"),
                &[],
                None,
            )
            .await?;
        Ok(v.as_array().cloned().unwrap_or_default())
    }

    /// Sends the CSRs (DER); returns the server's certificate responses.
    pub async fn certificate_data(&self, request: &str, csrs: &[Vec<u8>]) -> Result<Vec<Value>> {
        let csrs: Vec<String> = csrs.iter().map(|c| b64(c)).collect();
        let v = self
            .call(
                Method::POST,
                &format!("/requests/{request}/certificatedata"),
                &[],
                Some(json!({ "certificaterequests": csrs })),
            )
            .await?;
        Ok(v.as_array().cloned().unwrap_or_default())
    }

    /// `Completed`, `Canceled` or `Abandoned`.
    pub async fn finish(&self, request: &str, status: &str) -> Result<Value> {
        self.call(
            Method::PUT,
            &format!("/requests/{request}"),
            &[],
            Some(json!({ "status": status })),
        )
        .await
    }
}
