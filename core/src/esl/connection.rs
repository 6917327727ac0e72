//! The background task that owns the socket: connect, authenticate, subscribe, then pass
//! commands out and replies/events in until the connection drops; wait; repeat.
//!
//! FreeSWITCH answers commands strictly in order, so replies (`command/reply` and
//! `api/response`) are matched to a FIFO of waiting callers. Events can arrive between a
//! command and its reply and go to the broadcast channel instead.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};

use super::client::{Request, Shared};
use super::protocol::{encode_command, Frame, FrameDecoder};
use super::{EslConfig, EslError, EslEvent};

/// Commands queued for the socket before callers wait on the queue itself.
const REQUEST_QUEUE: usize = 256;
const READ_CHUNK: usize = 16 * 1024;

pub(crate) async fn run(cfg: EslConfig, shared: Arc<Shared>, mut stop: oneshot::Receiver<()>) {
    let delay = Duration::from_millis(cfg.reconnect_delay_ms);
    let mut ever_connected = false;
    // Repeats of the same failure are logged at debug so a down switch does not flood logs.
    let mut last_failure: Option<String> = None;
    loop {
        let ended = tokio::select! {
            _ = &mut stop => return,
            ended = session(&cfg, &shared, ever_connected) => ended,
        };
        shared.set_requests(None);
        shared.connected.send_replace(false);
        if ended.was_connected {
            ever_connected = true;
            last_failure = None;
            tracing::warn!(address = %cfg.address, error = %ended.error, delay_ms = cfg.reconnect_delay_ms,
                "ESL connection lost; reconnecting");
        } else {
            let message = ended.error.to_string();
            if last_failure.as_deref() != Some(message.as_str()) {
                log_setup_failure(&cfg, &ended.error);
                last_failure = Some(message);
            } else {
                tracing::debug!(address = %cfg.address, error = %ended.error, "ESL connect retry failed");
            }
        }
        shared.set_last_error(Some(ended.error));
        tokio::select! {
            _ = &mut stop => return,
            _ = tokio::time::sleep(delay) => {}
        }
    }
}

fn log_setup_failure(cfg: &EslConfig, error: &EslError) {
    if *error == EslError::AuthFailed {
        tracing::warn!(address = %cfg.address, "FreeSWITCH rejected the event socket password (check [esl] password); retrying");
    } else {
        tracing::warn!(address = %cfg.address, error = %error, delay_ms = cfg.reconnect_delay_ms,
            "cannot connect to the FreeSWITCH event socket; retrying");
    }
}

struct SessionEnd {
    /// Whether it got as far as authenticated and subscribed.
    was_connected: bool,
    error: EslError,
}

async fn session(cfg: &EslConfig, shared: &Shared, reconnecting: bool) -> SessionEnd {
    let setup = tokio::time::timeout(shared.command_timeout, handshake(cfg, shared)).await;
    let (mut reader, mut writer) = match setup {
        Ok(Ok(halves)) => halves,
        Ok(Err(error)) => {
            return SessionEnd {
                was_connected: false,
                error,
            }
        }
        Err(_) => {
            return SessionEnd {
                was_connected: false,
                error: EslError::Timeout,
            }
        }
    };
    let (tx, rx) = mpsc::channel(REQUEST_QUEUE);
    shared.set_requests(Some(tx));
    shared.set_last_error(None);
    shared.connected.send_replace(true);
    if reconnecting {
        tracing::info!(address = %cfg.address, "reconnected to the FreeSWITCH event socket");
    } else {
        tracing::info!(address = %cfg.address, "connected to the FreeSWITCH event socket");
    }
    let error = serve(&mut reader, &mut writer, shared, rx).await;
    SessionEnd {
        was_connected: true,
        error,
    }
}

/// Connect, answer `auth/request`, subscribe. Events that arrive meanwhile are delivered.
async fn handshake(
    cfg: &EslConfig,
    shared: &Shared,
) -> Result<(FrameReader, OwnedWriteHalf), EslError> {
    let stream = TcpStream::connect(&cfg.address)
        .await
        .map_err(|e| EslError::Io(e.to_string()))?;
    // Commands are tiny and latency matters (barge-in sends uuid_break).
    let _ = stream.set_nodelay(true);
    let (read, mut writer) = stream.into_split();
    let mut reader = FrameReader::new(read);

    let greeting = reader.next_frame().await?;
    if greeting.content_type() != Some("auth/request") {
        if let Some(error) = dispatch(greeting.clone(), &mut VecDeque::new(), shared) {
            return Err(error);
        }
        return Err(EslError::Protocol(format!(
            "expected auth/request, got {:?}",
            greeting.content_type().unwrap_or("no Content-Type")
        )));
    }
    send(
        &mut writer,
        &encode_command(&format!("auth {}", cfg.password.expose()))?,
    )
    .await?;
    let auth = reader.next_reply(shared).await?;
    if !auth.reply_text().is_some_and(|t| t.starts_with("+OK")) {
        return Err(EslError::AuthFailed);
    }
    if let Some(subscribe) = cfg.subscription_command() {
        send(&mut writer, &encode_command(&subscribe)?).await?;
        let reply = reader.next_reply(shared).await?;
        let text = reply.reply_text().unwrap_or("");
        if !text.starts_with("+OK") {
            return Err(EslError::Rejected(format!("{subscribe}: {text}")));
        }
    }
    Ok((reader, writer))
}

async fn serve(
    reader: &mut FrameReader,
    writer: &mut OwnedWriteHalf,
    shared: &Shared,
    mut requests: mpsc::Receiver<Request>,
) -> EslError {
    // Dropping this (with the session) tells every waiting caller ConnectionLost.
    let mut waiting: VecDeque<oneshot::Sender<Frame>> = VecDeque::new();
    loop {
        tokio::select! {
            request = requests.recv() => {
                let Some(request) = request else { return EslError::ConnectionLost };
                if let Err(error) = send(writer, &request.bytes).await {
                    return error;
                }
                waiting.push_back(request.reply);
            }
            frame = reader.next_frame() => {
                let frame = match frame {
                    Ok(frame) => frame,
                    Err(error) => return error,
                };
                if let Some(error) = dispatch(frame, &mut waiting, shared) {
                    return error;
                }
            }
        }
    }
}

/// Routes one incoming frame; `Some` when it ends the connection.
fn dispatch(
    frame: Frame,
    waiting: &mut VecDeque<oneshot::Sender<Frame>>,
    shared: &Shared,
) -> Option<EslError> {
    match frame.content_type().unwrap_or("") {
        "command/reply" | "api/response" => match waiting.pop_front() {
            // The caller may have timed out and gone; its reply still consumes its slot.
            Some(reply) => {
                let _ = reply.send(frame);
            }
            None => {
                tracing::warn!(reply = ?frame.reply_text(), "ESL reply with no command waiting; ignored")
            }
        },
        "text/event-plain" => match EslEvent::parse_plain(&frame.body) {
            Ok(event) => {
                // No subscribers is fine.
                let _ = shared.events.send(event);
            }
            Err(error) => tracing::warn!(%error, "dropping an undecodable ESL event"),
        },
        "text/disconnect-notice" => {
            tracing::info!(notice = %frame.body_text().trim(), "FreeSWITCH closed the event socket");
            return Some(EslError::ConnectionLost);
        }
        "text/rude-rejection" => {
            let reason = frame.body_text().trim().to_string();
            tracing::warn!(%reason, "FreeSWITCH refused the connection (event_socket ACL?)");
            return Some(EslError::Rejected(reason));
        }
        other => tracing::debug!(content_type = other, "ignoring ESL message"),
    }
    None
}

async fn send(writer: &mut OwnedWriteHalf, bytes: &[u8]) -> Result<(), EslError> {
    writer
        .write_all(bytes)
        .await
        .map_err(|e| EslError::Io(e.to_string()))
}

/// Read half of the socket plus the decoder that frames it.
struct FrameReader {
    read: OwnedReadHalf,
    decoder: FrameDecoder,
    chunk: Vec<u8>,
}

impl FrameReader {
    fn new(read: OwnedReadHalf) -> Self {
        Self {
            read,
            decoder: FrameDecoder::new(),
            chunk: vec![0; READ_CHUNK],
        }
    }

    /// Next whole frame. Cancel-safe: bytes already read stay in the decoder.
    async fn next_frame(&mut self) -> Result<Frame, EslError> {
        loop {
            if let Some(frame) = self
                .decoder
                .next_frame()
                .map_err(|e| EslError::Protocol(e.to_string()))?
            {
                return Ok(frame);
            }
            let n = self
                .read
                .read(&mut self.chunk)
                .await
                .map_err(|e| EslError::Io(e.to_string()))?;
            if n == 0 {
                return Err(EslError::ConnectionLost);
            }
            self.decoder.push(self.chunk.get(..n).unwrap_or_default());
        }
    }

    /// Next `command/reply`, routing anything else (events, disconnect) on the way.
    async fn next_reply(&mut self, shared: &Shared) -> Result<Frame, EslError> {
        loop {
            let frame = self.next_frame().await?;
            if frame.content_type() == Some("command/reply") {
                return Ok(frame);
            }
            if let Some(error) = dispatch(frame, &mut VecDeque::new(), shared) {
                return Err(error);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    //! Scripted raw servers for wire-level cases the protocol-faithful fake (voice-sim)
    //! never produces: split writes, events between command and reply, broken framing.

    use super::*;
    use crate::esl::EslClient;
    use tokio::io::{AsyncBufReadExt, BufReader};
    use tokio::net::TcpListener;

    const WAIT: Duration = Duration::from_secs(10);

    /// Reads one `line\n\n` command.
    async fn read_command(reader: &mut BufReader<OwnedReadHalf>) -> String {
        let mut line = String::new();
        reader.read_line(&mut line).await.unwrap();
        let mut blank = String::new();
        reader.read_line(&mut blank).await.unwrap();
        assert_eq!(blank, "\n", "commands end with a blank line");
        line.trim_end().to_string()
    }

    /// Accepts one client and runs the auth + subscribe exchange.
    async fn accept_and_greet(
        listener: &TcpListener,
    ) -> (BufReader<OwnedReadHalf>, OwnedWriteHalf) {
        let (stream, _) = listener.accept().await.unwrap();
        let (read, mut write) = stream.into_split();
        let mut reader = BufReader::new(read);
        write
            .write_all(b"Content-Type: auth/request\n\n")
            .await
            .unwrap();
        assert_eq!(read_command(&mut reader).await, "auth ClueCon");
        write
            .write_all(b"Content-Type: command/reply\nReply-Text: +OK accepted\n\n")
            .await
            .unwrap();
        assert!(read_command(&mut reader)
            .await
            .starts_with("event plain DTMF"));
        write
            .write_all(
                b"Content-Type: command/reply\nReply-Text: +OK event listener enabled plain\n\n",
            )
            .await
            .unwrap();
        (reader, write)
    }

    async fn start_client(listener: &TcpListener) -> EslClient {
        EslClient::start(EslConfig {
            address: listener.local_addr().unwrap().to_string(),
            reconnect_delay_ms: 50,
            ..EslConfig::default()
        })
    }

    #[tokio::test]
    async fn split_replies_and_interleaved_events_reach_the_right_waiters() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = start_client(&listener).await;
        let (mut reader, mut write) = accept_and_greet(&listener).await;
        assert!(client.wait_connected(WAIT).await);
        let mut events = client.events();

        let call = tokio::spawn({
            let client = client.clone();
            async move { client.api("uuid_exists abc").await }
        });
        assert_eq!(read_command(&mut reader).await, "api uuid_exists abc");
        let event = "Event-Name: DTMF\nDTMF-Digit: 5\n\n";
        let mut wire = format!(
            "Content-Length: {}\nContent-Type: text/event-plain\n\n{event}",
            event.len()
        );
        wire.push_str("Content-Type: api/response\nContent-Length: 5\n\ntrue\n");
        for byte in wire.as_bytes() {
            write.write_all(std::slice::from_ref(byte)).await.unwrap();
            write.flush().await.unwrap();
        }
        assert_eq!(call.await.unwrap().unwrap(), "true\n");
        let event = tokio::time::timeout(WAIT, events.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(event.header("DTMF-Digit"), Some("5"));
    }

    #[tokio::test]
    async fn invalid_content_length_drops_the_connection_and_reconnects() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = start_client(&listener).await;
        let (mut reader, mut write) = accept_and_greet(&listener).await;
        assert!(client.wait_connected(WAIT).await);

        let call = tokio::spawn({
            let client = client.clone();
            async move { client.api("status").await }
        });
        assert_eq!(read_command(&mut reader).await, "api status");
        write
            .write_all(b"Content-Type: api/response\nContent-Length: twelve\n\n+OK\n")
            .await
            .unwrap();
        assert_eq!(call.await.unwrap(), Err(EslError::ConnectionLost));

        // The client comes back on a fresh connection and works again.
        let (mut reader, mut write) = tokio::time::timeout(WAIT, accept_and_greet(&listener))
            .await
            .unwrap();
        assert!(client.wait_connected(WAIT).await);
        let call = tokio::spawn({
            let client = client.clone();
            async move { client.api("status").await }
        });
        assert_eq!(read_command(&mut reader).await, "api status");
        write
            .write_all(b"Content-Type: api/response\nContent-Length: 4\n\n+OK\n")
            .await
            .unwrap();
        assert_eq!(call.await.unwrap().unwrap(), "+OK\n");
    }

    #[tokio::test]
    async fn silent_server_times_out_the_command_and_keeps_order() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = EslClient::start(EslConfig {
            address: listener.local_addr().unwrap().to_string(),
            command_timeout_ms: 1000,
            ..EslConfig::default()
        });
        let (mut reader, mut write) = accept_and_greet(&listener).await;
        assert!(client.wait_connected(WAIT).await);

        assert_eq!(client.api("slow").await, Err(EslError::Timeout));
        assert_eq!(read_command(&mut reader).await, "api slow");
        let call = tokio::spawn({
            let client = client.clone();
            async move { client.api("fast").await }
        });
        assert_eq!(read_command(&mut reader).await, "api fast");
        // The late reply to `slow` must not be handed to `fast`.
        write
            .write_all(b"Content-Type: api/response\nContent-Length: 5\n\nslow\n")
            .await
            .unwrap();
        write
            .write_all(b"Content-Type: api/response\nContent-Length: 5\n\nfast\n")
            .await
            .unwrap();
        assert_eq!(call.await.unwrap().unwrap(), "fast\n");
    }
}
