//! `run_call` end to end against a small mock bridge over real sockets: it detects the
//! caller's turns with an energy VAD, answers with a tone in the asked playout format, clears
//! on barge-in, and records what the simulated module sent.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;

use super::*;

/// How the mock answers.
#[derive(Clone, Copy, PartialEq)]
enum Answer {
    Binary,
    StreamAudio,
    File,
}

#[derive(Clone)]
struct MockConfig {
    answer: Answer,
    answer_ms: u64,
    clear: &'static str,
    /// Close the first connection with this code after this many binary messages.
    close_after: Option<(usize, u16)>,
    /// The uplink is stereo: listen to the left (caller) channel only.
    stereo: bool,
}

impl MockConfig {
    fn new(answer: Answer) -> Self {
        MockConfig {
            answer,
            answer_ms: 1000,
            clear: r#"{"type":"clearAudio"}"#,
            close_after: None,
            stereo: false,
        }
    }
}

#[derive(Default)]
struct Seen {
    texts: Vec<String>,
    binary_sizes: Vec<usize>,
    subprotocols: Vec<Option<String>>,
    close_codes: Vec<u16>,
    connections: usize,
    /// Loudest sample on the right channel of a stereo uplink (what FreeSWITCH played).
    max_right: i16,
    /// Payloads of the pings received.
    pings: Vec<Vec<u8>>,
}

struct Mock {
    url: String,
    seen: Arc<Mutex<Seen>>,
}

async fn mock_bridge(cfg: MockConfig) -> Mock {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Seen::default()));
    let shared = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(serve(tcp, cfg.clone(), shared.clone()));
        }
    });
    Mock { url, seen }
}

// The handshake callback's error type is tungstenite's (large) HTTP response.
#[allow(clippy::result_large_err)]
async fn serve(tcp: TcpStream, cfg: MockConfig, seen: Arc<Mutex<Seen>>) {
    let _ = tcp.set_nodelay(true);
    let protocol = Arc::new(Mutex::new(None));
    let p = protocol.clone();
    let callback = move |req: &Request, mut resp: Response| {
        let asked = req
            .headers()
            .get("Sec-WebSocket-Protocol")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        if let Some(asked) = &asked {
            resp.headers_mut()
                .insert("Sec-WebSocket-Protocol", asked.parse().unwrap());
        }
        *p.lock().unwrap() = asked;
        Ok(resp)
    };
    let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(tcp, callback).await else {
        return;
    };
    let connection = {
        let mut s = seen.lock().unwrap();
        s.connections += 1;
        s.subprotocols.push(protocol.lock().unwrap().clone());
        s.connections
    };
    let rate = 16000usize; // the tests below run at 16 kHz unless they only check the uplink
    let frame = rate / 50;
    let (mut loud, mut quiet_samples, mut binaries) = (false, 0usize, 0usize);
    let mut answer: Option<(tokio::time::Instant, usize)> = None; // (start, frames sent)
    let total = (cfg.answer_ms / 20) as usize;
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    loop {
        tokio::select! {
            msg = ws.next() => {
                let Some(Ok(msg)) = msg else { return };
                match msg {
                    Message::Text(t) => seen.lock().unwrap().texts.push(t.to_string()),
                    Message::Binary(b) => {
                        seen.lock().unwrap().binary_sizes.push(b.len());
                        binaries += 1;
                        if let Some((n, code)) = cfg.close_after {
                            if connection == 1 && binaries == n {
                                let close = CloseFrame { code: CloseCode::from(code), reason: "mock".into() };
                                let _ = ws.send(Message::Close(Some(close))).await;
                                continue;
                            }
                        }
                        let samples = if cfg.stereo {
                            let all = voice_core::audio::pcm::from_le_bytes(&b);
                            let right = all.iter().skip(1).step_by(2).map(|s| s.saturating_abs()).max().unwrap_or(0);
                            let mut s = seen.lock().unwrap();
                            s.max_right = s.max_right.max(right);
                            voice_core::audio::pcm::left_of_stereo_le(&b)
                        } else {
                            voice_core::audio::pcm::from_le_bytes(&b)
                        };
                        let energy = voice_core::audio::pcm::rms(&samples);
                        if energy > 300.0 {
                            if !loud && answer.is_some() {
                                // Barge-in: clear and stop the answer.
                                answer = None;
                                let clear = if cfg.answer == Answer::StreamAudio { r#"{"type":"stopAudio"}"# } else { cfg.clear };
                                let _ = ws.send(Message::text(clear)).await;
                            }
                            loud = true;
                            quiet_samples = 0;
                        } else if loud {
                            quiet_samples += samples.len();
                            if quiet_samples >= rate / 2 {
                                loud = false;
                                answer = Some((tokio::time::Instant::now(), 0));
                            }
                        }
                    }
                    Message::Ping(payload) => seen.lock().unwrap().pings.push(payload.to_vec()),
                    Message::Close(frame) => {
                        seen.lock().unwrap().close_codes.push(frame.map_or(1005, |f| u16::from(f.code)));
                    }
                    _ => {}
                }
            }
            _ = tick.tick(), if answer.is_some() => {
                let Some((start, sent)) = answer.as_mut() else { continue };
                // Keep 100 ms ahead of real time; the file mode sends 1 s chunks at once.
                let due = (((start.elapsed().as_millis() / 20) as usize) + 5).min(total);
                while *sent < due {
                    let chunk_frames = match cfg.answer { Answer::File => 50.min(total - *sent), Answer::StreamAudio => 2.min(total - *sent), Answer::Binary => 1 };
                    let pcm = vec![4000i16; frame * chunk_frames];
                    let bytes = voice_core::audio::pcm::to_le_bytes(&pcm);
                    let msg = match cfg.answer {
                        Answer::Binary => Message::Binary(bytes.into()),
                        Answer::StreamAudio | Answer::File => Message::text(format!(
                            r#"{{"type":"streamAudio","data":{{"audioDataType":"raw","sampleRate":{rate},"audioData":"{}"}}}}"#,
                            base64::engine::general_purpose::STANDARD.encode(&bytes)
                        )),
                    };
                    if ws.send(msg).await.is_err() { return }
                    *sent += chunk_frames;
                }
                if *sent >= total { answer = None; }
            }
        }
    }
}

fn spec(url: &str, turns: usize) -> CallSpec {
    let mut spec = CallSpec::new(url);
    spec.script = vec![
        CallerTurn::new("Olá, bom dia."),
        CallerTurn::new("Quero marcar uma consulta."),
    ];
    spec.max_turns = Some(turns);
    spec.max_duration = Duration::from_secs(40);
    spec.lead_in = Duration::from_millis(200);
    spec.pause = Duration::from_millis(700);
    spec
}

fn assert_clean(r: &CallReport) {
    assert!(r.errors.is_empty(), "errors: {:#?}", r.errors);
    assert!(r.completed && r.connected, "{r:#?}");
}

#[tokio::test]
async fn binary_call_measures_each_turn() {
    let mock = mock_bridge(MockConfig::new(Answer::Binary)).await;
    let mut s = spec(&mock.url, 2);
    s.profile = ModuleProfile::AudioStreamLibwsc {
        buffer_ms: 20,
        heart_beat_secs: 1,
        offer_deflate: true,
    };
    let r = run_call(s).await;
    assert_clean(&r);
    assert_eq!(r.turns.len(), 2);
    for t in &r.turns {
        assert!(
            t.speech_end_ms.is_some() && t.first_audio_ms.is_some(),
            "{t:#?}"
        );
        assert_eq!(
            t.answer_audio_ms, 1000.0,
            "every frame of the answer was heard"
        );
        assert_eq!(t.answer_chunks, 50);
        let response = t.response_ms.unwrap();
        assert!(response > 0.0);
        assert_eq!(t.turn_latency_ms, Some(response - 500.0));
        assert!(t.max_lead_ms > 0.0);
    }
    let seen = mock.seen.lock().unwrap();
    let meta: serde_json::Value = serde_json::from_str(&seen.texts[0]).unwrap();
    assert_eq!(meta["uuid"], r.call_uuid.as_str());
    assert!(seen.binary_sizes.iter().all(|&n| n == 640));
    assert_eq!(seen.subprotocols, [None]);
    assert_eq!(seen.close_codes, [1000]);
    assert!(
        r.pings_sent >= 2 && r.pongs_received + 1 >= r.pings_sent,
        "{r:#?}"
    );
    assert!(!seen.pings.is_empty() && seen.pings.iter().all(|p| p == b"ping"));
}

#[tokio::test]
async fn fork_stereo_sends_variable_frames_and_a_final_empty_one() {
    let mut cfg = MockConfig::new(Answer::Binary);
    cfg.clear = r#"{"type":"killAudio"}"#;
    cfg.stereo = true;
    let mock = mock_bridge(cfg).await;
    let mut s = spec(&mock.url, 1);
    s.profile = ModuleProfile::AudioFork;
    s.mix = Mix::Stereo;
    let r = run_call(s).await;
    assert_clean(&r);
    assert_eq!(r.clear, "killAudio");
    assert_eq!(r.turns[0].answer_audio_ms, 1000.0);
    let seen = mock.seen.lock().unwrap();
    assert_eq!(seen.subprotocols, [Some("audio.drachtio.org".to_string())]);
    assert_eq!(
        seen.binary_sizes.last(),
        Some(&0),
        "graceful end: a zero-length frame"
    );
    let sizes: std::collections::BTreeSet<_> = seen.binary_sizes.iter().collect();
    assert!(sizes.len() > 3, "variable sizes: {sizes:?}");
    assert!(
        seen.binary_sizes.iter().all(|n| n % 4 == 0),
        "whole stereo samples"
    );
    assert_eq!(seen.close_codes, [1000]);
    assert_eq!(
        seen.max_right, 4000,
        "what FreeSWITCH played is on the right channel"
    );
}

#[tokio::test]
async fn barge_in_is_cleared_and_timed() {
    let mut cfg = MockConfig::new(Answer::Binary);
    cfg.answer_ms = 4000;
    let mock = mock_bridge(cfg).await;
    let mut s = spec(&mock.url, 2);
    s.script[1].barge_in_after_ms = Some(600);
    let r = run_call(s).await;
    assert_clean(&r);
    assert!(r.turns[1].barged_in);
    let first = &r.turns[0];
    assert!(first.interrupted_at_ms.is_some());
    assert!(first.clear_after_barge_in_ms.is_some(), "{first:#?}");
    assert!(
        first.answer_audio_ms < 4000.0,
        "the rest of the answer was dropped"
    );
    assert_eq!(r.clears_by_kind.get("clearAudio"), Some(&1));
}

#[tokio::test]
async fn stream_audio_chunks_play_in_real_time() {
    let mock = mock_bridge(MockConfig::new(Answer::StreamAudio)).await;
    let mut s = spec(&mock.url, 1);
    s.playout = Playout::StreamAudio;
    let r = run_call(s).await;
    assert_clean(&r);
    assert_eq!(r.turns[0].answer_audio_ms, 1000.0);
    assert_eq!(r.turns[0].answer_chunks, 25);
}

#[tokio::test]
async fn audio_in_a_format_the_build_does_not_play_is_a_violation() {
    let mock = mock_bridge(MockConfig::new(Answer::StreamAudio)).await;
    // The bridge sends streamAudio but the simulated build plays binary only.
    let mut s = spec(&mock.url, 1);
    s.answer_timeout = Duration::from_secs(3);
    let r = run_call(s).await;
    assert!(
        r.error_counts
            .contains_key(&ErrorKind::UnexpectedAudioMessage),
        "{:?}",
        r.error_counts
    );
    assert!(r.error_counts.contains_key(&ErrorKind::NoAnswer));
}

#[tokio::test]
async fn ixwebsocket_reconnects_and_resends_the_metadata() {
    let mut cfg = MockConfig::new(Answer::Binary);
    cfg.close_after = Some((30, 1000));
    let mock = mock_bridge(cfg).await;
    let mut s = spec(&mock.url, 1);
    s.profile = ModuleProfile::ixws();
    let r = run_call(s).await;
    assert_eq!(r.connections, 2, "{r:#?}");
    assert_eq!(r.server_close_codes, [1000]);
    assert!(r.completed);
    let seen = mock.seen.lock().unwrap();
    let metas: Vec<&String> = seen
        .texts
        .iter()
        .filter(|t| t.contains(&r.call_uuid))
        .collect();
    assert_eq!(metas.len(), 2, "metadata resent on reconnect");
}

#[tokio::test]
async fn libwsc_does_not_survive_a_server_close() {
    let mut cfg = MockConfig::new(Answer::Binary);
    cfg.close_after = Some((10, 1011));
    let mock = mock_bridge(cfg).await;
    let r = run_call(spec(&mock.url, 1)).await;
    assert!(!r.completed);
    assert!(r.error_counts.contains_key(&ErrorKind::BadCloseCode));
    assert!(r.error_counts.contains_key(&ErrorKind::UnexpectedClose));
    assert_eq!(r.connections, 1);
}

#[tokio::test]
async fn connect_failure_is_reported() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let r = run_call(spec(&format!("ws://127.0.0.1:{port}"), 1)).await;
    assert!(!r.connected && !r.completed);
    assert!(
        r.error_counts.contains_key(&ErrorKind::ConnectFailed),
        "{:?}",
        r.errors
    );
}

/// Reads one ESL message: headers, then a Content-Length body.
async fn read_esl(
    reader: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
) -> (Vec<(String, String)>, String) {
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).await.unwrap();
        let line = line.trim_end();
        if line.is_empty() {
            if headers.is_empty() {
                continue;
            }
            break;
        }
        if let Some((k, v)) = line.split_once(": ") {
            headers.push((k.to_string(), v.to_string()));
        }
    }
    let len = headers
        .iter()
        .find(|(k, _)| k == "Content-Length")
        .map_or(0, |(_, v)| v.parse().unwrap());
    let mut body = vec![0u8; len];
    reader.read_exact(&mut body).await.unwrap();
    (headers, String::from_utf8(body).unwrap())
}

/// The bridge's ESL side for file playout: on every `::play` event, `uuid_broadcast` the file.
/// Returns the events it saw.
async fn esl_player(fs: &FakeFreeswitch) -> Arc<Mutex<Vec<String>>> {
    let events = Arc::new(Mutex::new(Vec::new()));
    let seen = events.clone();
    let tcp = TcpStream::connect(fs.esl_addr()).await.unwrap();
    let (read, mut write) = tcp.into_split();
    let mut reader = BufReader::new(read);
    read_esl(&mut reader).await; // auth/request
    write.write_all(b"auth ClueCon\n\n").await.unwrap();
    read_esl(&mut reader).await;
    write
        .write_all(b"event plain CUSTOM mod_audio_stream::play\n\n")
        .await
        .unwrap();
    read_esl(&mut reader).await;
    tokio::spawn(async move {
        loop {
            let (_, event) = read_esl(&mut reader).await;
            if event.contains("Event-Name: CUSTOM") {
                seen.lock().unwrap().push(event.clone());
                let (head, body) = event.split_once("\n\n").unwrap_or((&event, ""));
                let uuid = head
                    .lines()
                    .find_map(|l| l.strip_prefix("Unique-ID: "))
                    .unwrap()
                    .to_string();
                let body = body.trim_start_matches(|c| c != '{');
                let file: serde_json::Value = serde_json::from_str(body).unwrap();
                let cmd = format!(
                    "api uuid_broadcast {uuid} {} aleg\n\n",
                    file["file"].as_str().unwrap()
                );
                write.write_all(cmd.as_bytes()).await.unwrap();
            }
        }
    });
    events
}

#[tokio::test]
async fn file_playout_goes_through_temp_files_and_esl() {
    let fs = FakeFreeswitch::start("ClueCon").await.unwrap();
    let events = esl_player(&fs).await;
    let mut cfg = MockConfig::new(Answer::File);
    cfg.answer_ms = 2000;
    let mock = mock_bridge(cfg).await;
    let mut s = spec(&mock.url, 1);
    s.playout = Playout::File;
    s.freeswitch = Some(fs.clone());
    let r = run_call(s).await;
    assert_clean(&r);
    assert_eq!(r.turns[0].answer_audio_ms, 2000.0);
    assert_eq!(r.turns[0].answer_chunks, 2, "two 1 s files");
    assert_eq!(r.events_fired.get("mod_audio_stream::play"), Some(&2));
    assert_eq!(r.esl_commands.get("uuid_broadcast"), Some(&2));
    assert!(fs
        .commands()
        .iter()
        .all(|c| c.starts_with("uuid_broadcast ")));
    let events = events.lock().unwrap();
    let first = &events[0];
    assert!(
        first.contains("Event-Subclass: mod_audio_stream%3A%3Aplay"),
        "{first}"
    );
    assert!(first.contains(&format!("Unique-ID: {}", r.call_uuid)));
    assert!(first.contains("variable_domain_name: sim.example.com"));
    let body = &first[first.find('{').unwrap()..];
    let expected = format!(
        r#"{{"audioDataType":"raw","sampleRate":16000,"file":"{}/{}_0.tmp.r16"}}"#,
        fs.temp_dir().display(),
        r.call_uuid
    );
    assert_eq!(body, expected, "body: data without audioData, plus file");
    let left: Vec<_> = std::fs::read_dir(fs.temp_dir()).unwrap().collect();
    assert!(
        left.is_empty(),
        "the module deletes its files when the stream stops"
    );
}
