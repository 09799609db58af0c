//! One module per area of the portal.

pub mod approvals;
pub mod audit;
pub mod enrol;
pub mod home;
pub mod requests;
pub mod sign_in;
pub mod templates;
pub mod users;
