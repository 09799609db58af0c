//! Parsing for the administration commands; the commands themselves are `opencm-app` use cases.

use anyhow::{bail, Context};
use opencm_domain::Sid;

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
    n.checked_mul(secs)
        .and_then(|s| s.checked_mul(1_000_000))
        .filter(|us| *us <= MAX_DURATION_US)
        .with_context(|| format!("'{s}' is too long (at most 100 years)"))
}

/// 100 years: more than any token should live, far from overflowing a timestamp.
const MAX_DURATION_US: i64 = 100 * 366 * 86_400 * 1_000_000;

pub fn check_sid(s: &str) -> anyhow::Result<String> {
    Ok(Sid::parse(s)
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .to_string())
}
