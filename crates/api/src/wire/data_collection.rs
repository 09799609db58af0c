//! `datacollection` in `POST /requests`, in every shape MIM clients send (docs/API.md, "Routes built"):
//! - an array of one-property objects, `[{"Request Reason": "VPN"}, {"City": "Seattle"}]`;
//! - an array of `{"Name": ..., "Value": ...}` objects;
//! - either of those as a string holding the JSON (`"datacollection": "[]"`).

use crate::error::ApiError;
use crate::extract::parse_json_text;
use opencm_app::ErrorCode;
use opencm_domain::limits::{self, DATA_ITEMS_MAX, DATA_NAME_MAX, DATA_VALUE_MAX};
use serde_json::Value;

pub fn parse_data_collection(v: Option<&Value>) -> Result<Vec<(String, Option<String>)>, ApiError> {
    let owned;
    let v = match v {
        None => return Ok(Vec::new()),
        Some(Value::String(s)) if s.trim().is_empty() => return Ok(Vec::new()),
        Some(Value::String(s)) => {
            owned = parse_json_text("The 'datacollection' string", s)?;
            &owned
        }
        Some(other) => other,
    };
    let Value::Array(items) = v else {
        return Err(bad(
            "'datacollection' must be an array (or a string holding one).",
        ));
    };
    if items.len() > DATA_ITEMS_MAX {
        return Err(bad(&format!(
            "'datacollection' has {} items; at most {DATA_ITEMS_MAX} are accepted.",
            items.len()
        )));
    }
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let Value::Object(map) = item else {
            return Err(bad(&format!(
                "'datacollection' item {} must be an object.",
                i + 1
            )));
        };
        let name_key = map.keys().find(|k| k.eq_ignore_ascii_case("name"));
        let value_key = map.keys().find(|k| k.eq_ignore_ascii_case("value"));
        match (name_key, value_key) {
            (Some(n), Some(v)) if map.len() == 2 => {
                let Value::String(name) = &map[n] else {
                    return Err(bad(&format!(
                        "'datacollection' item {}: 'Name' must be a string.",
                        i + 1
                    )));
                };
                out.push((name.clone(), scalar(&map[v], i)?));
            }
            _ => {
                for (k, v) in map {
                    out.push((k.clone(), scalar(v, i)?));
                }
            }
        }
    }
    for (i, (name, value)) in out.iter().enumerate() {
        let item = format!("'datacollection' item {}", i + 1);
        limits::check(&format!("{item}'s name"), name, DATA_NAME_MAX)
            .and_then(|()| match value {
                Some(v) => limits::check(&format!("{item}'s value"), v, DATA_VALUE_MAX),
                None => Ok(()),
            })
            .map_err(|e| bad(&format!("{e}.")))?;
    }
    Ok(out)
}

fn scalar(v: &Value, i: usize) -> Result<Option<String>, ApiError> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        Value::Number(n) => Ok(Some(n.to_string())),
        Value::Bool(b) => Ok(Some(b.to_string())),
        _ => Err(bad(&format!(
            "'datacollection' item {}: values must be strings.",
            i + 1
        ))),
    }
}

fn bad(m: &str) -> ApiError {
    ApiError::new(ErrorCode::InvalidDataCollection, m)
}
