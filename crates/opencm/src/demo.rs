//! The demo realm `opencm serve --demo` creates on an empty database: users with an API token
//! and a portal password each, two sites, an approvers' and a help desk group, and templates.

use opencm_app::ports::NewUser;
use opencm_app::{Actor, App};
use opencm_domain::Guid;

const APPROVERS: &str = "S-1-5-21-1000-1000-1000-2001";
const HELPDESK: &str = "S-1-5-21-1000-1000-1000-2002";
const SITE_A: &str = "S-1-5-21-1000-1000-1000-2003";
const SITE_B: &str = "S-1-5-21-1000-1000-1000-2004";
pub const TEMPLATES: &str = include_str!("../demo/templates.toml");

pub struct DemoUser {
    pub login: &'static str,
    pub role: &'static str,
    pub token: String,
    pub password: String,
}

/// A random password of 16 characters (about 95 bits), shown once like the token.
fn password() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rngs::OsRng;
    (0..16)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect()
}

/// Creates users, groups and templates, and a token and a password per user. Returns `None`
/// when the database already has users (the demo never touches a database in use).
pub async fn seed(app: &App) -> anyhow::Result<Option<Vec<DemoUser>>> {
    if app.has_users().await? {
        return Ok(None);
    }
    app.add_group("opencm-approvers", APPROVERS).await?;
    app.add_group("opencm-helpdesk", HELPDESK).await?;
    app.add_group("opencm-site-a", SITE_A).await?;
    app.add_group("opencm-site-b", SITE_B).await?;
    let users: [(&str, &str, u32, &[&str], &str); 6] = [
        ("alice", "Alice Example", 1101, &[SITE_A], "a user (site A)"),
        (
            "bob",
            "Bob Approver",
            1102,
            &[APPROVERS, SITE_A],
            "an approver, the users' manager",
        ),
        (
            "carol",
            "Carol Helpdesk",
            1103,
            &[HELPDESK, SITE_A],
            "help desk: initiator and enrollment agent (VSC and Wi-Fi: site A only)",
        ),
        (
            "admin",
            "Administrator",
            500,
            &["S-1-5-32-544"],
            "administrator",
        ),
        ("juan", "Juan Pérez", 1106, &[SITE_A], "a user (site A)"),
        ("luis", "Luis Remoto", 1107, &[SITE_B], "a user (site B)"),
    ];
    let mut out = Vec::new();
    for (login, name, rid, groups, role) in users {
        app.add_user(&NewUser {
            uuid: Guid::new_random().into(),
            login: login.into(),
            display_name: name.into(),
            sid: format!("S-1-5-21-1000-1000-1000-{rid}"),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            email: Some(format!("{login}@example.test")),
            // Juan reads his e-mails in Spanish; the others in the default language.
            language: (login == "juan").then(|| "es".to_string()),
        })
        .await?;
        let token = app.create_token(login, None).await?;
        let password = password();
        app.set_password(Actor::Cli, login, &password).await?;
        out.push(DemoUser {
            login,
            role,
            token,
            password,
        });
    }
    app.import_templates(TEMPLATES).await?;
    Ok(Some(out))
}
