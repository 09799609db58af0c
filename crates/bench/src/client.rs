//! The HTTP calls a MIM CM client makes, one method per call, each checking its status code.

use anyhow::bail;
use serde_json::{json, Value};

pub struct Client {
    pub http: reqwest::Client,
    /// `http://host:port`, no trailing slash.
    pub base: String,
    auth: String,
}

const API: &str = "/CertificateManagement/api/v1.0";

impl Client {
    pub fn new(base: &str, token: &str, pool: usize) -> anyhow::Result<Client> {
        Ok(Client {
            http: reqwest::Client::builder()
                .pool_max_idle_per_host(pool)
                .tcp_nodelay(true)
                .build()?,
            base: base.trim_end_matches('/').to_string(),
            auth: format!("Bearer {token}"),
        })
    }

    fn api(&self, path: &str) -> String {
        format!("{}{API}{path}", self.base)
    }

    /// Reads the whole body (writing it is part of the server's work) and checks the status.
    async fn expect(r: reqwest::Response, want: u16, what: &str) -> anyhow::Result<Vec<u8>> {
        let status = r.status().as_u16();
        let body = r.bytes().await?;
        if status != want {
            bail!(
                "{what} answered {status}: {}",
                String::from_utf8_lossy(&body)
            );
        }
        Ok(body.to_vec())
    }

    pub async fn healthz(&self) -> anyhow::Result<()> {
        let r = self
            .http
            .get(format!("{}/healthz", self.base))
            .send()
            .await?;
        Self::expect(r, 200, "GET /healthz").await.map(drop)
    }

    /// `POST /requests` for an Enroll on `template`; the new request's id.
    pub async fn create(&self, template: &str) -> anyhow::Result<String> {
        let body = json!({"profiletemplateuuid": template, "type": "Enroll", "datacollection": "[]", "comment": "bench"});
        let r = self
            .http
            .post(self.api("/requests"))
            .header("authorization", &self.auth)
            .json(&body)
            .send()
            .await?;
        let b = Self::expect(r, 201, "POST /requests").await?;
        let rel: String = serde_json::from_slice(&b)?;
        Ok(rel.rsplit('/').next().unwrap_or_default().to_string())
    }

    pub async fn generation_options(&self, id: &str) -> anyhow::Result<usize> {
        let r = self
            .http
            .get(self.api(&format!(
                "/requests/{id}/certificaterequestgenerationoptions"
            )))
            .header("authorization", &self.auth)
            .send()
            .await?;
        let b = Self::expect(r, 200, "GET certificaterequestgenerationoptions").await?;
        let v: Value = serde_json::from_slice(&b)?;
        Ok(v.as_array().map_or(0, Vec::len))
    }

    pub async fn certificate_data(&self, id: &str, csrs: &[&str]) -> anyhow::Result<()> {
        let r = self
            .http
            .post(self.api(&format!("/requests/{id}/certificatedata")))
            .header("authorization", &self.auth)
            .json(&json!({ "certificaterequests": csrs }))
            .send()
            .await?;
        Self::expect(r, 200, "POST certificatedata").await.map(drop)
    }

    pub async fn complete(&self, id: &str) -> anyhow::Result<()> {
        let r = self
            .http
            .put(self.api(&format!("/requests/{id}")))
            .header("authorization", &self.auth)
            .json(&json!({"status": "Completed"}))
            .send()
            .await?;
        Self::expect(r, 200, "PUT Completed").await.map(drop)
    }

    /// `PUT {"status": "Abandoned"}`: an executing request given up (what it issued is revoked).
    pub async fn abandon(&self, id: &str) -> anyhow::Result<()> {
        let r = self
            .http
            .put(self.api(&format!("/requests/{id}")))
            .header("authorization", &self.auth)
            .json(&json!({"status": "Abandoned"}))
            .send()
            .await?;
        Self::expect(r, 200, "PUT Abandoned").await.map(drop)
    }

    /// The caller's certificates: (serial in hex, status number).
    pub async fn certificates(&self) -> anyhow::Result<Vec<(String, i64)>> {
        let (status, v) = self.get_json("/certificates").await?;
        if status != 200 {
            bail!("GET /certificates answered {status}");
        }
        Ok(v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| {
                Some((
                    c["SerialNumber"].as_str()?.to_string(),
                    c["Status"].as_i64().unwrap_or(0),
                ))
            })
            .collect())
    }

    /// The issuing CA's certificate (DER), as relying parties fetch it.
    pub async fn ca_der(&self) -> anyhow::Result<Vec<u8>> {
        let r = self
            .http
            .get(format!("{}/pki/ca.cer", self.base))
            .send()
            .await?;
        Self::expect(r, 200, "GET /pki/ca.cer").await
    }

    /// `POST /ocsp`: the answer must be a successful OCSP response (a refusal is five bytes).
    pub async fn ocsp(&self, request: &[u8]) -> anyhow::Result<()> {
        let r = self
            .http
            .post(format!("{}/ocsp", self.base))
            .header("content-type", "application/ocsp-request")
            .body(request.to_vec())
            .send()
            .await?;
        let b = Self::expect(r, 200, "POST /ocsp").await?;
        if b.len() <= 5 {
            bail!("POST /ocsp refused: {b:02x?}");
        }
        Ok(())
    }

    /// How many requests the caller is the target of (up to the API's page of 1,000).
    pub async fn requests_of_caller(&self) -> anyhow::Result<usize> {
        let (status, v) = self.get_json("/requests?targetuser=current").await?;
        if status != 200 {
            bail!("GET /requests answered {status}");
        }
        Ok(v.as_array().map_or(0, Vec::len))
    }

    /// Signs in to the portal with a password; the session cookie (`name=value`).
    pub async fn sign_in(&self, login: &str, password: &str) -> anyhow::Result<String> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let r = http
            .post(format!("{}/sign-in", self.base))
            .form(&[("login", login), ("password", password), ("next", "/")])
            .send()
            .await?;
        if r.status().as_u16() != 303 {
            bail!(
                "POST /sign-in answered {}: wrong login or password?",
                r.status()
            );
        }
        r.headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with("opencm_session="))
            .and_then(|v| v.split(';').next())
            .map(String::from)
            .ok_or_else(|| anyhow::anyhow!("POST /sign-in set no session cookie"))
    }

    /// `GET /` of the portal, signed in.
    pub async fn portal_home(&self, cookie: &str) -> anyhow::Result<()> {
        let r = self
            .http
            .get(format!("{}/", self.base))
            .header("cookie", cookie)
            .send()
            .await?;
        Self::expect(r, 200, "GET / (portal)").await.map(drop)
    }

    pub async fn read(&self, id: &str) -> anyhow::Result<()> {
        let r = self
            .http
            .get(self.api(&format!("/requests/{id}")))
            .header("authorization", &self.auth)
            .send()
            .await?;
        Self::expect(r, 200, "GET /requests/{id}").await.map(drop)
    }

    async fn get_json(&self, path: &str) -> anyhow::Result<(u16, Value)> {
        let r = self
            .http
            .get(self.api(path))
            .header("authorization", &self.auth)
            .send()
            .await?;
        let status = r.status().as_u16();
        let v = if status == 200 {
            r.json().await?
        } else {
            Value::Null
        };
        Ok((status, v))
    }

    /// `POST /smartcards`: binds `card_id` to request `id`; the new card's uuid.
    pub async fn bind(&self, id: &str, card_id: &str) -> anyhow::Result<String> {
        let body = json!({"requestid": id, "cardid": card_id, "atr": "3b8d0180fba000000397425446590301c8"});
        let r = self
            .http
            .post(self.api("/smartcards"))
            .header("authorization", &self.auth)
            .json(&body)
            .send()
            .await?;
        let b = Self::expect(r, 201, "POST /smartcards").await?;
        let rel: String = serde_json::from_slice(&b)?;
        Ok(rel.rsplit('/').next().unwrap_or_default().to_string())
    }

    /// A card secret of request `id` on card `card` (`diversifiedkey`, `authenticationresponse`,
    /// `serverproposedpin`), with its query; the JSON string answered.
    pub async fn card_secret(
        &self,
        id: &str,
        card: &str,
        what: &str,
        query: &[(&str, &str)],
    ) -> anyhow::Result<String> {
        let r = self
            .http
            .get(self.api(&format!("/requests/{id}/smartcards/{card}/{what}")))
            .query(query)
            .header("authorization", &self.auth)
            .send()
            .await?;
        let b = Self::expect(r, 200, what).await?;
        Ok(serde_json::from_slice(&b)?)
    }

    /// The first template this user may enroll from without approval or comment: a software
    /// template, or with `smartcard` a smart card one.
    pub async fn auto_approved_template(&self, smartcard: bool) -> anyhow::Result<String> {
        let (_, list) = self.get_json("/profiletemplates").await?;
        for t in list.as_array().into_iter().flatten() {
            let Some(id) = t["Uuid"].as_str() else {
                continue;
            };
            let is_card = t["IsSmartcardProfileTemplate"] == true
                || t["IsVirtualSmartcardProfileTemplate"] == true;
            if is_card != smartcard {
                continue;
            }
            let (status, p) = self
                .get_json(&format!("/profiletemplates/{id}/policies/enroll"))
                .await?;
            if status == 200
                && p["ApprovalsNeeded"] == 0
                && p["SelfServiceEnabled"] == true
                && !p["CollectComments"].as_bool().unwrap_or(false)
            {
                return Ok(id.to_string());
            }
        }
        bail!(
            "no {}template this user may enroll from without approval; pass --template",
            if smartcard {
                "smart card "
            } else {
                "software "
            }
        )
    }
}
