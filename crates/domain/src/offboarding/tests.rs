//! The administrative decisions as tables, without IO.

use super::*;
use crate::testing::user as person;
use crate::Guid;

fn at() -> Timestamp {
    Timestamp::from_micros(1_700_000_000_000_000)
}

fn token(hash: &str, revoked: bool) -> TokenRecord {
    TokenRecord {
        hash: hash.into(),
        user: Guid::from_u128(7).into(),
        login: "bob".into(),
        created: Timestamp::from_micros(1),
        expires: None,
        revoked: revoked.then(|| Timestamp::from_micros(2)),
    }
}

#[test]
fn only_the_command_line_and_administrators_may_change_who_may_do_what() {
    let admin = person(1, &["S-1-5-32-544"]);
    let helpdesk = person(2, &["S-1-5-21-7-6000"]);
    assert_eq!(Actor::Cli.authorize(), Ok(()));
    assert_eq!(Actor::User(&admin).authorize(), Ok(()));
    assert_eq!(
        Actor::User(&helpdesk).authorize(),
        Err(OffboardingError::NotAdministrator)
    );
    assert_eq!(
        Actor::User(&admin).name(),
        format!("user1 ({})", admin.uuid)
    );
}

#[test]
fn a_token_is_revoked_by_an_unambiguous_id_never_by_itself() {
    use OffboardingError as E;
    let rows: [(&str, Result<&str, E>); 5] = [
        ("ocm_abcdefgh1234", Err(E::TokenGiven)),
        ("abc123", Err(E::TokenIdMalformed)),
        ("abcdefgz", Err(E::TokenIdMalformed)),
        ("  ABCDEF12  ", Ok("abcdef12")),
        ("0123456789abcdef", Ok("0123456789abcdef")),
    ];
    for (given, want) in rows {
        assert_eq!(
            token_prefix(given).as_deref().map_err(Clone::clone),
            want,
            "{given}"
        );
    }
    let tokens = [
        token("abcdef1200000000", false),
        token("abcdef1299999999", false),
        token("0123456789000000", true),
        token("fedcba9876543210", false),
    ];
    let revoke = |p: &str| revoke_token(&Actor::Cli, p, &tokens, at());
    assert_eq!(
        revoke("abcdef12").unwrap_err(),
        E::TokenAmbiguous("abcdef12".into())
    );
    assert_eq!(
        revoke("11111111").unwrap_err(),
        E::TokenNotFound("11111111".into())
    );
    assert_eq!(
        revoke("01234567").unwrap_err(),
        E::AlreadyRevoked("012345678900".into())
    );
    let (t, (change, event)) = revoke("fedcba98").unwrap();
    assert_eq!(t.hash, "fedcba9876543210");
    assert_eq!(
        change,
        IdentityChange::RevokeToken {
            hash: "fedcba9876543210".into(),
            at: at()
        }
    );
    assert_eq!(
        (event.actor.as_str(), event.action, event.subject.as_str()),
        ("cli", "token revoked", "token fedcba987654 of bob")
    );
}

#[test]
fn users_are_disabled_enabled_grouped_and_mapped() {
    let bob = person(7, &[]);
    let cli = Actor::Cli;
    let (change, event) = set_user_enabled(&cli, &bob, false, at());
    assert_eq!(
        change,
        IdentityChange::DisableUser {
            user: bob.uuid,
            at: at()
        }
    );
    assert_eq!(event.action, "user disabled");
    let (change, _) = set_user_enabled(&cli, &bob, true, at());
    assert_eq!(change, IdentityChange::EnableUser { user: bob.uuid });

    assert!(matches!(
        group_sid("not-a-sid"),
        Err(OffboardingError::NotASid(..))
    ));
    let group = group_sid("S-1-5-21-7-6000").unwrap();
    let (change, _) = set_member(&cli, &bob, &group, true, None, at()).unwrap();
    assert_eq!(
        change,
        IdentityChange::AddMember {
            user: bob.uuid,
            group_sid: "S-1-5-21-7-6000".into()
        }
    );
    // A user's own SID is no group to join; leaving it is harmless and allowed.
    assert_eq!(
        set_member(&cli, &bob, &group, true, Some("carol"), at()).unwrap_err(),
        OffboardingError::SidOfAUser {
            sid: "S-1-5-21-7-6000".into(),
            owner: "carol".into()
        }
    );
    assert!(set_member(&cli, &bob, &group, false, Some("carol"), at()).is_ok());

    assert!(matches!(
        set_certificate_mapping(&cli, &bob, "X509:<S>CN=bob", true, at()),
        Err(OffboardingError::NotStrongMapping(_))
    ));
    let (change, _) = set_certificate_mapping(&cli, &bob, "X509:<SKI>00AABB", true, at()).unwrap();
    assert!(matches!(change, IdentityChange::MapCertificate { user, .. } if user == bob.uuid));
    // Removing a mapping takes it however it is written.
    assert!(set_certificate_mapping(&cli, &bob, "anything", false, at()).is_ok());
}
