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
    for (name, value) in environment()? {
        let key = name["OPENCM_".len()..].to_ascii_lowercase();
        match from_environment(&key, &value).with_context(|| name.clone())? {
            Some(v) => {
                merged.insert(key, v);
            }
            None if !READ_ELSEWHERE.contains(&name.as_str())
                && !name.starts_with("OPENCM_WEBHOOK_SECRET_") =>
            {
                // Said, not ignored: `OPENCM_TLS_NAME` for `OPENCM_TLS_NAMES` would otherwise
                // quietly serve plain HTTP.
                eprintln!("warning: {name} is not a configuration variable; it is ignored");
                tracing::warn!(variable = %name, "not a configuration variable; ignored");
            }
            None => {}
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

/// The `OPENCM_` variables opencm reads where they are used, not as configuration keys.
const READ_ELSEWHERE: &[&str] = &[
    "OPENCM_CA_KEK",
    "OPENCM_CONFIG",
    "OPENCM_DIRECTORY_BIND_PASSWORD",
    "OPENCM_OIDC_CLIENT_SECRET",
    "OPENCM_SMTP_PASSWORD",
    "OPENCM_METRICS_TOKEN",
    "OPENCM_PKCS11_PIN",
    "OPENCM_PKCS11_PIN_FILE",
    // (and OPENCM_WEBHOOK_SECRET_<NAME>, one per webhook)
    "OPENCM_LOG",
    "OPENCM_TEST_POSTGRES_URL",
    // opencm-card's and opencm-bench's own.
    "OPENCM_SERVER",
    "OPENCM_TOKEN",
    "OPENCM_READER",
    "OPENCM_CARD_PIN",
    "OPENCM_ONE_TIME_PASSWORD",
    "OPENCM_BENCH",
    "OPENCM_BENCH_URL",
    "OPENCM_BENCH_TOKEN",
    "OPENCM_AB_DIR",
    "OPENCM_AB_SQL",
];

/// The non-empty `OPENCM_<KEY>` variables, in name order. Names are upper case (`OPENCM_listen`
/// is not one of them); a value that is not UTF-8 is refused by its name. Other variables are
/// not looked at, whatever their encoding.
fn environment() -> anyhow::Result<Vec<(String, String)>> {
    let mut vars = Vec::new();
    for (name, value) in std::env::vars_os() {
        let Some(name) = name.to_str().filter(|n| {
            n.starts_with("OPENCM_")
                && n.bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
        }) else {
            continue;
        };
        let Some(value) = value.to_str() else {
            anyhow::bail!("{name} is not valid UTF-8");
        };
        if !value.is_empty() {
            vars.push((name.to_string(), value.to_string()));
        }
    }
    vars.sort();
    Ok(vars)
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
        match value.trim().to_ascii_lowercase().as_str() {
            "true" => Some(toml::Value::from(true)),
            "false" => Some(toml::Value::from(false)),
            _ => None,
        },
        Some(toml::Value::from(list)),
    ];
    candidates
        .into_iter()
        .flatten()
        .find(|v| fits(v).is_ok())
        .map(Some)
        .ok_or(refused)
}
