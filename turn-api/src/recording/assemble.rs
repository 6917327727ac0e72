//! Turns a claimed parts folder into the call's recording with voice-core's recorder, the
//! bridge's format: caller on the left as the time base, the agent on the right. Each
//! exchange is laid out as it happened on the line: the caller's turn, then the answer
//! (against caller silence); the greeting first.

use std::time::{Duration, UNIX_EPOCH};

use serde_json::Value;
use voice_core::audio::Resampler;
use voice_core::recording::{CallFacts, Recorders, RecordingPaths};

use super::parts::{self, Exchange};

/// Messages sent to the writer before waiting for it: well under the recorder's queue
/// (`QUEUE_CAPACITY`), so a long call is never cut by drops.
const MESSAGES_BEFORE_DRAIN: usize = 64;

/// `audio` at `rate` (the audio as it is when it cannot be resampled).
fn at_rate((samples, from): &(Vec<i16>, u32), rate: u32) -> Vec<i16> {
    let Ok(mut r) = Resampler::new(*from, rate) else {
        return samples.clone();
    };
    let mut out = Vec::with_capacity(samples.len() * rate as usize / (*from).max(1) as usize + 1);
    r.process(samples, &mut out);
    out
}

/// Writes the recording of the session in `dir` and waits until its files are whole.
/// `end` is the summary's end; `ended_at_ms` (None: the last exchange's time) gives
/// `seconds`. Returns where the files are.
pub fn assemble(
    recorders: &Recorders,
    dir: &std::path::Path,
    end: &str,
    ended_at_ms: Option<u64>,
) -> std::io::Result<RecordingPaths> {
    let (meta, exchanges, skipped) = parts::read(dir)?;
    let facts = CallFacts {
        call_id: meta.call_id.clone(),
        tenant: meta.tenant.clone(),
        caller: meta.caller.clone(),
        callee: meta.callee.clone(),
        rate: meta.rate,
        started_at: UNIX_EPOCH + Duration::from_millis(meta.started_at_ms),
        consent: meta.consent,
    };
    let mut rec = recorders
        .start(facts)
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    let paths = rec.paths().clone();
    let mut position = 0u64;
    let mut sent = 0usize;
    let mut send = |n: usize| {
        sent += n;
        if sent >= MESSAGES_BEFORE_DRAIN {
            sent = 0;
            recorders.drain();
        }
    };
    for Exchange {
        meta: ex,
        caller,
        agent,
    } in &exchanges
    {
        for fact in &ex.before {
            rec.fact(fact.clone());
        }
        if let Some(caller) = caller {
            let samples = at_rate(caller, meta.rate);
            position += samples.len() as u64;
            rec.caller(&samples);
        }
        for fact in &ex.after {
            rec.fact(fact.clone());
        }
        if let Some(agent) = agent {
            let samples = at_rate(agent, meta.rate);
            rec.agent(position, &samples);
            position += samples.len() as u64;
            rec.caller(&vec![0; samples.len()]);
        }
        send(3 + ex.before.len() + ex.after.len());
    }
    let last_ms = exchanges.last().map(|e| e.meta.stored_at_ms);
    let ended = ended_at_ms.or(last_ms).unwrap_or(meta.started_at_ms);
    rec.finish(serde_json::json!({
        "reason": end,
        "seconds": ended.saturating_sub(meta.started_at_ms) as f64 / 1000.0,
        "turns": exchanges.iter().filter(|e| e.meta.turn > 0).count(),
        "session_id": meta.session_id,
        "source": "turn-api",
        "unreadable_parts": skipped,
    }));
    recorders.drain();
    Ok(paths)
}

/// The facts of one exchange from its history record and the engine's conversation: the
/// bridge's `transcript` facts, a `turn` fact, and the turn's `tool_call` and `message`
/// facts (from the conversation's `tool_calls` and `messages`, when it has them).
pub fn exchange_facts(
    turn: u32,
    record: &crate::sessions::TurnRecord,
    timings: &Value,
    conversation: &Value,
    now_ms: u64,
) -> parts::ExchangeMeta {
    use serde_json::json;
    let mut before = Vec::new();
    if !record.caller_text.is_empty() {
        before.push(json!({"type": "transcript", "role": "caller", "text": record.caller_text}));
    }
    let mut after = vec![json!({
        "type": "turn", "turn": turn, "caller_text": record.caller_text,
        "reply_text": record.reply_text, "action": record.action, "target": record.target,
        "timings": timings,
    })];
    if !record.reply_text.is_empty() {
        after.push(json!({"type": "transcript", "role": "agent", "text": record.reply_text}));
    }
    let of_turn = |key: &str| -> Vec<Value> {
        conversation
            .get(key)
            .and_then(Value::as_array)
            .map(|all| {
                all.iter()
                    .filter(|r| r.get("turn").and_then(Value::as_u64) == Some(u64::from(turn)))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    };
    for call in of_turn("tool_calls") {
        after.push(json!({
            "type": "tool_call", "turn": turn, "name": call.get("name"),
            "arguments": call.get("arguments"), "result": call.get("result"),
        }));
    }
    for m in of_turn("messages") {
        after.push(json!({
            "type": "message", "turn": turn, "name": m.get("name"),
            "phone": m.get("number"), "message": m.get("message"),
        }));
    }
    parts::ExchangeMeta {
        turn,
        stored_at_ms: now_ms,
        before,
        after,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sessions::TurnRecord;
    use serde_json::json;

    #[test]
    fn a_turn_gives_transcripts_the_turn_and_only_its_own_tool_calls_and_messages() {
        let record = TurnRecord {
            turn: 2,
            caller_text: "Quero falar com alguém.".into(),
            reply_text: "Vou transferir.".into(),
            action: "transfer".into(),
            target: Some("1000".into()),
        };
        let conversation = json!({
            "tool_calls": [
                {"turn": 1, "name": "lookup_knowledge", "arguments": "{}", "result": "x"},
                {"turn": 2, "name": "transfer_to_human", "arguments": "{\"reason\":\"r\"}", "result": "ok"},
            ],
            "messages": [{"turn": 2, "name": "Ana", "number": "5551", "message": "ligar"}],
        });
        let m = exchange_facts(2, &record, &json!({"stt_ms": 5}), &conversation, 7);
        assert_eq!(m.turn, 2);
        assert_eq!(m.stored_at_ms, 7);
        assert_eq!(
            m.before,
            vec![
                json!({"type": "transcript", "role": "caller", "text": "Quero falar com alguém."})
            ]
        );
        assert_eq!(m.after[0]["type"], "turn");
        assert_eq!(m.after[0]["target"], "1000");
        assert_eq!(m.after[0]["timings"]["stt_ms"], 5);
        assert_eq!(m.after[1]["role"], "agent");
        let tools: Vec<_> = m
            .after
            .iter()
            .filter(|f| f["type"] == "tool_call")
            .collect();
        assert_eq!(tools.len(), 1);
        assert_eq!(tools[0]["name"], "transfer_to_human");
        assert_eq!(tools[0]["arguments"], "{\"reason\":\"r\"}");
        let messages: Vec<_> = m.after.iter().filter(|f| f["type"] == "message").collect();
        assert_eq!(messages[0]["phone"], "5551");
        // An opaque conversation of another engine gives no tool facts, and no error.
        let m = exchange_facts(2, &record, &json!({}), &json!("opaque"), 7);
        assert_eq!(m.after.len(), 2);
    }
}
