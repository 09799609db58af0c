//! Who an e-mail row goes to, and what its templates may say. Read when the row is delivered,
//! not when it is written: the people are as the directory has them then (an approver added to
//! the group since is told; an address changed since is used).
//!
//! - a request waiting for approval: everyone its security descriptor lets approve (the policy's
//!   approvers: users named, and the members of groups named, from the directory);
//! - a request decided, canceled, failed or completed: its originator and its target;
//! - a certificate nearing expiry: its holder;
//! - a dead letter: the configured administrators' addresses.

use crate::outbox::{DeliveryError, Mail, Notifications, Recipient};
use crate::App;
use opencm_domain::notification::{EventType, OutboxRow};
use opencm_domain::request::{rights, Request};
use opencm_domain::{Guid, Principal, RequestId, UserId};

fn transient(e: impl std::fmt::Display) -> DeliveryError {
    DeliveryError::transient(e.to_string())
}

/// "es" for Spanish speakers (`es`, `es-ES`, `es_MX`…), else the default.
fn language_of(p: &Principal, default: &str) -> String {
    match p.language.as_deref() {
        Some(l) if l.to_ascii_lowercase().starts_with("es") => "es".into(),
        Some(l) if l.to_ascii_lowercase().starts_with("en") => "en".into(),
        _ => default.to_string(),
    }
}

fn person(p: &Principal) -> serde_json::Value {
    serde_json::json!({ "name": p.display_name, "login": p.login })
}

impl App {
    /// The e-mails of an `email` row, one per recipient with an address.
    pub(crate) async fn mails_of(
        &self,
        n: &Notifications,
        row: &OutboxRow,
    ) -> Result<Vec<Mail>, DeliveryError> {
        let payload: serde_json::Value = serde_json::from_str(&row.payload)
            .map_err(|e| DeliveryError::permanent(format!("the row's payload is not JSON: {e}")))?;
        let data = &payload["data"];
        let default = n.settings.default_language.as_str();
        let mut context = serde_json::json!({
            "event": row.event.name(),
            "event_id": row.event_id.to_string(),
            "data": data,
            "portal_url": n.settings.portal_url,
        });
        if row.event == EventType::OutboxDeadLetter {
            return Ok(n
                .settings
                .admin_addresses
                .iter()
                .map(|a| Mail {
                    event: Some(row.event),
                    policy: None,
                    to: Recipient {
                        address: a.clone(),
                        name: a.clone(),
                        language: default.to_string(),
                    },
                    context: context.clone(),
                })
                .collect());
        }
        // Each person's own context additions (a one-time password's part).
        let mut people: Vec<Principal> = Vec::new();
        let mut extras: Vec<serde_json::Value> = Vec::new();
        let mut policy = None;
        if let Some(id) = data["requestUuid"].as_str() {
            let id: RequestId = id
                .parse::<Guid>()
                .map_err(|e| DeliveryError::permanent(e.to_string()))?
                .into();
            let Some(r) = self.requests.request(id).await.map_err(transient)? else {
                return Err(DeliveryError::permanent(format!("request {id} is gone")));
            };
            let (request, template) = self.request_context(&r, n).await?;
            policy = template.map(|t| format!("{t}/{}", r.request_type.name()));
            let originator = self.person_of(r.originator).await?;
            let target = self.person_of(r.target).await?;
            if let Some(map) = context.as_object_mut() {
                map.insert("request".into(), request);
                map.insert(
                    "originator".into(),
                    originator.as_ref().map(person).unwrap_or_default(),
                );
                map.insert(
                    "target".into(),
                    target.as_ref().map(person).unwrap_or_default(),
                );
            }
            if row.event == EventType::SecretsDistributed {
                for (p, extra) in self.secret_mails(data, &r).await? {
                    people.push(p);
                    extras.push(extra);
                }
            } else if row.event == EventType::RequestPendingApproval {
                people = self.approvers_of(&r).await?;
            } else {
                people.extend(originator);
                people.extend(target);
            }
        } else if let Some(user) = data["userUuid"].as_str() {
            let user: UserId = user
                .parse::<Guid>()
                .map_err(|e| DeliveryError::permanent(e.to_string()))?
                .into();
            people.extend(self.person_of(user).await?);
        }
        let mut mails: Vec<Mail> = Vec::new();
        let secret_parts = row.event == EventType::SecretsDistributed;
        for (i, p) in people.into_iter().enumerate() {
            let Some(address) = p.email.clone() else {
                if secret_parts {
                    // A secret that reaches nobody leaves the request stuck: say so, loudly.
                    return Err(DeliveryError::permanent(format!(
                        "{} has no e-mail address for the one-time password",
                        p.login
                    )));
                }
                continue;
            };
            if !secret_parts
                && mails
                    .iter()
                    .any(|m| m.to.address.eq_ignore_ascii_case(&address))
            {
                continue;
            }
            let mut context = context.clone();
            if let Some(map) = context.as_object_mut() {
                map.insert("recipient".into(), person(&p));
                if let Some(serde_json::Value::Object(extra)) = extras.get(i) {
                    for (k, v) in extra {
                        map.insert(k.clone(), v.clone());
                    }
                }
            }
            mails.push(Mail {
                event: Some(row.event),
                policy: policy.clone(),
                to: Recipient {
                    address,
                    name: p.display_name.clone(),
                    language: language_of(&p, default),
                },
                context,
            });
        }
        Ok(mails)
    }

    /// The request as templates see it, and its template's name.
    async fn request_context(
        &self,
        r: &Request,
        n: &Notifications,
    ) -> Result<(serde_json::Value, Option<String>), DeliveryError> {
        let template = self
            .templates
            .get(r.profile_template)
            .await
            .map_err(transient)?
            .map(|t| t.name.clone());
        let url = n
            .settings
            .portal_url
            .as_ref()
            .map(|base| format!("{}/requests/{}", base.trim_end_matches('/'), r.uuid));
        Ok((
            serde_json::json!({
                "uuid": r.uuid.to_string(),
                "type": r.request_type.name(),
                "status": r.status.name(),
                "comment": r.comment,
                "submitted": crate::outbox::rfc3339(r.submitted),
                "template": template,
                "url": url,
            }),
            template,
        ))
    }

    async fn person_of(&self, id: UserId) -> Result<Option<Principal>, DeliveryError> {
        self.directory.user_by_uuid(id).await.map_err(transient)
    }

    /// Everyone the request's security descriptor lets approve: the users it names, and the
    /// members of the groups it names, as the directory lists them now.
    async fn approvers_of(&self, r: &Request) -> Result<Vec<Principal>, DeliveryError> {
        let mut out: Vec<Principal> = Vec::new();
        for sid in r.security_descriptor.sids_allowed(rights::APPROVE) {
            for p in self.directory.members_of(&sid).await.map_err(transient)? {
                if !out.iter().any(|o| o.uuid == p.uuid) {
                    out.push(p);
                }
            }
        }
        Ok(out)
    }
}
