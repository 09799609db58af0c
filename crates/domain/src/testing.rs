//! What the domain's tests share.

use crate::{Guid, Principal, Sid};

/// User `n` of the test domain S-1-5-21-7 (`user{n}`, SID S-1-5-21-7-`n`), in `groups`.
pub fn user(n: u32, groups: &[&str]) -> Principal {
    Principal {
        uuid: Guid::from_u128(u128::from(n)).into(),
        login: format!("user{n}"),
        display_name: format!("User {n}"),
        sid: Sid::parse(&format!("S-1-5-21-7-{n}")).unwrap(),
        groups: groups.iter().map(|g| Sid::parse(g).unwrap()).collect(),
        upn: None,
        email: None,
        certificate_mappings: Vec::new(),
        language: None,
    }
}
