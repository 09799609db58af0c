//! The `opencm` command line's administration commands, one module per subject: who may sign in
//! (`identity`), the CA, card master and templates (`pki`), what the directory says of a user
//! (`directory`). Each command opens what it needs and calls the use cases as the CLI actor;
//! `main.rs` only parses and dispatches.

pub mod directory;
pub mod identity;
pub mod notify;
pub mod pki;

/// "`subject` `yes`" or "`subject` `no`": what a command that may change nothing says it did.
fn said(subject: &str, changed: bool, yes: &str, no: &str) {
    opencm::out!("{subject} {}", if changed { yes } else { no });
}
