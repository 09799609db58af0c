use super::*;
use crate::identity::Sid;
use proptest::prelude::*;

fn sid(s: &str) -> Sid {
    Sid::parse(s).unwrap()
}

#[test]
fn parses_the_mim_reference_descriptor_with_its_nul_padding() {
    let s = "O:S-1-5-21-2127521184-1604012920-1887927527-14134865D:(D;;LC;;;S-1-5-21-2127521184-1604012920-1887927527-14995557)(A;;DCSW;;;S-1-5-21-2127521184-1604012920-1887927527-5094533)(A;;RC;;;WD)(A;;CCDCLCSWSDRC;;;S-1-5-21-2127521184-1604012920-1887927527-14134865)\u{0}\u{0}\u{0}\u{0}";
    let sd = SecurityDescriptor::parse(s).unwrap();
    assert_eq!(
        sd.owner,
        Some(sid("S-1-5-21-2127521184-1604012920-1887927527-14134865"))
    );
    assert_eq!(sd.aces().len(), 4);
    assert_eq!(sd.aces()[0].ace_type, AceType::Deny);
    assert_eq!(sd.aces()[2].sid, Sid::everyone());
    assert_eq!(sd.to_string(), s.trim_end_matches('\0'));
}

#[test]
fn rejects_what_it_does_not_support_with_a_reason() {
    assert_eq!(SecurityDescriptor::parse(""), Err(SddlError::Empty));
    assert!(matches!(
        SecurityDescriptor::parse("D:(OA;;CR;1131f6aa-9c07-11d1-f79f-00c04fc2dcd2;;BA)"),
        Err(SddlError::ObjectAce(_))
    ));
    assert!(matches!(
        SecurityDescriptor::parse("D:(XA;;CR;;;BA)"),
        Err(SddlError::AceType(_))
    ));
    assert!(matches!(
        SecurityDescriptor::parse("D:(A;;ZZ;;;BA)"),
        Err(SddlError::Right(_))
    ));
    assert!(matches!(
        SecurityDescriptor::parse("D:(A;;CR;;BA)"),
        Err(SddlError::AceFields(_))
    ));
    assert!(matches!(
        SecurityDescriptor::parse("O:BAO:BA"),
        Err(SddlError::Duplicate('O'))
    ));
    assert!(matches!(
        SecurityDescriptor::parse("S:(AU;SA;CR;;;WD)"),
        Err(SddlError::Sacl)
    ));
    assert!(matches!(
        SecurityDescriptor::parse("D:(A;;CR;;;S-1-x)"),
        Err(SddlError::Sid(_))
    ));
}

#[test]
fn owner_alias_followed_by_dacl_is_split_correctly() {
    let sd = SecurityDescriptor::parse("O:SYD:(A;;RC;;;AU)").unwrap();
    assert_eq!(sd.owner, Some(sid("SY")));
    assert_eq!(sd.to_string(), "O:SYD:(A;;RC;;;AU)");
}

#[test]
fn access_check_follows_ace_order_and_deny_first() {
    let alice = sid("S-1-5-21-1-1001");
    let grp = sid("S-1-5-21-1-2001");
    let sd = SecurityDescriptor::parse(
        "O:S-1-5-21-1-9D:(D;;LC;;;S-1-5-21-1-1001)(A;;LCRC;;;S-1-5-21-1-2001)",
    )
    .unwrap();
    let token = [alice.clone(), grp.clone()];
    // Read is granted by the group; approve (LC) is refused by the deny ACE that comes first.
    assert!(access_check(&sd, &token, AccessMask::READ_CONTROL).is_granted());
    assert!(!access_check(&sd, &token, AccessMask::LIST_CHILDREN).is_granted());
    // Someone only in the group may approve.
    assert!(access_check(&sd, &[grp], AccessMask::LIST_CHILDREN).is_granted());
    // An allow that comes before a deny wins (order matters).
    let sd2 =
        SecurityDescriptor::parse("D:(A;;LC;;;S-1-5-21-1-1001)(D;;LC;;;S-1-5-21-1-1001)").unwrap();
    assert!(access_check(
        &sd2,
        std::slice::from_ref(&alice),
        AccessMask::LIST_CHILDREN
    )
    .is_granted());
    // Bits must all be granted: CC alone is not CC|DC.
    let sd3 = SecurityDescriptor::parse("D:(A;;CC;;;S-1-5-21-1-1001)").unwrap();
    assert!(!access_check(&sd3, &[alice], AccessMask(0x3)).is_granted());
}

#[test]
fn owner_gets_read_control_and_write_dac_implicitly_and_null_dacl_grants_all() {
    let owner = sid("S-1-5-21-1-9");
    let sd = SecurityDescriptor::parse("O:S-1-5-21-1-9D:").unwrap();
    assert!(access_check(
        &sd,
        std::slice::from_ref(&owner),
        AccessMask(AccessMask::READ_CONTROL.0 | AccessMask::WRITE_DAC.0)
    )
    .is_granted());
    assert!(
        !access_check(&sd, std::slice::from_ref(&owner), AccessMask::CREATE_CHILD).is_granted()
    );
    let null = SecurityDescriptor::parse("O:BA").unwrap();
    assert!(access_check(&null, &[owner], AccessMask::FULL).is_granted());
}

#[test]
fn generic_all_grants_every_specific_right() {
    let sd = SecurityDescriptor::parse("D:(A;;GA;;;BA)").unwrap();
    assert!(access_check(&sd, &[Sid::administrators()], AccessMask(0x1ff)).is_granted());
    assert!(!access_check(&sd, &[Sid::everyone()], AccessMask::READ_CONTROL).is_granted());
}

fn arb_sid() -> impl Strategy<Value = Sid> {
    prop_oneof![
        prop::sample::select(vec!["WD", "AU", "BA", "SY", "BU"]).prop_map(sid),
        (0u32..=u32::MAX, 1usize..6).prop_map(|(x, n)| {
            let mut s = String::from("S-1-5-21");
            for i in 0..n {
                s.push_str(&format!("-{}", x.wrapping_add(i as u32)));
            }
            sid(&s)
        }),
    ]
}

fn arb_ace() -> impl Strategy<Value = Ace> {
    (any::<bool>(), 0u8..=0xff, any::<u32>(), arb_sid()).prop_map(|(allow, flags, mask, sid)| Ace {
        ace_type: if allow { AceType::Allow } else { AceType::Deny },
        flags: AceFlags::from_bits(flags),
        mask: AccessMask(mask),
        sid,
    })
}

proptest! {
    #[test]
    fn sddl_round_trips(
        owner in prop::option::of(arb_sid()),
        group in prop::option::of(arb_sid()),
        dacl in prop::option::of((any::<bool>(), any::<bool>(), any::<bool>(), prop::collection::vec(arb_ace(), 0..8))),
    ) {
        let sd = SecurityDescriptor {
            owner,
            group,
            dacl: dacl.map(|(p, ai, ar, aces)| Dacl { protected: p, auto_inherited: ai, auto_inherit_req: ar, aces }),
        };
        let text = sd.to_string();
        let back = SecurityDescriptor::parse(&text).unwrap();
        prop_assert_eq!(&back, &sd, "{}", text);
        prop_assert_eq!(back.to_string(), text);
    }
}
