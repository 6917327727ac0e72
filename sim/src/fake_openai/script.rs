//! Server event names per dialect (providers.md §1.5) and the outbox that stamps ids.

use serde_json::{json, Value};

/// GA or beta spelling of the server events that differ.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Names {
    pub beta: bool,
}

impl Names {
    pub fn audio_delta(self) -> &'static str {
        self.pick("response.output_audio.delta", "response.audio.delta")
    }
    pub fn audio_done(self) -> &'static str {
        self.pick("response.output_audio.done", "response.audio.done")
    }
    pub fn transcript_delta(self) -> &'static str {
        self.pick(
            "response.output_audio_transcript.delta",
            "response.audio_transcript.delta",
        )
    }
    pub fn transcript_done(self) -> &'static str {
        self.pick(
            "response.output_audio_transcript.done",
            "response.audio_transcript.done",
        )
    }
    /// GA announces a new item with `added` (then `done`); beta with `created`.
    pub fn item_added(self) -> &'static str {
        self.pick("conversation.item.added", "conversation.item.created")
    }
    pub fn item_done(self) -> Option<&'static str> {
        (!self.beta).then_some("conversation.item.done")
    }
    /// Content part type of assistant audio.
    pub fn audio_part(self) -> &'static str {
        self.pick("output_audio", "audio")
    }

    fn pick(self, ga: &'static str, beta: &'static str) -> &'static str {
        if self.beta {
            beta
        } else {
            ga
        }
    }
}

/// Server events waiting to be written, each stamped with an `event_id`.
#[derive(Default)]
pub(crate) struct Outbox {
    next_id: u64,
    pending: Vec<String>,
}

impl Outbox {
    /// Queues `event`, which must be a JSON object with a `type`.
    pub fn emit(&mut self, mut event: Value) {
        self.next_id += 1;
        if let Some(obj) = event.as_object_mut() {
            obj.insert("event_id".into(), format!("event_{}", self.next_id).into());
        }
        self.pending.push(event.to_string());
    }

    pub fn error(&mut self, kind: &str, code: &str, message: &str, client_event_id: Option<&str>) {
        self.emit(
            json!({"type": "error", "error": {"type": kind, "code": code,
            "message": message, "param": null, "event_id": client_event_id}}),
        );
    }

    pub fn take(&mut self) -> Vec<String> {
        std::mem::take(&mut self.pending)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_dialect() {
        let ga = Names { beta: false };
        let beta = Names { beta: true };
        assert_eq!(ga.audio_delta(), "response.output_audio.delta");
        assert_eq!(beta.audio_delta(), "response.audio.delta");
        assert_eq!(beta.item_added(), "conversation.item.created");
        assert_eq!(beta.item_done(), None);
        assert_eq!(ga.item_done(), Some("conversation.item.done"));
    }

    #[test]
    fn outbox_stamps_event_ids() {
        let mut o = Outbox::default();
        o.emit(json!({"type": "a"}));
        o.error("invalid_request_error", "x", "bad", Some("c1"));
        let out = o.take();
        let first: Value = serde_json::from_str(&out[0]).unwrap();
        let second: Value = serde_json::from_str(&out[1]).unwrap();
        assert_eq!(first["event_id"], "event_1");
        assert_eq!(second["error"]["event_id"], "c1");
        assert!(o.take().is_empty());
    }
}
