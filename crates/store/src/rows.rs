//! What both engines' decoders share: GUID columns, the request descriptor cache and the data
//! collection column's JSON. The decoders themselves live with their statements in `sql/`.

use opencm_app::ports::StoreError;
use opencm_domain::request::{DataValue, Request};
use opencm_domain::sddl::SecurityDescriptor;
use opencm_domain::Guid;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

pub(crate) fn guid(s: &str) -> Result<Guid, StoreError> {
    s.parse().map_err(StoreError::corrupt)
}

/// Parsed descriptors, shared by every row that stores the same text. A request's descriptor is one
/// per template, originator and target, so a few repeat across many rows, and parsing one costs
/// more than the rest of a request row (a tenth of a `GET /requests/{id}`). Bounded: emptied when
/// full.
pub(crate) fn descriptor(text: &str) -> Result<Arc<SecurityDescriptor>, StoreError> {
    const MAX: usize = 4096;
    static PARSED: OnceLock<Mutex<HashMap<String, Arc<SecurityDescriptor>>>> = OnceLock::new();
    let parsed = PARSED.get_or_init(Default::default);
    if let Some(hit) = parsed.lock().ok().and_then(|m| m.get(text).cloned()) {
        return Ok(hit);
    }
    let sd = Arc::new(SecurityDescriptor::parse(text).map_err(StoreError::corrupt)?);
    if let Ok(mut m) = parsed.lock() {
        if m.len() >= MAX {
            m.clear();
        }
        m.insert(text.to_owned(), sd.clone());
    }
    Ok(sd)
}

/// A request's data collection items as stored: `[[name, value], ...]`.
pub(crate) fn data_collection_json(r: &Request) -> String {
    let items: Vec<(&str, Option<&str>)> = r
        .data_collection
        .iter()
        .map(|d| (d.name.as_str(), d.value.as_deref()))
        .collect();
    serde_json::to_string(&items).unwrap_or_else(|_| "[]".into())
}

pub(crate) fn data_collection(json: &str) -> Result<Vec<DataValue>, StoreError> {
    let items: Vec<(String, Option<String>)> =
        serde_json::from_str(json).map_err(StoreError::corrupt)?;
    Ok(items
        .into_iter()
        .map(|(name, value)| DataValue { name, value })
        .collect())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn rows_with_the_same_descriptor_share_one_parse_and_a_corrupt_one_is_refused() {
        let text = "O:S-1-5-21-1-2-3-1001D:(A;;RCCR;;;S-1-5-21-1-2-3-1001)(A;;GA;;;BA)";
        let a = descriptor(text).unwrap();
        let b = descriptor(text).unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(*a, SecurityDescriptor::parse(text).unwrap());
        assert!(matches!(
            descriptor("D:(A;;RC;;;not-a-sid)"),
            Err(StoreError::Corrupt(_))
        ));
    }
}
