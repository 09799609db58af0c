//! The demo realm `opencm serve --demo` creates on an empty database.

use crate::admin;
use opencm_domain::Guid;
use opencm_store::{NewUser, Store};

const APPROVERS: &str = "S-1-5-21-1000-1000-1000-2001";
const HELPDESK: &str = "S-1-5-21-1000-1000-1000-2002";
pub const TEMPLATES: &str = include_str!("../demo/templates.toml");

pub struct DemoUser {
    pub login: &'static str,
    pub role: &'static str,
    pub token: String,
}

/// Creates users, groups and templates, and a token per user. Returns `None` when the database
/// already has users (the demo never touches a database in use).
pub async fn seed(
    store: &dyn Store,
    now: opencm_domain::Timestamp,
) -> anyhow::Result<Option<Vec<DemoUser>>> {
    if store.count_users().await? > 0 {
        return Ok(None);
    }
    store.add_group("opencm-approvers", APPROVERS).await?;
    store.add_group("opencm-helpdesk", HELPDESK).await?;
    let users: [(&str, &str, u32, &[&str], &str); 4] = [
        ("alice", "Alice Example", 1101, &[], "a user"),
        ("bob", "Bob Approver", 1102, &[APPROVERS], "an approver"),
        (
            "carol",
            "Carol Helpdesk",
            1103,
            &[HELPDESK],
            "helpdesk: initiator and enrollment agent",
        ),
        (
            "admin",
            "Administrator",
            500,
            &["S-1-5-32-544"],
            "administrator",
        ),
    ];
    let mut out = Vec::new();
    for (login, name, rid, groups, role) in users {
        store
            .add_user(
                &NewUser {
                    uuid: Guid::new_random(),
                    login: login.into(),
                    display_name: name.into(),
                    sid: format!("S-1-5-21-1000-1000-1000-{rid}"),
                    groups: groups.iter().map(|g| g.to_string()).collect(),
                },
                now,
            )
            .await?;
        let token = admin::create_token(store, login, None, now).await?;
        out.push(DemoUser { login, role, token });
    }
    admin::import_templates(store, TEMPLATES, now).await?;
    Ok(Some(out))
}
