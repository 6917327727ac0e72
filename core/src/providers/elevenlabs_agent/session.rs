//! The task that owns one conversation's socket: caller input out, server messages in,
//! pongs at once, and the quiet-gap timer that ends answers.
//!
//! Unlike the shared session loop ([`crate::providers::ws_session::run`], which OpenAI
//! and Gemini use), the socket is read even while the events channel is full:
//! ElevenLabs drops conversations that miss pongs, so a ping must be answered however
//! slow the call is. Events wait in a local queue meanwhile; only when that queue is
//! [`MAX_QUEUED`] long does reading stop (and back-pressure reach the server).

use std::collections::VecDeque;

use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tracing::debug;

use super::client_messages::ClientMessage;
use super::state::ConversationState;
use crate::agent::{AgentEvent, AgentInput};
use crate::providers::ws_connect::Ws;
use crate::providers::ws_session::{close, close_reason, fatal, Sink};

/// Events held while the call is behind (about 100 s of 100 ms audio chunks).
const MAX_QUEUED: usize = 1024;

pub async fn run(
    ws: Ws,
    mut input: mpsc::Receiver<AgentInput>,
    events: mpsc::Sender<AgentEvent>,
    mut state: ConversationState,
    early: Vec<String>,
) {
    let (mut sink, mut stream) = ws.split();
    let mut queue: VecDeque<AgentEvent> = VecDeque::new();
    for text in early {
        let reaction = state.on_server_text(&text, std::time::Instant::now());
        if send_all(&mut sink, reaction.replies).await.is_err() {
            return deliver_fatal(&events, queue, "sending to ElevenLabs failed".into()).await;
        }
        queue.extend(reaction.events);
    }
    loop {
        let deadline = state.deadline().map(Instant::from_std);
        tokio::select! {
            next_input = input.recv() => {
                let Some(next_input) = next_input else {
                    debug!("agent input dropped; closing the conversation");
                    return close(sink, stream).await;
                };
                if let Err(e) = send_all(&mut sink, state.on_input(next_input)).await {
                    return deliver_fatal(&events, queue, format!("sending to ElevenLabs failed: {e}")).await;
                }
            }
            msg = stream.next(), if queue.len() < MAX_QUEUED => match msg {
                Some(Ok(Message::Text(text))) => {
                    let reaction = state.on_server_text(&text, std::time::Instant::now());
                    // Pongs before anything else, whatever the state of the events channel.
                    if let Err(e) = send_all(&mut sink, reaction.replies).await {
                        return deliver_fatal(&events, queue, format!("sending to ElevenLabs failed: {e}")).await;
                    }
                    queue.extend(reaction.events);
                }
                Some(Ok(Message::Close(frame))) => {
                    let why = close_reason(frame.as_ref());
                    return deliver_fatal(&events, queue, format!("ElevenLabs closed the conversation: {why}")).await;
                }
                // Queued WebSocket pongs go out with the next write; flush so they are not late.
                Some(Ok(Message::Ping(_))) => {
                    let _ = sink.flush().await;
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    return deliver_fatal(&events, queue, format!("ElevenLabs connection failed: {e}")).await;
                }
                None => {
                    return deliver_fatal(&events, queue, "ElevenLabs connection ended".into()).await;
                }
            },
            permit = events.reserve(), if !queue.is_empty() => {
                let Ok(permit) = permit else {
                    debug!("agent events dropped; closing the conversation");
                    return close(sink, stream).await;
                };
                if let Some(event) = queue.pop_front() {
                    permit.send(event);
                }
            }
            _ = events.closed(), if queue.is_empty() => {
                debug!("agent events dropped; closing the conversation");
                return close(sink, stream).await;
            }
            _ = tokio::time::sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => {
                queue.extend(state.on_timer(std::time::Instant::now()));
            }
        }
    }
}

async fn send_all(
    sink: &mut Sink,
    messages: Vec<ClientMessage>,
) -> Result<(), tokio_tungstenite::tungstenite::Error> {
    if messages.is_empty() {
        return Ok(());
    }
    for m in messages {
        sink.feed(Message::text(m.to_json())).await?;
    }
    sink.flush().await
}

/// Hands over what is queued, then the fatal error; gives up if nobody listens.
async fn deliver_fatal(
    events: &mpsc::Sender<AgentEvent>,
    queue: VecDeque<AgentEvent>,
    message: String,
) {
    let error = fatal("ElevenLabs conversation", message);
    for event in queue {
        if events.send(event).await.is_err() {
            return;
        }
    }
    let _ = events.send(error).await;
}
