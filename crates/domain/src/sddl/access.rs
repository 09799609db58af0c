//! The MS-DTYP access check (2.5.3.2), reduced to what opencm's descriptors use: walk the DACL in
//! order; an allow ACE grants the bits it names, the first deny ACE naming a still-ungranted
//! requested bit refuses; the owner is implicitly granted READ_CONTROL and WRITE_DAC.

use super::{AccessMask, AceFlags, AceType, SecurityDescriptor};
use crate::identity::Sid;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccessDecision {
    Granted,
    Denied,
}

impl AccessDecision {
    pub fn is_granted(self) -> bool {
        self == AccessDecision::Granted
    }
}

pub fn access_check(sd: &SecurityDescriptor, token: &[Sid], desired: AccessMask) -> AccessDecision {
    let desired = desired.map_generic();
    if desired.0 == 0 {
        return AccessDecision::Granted;
    }
    let Some(dacl) = &sd.dacl else {
        return AccessDecision::Granted;
    };
    let mut remaining = desired.0;
    if sd.owner.as_ref().is_some_and(|o| token.contains(o)) {
        remaining &= !(AccessMask::READ_CONTROL.0 | AccessMask::WRITE_DAC.0);
    }
    for ace in &dacl.aces {
        if remaining == 0 {
            break;
        }
        if ace.flags.bits() & AceFlags::INHERIT_ONLY != 0 || !token.contains(&ace.sid) {
            continue;
        }
        let m = ace.mask.map_generic().0;
        match ace.ace_type {
            AceType::Allow => remaining &= !m,
            AceType::Deny => {
                if m & remaining != 0 {
                    return AccessDecision::Denied;
                }
            }
        }
    }
    if remaining == 0 {
        AccessDecision::Granted
    } else {
        AccessDecision::Denied
    }
}
