//! Sessions in Redis (fred): one JSON string per session under `{prefix}session:{id}`, with
//! an expiry every write resets.

use std::time::Duration;

use fred::prelude::*;
use futures_util::future::BoxFuture;
use futures_util::FutureExt;

use super::{Session, SessionStore, StoreError};

/// How long one command may take before the store counts as unavailable.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(2);

pub struct RedisStore {
    client: Client,
    prefix: String,
    ttl_secs: i64,
}

fn unavailable(e: fred::error::Error) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

impl RedisStore {
    /// Connects to `url` and waits (up to 5 s) for the first connection. The client then
    /// reconnects by itself.
    pub async fn connect(url: &str, prefix: &str, ttl: Duration) -> Result<Self, StoreError> {
        // The URL may hold a password: say only that it is bad.
        let config = Config::from_url(url)
            .map_err(|_| StoreError::Unavailable("redis.url is not a valid Redis URL".into()))?;
        let client = Builder::from_config(config)
            .with_performance_config(|p| p.default_command_timeout = COMMAND_TIMEOUT)
            .with_connection_config(|c| c.connection_timeout = Duration::from_secs(5))
            .set_policy(ReconnectPolicy::new_exponential(0, 100, 5_000, 2))
            .build()
            .map_err(unavailable)?;
        client.connect();
        let connected = tokio::time::timeout(Duration::from_secs(5), client.wait_for_connect())
            .await
            .map_err(|_| StoreError::Unavailable("cannot connect to Redis within 5 s".into()))
            .and_then(|r| r.map_err(unavailable));
        if let Err(e) = connected {
            // Stop its reconnect loop: nobody will use this client.
            let _ = tokio::time::timeout(Duration::from_secs(1), client.quit()).await;
            return Err(e);
        }
        Ok(Self {
            client,
            prefix: prefix.to_string(),
            ttl_secs: ttl.as_secs().max(1) as i64,
        })
    }

    fn key(&self, id: &str) -> String {
        format!("{}session:{id}", self.prefix)
    }
}

fn decode(text: Option<String>) -> Result<Option<Session>, StoreError> {
    text.map(|t| serde_json::from_str(&t).map_err(|e| StoreError::Corrupt(e.to_string())))
        .transpose()
}

impl SessionStore for RedisStore {
    fn name(&self) -> &'static str {
        "redis"
    }

    fn get<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<Session>, StoreError>> {
        async move {
            let text: Option<String> = self.client.get(self.key(id)).await.map_err(unavailable)?;
            decode(text)
        }
        .boxed()
    }

    fn put<'a>(&'a self, session: &'a Session) -> BoxFuture<'a, Result<(), StoreError>> {
        async move {
            let text =
                serde_json::to_string(session).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            let () = self
                .client
                .set(
                    self.key(&session.id),
                    text,
                    Some(Expiration::EX(self.ttl_secs)),
                    None,
                    false,
                )
                .await
                .map_err(unavailable)?;
            Ok(())
        }
        .boxed()
    }

    fn remove<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<Session>, StoreError>> {
        async move {
            let text: Option<String> = self
                .client
                .getdel(self.key(id))
                .await
                .map_err(unavailable)?;
            decode(text)
        }
        .boxed()
    }

    fn ping(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        async move {
            let _: String = self.client.ping(None).await.map_err(unavailable)?;
            Ok(())
        }
        .boxed()
    }
}
