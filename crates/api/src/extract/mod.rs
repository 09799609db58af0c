//! Extractors whose rejections are `ApiError`s: the authenticated caller, MIM-style JSON bodies,
//! and GUID path segments.

mod caller;
mod id;
mod json;

pub use caller::{Caller, NegotiateReply, PeerCertificate};
pub use id::{parse_guid, PathGuid, PathGuids, PathTwoGuids};
pub use json::{body_within, parse_json_text, too_large, Fields, MimJson};
