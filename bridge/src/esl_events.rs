//! Routes FreeSWITCH events from the shared ESL connection to the calls they concern
//! (by `Unique-ID`): the play events of the file playout modes, and DTMF digits.

use std::sync::Arc;

use tokio::sync::broadcast::error::RecvError;
use tracing::{debug, warn};

use crate::state::AppState;

/// Event subclasses a call acts on.
const PLAY_EVENTS: [&str; 2] = ["mod_audio_stream::play", "mod_audio_fork::play_audio"];

/// Runs until the ESL client is dropped.
pub async fn route(state: Arc<AppState>) {
    let Some(esl) = state.esl.clone() else { return };
    let mut events = esl.events();
    loop {
        let event = match events.recv().await {
            Ok(e) => e,
            Err(RecvError::Lagged(n)) => {
                warn!(
                    missed = n,
                    "ESL events arrived faster than they were routed"
                );
                continue;
            }
            Err(RecvError::Closed) => return,
        };
        let wanted = event.name() == Some("DTMF")
            || event.subclass().is_some_and(|s| PLAY_EVENTS.contains(&s));
        if !wanted {
            continue;
        }
        let Some(call) = event.unique_id().and_then(|id| state.calls.get(id)) else {
            debug!(uuid = ?event.unique_id(), "event for a call that is not ours");
            continue;
        };
        if call.esl.try_send(event).is_err() {
            warn!("a call's ESL event queue is full; event dropped");
        }
    }
}
