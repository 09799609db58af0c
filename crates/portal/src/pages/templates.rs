//! Administrators read the profile templates and their workflow policies as opencm applies them,
//! each setting with a sentence saying what it does. Read-only: templates change by
//! `opencm template import` (docs/TEMPLATES.md).

use crate::i18n::Msg;
use crate::render::{html, respond, Chrome};
use crate::visitor::SignedIn;
use crate::Portal;
use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use opencm_domain::policy::WorkflowPolicy;
use opencm_domain::sddl::{AceType, SecurityDescriptor};
use opencm_domain::template::{ProfileTemplate, TemplateKind};

pub struct PolicyView {
    pub name: &'static str,
    pub mim: &'static str,
    pub approvals: u32,
    pub self_service: bool,
    pub agent_required: bool,
    pub comments: bool,
    pub approvers: String,
    pub initiators: String,
    pub agents: String,
    pub target_groups: String,
    pub data: Vec<String>,
}

pub struct CertificateView {
    pub name: String,
    pub key: String,
    pub validity_days: u32,
    pub ekus: String,
    pub server_generated: bool,
    pub archived: bool,
}

pub struct TemplateView {
    pub id: String,
    pub name: String,
    pub description: String,
    pub kind: &'static str,
    pub descriptor: String,
    pub policies: Vec<PolicyView>,
    pub certificates: Vec<CertificateView>,
}

#[derive(Template)]
#[template(path = "templates.html")]
struct TemplatesPage {
    c: Chrome,
    templates: Vec<TemplateView>,
}

/// The SIDs an allow entry of a role descriptor names, or "nobody".
fn holders(t: &Msg, d: &SecurityDescriptor) -> String {
    let sids: Vec<String> = d
        .dacl
        .as_ref()
        .map(|dacl| {
            dacl.aces
                .iter()
                .filter(|a| a.ace_type == AceType::Allow)
                .map(|a| a.sid.to_string())
                .collect()
        })
        .unwrap_or_default();
    if sids.is_empty() {
        t.nobody.to_string()
    } else {
        sids.join(", ")
    }
}

fn policy(t: &Msg, p: &WorkflowPolicy, name: &opencm_domain::RequestType) -> PolicyView {
    PolicyView {
        name: t.request_type(name),
        mim: t.request_type_mim(name),
        approvals: p.approvals_needed,
        self_service: p.self_service_enabled,
        agent_required: p.enroll_agent_required,
        comments: p.collect_comments,
        approvers: holders(t, &p.authorized_approver),
        initiators: holders(t, &p.authorized_initiator),
        agents: holders(t, &p.authorized_enrollment_agent),
        target_groups: p
            .initiator_target_groups
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
            .join(", "),
        data: p
            .data_collection
            .iter()
            .map(|d| {
                format!(
                    "{} ({})",
                    d.name,
                    if d.required { t.required } else { t.optional }
                )
            })
            .collect(),
    }
}

fn view(t: &Msg, tpl: &ProfileTemplate) -> TemplateView {
    TemplateView {
        id: tpl.uuid.to_string(),
        name: tpl.name.clone(),
        description: tpl.description.clone(),
        kind: match tpl.kind {
            TemplateKind::Software => t.kind_software,
            TemplateKind::Smartcard(_) => t.kind_smartcard,
            TemplateKind::VirtualSmartcard(_) => t.kind_virtual_smartcard,
        },
        descriptor: tpl.security_descriptor.to_string(),
        policies: opencm_domain::RequestType::ALL
            .iter()
            .filter_map(|rt| {
                tpl.policy(*rt)
                    .filter(|p| p.enabled)
                    .map(|p| policy(t, p, rt))
            })
            .collect(),
        certificates: tpl
            .certificates
            .iter()
            .map(|c| CertificateView {
                name: c.common_name.clone(),
                key: match c.key_size {
                    Some(bits) => format!("{:?} {bits}", c.key_algorithm),
                    None => format!("{:?}", c.key_algorithm),
                },
                validity_days: c.validity_days,
                ekus: c
                    .extended_key_usages
                    .iter()
                    .map(|e| e.oid().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                server_generated: c.server_generated,
                archived: c.archive_key,
            })
            .collect(),
    }
}

pub async fn page(State(portal): State<Portal>, s: SignedIn) -> Response {
    let r = async {
        let t = s.v.t;
        let templates = portal
            .app
            .templates_for_administrator(opencm_app::Actor::User(&s.user))
            .await?
            .iter()
            .map(|tpl| view(t, tpl))
            .collect();
        Ok(html(
            StatusCode::OK,
            &TemplatesPage {
                c: Chrome::signed_in(&portal, &s).await?,
                templates,
            },
        ))
    }
    .await;
    respond(&s.v, r)
}
