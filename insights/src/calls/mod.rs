//! Calls and what the pipeline makes of them.

pub mod api;
pub mod model;
pub mod push;
pub mod query;
pub mod range;

pub use api::routes;
