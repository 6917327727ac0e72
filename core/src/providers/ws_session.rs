//! The socket side of a provider session task, the same for every realtime client: caller
//! input out, provider events in, the polite close and how a session ends in error. Each
//! provider's protocol rules stay in its own `state.rs`, reached through [`Protocol`].
//!
//! [`run`] reads the socket only when the events channel has room, so a slow consumer
//! slows the provider down instead of stalling the caller's audio going the other way.
//! (ElevenLabs cannot work that way, its pings need answers at once: it has its own loop
//! and uses only the helpers.)

use std::future::Future;
use std::time::Duration;

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tracing::{debug, warn, Instrument, Span};

use super::ws_connect::Ws;
use crate::agent::{AgentEvent, AgentInput, AgentSession};

/// Capacity of the input and event channels of a session.
const CHANNEL_CAPACITY: usize = 256;
/// How long to wait for the server's Close reply after ours.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

pub type Sink = SplitSink<Ws, Message>;
pub type Stream = SplitStream<Ws>;

/// A data frame from the provider.
pub enum Frame<'a> {
    Text(&'a str),
    Binary(&'a [u8]),
}

/// A provider's conversation state as the session task drives it.
pub trait Protocol {
    /// The provider as errors and logs name it ("OpenAI Realtime").
    const NAME: &'static str;

    /// The text messages to send for one input from the call.
    fn messages_for(&mut self, input: AgentInput) -> Vec<String>;

    /// The events one frame from the provider brings.
    fn events_for(&mut self, frame: Frame<'_>) -> Vec<AgentEvent>;
}

/// Starts a session's task in `span` (`task` gets the input receiver and the events
/// sender) and hands the call its ends.
pub fn spawn<F>(
    span: Span,
    input_rate: u32,
    output_rate: u32,
    task: impl FnOnce(mpsc::Receiver<AgentInput>, mpsc::Sender<AgentEvent>) -> F,
) -> AgentSession
where
    F: Future<Output = ()> + Send + 'static,
{
    let (input_tx, input_rx) = mpsc::channel(CHANNEL_CAPACITY);
    let (events_tx, events_rx) = mpsc::channel(CHANNEL_CAPACITY);
    tokio::spawn(task(input_rx, events_tx).instrument(span));
    AgentSession {
        input: input_tx,
        events: events_rx,
        input_rate,
        output_rate,
    }
}

/// Runs one session until the caller, the consumer or the provider ends it.
pub async fn run<P: Protocol>(
    ws: Ws,
    mut input: mpsc::Receiver<AgentInput>,
    events: mpsc::Sender<AgentEvent>,
    mut state: P,
) {
    let name = P::NAME;
    let over = format!("{name} session");
    let (mut sink, mut stream) = ws.split();
    loop {
        tokio::select! {
            next_input = input.recv() => {
                let Some(next_input) = next_input else {
                    debug!("agent input dropped; closing the session");
                    return close(sink, stream).await;
                };
                for text in state.messages_for(next_input) {
                    if let Err(e) = sink.send(Message::text(text)).await {
                        let error = fatal(&over, format!("sending to {name} failed: {e}"));
                        let _ = events.send(error).await;
                        return;
                    }
                }
            }
            next = read_when_room(&events, &mut stream) => {
                let Some((permit, msg)) = next else {
                    debug!("agent events dropped; closing the session");
                    return close(sink, stream).await;
                };
                let produced = match msg {
                    Some(Ok(Message::Text(text))) => state.events_for(Frame::Text(&text)),
                    Some(Ok(Message::Binary(bytes))) => state.events_for(Frame::Binary(&bytes)),
                    Some(Ok(Message::Close(frame))) => {
                        let why = close_reason(frame.as_ref());
                        permit.send(fatal(&over, format!("{name} closed the session: {why}")));
                        return;
                    }
                    // Queued pongs go out with the next write; flush so they are not late.
                    Some(Ok(Message::Ping(_))) => {
                        let _ = sink.flush().await;
                        Vec::new()
                    }
                    Some(Ok(_)) => Vec::new(),
                    Some(Err(e)) => {
                        permit.send(fatal(&over, format!("{name} connection failed: {e}")));
                        return;
                    }
                    None => {
                        permit.send(fatal(&over, format!("{name} connection ended")));
                        return;
                    }
                };
                let mut produced = produced.into_iter();
                if let Some(first) = produced.next() {
                    permit.send(first);
                } else {
                    drop(permit);
                }
                // Rarely more than one event per frame (a tool call batch, a turn end).
                for event in produced {
                    if events.send(event).await.is_err() {
                        debug!("agent events dropped; closing the session");
                        return close(sink, stream).await;
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

/// The error that ends a session (`what`: "OpenAI Realtime session"), logged once here.
pub fn fatal(what: &str, message: String) -> AgentEvent {
    warn!(%message, "{what} over");
    AgentEvent::Error {
        message,
        fatal: true,
    }
}

/// A peer's Close frame as "code reason".
pub fn close_reason(frame: Option<&CloseFrame>) -> String {
    frame.map_or_else(
        || "no reason".to_string(),
        |f| format!("{} {}", f.code, f.reason),
    )
}

/// Normal close: send ours, then give the server a moment to answer.
pub async fn close(mut sink: Sink, mut stream: Stream) {
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

#[cfg(test)]
mod tests {
    use tokio::net::TcpListener;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::WebSocketStream;

    use super::*;
    use crate::providers::ws_connect;

    /// Echoes inputs as their debug text and turns each frame into one transcript event.
    struct Echo;

    impl Protocol for Echo {
        const NAME: &'static str = "Echo";

        fn messages_for(&mut self, input: AgentInput) -> Vec<String> {
            vec![format!("{input:?}")]
        }

        fn events_for(&mut self, frame: Frame<'_>) -> Vec<AgentEvent> {
            let text = match frame {
                Frame::Text(t) => t.to_string(),
                Frame::Binary(b) => format!("{} bytes", b.len()),
            };
            vec![AgentEvent::Error {
                message: text,
                fatal: false,
            }]
        }
    }

    /// A session on a real socket, and the server's end of it.
    async fn session() -> (
        mpsc::Sender<AgentInput>,
        mpsc::Receiver<AgentEvent>,
        WebSocketStream<tokio::net::TcpStream>,
    ) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("ws://{}/", listener.local_addr().unwrap());
        let accept = async {
            let (tcp, _) = listener.accept().await.unwrap();
            tokio_tungstenite::accept_async(tcp).await.unwrap()
        };
        let connect = async {
            let request = url.into_client_request().unwrap();
            ws_connect::upgrade(request).await.unwrap()
        };
        let (server, ws) = tokio::join!(accept, connect);
        let session = spawn(Span::none(), 8_000, 8_000, |input, events| {
            run(ws, input, events, Echo)
        });
        (session.input, session.events, server)
    }

    #[tokio::test]
    async fn frames_become_events_and_a_server_close_is_fatal() {
        let (_input, mut events, mut server) = session().await;
        server.send(Message::text("hello")).await.unwrap();
        server.send(Message::binary(vec![1, 2, 3])).await.unwrap();
        let frame = CloseFrame {
            code: CloseCode::Away,
            reason: "bye".into(),
        };
        server.send(Message::Close(Some(frame))).await.unwrap();
        let mut got = Vec::new();
        while let Some(AgentEvent::Error { message, fatal }) = events.recv().await {
            got.push((message, fatal));
        }
        assert_eq!(
            got,
            [
                ("hello".to_string(), false),
                ("3 bytes".to_string(), false),
                ("Echo closed the session: 1001 bye".to_string(), true),
            ]
        );
    }

    #[tokio::test]
    async fn inputs_go_out_and_dropping_the_input_closes_politely() {
        let (input, _events, mut server) = session().await;
        input.send(AgentInput::EndOfTurn).await.unwrap();
        let first = server.next().await.unwrap().unwrap();
        assert_eq!(first, Message::text("EndOfTurn"));
        drop(input);
        let close = server.next().await.unwrap().unwrap();
        let Message::Close(Some(frame)) = close else {
            panic!("expected a close frame, got {close:?}");
        };
        assert_eq!(frame.code, CloseCode::Normal);
    }
}
