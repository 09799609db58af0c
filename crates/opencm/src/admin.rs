//! Administration commands shared by the CLI and the demo: users, groups, tokens, templates.

use anyhow::{bail, Context};
use opencm_api::auth::{generate_token, hash_token};
use opencm_domain::policy::TemplateFile;
use opencm_domain::{Sid, Timestamp};
use opencm_store::Store;

pub async fn create_token(
    store: &dyn Store,
    login: &str,
    expires: Option<Timestamp>,
    now: Timestamp,
) -> anyhow::Result<String> {
    let user = store
        .user_by_login(login)
        .await?
        .with_context(|| format!("no user with login '{login}'"))?;
    let token = generate_token();
    store
        .add_token(&hash_token(&token), user.uuid, now, expires)
        .await?;
    Ok(token)
}

/// Imports (inserts or replaces) every template of a TOML file; returns their names.
pub async fn import_templates(
    store: &dyn Store,
    text: &str,
    now: Timestamp,
) -> anyhow::Result<Vec<String>> {
    let file: TemplateFile = toml::from_str(text).context("the template file is not valid")?;
    if file.template.is_empty() {
        bail!("the template file has no [[template]] tables");
    }
    let mut names = Vec::new();
    for t in &file.template {
        t.validate().map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    for t in &file.template {
        store
            .put_template(t, now)
            .await
            .with_context(|| format!("importing template '{}'", t.name))?;
        names.push(t.name.clone());
    }
    Ok(names)
}

/// `30s`, `15m`, `12h`, `90d` as microseconds.
pub fn parse_duration(s: &str) -> anyhow::Result<i64> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: i64 = num
        .parse()
        .with_context(|| format!("'{s}' is not a duration like 30d, 12h, 15m or 30s"))?;
    let secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" | "" => 86_400,
        _ => bail!("'{s}' has an unknown unit (use s, m, h or d)"),
    };
    Ok(n * secs * 1_000_000)
}

pub fn check_sid(s: &str) -> anyhow::Result<String> {
    Ok(Sid::parse(s)
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .to_string())
}
