//! The configuration's layers merged as one TOML table: the file's keys, then every
//! `OPENCM_<KEY>` variable that names a key, then the flags.

use super::redact::{redacted, without_values};
use super::{Config, Overrides};
use anyhow::Context;

/// The file's, the environment's and the flags' keys, later layers replacing earlier ones.
pub(super) fn merge(o: &Overrides) -> anyhow::Result<toml::Table> {
    let mut merged = toml::Table::new();
    if let Some(path) = &o.config_file {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        // The file alone, read as the configuration: its errors keep their line and column.
        toml::from_str::<Config>(&text)
            .map_err(|e| anyhow::anyhow!(redacted(&e, &text)))
            .with_context(|| format!("in {}", path.display()))?;
        merged = toml::from_str(&text).map_err(|e| anyhow::anyhow!(redacted(&e, &text)))?;
    }
    let mut vars: Vec<(String, String)> = std::env::vars()
        .filter(|(name, value)| name.starts_with("OPENCM_") && !value.is_empty())
        .collect();
    vars.sort();
    for (name, value) in vars {
        let key = name["OPENCM_".len()..].to_ascii_lowercase();
        if let Some(v) = from_environment(&key, &value).with_context(|| name.clone())? {
            merged.insert(key, v);
        }
    }
    let flags = [
        (
            "database_url",
            o.database_url.clone().map(toml::Value::from),
        ),
        ("listen", o.listen.clone().map(toml::Value::from)),
        ("tls_names", o.tls_names.clone().map(toml::Value::from)),
    ];
    for (key, value) in flags {
        if let Some(v) = value {
            merged.insert(key.into(), v);
        }
    }
    Ok(merged)
}

/// The merged layers as the configuration.
pub(super) fn read(merged: toml::Table) -> anyhow::Result<Config> {
    toml::Value::Table(merged)
        .try_into()
        .map_err(|e: toml::de::Error| anyhow::anyhow!(without_values(e.message())))
}

/// The value `OPENCM_<KEY>=value` gives `key`: the text itself where the key takes text, else
/// the whole number, else true or false, else the comma-separated list (`OPENCM_TLS_NAMES=a,b`)
/// — the first the key's type accepts. `None` when the configuration has no such key: the
/// variable is another of opencm's (`OPENCM_CA_KEK`, `OPENCM_DIRECTORY_BIND_PASSWORD`,
/// `OPENCM_LOG`, …), read where it is used.
fn from_environment(key: &str, value: &str) -> anyhow::Result<Option<toml::Value>> {
    let fits = |v: &toml::Value| {
        let mut one = toml::Table::new();
        one.insert(key.to_string(), v.clone());
        read(one).map(|_| ())
    };
    let text = toml::Value::from(value);
    let refused = match fits(&text) {
        Ok(()) => return Ok(Some(text)),
        // serde's words for a key the struct does not have (`deny_unknown_fields`).
        Err(e) if e.to_string().starts_with("unknown field") => return Ok(None),
        Err(e) => e,
    };
    let list: Vec<&str> = value
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .collect();
    let candidates = [
        value.trim().parse::<i64>().ok().map(toml::Value::from),
        value.trim().parse::<bool>().ok().map(toml::Value::from),
        Some(toml::Value::from(list)),
    ];
    candidates
        .into_iter()
        .flatten()
        .find(|v| fits(v).is_ok())
        .map(Some)
        .ok_or(refused)
}
