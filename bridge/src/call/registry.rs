//! Live calls by FreeSWITCH channel UUID, so a stream that reconnects (ixwebsocket builds
//! of mod_audio_stream do) finds its call, and ESL events reach the right call.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::mpsc;
use voice_core::esl::EslEvent;

use crate::stream::Connection;

/// How other tasks reach a call.
#[derive(Clone)]
pub struct CallHandle {
    pub attach: mpsc::Sender<Box<Connection>>,
    pub esl: mpsc::Sender<EslEvent>,
}

#[derive(Default)]
pub struct CallRegistry {
    calls: Mutex<HashMap<String, CallHandle>>,
}

impl CallRegistry {
    /// Hands `conn` to the live call `call_id`, or gives it back when there is none.
    pub fn reattach(&self, call_id: &str, conn: Box<Connection>) -> Result<(), Box<Connection>> {
        let handle = self.get(call_id);
        match handle {
            Some(h) => h.attach.try_send(conn).map_err(|e| match e {
                mpsc::error::TrySendError::Full(c) | mpsc::error::TrySendError::Closed(c) => c,
            }),
            None => Err(conn),
        }
    }

    /// Registers a new call. Returns false if the id is taken (a racing duplicate).
    pub fn insert(&self, call_id: &str, handle: CallHandle) -> bool {
        let Ok(mut calls) = self.calls.lock() else {
            return false;
        };
        if calls.contains_key(call_id) {
            return false;
        }
        calls.insert(call_id.to_string(), handle);
        true
    }

    pub fn remove(&self, call_id: &str) {
        if let Ok(mut calls) = self.calls.lock() {
            calls.remove(call_id);
        }
    }

    pub fn get(&self, call_id: &str) -> Option<CallHandle> {
        self.calls.lock().ok()?.get(call_id).cloned()
    }

    pub fn len(&self) -> usize {
        self.calls.lock().map_or(0, |c| c.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
