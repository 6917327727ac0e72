//! The fake server on the wire, and `voice_core::esl::EslClient` against it.

use std::sync::mpsc as std_mpsc;
use std::time::Duration;

use futures_util::future::join_all;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use voice_core::config::Secret;
use voice_core::esl::protocol::{Frame, FrameDecoder};
use voice_core::esl::{is_ok, EslClient, EslConfig, EslError, EslEvent};

use super::wire::url_encode;
use super::*;

const WAIT: Duration = Duration::from_secs(10);

/// Echoes commands; `fail` answers -ERR; `block` waits until the test releases it.
struct TestBackend {
    gate: Mutex<Option<std_mpsc::Receiver<()>>>,
}

impl TestBackend {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            gate: Mutex::new(None),
        })
    }

    fn gated() -> (Arc<Self>, std_mpsc::Sender<()>) {
        let (tx, rx) = std_mpsc::channel();
        (
            Arc::new(Self {
                gate: Mutex::new(Some(rx)),
            }),
            tx,
        )
    }
}

impl EslBackend for TestBackend {
    fn api(&self, command: &str, args: &str) -> String {
        match command {
            "fail" => "-ERR no such channel\n".to_string(),
            "block" => {
                if let Some(gate) = lock(&self.gate).take() {
                    // The fake calls backends on a runtime worker. Hand that worker's other
                    // tasks to another thread while this one waits, or the connection's
                    // writer (parked on this worker) could not be cancelled by a drop.
                    let _ = tokio::task::block_in_place(|| gate.recv_timeout(WAIT));
                }
                "+OK released\n".to_string()
            }
            _ => format!("+OK {command} {args}\n"),
        }
    }
}

fn client_for(server: &FakeEslServer, password: &str) -> EslClient {
    EslClient::start(EslConfig {
        address: server.addr().to_string(),
        password: Secret::new(password),
        reconnect_delay_ms: 50,
        ..EslConfig::default()
    })
}

async fn connected_pair() -> (FakeEslServer, EslClient) {
    let server = FakeEslServer::start("ClueCon", TestBackend::new())
        .await
        .unwrap();
    let client = client_for(&server, "ClueCon");
    assert!(
        client.wait_connected(WAIT).await,
        "client never connected: {:?}",
        client.last_error()
    );
    (server, client)
}

async fn next_event(events: &mut tokio::sync::broadcast::Receiver<EslEvent>) -> EslEvent {
    tokio::time::timeout(WAIT, events.recv())
        .await
        .expect("no event in time")
        .expect("event channel closed")
}

/// Polls `check` every 20 ms until it holds or `WAIT` passes.
async fn eventually(mut check: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + WAIT;
    while tokio::time::Instant::now() < deadline {
        if check() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    check()
}

// ---- client against the fake ----

#[tokio::test]
async fn client_authenticates_and_subscribes() {
    let (server, client) = connected_pair().await;
    assert!(client.is_connected());
    assert_eq!(client.last_error(), None);
    assert_eq!(server.connection_count(), 1);
}

#[tokio::test]
async fn wrong_password_is_reported_as_auth_failed() {
    let server = FakeEslServer::start("s3cret", TestBackend::new())
        .await
        .unwrap();
    let client = client_for(&server, "ClueCon");
    assert!(
        eventually(|| client.last_error() == Some(EslError::AuthFailed)).await,
        "{:?}",
        client.last_error()
    );
    assert!(!client.is_connected());
    assert_eq!(server.connection_count(), 0);
    assert_eq!(client.api("status").await, Err(EslError::NotConnected));
}

#[tokio::test]
async fn concurrent_api_calls_each_get_their_own_reply() {
    let (server, client) = connected_pair().await;
    let calls = (0..20).map(|i| {
        let client = client.clone();
        async move { (i, client.api(&format!("uuid_exists call-{i}")).await) }
    });
    for (i, reply) in join_all(calls).await {
        assert_eq!(reply.unwrap(), format!("+OK uuid_exists call-{i}\n"));
    }
    let mut seen = server.commands();
    seen.sort();
    let mut expected: Vec<String> = (0..20).map(|i| format!("uuid_exists call-{i}")).collect();
    expected.sort();
    assert_eq!(seen, expected);

    let reply = client.api("fail abc").await.unwrap();
    assert_eq!(reply, "-ERR no such channel\n");
    assert!(!is_ok(&reply));
    assert_eq!(
        server.commands().last().map(String::as_str),
        Some("fail abc")
    );
}

#[tokio::test]
async fn bgapi_returns_the_job_uuid_and_its_event_carries_the_output() {
    let (server, client) = connected_pair().await;
    let mut events = client.events();
    let job = client.bgapi("originate user/100 &park").await.unwrap();
    assert_eq!(job.len(), 36, "{job}");
    let event = loop {
        let event = next_event(&mut events).await;
        if event.name() == Some("BACKGROUND_JOB") {
            break event;
        }
    };
    assert_eq!(event.job_uuid(), Some(job.as_str()));
    assert_eq!(event.header("Job-Command"), Some("originate"));
    assert_eq!(event.header("Job-Command-Arg"), Some("user/100 &park"));
    assert_eq!(event.body(), Some("+OK originate user/100 &park\n"));
    assert_eq!(server.commands(), vec!["originate user/100 &park"]);

    let output = client.bgapi_output("uuid_kill abc", WAIT).await.unwrap();
    assert_eq!(output, "+OK uuid_kill abc\n");
}

#[tokio::test]
async fn custom_events_arrive_decoded_and_unsubscribed_ones_do_not() {
    let (server, client) = connected_pair().await;
    let mut events = client.events();
    let body =
        "{\"type\":\"streamAudio\",\"data\":{\"file\":\"/tmp/a b.wav\"}}\n\nsecond: line %41";
    server.publish(FakeEvent::custom("other::thing").header("Unique-ID", "nope"));
    server.publish(FakeEvent::new("CHANNEL_ANSWER").header("Unique-ID", "nope"));
    server.publish(
        FakeEvent::custom("mod_audio_stream::play")
            .header("Unique-ID", "call-1")
            .header("variable_caller_id_name", "João da Silva: 100% <vip>")
            .body(body),
    );
    let event = next_event(&mut events).await;
    assert_eq!(event.name(), Some("CUSTOM"));
    assert_eq!(event.subclass(), Some("mod_audio_stream::play"));
    assert_eq!(event.unique_id(), Some("call-1"));
    assert_eq!(
        event.variable("caller_id_name"),
        Some("João da Silva: 100% <vip>")
    );
    assert_eq!(event.body(), Some(body));

    // DTMF is subscribed although the default config lists it after the CUSTOM subclasses.
    server.publish(
        FakeEvent::new("DTMF")
            .header("Unique-ID", "call-1")
            .header("DTMF-Digit", "#"),
    );
    let event = next_event(&mut events).await;
    assert_eq!(event.name(), Some("DTMF"));
    assert_eq!(event.header("DTMF-Digit"), Some("#"));
    assert_eq!(event.body(), None);
}

#[tokio::test]
async fn client_reconnects_and_resubscribes_after_a_drop() {
    let (server, client) = connected_pair().await;
    let mut events = client.events();
    server.drop_connections();

    // Publish until the new connection's subscription is in place.
    let mut received = None;
    for _ in 0..100 {
        server.publish(FakeEvent::new("CHANNEL_HANGUP").header("Unique-ID", "call-2"));
        if let Ok(Ok(event)) = tokio::time::timeout(Duration::from_millis(100), events.recv()).await
        {
            received = Some(event);
            break;
        }
    }
    let event = received.expect("no event after reconnect");
    assert_eq!(event.name(), Some("CHANNEL_HANGUP"));
    assert!(client.is_connected());
    assert_eq!(server.connection_count(), 1);
    assert_eq!(client.api("status").await.unwrap(), "+OK status \n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drop_fails_the_command_in_flight_with_connection_lost() {
    let (backend, release) = TestBackend::gated();
    let server = FakeEslServer::start("ClueCon", backend).await.unwrap();
    let client = client_for(&server, "ClueCon");
    assert!(client.wait_connected(WAIT).await);
    let call = tokio::spawn({
        let client = client.clone();
        async move { client.api("block").await }
    });
    assert!(eventually(|| server.commands().iter().any(|c| c == "block")).await);
    server.drop_connections();
    assert_eq!(call.await.unwrap(), Err(EslError::ConnectionLost));
    let _ = release.send(());
}

#[tokio::test]
async fn commands_fail_fast_once_the_server_is_gone() {
    let (server, client) = connected_pair().await;
    drop(server);
    assert!(eventually(|| !client.is_connected()).await);
    assert_eq!(client.api("status").await, Err(EslError::NotConnected));
    assert_eq!(client.bgapi("status").await, Err(EslError::NotConnected));
}

// ---- the fake on the raw wire ----

/// A bare TCP client that reads whole frames.
struct Wire {
    stream: TcpStream,
    decoder: FrameDecoder,
}

impl Wire {
    async fn connect(server: &FakeEslServer) -> Wire {
        let stream = TcpStream::connect(server.addr()).await.unwrap();
        Wire {
            stream,
            decoder: FrameDecoder::new(),
        }
    }

    async fn send(&mut self, command: &str) {
        self.stream
            .write_all(format!("{command}\n\n").as_bytes())
            .await
            .unwrap();
    }

    /// The next frame, or `None` at EOF.
    async fn frame(&mut self) -> Option<Frame> {
        let mut buf = [0u8; 4096];
        loop {
            if let Some(frame) = self.decoder.next_frame().unwrap() {
                return Some(frame);
            }
            let n = tokio::time::timeout(WAIT, self.stream.read(&mut buf))
                .await
                .unwrap()
                .unwrap();
            if n == 0 {
                return None;
            }
            self.decoder.push(&buf[..n]);
        }
    }

    async fn reply(&mut self, command: &str) -> String {
        self.send(command).await;
        let frame = self.frame().await.unwrap();
        assert_eq!(frame.content_type(), Some("command/reply"), "{frame:?}");
        frame.reply_text().unwrap().to_string()
    }

    async fn authed(server: &FakeEslServer) -> Wire {
        let mut wire = Wire::connect(server).await;
        assert_eq!(
            wire.frame().await.unwrap().content_type(),
            Some("auth/request")
        );
        assert_eq!(wire.reply("auth ClueCon").await, "+OK accepted");
        wire
    }
}

#[tokio::test]
async fn fake_is_strict_before_auth_and_closes_on_a_bad_password() {
    let server = FakeEslServer::start("ClueCon", TestBackend::new())
        .await
        .unwrap();
    let mut wire = Wire::connect(&server).await;
    assert_eq!(
        wire.frame().await.unwrap().content_type(),
        Some("auth/request")
    );
    assert_eq!(wire.reply("api status").await, "-ERR command not found");
    assert_eq!(
        wire.reply("event plain ALL").await,
        "-ERR command not found"
    );
    assert!(server.commands().is_empty());
    assert_eq!(wire.reply("auth wrong").await, "-ERR invalid");
    let notice = wire.frame().await.unwrap();
    assert_eq!(notice.content_type(), Some("text/disconnect-notice"));
    assert!(notice.body_text().starts_with("Disconnected, goodbye."));
    assert_eq!(wire.frame().await, None);
    assert_eq!(server.connection_count(), 0);
}

#[tokio::test]
async fn fake_answers_api_bgapi_and_unknown_commands_like_freeswitch() {
    let server = FakeEslServer::start("ClueCon", TestBackend::new())
        .await
        .unwrap();
    let mut wire = Wire::authed(&server).await;
    assert_eq!(server.connection_count(), 1);

    wire.send("api uuid_break abc all").await;
    let frame = wire.frame().await.unwrap();
    assert_eq!(frame.content_type(), Some("api/response"));
    assert_eq!(frame.body_text(), "+OK uuid_break abc all\n");

    assert_eq!(wire.reply("bogus").await, "-ERR command not found");
    assert_eq!(
        wire.reply("event plain NOT_AN_EVENT").await,
        "-ERR no keywords supplied"
    );
    assert_eq!(
        wire.reply("event plain BACKGROUND_JOB").await,
        "+OK event listener enabled plain"
    );

    wire.send("bgapi status").await;
    let reply = wire.frame().await.unwrap();
    let job = reply.header("Job-UUID").unwrap().to_string();
    assert_eq!(
        reply.reply_text(),
        Some(format!("+OK Job-UUID: {job}").as_str())
    );
    let event = wire.frame().await.unwrap();
    assert_eq!(event.content_type(), Some("text/event-plain"));
    let event = EslEvent::parse_plain(&event.body).unwrap();
    assert_eq!(event.job_uuid(), Some(job.as_str()));
    assert_eq!(event.body(), Some("+OK status \n"));
    assert_eq!(server.commands(), vec!["uuid_break abc all", "status"]);
}

#[tokio::test]
async fn fake_treats_every_word_after_custom_as_a_subclass() {
    let server = FakeEslServer::start("ClueCon", TestBackend::new())
        .await
        .unwrap();
    let mut wire = Wire::authed(&server).await;
    assert_eq!(
        wire.reply("event plain CUSTOM a::b DTMF").await,
        "+OK event listener enabled plain"
    );
    server.publish(FakeEvent::new("DTMF").header("DTMF-Digit", "1"));
    server.publish(FakeEvent::custom("a::b").header("Unique-ID", "u 1"));
    let frame = wire.frame().await.unwrap();
    let raw = frame.body_text();
    assert!(
        raw.starts_with("Event-Subclass: a%3A%3Ab\nEvent-Name: CUSTOM\n"),
        "{raw}"
    );
    assert!(raw.contains("\nUnique-ID: u%201\n"), "{raw}");
    let event = EslEvent::parse_plain(&frame.body).unwrap();
    assert_eq!(event.subclass(), Some("a::b"));
}

#[tokio::test]
async fn fake_supports_noevents_and_exit() {
    let server = FakeEslServer::start("ClueCon", TestBackend::new())
        .await
        .unwrap();
    let mut wire = Wire::authed(&server).await;
    assert_eq!(
        wire.reply("event plain ALL").await,
        "+OK event listener enabled plain"
    );
    assert_eq!(
        wire.reply("noevents").await,
        "+OK no longer listening for events"
    );
    assert_eq!(
        wire.reply("noevents").await,
        "-ERR not listening for events"
    );
    server.publish(FakeEvent::new("DTMF"));
    assert_eq!(wire.reply("exit").await, "+OK bye");
    // No DTMF after noevents: the next frame is the goodbye.
    assert_eq!(
        wire.frame().await.unwrap().content_type(),
        Some("text/disconnect-notice")
    );
    assert_eq!(wire.frame().await, None);
    assert!(eventually(|| server.connection_count() == 0).await);
}

#[test]
fn url_encode_matches_switch_url_encode() {
    assert_eq!(
        url_encode("mod_audio_stream::play"),
        "mod_audio_stream%3A%3Aplay"
    );
    assert_eq!(url_encode("a b+c%d\n"), "a%20b%2Bc%25d%0A");
    assert_eq!(url_encode("ã"), "%C3%A3");
    assert_eq!(url_encode("plain-Text_1.2/x,y"), "plain-Text_1.2/x,y");
}
