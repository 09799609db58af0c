//! Smart cards and TPM virtual smart cards: a template's card configuration (`config`) and the
//! card lifecycle as a typed state machine (`status`).

mod config;
mod status;

pub use config::*;
pub use status::*;
