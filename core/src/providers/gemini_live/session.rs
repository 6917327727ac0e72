//! The task that owns one session's socket: caller input out, provider events in.
//!
//! The socket is only read when the events channel has room, so a slow consumer slows
//! the provider down instead of stalling the caller's audio going the other way.

use std::time::Duration;

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tracing::{debug, warn};

use super::connect::Ws;
use super::state::ConversationState;
use crate::agent::{AgentEvent, AgentInput};

/// How long to wait for the server's Close reply after ours.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

type Sink = SplitSink<Ws, Message>;
type Stream = SplitStream<Ws>;

pub async fn run(
    ws: Ws,
    mut input: mpsc::Receiver<AgentInput>,
    events: mpsc::Sender<AgentEvent>,
    mut state: ConversationState,
) {
    let (mut sink, mut stream) = ws.split();
    loop {
        tokio::select! {
            next_input = input.recv() => {
                let Some(next_input) = next_input else {
                    debug!("agent input dropped; closing the session");
                    close(sink, stream).await;
                    return;
                };
                for msg in state.on_input(next_input) {
                    if let Err(e) = sink.send(Message::text(msg.to_json())).await {
                        fail(&events, format!("sending to Gemini Live failed: {e}")).await;
                        return;
                    }
                }
            }
            next = read_when_room(&events, &mut stream) => {
                let Some((permit, msg)) = next else {
                    debug!("agent events dropped; closing the session");
                    close(sink, stream).await;
                    return;
                };
                // Gemini may send its JSON in binary frames (the SDK reads both).
                let payload = match msg {
                    Some(Ok(Message::Text(text))) => Some(state.on_server_frame(text.as_bytes())),
                    Some(Ok(Message::Binary(bytes))) => Some(state.on_server_frame(&bytes)),
                    Some(Ok(Message::Close(frame))) => {
                        let why = frame.map_or_else(
                            || "no reason".to_string(),
                            |f| format!("{} {}", f.code, f.reason),
                        );
                        permit.send(fatal(format!("Gemini Live closed the session: {why}")));
                        return;
                    }
                    // Queued pongs go out with the next write; flush so they are not late.
                    Some(Ok(Message::Ping(_))) => {
                        let _ = sink.flush().await;
                        None
                    }
                    Some(Ok(_)) => None,
                    Some(Err(e)) => {
                        permit.send(fatal(format!("Gemini Live connection failed: {e}")));
                        return;
                    }
                    None => {
                        permit.send(fatal("Gemini Live connection ended".into()));
                        return;
                    }
                };
                let mut produced = payload.unwrap_or_default().into_iter();
                if let Some(first) = produced.next() {
                    permit.send(first);
                } else {
                    drop(permit);
                }
                // Rarely more than one event per message (a tool call batch, a turn end).
                for event in produced {
                    if events.send(event).await.is_err() {
                        debug!("agent events dropped; closing the session");
                        close(sink, stream).await;
                        return;
                    }
                }
            }
        }
    }
}

/// Next socket message once one event fits in the channel; `None` if nobody listens.
async fn read_when_room<'a>(
    events: &'a mpsc::Sender<AgentEvent>,
    stream: &mut Stream,
) -> Option<(
    mpsc::Permit<'a, AgentEvent>,
    Option<Result<Message, WsError>>,
)> {
    let permit = events.reserve().await.ok()?;
    Some((permit, stream.next().await))
}

fn fatal(message: String) -> AgentEvent {
    warn!(%message, "Gemini Live session over");
    AgentEvent::Error {
        message,
        fatal: true,
    }
}

async fn fail(events: &mpsc::Sender<AgentEvent>, message: String) {
    let _ = events.send(fatal(message)).await;
}

/// Normal close: send ours, then give the server a moment to answer.
async fn close(mut sink: Sink, mut stream: Stream) {
    let frame = CloseFrame {
        code: CloseCode::Normal,
        reason: "".into(),
    };
    if sink.send(Message::Close(Some(frame))).await.is_err() {
        return;
    }
    let _ = tokio::time::timeout(CLOSE_GRACE, async {
        while let Some(Ok(msg)) = stream.next().await {
            if msg.is_close() {
                break;
            }
        }
    })
    .await;
}
