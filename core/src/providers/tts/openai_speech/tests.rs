//! The client against a minimal `POST /v1/audio/speech` server on a real socket. The
//! server is raw HTTP/1.1 so each test controls exactly how the body is cut (odd chunk
//! sizes, a cut mid-body, a stall); it checks every request against providers.md §6.2
//! and answers a violation with a 400, which fails the test.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use super::*;
use crate::config::Secret;
use crate::providers::tts::TtsEvent;

const KEY: &str = "sk-test-0123456789";
/// Hang guard only.
const WAIT: Duration = Duration::from_secs(5);

/// How the server answers one request.
#[derive(Clone)]
enum Reply {
    /// 200 with `audio_for(input)`, in chunks of `chunk` bytes, after `delay_ms`.
    Audio { chunk: usize, delay_ms: u64 },
    /// This status and body.
    Status(u16, &'static str),
    /// 200 with the first `after` bytes of the audio, then the connection drops.
    Cut { after: usize },
    /// 200 with the first `after` bytes, then nothing (connection held open).
    Stall { after: usize },
    /// 200 with a JSON body instead of audio.
    Json,
}

/// What the server saw, in order: `start <input>`, `end <input>`, `aborted <input>`.
struct Server {
    url: String,
    log: Arc<Mutex<Vec<String>>>,
    events: mpsc::UnboundedReceiver<String>,
}

impl Server {
    fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// Waits for the server to log `line`.
    async fn until(&mut self, line: &str) {
        let wait = async {
            while let Some(l) = self.events.recv().await {
                if l == line {
                    return;
                }
            }
        };
        tokio::time::timeout(WAIT, wait).await.expect(line);
    }
}

/// The test audio of `input`: 10 ms (240 samples) per character, a ramp that differs
/// per text, so order and byte alignment both show.
fn audio_for(input: &str) -> Vec<i16> {
    let seed = input
        .bytes()
        .fold(7i32, |h, b| h.wrapping_mul(31).wrapping_add(b as i32));
    (0..input.chars().count() * 240)
        .map(|i| ((seed.wrapping_add(i as i32 * 97)) % 30_000) as i16)
        .collect()
}

async fn server(reply: impl Fn(&str) -> Reply + Send + Sync + 'static) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1/audio/speech", listener.local_addr().unwrap());
    let log = Arc::new(Mutex::new(Vec::new()));
    let (tx, events) = mpsc::unbounded_channel();
    let reply = Arc::new(reply);
    let shared_log = log.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (reply, log, tx) = (reply.clone(), shared_log.clone(), tx.clone());
            tokio::spawn(async move {
                let note = |line: String| {
                    log.lock().unwrap().push(line.clone());
                    let _ = tx.send(line);
                };
                serve(tcp, &*reply, note).await;
            });
        }
    });
    Server { url, log, events }
}

async fn serve(
    mut tcp: TcpStream,
    reply: &(dyn Fn(&str) -> Reply + Send + Sync),
    note: impl Fn(String),
) {
    let Some((head, body)) = read_request(&mut tcp).await else {
        return;
    };
    let input = match check_request(&head, &body) {
        Ok(input) => input,
        Err(why) => {
            note(format!("violation {why}"));
            let body =
                format!(r#"{{"error":{{"message":"{why}","type":"invalid_request_error"}}}}"#);
            respond(&mut tcp, 400, "application/json", body.as_bytes()).await;
            return;
        }
    };
    note(format!("start {input}"));
    let audio = crate::audio::pcm::to_le_bytes(&audio_for(&input));
    let sent = match reply(&input) {
        Reply::Audio { chunk, delay_ms } => {
            tokio::time::sleep(Duration::from_millis(delay_ms)).await;
            stream_body(&mut tcp, &audio, chunk, true).await
        }
        Reply::Status(status, body) => {
            respond(&mut tcp, status, "application/json", body.as_bytes()).await;
            true
        }
        Reply::Cut { after } => {
            stream_body(&mut tcp, &audio[..after], after, false).await;
            note(format!("cut {input}"));
            return;
        }
        Reply::Stall { after } => {
            stream_body(&mut tcp, &audio[..after], after, false).await;
            let mut rest = [0u8; 1];
            let _ = tcp.read(&mut rest).await; // until the client gives up
            note(format!("aborted {input}"));
            return;
        }
        Reply::Json => {
            respond(&mut tcp, 200, "application/json", b"{\"ok\":true}").await;
            true
        }
    };
    note(format!("{} {input}", if sent { "end" } else { "aborted" }));
}

/// Headers (lowercased names) and body of one request.
async fn read_request(tcp: &mut TcpStream) -> Option<(Vec<(String, String)>, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let n = tcp.read(&mut chunk).await.ok().filter(|&n| n > 0)?;
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8(buf[..head_end].to_vec()).ok()?;
    let mut lines = head.split("\r\n");
    let request_line = lines.next()?.to_string();
    let mut headers = vec![(":request".to_string(), request_line)];
    for line in lines {
        let (k, v) = line.split_once(':')?;
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
    }
    let len: usize = header(&headers, "content-length")?.parse().ok()?;
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < len {
        let n = tcp.read(&mut chunk).await.ok().filter(|&n| n > 0)?;
        body.extend_from_slice(&chunk[..n]);
    }
    Some((headers, body))
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// The input of a request that follows §6.2, else why not.
fn check_request(headers: &[(String, String)], body: &[u8]) -> Result<String, String> {
    if header(headers, ":request") != Some("POST /v1/audio/speech HTTP/1.1") {
        return Err(format!(
            "bad request line {:?}",
            header(headers, ":request")
        ));
    }
    if header(headers, "authorization") != Some(&format!("Bearer {KEY}")) {
        return Err("missing or wrong bearer key".into());
    }
    if !header(headers, "content-type").is_some_and(|c| c.starts_with("application/json")) {
        return Err("body is not JSON".into());
    }
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("bad JSON: {e}"))?;
    let text = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    if text("model").is_empty() || text("voice").is_empty() {
        return Err("model and voice are required".into());
    }
    if text("response_format") != "pcm" {
        return Err("response_format must be pcm".into());
    }
    if v.get("speed")
        .and_then(Value::as_f64)
        .is_some_and(|s| !(0.25..=4.0).contains(&s))
    {
        return Err("speed out of range".into());
    }
    if text("model").starts_with("tts-1") && v.get("instructions").is_some() {
        return Err("instructions do not work with tts-1".into());
    }
    let input = text("input");
    if input.is_empty() || input.chars().count() > 4096 {
        return Err("input must be 1-4096 characters".into());
    }
    Ok(input)
}

async fn respond(tcp: &mut TcpStream, status: u16, content_type: &str, body: &[u8]) {
    let head = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = tcp.write_all(head.as_bytes()).await;
    let _ = tcp.write_all(body).await;
}

/// A chunked 200 body, `chunk` bytes per HTTP chunk, a moment apart so the client reads
/// them separately; `finish` writes the last chunk. False when the client went away.
async fn stream_body(tcp: &mut TcpStream, audio: &[u8], chunk: usize, finish: bool) -> bool {
    let head = "HTTP/1.1 200 OK\r\nContent-Type: audio/pcm\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
    if tcp.write_all(head.as_bytes()).await.is_err() {
        return false;
    }
    for part in audio.chunks(chunk.max(1)) {
        let mut frame = format!("{:x}\r\n", part.len()).into_bytes();
        frame.extend_from_slice(part);
        frame.extend_from_slice(b"\r\n");
        if tcp.write_all(&frame).await.is_err() || tcp.flush().await.is_err() {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    !finish || tcp.write_all(b"0\r\n\r\n").await.is_ok()
}

fn speech(server: &Server, pipelined: bool) -> OpenAiSpeech {
    OpenAiSpeech::new(OpenAiSpeechConfig {
        url: server.url.clone(),
        api_key: Secret::new(KEY),
        instructions: "Fale de forma calorosa".into(),
        timeout_ms: 1000,
        pipelined,
        ..Default::default()
    })
    .unwrap()
}

/// Sends `pieces`, closes the text, and collects everything until the stream ends.
async fn speak(tts: &OpenAiSpeech, pieces: &[&str]) -> (Vec<i16>, Vec<TtsEvent>) {
    let stream = tts.open().await.unwrap();
    for p in pieces {
        stream.text.send(p.to_string()).await.unwrap();
    }
    drop(stream.text);
    collect(stream.audio).await
}

/// All audio, and the events that were not audio.
async fn collect(mut audio: mpsc::Receiver<TtsEvent>) -> (Vec<i16>, Vec<TtsEvent>) {
    let mut samples = Vec::new();
    let mut rest = Vec::new();
    let read = async {
        while let Some(ev) = audio.recv().await {
            match ev {
                TtsEvent::Audio(s) => samples.extend(s),
                other => rest.push(other),
            }
        }
    };
    tokio::time::timeout(WAIT, read)
        .await
        .expect("the stream never ended");
    (samples, rest)
}

fn concat(pieces: &[&str]) -> Vec<i16> {
    pieces.iter().flat_map(|p| audio_for(p)).collect()
}

fn no_violations(server: &Server) {
    let bad: Vec<String> = server
        .log()
        .into_iter()
        .filter(|l| l.starts_with("violation"))
        .collect();
    assert!(bad.is_empty(), "{bad:?}");
}

#[tokio::test]
async fn pieces_play_in_order_even_when_a_later_one_is_ready_first() {
    let pieces = ["Olá, tudo bem?", "Posso ajudar.", "Até logo."];
    // The first piece is slow to start: the second is rendered meanwhile (pipelining).
    let mut srv = server(|input| Reply::Audio {
        chunk: 4800,
        delay_ms: if input.starts_with("Olá") { 300 } else { 0 },
    })
    .await;
    let tts = speech(&srv, true);
    assert_eq!((tts.name(), tts.sample_rate()), ("openai_speech", 24_000));
    let (samples, rest) = speak(&tts, &pieces).await;
    assert_eq!(rest, vec![TtsEvent::Done]);
    assert_eq!(samples, concat(&pieces));
    srv.until("end Até logo.").await;
    no_violations(&srv);
    let log = srv.log();
    let at = |l: &str| log.iter().position(|x| x == l).unwrap();
    assert!(
        at("start Posso ajudar.") < at("end Olá, tudo bem?"),
        "{log:?}"
    );
}

#[tokio::test]
async fn without_pipelining_one_request_at_a_time() {
    let pieces = ["Um dois.", "Três quatro."];
    let srv = server(|_| Reply::Audio {
        chunk: 999,
        delay_ms: 0,
    })
    .await;
    let (samples, rest) = speak(&speech(&srv, false), &pieces).await;
    assert_eq!(rest, vec![TtsEvent::Done]);
    assert_eq!(samples, concat(&pieces));
    let log = srv.log();
    assert_eq!(
        log,
        [
            "start Um dois.",
            "end Um dois.",
            "start Três quatro.",
            "end Três quatro."
        ]
    );
}

#[tokio::test]
async fn odd_byte_chunks_are_reassembled_exactly() {
    let pieces = ["Uma frase com algumas palavras.", "Outra."];
    let srv = server(|_| Reply::Audio {
        chunk: 333,
        delay_ms: 0,
    })
    .await;
    let (samples, rest) = speak(&speech(&srv, true), &pieces).await;
    assert_eq!(rest, vec![TtsEvent::Done]);
    assert_eq!(samples.len(), concat(&pieces).len());
    assert_eq!(samples, concat(&pieces));
}

#[tokio::test]
async fn a_401_is_refused_and_the_key_stays_out() {
    let body = r#"{"error":{"message":"Incorrect API key provided: sk-test-***6789. You can find your API key at https://platform.openai.com/account/api-keys.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}"#;
    let srv = server(move |_| Reply::Status(401, body)).await;
    let (samples, rest) = speak(&speech(&srv, true), &["Olá."]).await;
    assert!(samples.is_empty());
    let [TtsEvent::Error(ProviderError::Refused(m))] = rest.as_slice() else {
        panic!("{rest:?}");
    };
    assert!(m.contains("401") && m.contains("invalid_api_key"), "{m}");
    assert!(!m.contains("sk-") && !m.contains("6789"), "{m}");
}

#[tokio::test]
async fn a_500_is_unavailable() {
    let body = r#"{"error":{"message":"The server had an error","type":"server_error"}}"#;
    let srv = server(move |_| Reply::Status(500, body)).await;
    let (_, rest) = speak(&speech(&srv, true), &["Olá."]).await;
    assert!(
        matches!(rest.as_slice(), [TtsEvent::Error(ProviderError::Unavailable(m))] if m.contains("500")),
        "{rest:?}"
    );
}

#[tokio::test]
async fn a_body_cut_mid_stream_is_an_error_after_the_audio_so_far() {
    let pieces = ["Uma frase bem longa para cortar.", "Nunca dita."];
    let srv = server(|input| {
        if input.starts_with("Uma") {
            Reply::Cut { after: 3001 }
        } else {
            Reply::Audio {
                chunk: 4800,
                delay_ms: 0,
            }
        }
    })
    .await;
    let (samples, rest) = speak(&speech(&srv, true), &pieces).await;
    assert!(
        matches!(
            rest.as_slice(),
            [TtsEvent::Error(ProviderError::Unavailable(_))]
        ),
        "{rest:?}"
    );
    // The whole samples before the cut played; the second piece never did.
    assert_eq!(samples, audio_for(pieces[0])[..1500]);
}

#[tokio::test]
async fn a_stalled_body_times_out() {
    let mut srv = server(|_| Reply::Stall { after: 480 }).await;
    let tts = OpenAiSpeech::new(OpenAiSpeechConfig {
        url: srv.url.clone(),
        api_key: Secret::new(KEY),
        timeout_ms: 200,
        ..Default::default()
    })
    .unwrap();
    let (samples, rest) = speak(&tts, &["Olá."]).await;
    assert_eq!(rest, vec![TtsEvent::Error(ProviderError::Timeout)]);
    assert_eq!(samples.len(), 240);
    srv.until("aborted Olá.").await;
}

#[tokio::test]
async fn json_instead_of_audio_is_a_protocol_error() {
    let srv = server(|_| Reply::Json).await;
    let (_, rest) = speak(&speech(&srv, true), &["Olá."]).await;
    assert!(
        matches!(
            rest.as_slice(),
            [TtsEvent::Error(ProviderError::Protocol(_))]
        ),
        "{rest:?}"
    );
}

#[tokio::test]
async fn dropping_the_audio_aborts_the_request() {
    let long = "a".repeat(400); // 4 s of audio, sent in 2 ms steps of 10 ms
    let mut srv = server(|_| Reply::Audio {
        chunk: 480,
        delay_ms: 0,
    })
    .await;
    let stream = speech(&srv, true).open().await.unwrap();
    stream.text.send(long.clone()).await.unwrap();
    let mut audio = stream.audio;
    let first = tokio::time::timeout(WAIT, audio.recv()).await.unwrap();
    assert!(matches!(first, Some(TtsEvent::Audio(_))), "{first:?}");
    drop(audio);
    srv.until(&format!("aborted {long}")).await;
    assert!(!srv.log().contains(&format!("end {long}")));
}

#[tokio::test]
async fn an_answer_without_text_ends_at_once() {
    let srv = server(|_| Reply::Audio {
        chunk: 480,
        delay_ms: 0,
    })
    .await;
    let (samples, rest) = speak(&speech(&srv, true), &["", "  "]).await;
    assert!(samples.is_empty());
    assert_eq!(rest, vec![TtsEvent::Done]);
    assert!(srv.log().is_empty());
}

#[tokio::test]
async fn an_unreachable_server_is_unavailable_and_missing_keys_are_config() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1/audio/speech", listener.local_addr().unwrap());
    drop(listener);
    let tts = OpenAiSpeech::new(OpenAiSpeechConfig {
        url,
        api_key: Secret::new(KEY),
        ..Default::default()
    })
    .unwrap();
    let (_, rest) = speak(&tts, &["Olá."]).await;
    assert!(
        matches!(rest.as_slice(), [TtsEvent::Error(ProviderError::Unavailable(m))] if !m.contains(KEY)),
        "{rest:?}"
    );
    if std::env::var("OPENAI_API_KEY").is_ok_and(|k| !k.trim().is_empty()) {
        return;
    }
    // No key: it is built (a bridge starts without it) and every answer is refused.
    let tts = OpenAiSpeech::new(OpenAiSpeechConfig::default()).unwrap();
    let err = tts.open().await.err();
    assert!(matches!(err, Some(ProviderError::Config(_))), "{err:?}");
}
