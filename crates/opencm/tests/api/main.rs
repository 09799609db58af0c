#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The one integration-test binary: in-process tests around `TestApp`, and black-box tests that
//! start the real `opencm` binary.

#[macro_use]
mod helpers;

mod approvals;
mod backup;
mod blackbox;
mod card_service;
mod card_types;
mod cards;
mod cli;
mod config_errors;
mod directory;
mod directory_down;
mod edge;
mod errors;
mod hsm;
mod issuance;
mod kdc;
mod kerberos;
mod lifecycle;
mod lists;
mod metrics;
mod notifications;
mod ocsp;
mod offboarding;
mod oidc;
mod pki;
mod profile_state;
mod smartcards;
mod strong_mapping;
mod wire;
