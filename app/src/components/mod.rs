//! Reusable pieces of the dashboard.

pub mod form;
pub mod nav;
pub mod outcome;
