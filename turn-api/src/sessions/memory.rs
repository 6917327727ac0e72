//! Sessions in this process's memory, each with a deadline the next write pushes back.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use futures_util::FutureExt;

use super::{Session, SessionStore, StoreError};

pub struct MemoryStore {
    ttl: Duration,
    sessions: Mutex<HashMap<String, (Session, Instant)>>,
}

impl MemoryStore {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            sessions: Mutex::new(HashMap::new()),
        }
    }

    /// Sessions held now, expired ones included until the next write sweeps them.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Session, Instant)>> {
        // A panic while holding the lock cannot leave the map half-written: recover it.
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl SessionStore for MemoryStore {
    fn name(&self) -> &'static str {
        "memory"
    }

    fn get<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<Session>, StoreError>> {
        let now = Instant::now();
        let mut map = self.lock();
        let found = match map.get(id) {
            Some((s, deadline)) if *deadline > now => Some(s.clone()),
            Some(_) => {
                map.remove(id);
                None
            }
            None => None,
        };
        async move { Ok(found) }.boxed()
    }

    fn put<'a>(&'a self, session: &'a Session) -> BoxFuture<'a, Result<(), StoreError>> {
        let now = Instant::now();
        let mut map = self.lock();
        // Sweep here so abandoned sessions do not pile up: writes are one per turn.
        map.retain(|_, (_, deadline)| *deadline > now);
        map.insert(session.id.clone(), (session.clone(), now + self.ttl));
        async { Ok(()) }.boxed()
    }

    fn remove<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<Session>, StoreError>> {
        let now = Instant::now();
        let removed = self
            .lock()
            .remove(id)
            .filter(|(_, deadline)| *deadline > now)
            .map(|(s, _)| s);
        async move { Ok(removed) }.boxed()
    }

    fn ping(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        async { Ok(()) }.boxed()
    }
}
