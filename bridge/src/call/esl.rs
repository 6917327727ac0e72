//! The event socket side of a call: playing the files FreeSWITCH wrote for the file
//! playout modes, DTMF digits, and `uuid_*` commands run in order.

use tokio::sync::mpsc;
use tracing::{debug, warn};
use voice_core::esl::EslEvent;

use super::{safe_path, Call, End};

impl Call {
    pub(super) async fn on_esl_event(&mut self, event: EslEvent) -> Option<End> {
        if event.name() == Some("DTMF") {
            let digit = event.header("DTMF-Digit").and_then(|d| d.chars().next());
            return match digit {
                Some(d) if d.is_ascii_digit() || "*#ABCD".contains(d) => self.on_dtmf(d).await,
                _ => {
                    warn!(call = %self.id, "DTMF event without a valid digit");
                    None
                }
            };
        }
        self.on_play_event(&event);
        None
    }

    fn on_play_event(&mut self, event: &EslEvent) {
        let Some(body) = event.body() else { return };
        let Ok(serde_json::Value::Object(data)) = serde_json::from_str::<serde_json::Value>(body)
        else {
            warn!(call = %self.id, "play event with an unreadable body");
            return;
        };
        let Some(file) = data.get("file").and_then(|f| f.as_str()) else {
            return;
        };
        if !safe_path(file) {
            warn!(call = %self.id, "play event with an unsafe file path ignored");
            return;
        }
        let generation = data.get("gen").and_then(|g| g.as_u64());
        if generation.is_some_and(|g| g != self.queue.generation()) {
            debug!(call = %self.id, file, "stale chunk from before a barge-in not played");
            return;
        }
        self.esl_command(format!("uuid_broadcast {} {} aleg", self.id, file));
    }

    /// Queues an ESL api command; commands for one call run in order.
    pub(super) fn esl_command(&mut self, command: String) {
        let Some(esl) = self.state.esl.clone() else {
            warn!(call = %self.id, "playout mode needs ESL, but [esl] is not enabled");
            return;
        };
        let tx = self.esl_commands.get_or_insert_with(|| {
            let (tx, mut rx) = mpsc::channel::<String>(64);
            let call = self.id.clone();
            tokio::spawn(async move {
                while let Some(cmd) = rx.recv().await {
                    match esl.api(&cmd).await {
                        Ok(reply) if reply.starts_with("-ERR") => warn!(call = %call, command = %cmd, reply = %reply.trim(), "ESL command failed"),
                        Ok(_) => {}
                        Err(e) => warn!(call = %call, command = %cmd, error = %e, "ESL command failed"),
                    }
                }
            });
            tx
        });
        if tx.try_send(command).is_err() {
            warn!(call = %self.id, "ESL command queue full");
        }
    }
}
