//! MIM CM request bodies: `Content-Type: application/json`, at most `max_body_bytes`, property
//! names matched case-insensitively, unknown properties ignored. Errors say where the JSON broke
//! (line and column) and recognise typographic quotes pasted from documents.

use crate::error::ApiError;
use crate::AppState;
use axum::extract::{FromRequest, Request};
use axum::http::header;
use opencm_app::ErrorCode;
use serde_json::{Map, Value};

/// A JSON object body with its property names lowercased.
pub struct MimJson(pub Fields);

const SMART_QUOTES: [char; 4] = ['\u{201C}', '\u{201D}', '\u{2018}', '\u{2019}'];

impl FromRequest<AppState> for MimJson {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let ct = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let mime = ct
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        let is_json = mime == "application/json"
            || mime == "text/json"
            || (mime.starts_with("application/") && mime.ends_with("+json"));
        if !is_json {
            let got = if ct.is_empty() {
                "no Content-Type".to_string()
            } else {
                format!("Content-Type '{ct}'")
            };
            return Err(ApiError::new(ErrorCode::UnsupportedMediaType,
                format!("The request body must be JSON sent with 'Content-Type: application/json' (got {got})."),
            ));
        }
        let limit = state.config.max_body_bytes;
        let bytes = body_within(req.into_body(), limit, state.config.body_timeout)
            .await?
            .ok_or_else(|| too_large(limit))?;
        let text = std::str::from_utf8(&bytes).map_err(|e| {
            ApiError::new(
                ErrorCode::MalformedJson,
                format!(
                    "The request body is not UTF-8 text (invalid byte at offset {}).",
                    e.valid_up_to()
                ),
            )
        })?;
        let value = parse_json_text("The request body", text)?;
        match value {
            Value::Object(map) => Ok(MimJson(Fields::from_object(map)?)),
            other => Err(ApiError::new(
                ErrorCode::InvalidBody,
                format!(
                    "The request body must be a JSON object, not {}.",
                    kind(&other)
                ),
            )),
        }
    }
}

/// 413 with the limit named; also sent before reading when `Content-Length` already says so.
/// A request body read within the body deadline (`RequestTimeout` after it: a client trickling
/// bytes does not hold its connection) and within `limit` bytes (`None` when it is larger).
pub async fn body_within(
    body: axum::body::Body,
    limit: usize,
    timeout: std::time::Duration,
) -> Result<Option<axum::body::Bytes>, ApiError> {
    match tokio::time::timeout(timeout, axum::body::to_bytes(body, limit)).await {
        Ok(Ok(b)) => Ok(Some(b)),
        Ok(Err(_)) => Ok(None),
        Err(_) => Err(ApiError::new(
            ErrorCode::RequestTimeout,
            format!(
                "The request body did not arrive within {} seconds.",
                timeout.as_secs()
            ),
        )),
    }
}

pub fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        ErrorCode::PayloadTooLarge,
        format!("The request body is larger than the {limit} bytes this server accepts."),
    )
}

/// Parses JSON text, with errors a person can act on. `what` starts the message.
pub fn parse_json_text(what: &str, text: &str) -> Result<Value, ApiError> {
    if text.trim().is_empty() {
        return Err(ApiError::new(
            ErrorCode::MalformedJson,
            format!("{what} is empty; a JSON object was expected."),
        ));
    }
    serde_json::from_str(text).map_err(|e| {
        if let Some((line, col)) = first_smart_quote(text) {
            ApiError::new(
                ErrorCode::MalformedJson,
                format!(
                    "{what} contains typographic quotes (\u{201C} \u{201D} \u{2018} \u{2019}) at line {line} column {col}, as pasted from a document; JSON needs straight double quotes (\")."
                ),
            )
        } else {
            let reason = e.to_string();
            let reason = reason.split(" at line").next().unwrap_or(&reason).to_string();
            ApiError::new(
                ErrorCode::MalformedJson,
                format!("{what} is not valid JSON: {reason} at line {} column {}.", e.line(), e.column()),
            )
        }
    })
}

fn first_smart_quote(text: &str) -> Option<(usize, usize)> {
    for (i, line) in text.lines().enumerate() {
        if let Some(pos) = line.chars().position(|c| SMART_QUOTES.contains(&c)) {
            return Some((i + 1, pos + 1));
        }
    }
    None
}

pub fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Properties of a body, by lowercased name, with typed accessors whose errors name the property.
pub struct Fields(Map<String, Value>);

impl Fields {
    /// A property given twice under names that differ only in case (`status` and `Status`) is
    /// refused: which one was meant cannot be known, and taking either could act on the wrong one.
    pub fn from_object(map: Map<String, Value>) -> Result<Self, ApiError> {
        let mut fields = Map::new();
        let mut given: std::collections::HashMap<String, String> = Default::default();
        for (name, value) in map {
            let key = name.to_ascii_lowercase();
            if let Some(first) = given.insert(key.clone(), name.clone()) {
                return Err(ApiError::new(
                    ErrorCode::InvalidBody,
                    format!(
                        "Property '{}' is given more than once ('{}' and '{}'); give it once.",
                        crate::wire::excerpt(&key),
                        crate::wire::excerpt(&first),
                        crate::wire::excerpt(&name)
                    ),
                ));
            }
            fields.insert(key, value);
        }
        Ok(Fields(fields))
    }

    pub fn get(&self, name: &str) -> Option<&Value> {
        self.0.get(name).filter(|v| !v.is_null())
    }

    /// A string property; absent or null is `None`.
    pub fn str(&self, name: &str) -> Result<Option<String>, ApiError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(ApiError::new(
                ErrorCode::InvalidBody,
                format!("'{name}' must be a string, not {}.", kind(other)),
            )),
        }
    }

    pub fn required_str(&self, name: &str) -> Result<String, ApiError> {
        self.str(name)?
            .ok_or_else(|| ApiError::new(ErrorCode::InvalidBody, format!("'{name}' is required.")))
    }

    /// A whole number given as a JSON number or a numeric string (`"priority": "4"`).
    pub fn int(&self, name: &str) -> Result<Option<i64>, ApiError> {
        let bad = || {
            ApiError::new(
                ErrorCode::InvalidBody,
                format!("'{name}' must be a whole number or a string holding one."),
            )
        };
        match self.get(name) {
            None => Ok(None),
            Some(Value::Number(n)) => n.as_i64().map(Some).ok_or_else(bad),
            Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
            Some(Value::String(s)) => s.trim().parse::<i64>().map(Some).map_err(|_| bad()),
            Some(_) => Err(bad()),
        }
    }
}
