//! Identity sources beside opencm's own: users and groups from LDAP and Active Directory, as
//! opencm's `Directory` port (`ldap`), and OpenID Connect / OAuth access tokens from ADFS, Entra
//! ID or any OpenID provider, as an `Authenticator` (`oidc`).
//!
//! LDAP:
//!
//! A user is found by login with a configurable filter (`sAMAccountName` or `userPrincipalName` by
//! default), and read with display name, mail, UPN, `objectSid` (binary, MS-DTYP) and `objectGUID`
//! (Windows byte order), which becomes the user's `Uuid` as MIM's user GUIDs are AD object GUIDs.
//! Group SIDs: on Active Directory the user's constructed `tokenGroups` (every group, nested ones
//! included, as Windows computes them); elsewhere `memberOf` (the memberof overlay), followed
//! upwards through groups' own `memberOf` for nesting. An account disabled by `userAccountControl`
//! (bit 2) is not a user. Answers are cached, positive and negative alike, for a bounded time and
//! number: a user removed from a group loses its rights within `cache_ttl`. An unreachable
//! directory is `Unavailable` (503 on sign-in), never an empty answer that could be taken for "no
//! such user" and cached.

mod ldap;
mod oidc;
mod oidc_sign_on;

pub use ldap::{GroupSource, LdapDirectory, LdapSettings};
pub use oidc::{parse_algorithm, OidcAuthenticator, OidcSettings};
pub use oidc_sign_on::{OidcClientSettings, OidcSignOnClient};
