//! turn-api: the turn-based REST API for Lua IVR scripts.

pub mod config;
pub mod engine;
pub mod http;
pub mod recording;
pub mod sessions;
pub mod tenancy;
