//! `FakeFreeswitch`: the switch side of the file playout modes. It owns a `FakeEslServer`,
//! keeps the temp dir the modules write into, publishes their CUSTOM events with the channel
//! headers, and runs the channel API commands the bridge sends (`uuid_broadcast`,
//! `uuid_break`, `uuid_kill`, `uuid_transfer`, …) against the simulated calls, with
//! FreeSWITCH's reply strings (`mod_commands.c`).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU32;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use tokio::sync::mpsc;

use super::files::rate_of_raw_path;
use super::player::{PlayChunk, Source};
use crate::fake_esl::{EslBackend, FakeEslServer, FakeEvent};

/// What the switch tells a simulated channel to do.
#[derive(Debug)]
pub enum ChannelCommand {
    /// `uuid_broadcast`: play this file after what is queued (or why it cannot be played).
    Broadcast {
        /// The path given.
        path: String,
        /// The file's audio at the call rate, or the reason it cannot play.
        chunk: Result<PlayChunk, String>,
        /// When the command ran.
        at: Instant,
    },
    /// `uuid_break [all]`.
    Break {
        /// `all`: also drop queued broadcasts.
        all: bool,
        /// When the command ran.
        at: Instant,
    },
    /// `uuid_kill`: hang up.
    Kill {
        /// The hangup cause given.
        cause: String,
    },
    /// `uuid_transfer`: leave the AI for this destination.
    Transfer {
        /// Everything after the UUID.
        target: String,
    },
    /// Any other command that named this channel (counted in the report).
    Other {
        /// The command name.
        name: String,
    },
}

impl ChannelCommand {
    /// The API command's name, for counting.
    pub fn name(&self) -> &str {
        match self {
            ChannelCommand::Broadcast { .. } => "uuid_broadcast",
            ChannelCommand::Break { .. } => "uuid_break",
            ChannelCommand::Kill { .. } => "uuid_kill",
            ChannelCommand::Transfer { .. } => "uuid_transfer",
            ChannelCommand::Other { name } => name,
        }
    }
}

struct Channel {
    domain: String,
    rate: u32,
    keep_pcm: bool,
    tx: mpsc::UnboundedSender<ChannelCommand>,
}

#[derive(Default)]
struct Channels {
    map: Mutex<HashMap<String, Channel>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

struct Inner {
    esl: FakeEslServer,
    channels: Arc<Channels>,
    temp_dir: PathBuf,
    password: String,
    fork_counter: Arc<AtomicU32>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.temp_dir);
    }
}

/// A simulated FreeSWITCH: ESL server, temp dir and channel registry. Cheap to clone.
#[derive(Clone)]
pub struct FakeFreeswitch {
    inner: Arc<Inner>,
}

impl FakeFreeswitch {
    /// Starts the ESL server on `127.0.0.1:0` with `password` and makes a fresh temp dir.
    pub async fn start(password: &str) -> anyhow::Result<Self> {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let temp_dir =
            std::env::temp_dir().join(format!("voice-sim-fs-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&temp_dir)
            .with_context(|| format!("creating {}", temp_dir.display()))?;
        let channels = Arc::new(Channels::default());
        let esl = FakeEslServer::start(password, channels.clone()).await?;
        Ok(FakeFreeswitch {
            inner: Arc::new(Inner {
                esl,
                channels,
                temp_dir,
                password: password.to_string(),
                fork_counter: Arc::default(),
            }),
        })
    }

    /// Where the ESL server listens.
    pub fn esl_addr(&self) -> SocketAddr {
        self.inner.esl.addr()
    }

    /// The ESL password.
    pub fn password(&self) -> &str {
        &self.inner.password
    }

    /// FreeSWITCH's temp dir, where the modules write `<uuid>_<n>.tmp.rNN` files.
    pub fn temp_dir(&self) -> &Path {
        &self.inner.temp_dir
    }

    /// mod_audio_fork's module-wide file counter.
    pub fn fork_counter(&self) -> Arc<AtomicU32> {
        self.inner.fork_counter.clone()
    }

    /// Every API command the bridge ran, in order.
    pub fn commands(&self) -> Vec<String> {
        self.inner.esl.commands()
    }

    /// The underlying ESL server (e.g. to drop its connections in a test).
    pub fn esl(&self) -> &FakeEslServer {
        &self.inner.esl
    }

    /// Channels currently up.
    pub fn channel_count(&self) -> usize {
        lock(&self.inner.channels.map).len()
    }

    /// Fires a CUSTOM event for channel `uuid` with the headers FreeSWITCH adds
    /// (`Unique-ID`, `Channel-Name`, `variable_domain_name`, …).
    pub fn fire_channel_event(&self, uuid: &str, subclass: &str, body: &str) {
        let domain = lock(&self.inner.channels.map)
            .get(uuid)
            .map(|c| c.domain.clone())
            .unwrap_or_default();
        let mut event = FakeEvent::custom(subclass)
            .header("Channel-Name", &format!("sofia/internal/1000@{domain}"))
            .header("Unique-ID", uuid)
            .header("Channel-Call-UUID", uuid)
            .header("Call-Direction", "inbound")
            .header("Caller-Caller-ID-Number", "1000")
            .header("Caller-Destination-Number", "9999")
            .header("variable_domain_name", &domain);
        if !body.is_empty() {
            event = event.body(body);
        }
        self.inner.esl.publish(event);
    }

    /// Registers a channel; commands for it arrive on the receiver until the guard drops.
    pub fn attach(
        &self,
        uuid: &str,
        domain: &str,
        rate: u32,
        keep_pcm: bool,
    ) -> (ChannelGuard, mpsc::UnboundedReceiver<ChannelCommand>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let channel = Channel {
            domain: domain.to_string(),
            rate,
            keep_pcm,
            tx,
        };
        lock(&self.inner.channels.map).insert(uuid.to_string(), channel);
        (
            ChannelGuard {
                switch: self.clone(),
                uuid: uuid.to_string(),
            },
            rx,
        )
    }
}

/// Keeps a channel registered; hangs it up (unregisters) when dropped.
pub struct ChannelGuard {
    switch: FakeFreeswitch,
    uuid: String,
}

impl Drop for ChannelGuard {
    fn drop(&mut self) {
        lock(&self.switch.inner.channels.map).remove(&self.uuid);
    }
}

impl EslBackend for Channels {
    fn api(&self, command: &str, args: &str) -> String {
        let args = args.trim();
        let argv: Vec<&str> = args.split_whitespace().collect();
        let uuid = argv.first().copied().unwrap_or("");
        let map = lock(&self.map);
        let channel = map.get(uuid);
        let send = |c: &Channel, cmd: ChannelCommand| {
            let _ = c.tx.send(cmd);
        };
        match command {
            "uuid_broadcast" => {
                if argv.len() < 2 {
                    return "-USAGE: <uuid> <path> [aleg|bleg|holdb|both]\n".into();
                }
                // switch_ivr_broadcast fails silently for an unknown channel: the reply is
                // the same either way.
                if let Some(c) = channel {
                    let path = argv[1].to_string();
                    let chunk = read_broadcast(&path, c.rate, c.keep_pcm);
                    send(
                        c,
                        ChannelCommand::Broadcast {
                            path,
                            chunk,
                            at: Instant::now(),
                        },
                    );
                }
                "+OK Message Sent\n".into()
            }
            "uuid_break" => {
                if args.is_empty() {
                    return "-USAGE: <uuid> [all]\n".into();
                }
                let Some(c) = channel else {
                    return "-ERR No Such Channel!\n".into();
                };
                let flag = args.split_once(' ').map(|(_, f)| f).unwrap_or("");
                send(
                    c,
                    ChannelCommand::Break {
                        all: flag.contains("all"),
                        at: Instant::now(),
                    },
                );
                String::new()
            }
            "uuid_kill" => {
                let Some(c) = channel else {
                    return "-ERR No such channel!\n".into();
                };
                let cause = argv
                    .get(1)
                    .copied()
                    .unwrap_or("NORMAL_CLEARING")
                    .to_string();
                send(c, ChannelCommand::Kill { cause });
                "+OK\n".into()
            }
            "uuid_transfer" => {
                if argv.len() < 2 {
                    return "-USAGE: <uuid> [-bleg|-both] <dest-exten> [<dialplan>] [<context>]\n"
                        .into();
                }
                let Some(c) = channel else {
                    return "-ERR No such channel!\n".into();
                };
                send(
                    c,
                    ChannelCommand::Transfer {
                        target: argv[1..].join(" "),
                    },
                );
                "+OK\n".into()
            }
            "uuid_exists" => if channel.is_some() { "true" } else { "false" }.into(),
            "uuid_getvar" => {
                let Some(c) = channel else {
                    return "-ERR No such channel!\n".into();
                };
                send(
                    c,
                    ChannelCommand::Other {
                        name: command.to_string(),
                    },
                );
                match argv.get(1).copied() {
                    Some("domain_name") => c.domain.clone(),
                    Some(_) => "_undef_".into(),
                    None => "-USAGE: <uuid> <var>\n".into(),
                }
            }
            "uuid_setvar" | "uuid_send_message" | "uuid_answer" => {
                let Some(c) = channel else {
                    return "-ERR No such channel!\n".into();
                };
                send(
                    c,
                    ChannelCommand::Other {
                        name: command.to_string(),
                    },
                );
                "+OK\n".into()
            }
            other => format!("-ERR {other} Command not found!\n"),
        }
    }
}

/// Reads a file FreeSWITCH is asked to play, as audio at the call rate.
fn read_broadcast(path: &str, call_rate: u32, keep_pcm: bool) -> Result<PlayChunk, String> {
    let file = match path.split_once("::") {
        Some(("playback", file)) => file,
        Some((app, _)) => return Err(format!("broadcast of application {app:?} is not simulated")),
        None => path,
    };
    let bytes = std::fs::read(file).map_err(|e| format!("{file}: {e}"))?;
    let (rate, samples) = match rate_of_raw_path(Path::new(file)) {
        Some(rate) => (rate, voice_core::audio::pcm::from_le_bytes(&bytes)),
        None if file.ends_with(".wav") => {
            crate::speech::parse_wav(&bytes).map_err(|e| format!("{file}: {e}"))?
        }
        None => return Err(format!("{file}: not a raw .rNN or .wav file")),
    };
    let pcm = if rate == call_rate {
        samples
    } else {
        let mut resampler =
            voice_core::audio::Resampler::new(rate, call_rate).map_err(|e| e.to_string())?;
        let mut out = Vec::with_capacity(samples.len() * call_rate as usize / rate as usize + 64);
        resampler.process(&samples, &mut out);
        resampler.flush(&mut out);
        // The resampler drops its start-up delay; keep the file's true duration.
        out.resize(samples.len() * call_rate as usize / rate as usize, 0);
        out
    };
    Ok(PlayChunk {
        samples: pcm.len(),
        pcm: keep_pcm.then_some(pcm),
        source: Source::File,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn switch() -> FakeFreeswitch {
        FakeFreeswitch::start("ClueCon").await.unwrap()
    }

    #[tokio::test]
    async fn broadcast_reads_the_file_and_queues_it() {
        let fs = switch().await;
        let (_guard, mut rx) = fs.attach("call-1", "acme.example", 16000, true);
        let path = fs.temp_dir().join("call-1_0.tmp.r16");
        std::fs::write(&path, voice_core::audio::pcm::to_le_bytes(&[5i16; 1600])).unwrap();
        let reply = fs
            .inner
            .channels
            .api("uuid_broadcast", &format!("call-1 {} aleg", path.display()));
        assert_eq!(reply, "+OK Message Sent\n");
        match rx.recv().await.unwrap() {
            ChannelCommand::Broadcast { chunk: Ok(c), .. } => {
                assert_eq!(c.samples, 1600);
                assert_eq!(c.source, Source::File);
                assert_eq!(c.pcm.unwrap()[0], 5);
            }
            other => panic!("{other:?}"),
        }
        // A file at another rate is resampled to the call rate.
        let path8 = fs.temp_dir().join("call-1_1.tmp.r8");
        std::fs::write(&path8, voice_core::audio::pcm::to_le_bytes(&[0i16; 800])).unwrap();
        fs.inner
            .channels
            .api("uuid_broadcast", &format!("call-1 {}", path8.display()));
        match rx.recv().await.unwrap() {
            ChannelCommand::Broadcast { chunk: Ok(c), .. } => assert_eq!(c.samples, 1600),
            other => panic!("{other:?}"),
        }
        // A missing file is an error for the call, not for the API reply.
        let reply = fs
            .inner
            .channels
            .api("uuid_broadcast", "call-1 /nonexistent/x.r16 aleg");
        assert_eq!(reply, "+OK Message Sent\n");
        assert!(matches!(
            rx.recv().await.unwrap(),
            ChannelCommand::Broadcast { chunk: Err(_), .. }
        ));
    }

    #[tokio::test]
    async fn break_kill_and_unknown_channels() {
        let fs = switch().await;
        let (guard, mut rx) = fs.attach("call-2", "acme.example", 8000, false);
        let api = |c: &str, a: &str| fs.inner.channels.api(c, a);
        assert_eq!(api("uuid_break", "call-2 all"), "");
        assert!(matches!(
            rx.recv().await.unwrap(),
            ChannelCommand::Break { all: true, .. }
        ));
        assert_eq!(api("uuid_break", "call-2"), "");
        assert!(matches!(
            rx.recv().await.unwrap(),
            ChannelCommand::Break { all: false, .. }
        ));
        assert_eq!(api("uuid_break", "nope all"), "-ERR No Such Channel!\n");
        assert_eq!(api("uuid_break", ""), "-USAGE: <uuid> [all]\n");
        assert_eq!(
            api("uuid_broadcast", "call-2"),
            "-USAGE: <uuid> <path> [aleg|bleg|holdb|both]\n"
        );
        assert_eq!(api("uuid_exists", "call-2"), "true");
        assert_eq!(api("uuid_getvar", "call-2 domain_name"), "acme.example");
        assert!(matches!(
            rx.recv().await.unwrap(),
            ChannelCommand::Other { .. }
        ));
        assert_eq!(
            api("uuid_transfer", "call-2 1001 XML acme.example"),
            "+OK\n"
        );
        match rx.recv().await.unwrap() {
            ChannelCommand::Transfer { target } => assert_eq!(target, "1001 XML acme.example"),
            other => panic!("{other:?}"),
        }
        assert_eq!(api("uuid_kill", "call-2"), "+OK\n");
        assert!(matches!(
            rx.recv().await.unwrap(),
            ChannelCommand::Kill { .. }
        ));
        assert_eq!(api("show", "channels"), "-ERR show Command not found!\n");
        drop(guard);
        assert_eq!(fs.channel_count(), 0);
        assert_eq!(api("uuid_exists", "call-2"), "false");
        assert_eq!(api("uuid_kill", "call-2"), "-ERR No such channel!\n");
    }

    #[tokio::test]
    async fn temp_dir_goes_away_with_the_switch() {
        let fs = switch().await;
        let dir = fs.temp_dir().to_path_buf();
        assert!(dir.is_dir());
        drop(fs);
        assert!(!dir.exists());
    }
}
