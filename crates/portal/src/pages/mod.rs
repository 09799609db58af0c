//! One module per area of the portal.

pub mod approvals;
pub mod audit;
pub mod cards;
pub mod enrol;
pub mod health;
pub mod help_desk;
pub mod home;
pub mod requests;
pub mod sign_in;
pub mod single_sign_on;
pub mod templates;
pub mod users;
