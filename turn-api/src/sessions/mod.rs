//! Where sessions live between turns: Redis (several instances, survives restarts) or this
//! process's memory (one instance). Both forget a session left alone for the TTL, which
//! every write refreshes.

mod memory;
mod record;
mod redis;

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;

pub use memory::MemoryStore;
pub use record::{now_ms, Session, TurnRecord};
pub use redis::RedisStore;

use crate::config::RedisSettings;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store cannot be reached or failed.
    #[error("session store unavailable: {0}")]
    Unavailable(String),
    /// A stored session does not decode (another version wrote it).
    #[error("stored session is corrupt: {0}")]
    Corrupt(String),
}

/// A session store.
pub trait SessionStore: Send + Sync {
    /// `memory` or `redis`, for health and logs.
    fn name(&self) -> &'static str;

    /// The session, if it exists and has not expired.
    fn get<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<Session>, StoreError>>;

    /// Creates or replaces `session`, and restarts its TTL.
    fn put<'a>(&'a self, session: &'a Session) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Removes the session; returns what it was, if it existed.
    fn remove<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<Session>, StoreError>>;

    /// Whether the store answers now.
    fn ping(&self) -> BoxFuture<'_, Result<(), StoreError>>;
}

/// The store `[redis]` asks for: Redis when `url` is set, memory otherwise.
pub async fn from_settings(settings: &RedisSettings) -> Result<Arc<dyn SessionStore>, StoreError> {
    let ttl = Duration::from_secs(settings.session_ttl_secs);
    if settings.url.is_empty() {
        return Ok(Arc::new(MemoryStore::new(ttl)));
    }
    let store = RedisStore::connect(settings.url.expose(), &settings.key_prefix, ttl).await?;
    Ok(Arc::new(store))
}
