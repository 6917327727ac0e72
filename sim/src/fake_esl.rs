//! A stand-in for FreeSWITCH's mod_event_socket (inbound mode), for tests and the simulator.
//!
//! It follows `mod_event_socket.c` where it matters to a client: `auth/request` on connect;
//! `-ERR command not found` for anything but `auth`/`exit` before authentication; `-ERR
//! invalid` then a disconnect notice and close on a bad password; `api` answered with
//! `api/response`; `bgapi` with a Job-UUID, then a `BACKGROUND_JOB` event to every listener
//! subscribed to it; `event plain` where every word after `CUSTOM` is a subclass; events
//! serialized like `switch_event_serialize` (URL-encoded values, `Content-Length` body).
//!
//! Its wire code is written separately from `voice_core::esl` on purpose, so a framing bug
//! in the client is not mirrored here.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use anyhow::Context;
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::{AbortHandle, JoinHandle};

use wire::{new_uuid, read_command, reply_bytes, serialize_event, Command};

const GOODBYE: &str = "Disconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n";

/// Event names `switch_name_event` knows; others are ignored by `event`, as in FreeSWITCH.
#[rustfmt::skip]
const EVENT_NAMES: &[&str] = &[
    "CUSTOM", "CLONE", "CHANNEL_CREATE", "CHANNEL_DESTROY", "CHANNEL_STATE", "CHANNEL_CALLSTATE",
    "CHANNEL_ANSWER", "CHANNEL_HANGUP", "CHANNEL_HANGUP_COMPLETE", "CHANNEL_EXECUTE",
    "CHANNEL_EXECUTE_COMPLETE", "CHANNEL_HOLD", "CHANNEL_UNHOLD", "CHANNEL_BRIDGE",
    "CHANNEL_UNBRIDGE", "CHANNEL_PROGRESS", "CHANNEL_PROGRESS_MEDIA", "CHANNEL_OUTGOING",
    "CHANNEL_PARK", "CHANNEL_UNPARK", "CHANNEL_APPLICATION", "CHANNEL_ORIGINATE", "CHANNEL_UUID",
    "API", "LOG", "INBOUND_CHAN", "OUTBOUND_CHAN", "STARTUP", "SHUTDOWN", "PUBLISH", "UNPUBLISH",
    "TALK", "NOTALK", "SESSION_CRASH", "MODULE_LOAD", "MODULE_UNLOAD", "DTMF", "MESSAGE",
    "PRESENCE_IN", "NOTIFY_IN", "PRESENCE_OUT", "PRESENCE_PROBE", "MESSAGE_WAITING",
    "MESSAGE_QUERY", "ROSTER", "CODEC", "BACKGROUND_JOB", "DETECTED_SPEECH", "DETECTED_TONE",
    "PRIVATE_COMMAND", "HEARTBEAT", "TRAP", "ADD_SCHEDULE", "DEL_SCHEDULE", "EXE_SCHEDULE",
    "RE_SCHEDULE", "RELOADXML", "NOTIFY", "PHONE_FEATURE", "PHONE_FEATURE_SUBSCRIBE",
    "SEND_MESSAGE", "RECV_MESSAGE", "REQUEST_PARAMS", "CHANNEL_DATA", "GENERAL", "COMMAND",
    "SESSION_HEARTBEAT", "CLIENT_DISCONNECTED", "SERVER_DISCONNECTED", "SEND_INFO", "RECV_INFO",
    "RECV_RTCP_MESSAGE", "SEND_RTCP_MESSAGE", "CALL_SECURE", "NAT", "RECORD_START", "RECORD_STOP",
    "PLAYBACK_START", "PLAYBACK_STOP", "CALL_UPDATE", "FAILURE", "SOCKET_DATA", "MEDIA_BUG_START",
    "MEDIA_BUG_STOP", "CONFERENCE_DATA_QUERY", "CONFERENCE_DATA", "CALL_SETUP_REQ",
    "CALL_SETUP_RESULT", "CALL_DETAIL", "DEVICE_STATE", "TEXT", "SHUTDOWN_REQUESTED", "ALL",
];

/// What runs the API commands the fake receives (the simulated switch).
pub trait EslBackend: Send + Sync + 'static {
    /// The `api/response` body (or `BACKGROUND_JOB` body) for `<command> <args>`, e.g.
    /// `"+OK\n"` or `"-ERR no such channel\n"`.
    fn api(&self, command: &str, args: &str) -> String;
}

/// An event to publish. The server adds `Event-Name`, `Event-Subclass` and the usual core
/// headers, and URL-encodes every value.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FakeEvent {
    pub name: String,
    pub subclass: Option<String>,
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
}

impl FakeEvent {
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_string(),
            ..Self::default()
        }
    }

    /// A CUSTOM event, e.g. `FakeEvent::custom("mod_audio_stream::play")`.
    pub fn custom(subclass: &str) -> Self {
        Self {
            subclass: Some(subclass.to_string()),
            ..Self::new("CUSTOM")
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    pub fn body(mut self, body: &str) -> Self {
        self.body = Some(body.to_string());
        self
    }
}

/// The fake server; it stops (and closes every connection) when dropped.
pub struct FakeEslServer {
    state: Arc<ServerState>,
    addr: SocketAddr,
    accept_task: JoinHandle<()>,
}

struct ServerState {
    password: String,
    backend: Arc<dyn EslBackend>,
    commands: Mutex<Vec<String>>,
    conns: Mutex<HashMap<u64, Conn>>,
    next_conn: AtomicU64,
    sequence: AtomicU64,
    core_uuid: String,
}

/// One client connection as the rest of the server sees it.
struct Conn {
    out: mpsc::UnboundedSender<Outgoing>,
    authed: bool,
    subs: Subscriptions,
    tasks: Vec<AbortHandle>,
}

enum Outgoing {
    Bytes(Vec<u8>),
    /// Flush what is queued, then close.
    Close,
}

#[derive(Default)]
struct Subscriptions {
    all: bool,
    names: HashSet<String>,
    subclasses: HashSet<String>,
}

impl Subscriptions {
    fn wants(&self, event: &FakeEvent) -> bool {
        if self.all {
            return true;
        }
        if !self.names.contains(&event.name) {
            return false;
        }
        match (&event.subclass, event.name.as_str()) {
            (Some(subclass), "CUSTOM") => self.subclasses.contains(subclass),
            _ => true,
        }
    }
}

impl FakeEslServer {
    /// Listens on `127.0.0.1:0`; see [`Self::addr`].
    pub async fn start(
        password: &str,
        backend: Arc<dyn EslBackend>,
    ) -> anyhow::Result<FakeEslServer> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding the fake ESL server")?;
        let addr = listener.local_addr()?;
        let state = Arc::new(ServerState {
            password: password.to_string(),
            backend,
            commands: Mutex::new(Vec::new()),
            conns: Mutex::new(HashMap::new()),
            next_conn: AtomicU64::new(1),
            sequence: AtomicU64::new(1),
            core_uuid: new_uuid(),
        });
        let accept_task = tokio::spawn(accept_loop(listener, state.clone()));
        Ok(FakeEslServer {
            state,
            addr,
            accept_task,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Sends `event` to every authenticated connection subscribed to it.
    pub fn publish(&self, event: FakeEvent) {
        self.state.publish(&event);
    }

    /// Every `api`/`bgapi` command line received, without the `api `/`bgapi ` prefix.
    pub fn commands(&self) -> Vec<String> {
        lock(&self.state.commands).clone()
    }

    /// Closes every client connection abruptly, without a disconnect notice.
    pub fn drop_connections(&self) {
        for (_, conn) in lock(&self.state.conns).drain() {
            for task in conn.tasks {
                task.abort();
            }
        }
    }

    /// Authenticated connections right now.
    pub fn connection_count(&self) -> usize {
        lock(&self.state.conns)
            .values()
            .filter(|c| c.authed)
            .count()
    }
}

impl Drop for FakeEslServer {
    fn drop(&mut self) {
        self.accept_task.abort();
        self.drop_connections();
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

async fn accept_loop(listener: TcpListener, state: Arc<ServerState>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => state.clone().add_connection(stream),
            Err(e) => tracing::warn!(error = %e, "fake ESL accept failed"),
        }
    }
}

impl ServerState {
    fn add_connection(self: Arc<Self>, stream: TcpStream) {
        let _ = stream.set_nodelay(true);
        let id = self.next_conn.fetch_add(1, Ordering::Relaxed);
        let (read, write) = stream.into_split();
        let (out, out_rx) = mpsc::unbounded_channel();
        let _ = out.send(Outgoing::Bytes(b"Content-Type: auth/request\n\n".to_vec()));
        // Registered before the tasks start, so the reader always finds its entry.
        let conn = Conn {
            out,
            authed: false,
            subs: Subscriptions::default(),
            tasks: Vec::new(),
        };
        lock(&self.conns).insert(id, conn);
        let writer = tokio::spawn(write_loop(write, out_rx));
        let reader = tokio::spawn(self.clone().read_loop(id, read));
        if let Some(conn) = lock(&self.conns).get_mut(&id) {
            conn.tasks = vec![writer.abort_handle(), reader.abort_handle()];
        }
    }

    async fn read_loop(self: Arc<Self>, id: u64, read: OwnedReadHalf) {
        let mut reader = BufReader::new(read);
        loop {
            let command = match read_command(&mut reader).await {
                Ok(Some(command)) => command,
                Ok(None) => break,
                Err(e) => {
                    tracing::debug!(error = %e, "fake ESL dropping a connection");
                    break;
                }
            };
            if self.handle(id, &command) == Flow::Close {
                self.send(
                    id,
                    Outgoing::Bytes(reply_bytes("text/disconnect-notice", GOODBYE)),
                );
                self.send(id, Outgoing::Close);
                break;
            }
        }
        lock(&self.conns).remove(&id);
    }

    fn send(&self, id: u64, out: Outgoing) {
        if let Some(conn) = lock(&self.conns).get(&id) {
            let _ = conn.out.send(out);
        }
    }

    fn send_reply(&self, id: u64, reply_text: &str) {
        self.send(
            id,
            Outgoing::Bytes(
                format!("Content-Type: command/reply\nReply-Text: {reply_text}\n\n").into_bytes(),
            ),
        );
    }

    fn is_authed(&self, id: u64) -> bool {
        lock(&self.conns).get(&id).is_some_and(|c| c.authed)
    }

    /// One command, as `parse_command` in mod_event_socket.c treats it.
    fn handle(self: &Arc<Self>, id: u64, command: &Command) -> Flow {
        let line = command.line.as_str();
        if starts_with_ci(line, "exit") || line.starts_with("...") {
            self.send_reply(id, "+OK bye");
            return Flow::Close;
        }
        if !self.is_authed(id) {
            return self.handle_unauthenticated(id, line);
        }
        if let Some(rest) = strip_prefix_ci(line, "api ") {
            self.run_api(id, rest);
        } else if let Some(rest) = strip_prefix_ci(line, "bgapi ") {
            self.run_bgapi(id, rest, command.header("Job-UUID"));
        } else if starts_with_ci(line, "noevents") {
            self.unsubscribe(id);
        } else if starts_with_ci(line, "event") {
            self.subscribe(id, line);
        } else {
            self.send_reply(id, "-ERR command not found");
        }
        Flow::Continue
    }

    fn handle_unauthenticated(&self, id: u64, line: &str) -> Flow {
        let Some(password) = strip_prefix_ci(line, "auth ") else {
            self.send_reply(id, "-ERR command not found");
            return Flow::Continue;
        };
        if password != self.password {
            self.send_reply(id, "-ERR invalid");
            return Flow::Close;
        }
        if let Some(conn) = lock(&self.conns).get_mut(&id) {
            conn.authed = true;
        }
        self.send_reply(id, "+OK accepted");
        Flow::Continue
    }

    fn run_api(&self, id: u64, rest: &str) {
        lock(&self.commands).push(rest.to_string());
        let (command, args) = rest.split_once(' ').unwrap_or((rest, ""));
        let mut body = self.backend.api(command, args);
        if body.is_empty() {
            body = "-ERR no reply\n".to_string();
        }
        self.send(id, Outgoing::Bytes(reply_bytes("api/response", &body)));
    }

    fn run_bgapi(self: &Arc<Self>, id: u64, rest: &str, job_header: Option<&str>) {
        lock(&self.commands).push(rest.to_string());
        let job = job_header.map(str::to_string).unwrap_or_else(new_uuid);
        self.send(
            id,
            Outgoing::Bytes(format!("Content-Type: command/reply\nReply-Text: +OK Job-UUID: {job}\nJob-UUID: {job}\n\n").into_bytes()),
        );
        let (command, args) = match rest.split_once(' ') {
            Some((c, a)) => (c.to_string(), Some(a.to_string())),
            None => (rest.to_string(), None),
        };
        let state = self.clone();
        // FreeSWITCH runs the job on its own thread and fires the event when done.
        tokio::task::spawn_blocking(move || {
            let mut output = state.backend.api(&command, args.as_deref().unwrap_or(""));
            if output.is_empty() {
                output = "Command returned no output!".to_string();
            }
            let mut event = FakeEvent::new("BACKGROUND_JOB")
                .header("Job-UUID", &job)
                .header("Job-Command", &command);
            if let Some(args) = &args {
                event = event.header("Job-Command-Arg", args);
            }
            state.publish(&event.body(&output));
        });
    }

    /// `event plain A B CUSTOM x::y z::w`: every word after CUSTOM is a subclass.
    fn subscribe(&self, id: u64, line: &str) {
        let mut words = line.split(' ').skip(1).filter(|w| !w.is_empty()).peekable();
        match words.peek().map(|w| w.to_ascii_lowercase()) {
            Some(format) if format == "plain" => {
                words.next();
            }
            Some(format) if format == "json" || format == "xml" => {
                return self.send_reply(id, "-ERR the fake event socket only speaks plain");
            }
            _ => {}
        }
        let mut conns = lock(&self.conns);
        let Some(conn) = conns.get_mut(&id) else {
            return;
        };
        let mut keywords = 0;
        let mut custom = false;
        for word in words {
            if custom {
                conn.subs.subclasses.insert(word.to_string());
            } else if let Some(name) = EVENT_NAMES.iter().find(|n| n.eq_ignore_ascii_case(word)) {
                keywords += 1;
                match *name {
                    "ALL" => conn.subs.all = true,
                    "CUSTOM" => custom = true,
                    _ => {}
                }
                conn.subs.names.insert(name.to_string());
            }
        }
        drop(conns);
        if keywords == 0 {
            self.send_reply(id, "-ERR no keywords supplied");
        } else {
            self.send_reply(id, "+OK event listener enabled plain");
        }
    }

    fn unsubscribe(&self, id: u64) {
        let was_listening = lock(&self.conns).get_mut(&id).is_some_and(|conn| {
            let was = conn.subs.all || !conn.subs.names.is_empty();
            conn.subs = Subscriptions::default();
            was
        });
        if was_listening {
            self.send_reply(id, "+OK no longer listening for events");
        } else {
            self.send_reply(id, "-ERR not listening for events");
        }
    }

    fn publish(&self, event: &FakeEvent) {
        let sequence = self.sequence.fetch_add(1, Ordering::Relaxed);
        let bytes = serialize_event(event, &self.core_uuid, sequence);
        for conn in lock(&self.conns)
            .values()
            .filter(|c| c.authed && c.subs.wants(event))
        {
            let _ = conn.out.send(Outgoing::Bytes(bytes.clone()));
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Flow {
    Continue,
    Close,
}

async fn write_loop(mut write: OwnedWriteHalf, mut out: mpsc::UnboundedReceiver<Outgoing>) {
    while let Some(item) = out.recv().await {
        match item {
            Outgoing::Bytes(bytes) => {
                if write.write_all(&bytes).await.is_err() {
                    break;
                }
            }
            Outgoing::Close => break,
        }
    }
    let _ = write.shutdown().await;
}

fn starts_with_ci(line: &str, prefix: &str) -> bool {
    line.get(..prefix.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(prefix))
}

fn strip_prefix_ci<'a>(line: &'a str, prefix: &str) -> Option<&'a str> {
    if starts_with_ci(line, prefix) {
        line.get(prefix.len()..)
    } else {
        None
    }
}

mod wire;

#[cfg(test)]
mod tests;
