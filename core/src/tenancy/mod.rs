//! Tenancy: who a call or request belongs to, and that tenant's agents, providers,
//! knowledge, keys and events, in PostgreSQL (see migrations/).
//!
//! - [`model`]: the rows as the services use them.
//! - [`crypto`]: provider credentials sealed with a key from the environment.
//! - [`store`]: reading and writing the rows, tenant-scoped.
//! - [`directory`]: a tenant's whole configuration, cached, dropped on `NOTIFY`.
//! - [`events`], [`metrics`]: the append-only event log and its daily aggregates.
//! - [`providers`]: a tenant's provider instances as `[providers.*]` settings.
//! - [`rate_limit`]: requests per minute per tenant.

pub mod crypto;
pub mod directory;
pub mod events;
pub mod metrics;
pub mod model;
pub mod providers;
pub mod rate_limit;
pub mod store;
