//! Smart cards and TPM virtual smart cards: a template's card configuration (`config`) and the
//! card lifecycle as a typed state machine (`status`), and what a request may do to and with its
//! cards at each step (`service`).

mod atr;
mod config;
mod record;
mod service;
mod status;

pub use atr::*;
pub use config::*;
pub use record::SmartcardRecord;
pub use service::*;
pub use status::*;
