//! The demo realm `opencm serve --demo` creates on an empty database.

use opencm_app::ports::NewUser;
use opencm_app::App;
use opencm_domain::Guid;

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
pub async fn seed(app: &App) -> anyhow::Result<Option<Vec<DemoUser>>> {
    if app.has_users().await? {
        return Ok(None);
    }
    app.add_group("opencm-approvers", APPROVERS).await?;
    app.add_group("opencm-helpdesk", HELPDESK).await?;
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
        app.add_user(&NewUser {
            uuid: Guid::new_random().into(),
            login: login.into(),
            display_name: name.into(),
            sid: format!("S-1-5-21-1000-1000-1000-{rid}"),
            groups: groups.iter().map(|g| g.to_string()).collect(),
        })
        .await?;
        let token = app.create_token(login, None).await?;
        out.push(DemoUser { login, role, token });
    }
    app.import_templates(TEMPLATES).await?;
    Ok(Some(out))
}
