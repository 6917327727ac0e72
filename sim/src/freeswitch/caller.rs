//! One simulated call, start to hangup, in one task.
//!
//! A 20 ms tick (scheduled from the call's start, so it cannot drift; late ticks catch up)
//! drives the caller: lead-in silence, an utterance, silence until the answer has played out
//! (+ a pause) or until the barge-in moment, the next utterance, … Each tick's frame goes
//! through the build's framer to the bridge. Whatever the bridge sends is handled as the
//! simulated build would (play, clear, file + event) and played on a real-time playhead, and
//! ESL commands for the channel arrive from the `FakeFreeswitch`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::SinkExt;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::time::{Interval, MissedTickBehavior};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;

use super::call_report::{CallReport, ErrorKind, TurnReport};
use super::call_spec::CallSpec;
use super::connection::WsStream;
use super::downlink::{Decoded, Downlink, Effect, FileSink};
use super::esl_backend::{ChannelCommand, ChannelGuard};
use super::link::{reconnect_delay, Link, LinkEvent};
use super::player::{Player, SegmentStats};
use super::profile::{frame_samples, validate_stream_url, Mix};
use super::script::{render_script, silence, Utterance};
use super::uplink::UplinkFramer;

/// Longest a single send may block before the bridge counts as stuck.
const SEND_TIMEOUT: Duration = Duration::from_secs(5);

/// Runs one call to its end and reports what it measured. Never panics on bridge input;
/// failures are in `CallReport::errors`.
pub async fn run_call(spec: CallSpec) -> CallReport {
    let mut report = CallReport {
        call_uuid: spec.call_uuid.clone(),
        domain: spec.domain.clone(),
        url: spec.stream_url(),
        profile: spec.profile.name().into(),
        rate: spec.rate,
        mix: spec.mix.name().into(),
        playout: spec.playout.name().into(),
        clear: spec.clear_kind().name().into(),
        subtracted: spec.delays,
        ..CallReport::default()
    };
    if let Err(e) = spec.validate() {
        report.error(ErrorKind::Internal, 0.0, e);
        return report;
    }
    if !spec.profile.is_fork() {
        if let Err(e) = validate_stream_url(&report.url) {
            report.error(ErrorKind::InvalidUrl, 0.0, e);
            return report;
        }
    }
    let utterances = match render_script(&spec.script, spec.rate).await {
        Ok(u) => u,
        Err(e) => {
            report.error(ErrorKind::Internal, 0.0, format!("{e:#}"));
            return report;
        }
    };
    Call::new(spec, utterances, report).run().await
}

/// Why the call ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    Duration,
    ScriptDone,
    Fatal,
    ByBridge,
}

/// Where the caller is in the script.
enum Phase {
    WaitConnect,
    LeadIn {
        until: u64,
    },
    Speaking {
        turn: usize,
        frame: usize,
    },
    Waiting {
        turn: usize,
        speech_end: Option<u64>,
    },
}

struct Call {
    spec: CallSpec,
    origin: Instant,
    frame: usize,
    utterances: Vec<Arc<Utterance>>,
    framer: UplinkFramer,
    player: Player,
    downlink: Downlink,
    report: CallReport,
    link: Link,
    channel: Option<(ChannelGuard, UnboundedReceiver<ChannelCommand>)>,
    phase: Phase,
    ending: Option<Ending>,
    /// Caller samples handed to the framer so far.
    samples_pushed: u64,
    /// (turn, samples_out at which its last speech sample has been sent).
    speech_end_due: Option<(usize, u64)>,
    /// The turn whose answer the player is accounting (`None`: before the first turn).
    segment_turn: Option<usize>,
    retries: u32,
    ever_connected: bool,
    /// Set once hangup starts: a socket failing now is not the bridge's fault.
    hanging_up: bool,
    written_files: Vec<PathBuf>,
    played: Vec<i16>,
}

impl Call {
    fn new(spec: CallSpec, utterances: Vec<Arc<Utterance>>, report: CallReport) -> Self {
        let frame = frame_samples(spec.rate);
        let keep_pcm = spec.mix != Mix::Mono;
        let channel = spec
            .freeswitch
            .as_ref()
            .map(|fs| fs.attach(&spec.call_uuid, &spec.domain, spec.rate, keep_pcm));
        let files = spec.freeswitch.as_ref().map(|fs| FileSink {
            dir: fs.temp_dir().to_path_buf(),
            uuid: spec.call_uuid.clone(),
            stream_counter: 0,
            fork_counter: fs.fork_counter(),
        });
        let downlink = Downlink::new(
            spec.playout,
            spec.profile.is_fork(),
            spec.rate,
            spec.clear_kind(),
            keep_pcm,
            files,
        );
        let link = Link::connect(
            report.url.clone(),
            spec.profile.clone(),
            spec.extra_headers.clone(),
        );
        Call {
            framer: UplinkFramer::new(&spec.profile, spec.rate, spec.mix, spec.seed),
            player: Player::new(frame, keep_pcm),
            origin: Instant::now(),
            frame,
            utterances,
            downlink,
            report,
            link,
            channel,
            phase: Phase::WaitConnect,
            ending: None,
            samples_pushed: 0,
            speech_end_due: None,
            segment_turn: None,
            retries: 0,
            ever_connected: false,
            hanging_up: false,
            written_files: Vec::new(),
            played: Vec::with_capacity(frame),
            spec,
        }
    }

    fn samples_at(&self, t: Instant) -> u64 {
        (t.saturating_duration_since(self.origin).as_nanos() * u128::from(self.spec.rate)
            / 1_000_000_000) as u64
    }

    fn now(&self) -> u64 {
        self.samples_at(Instant::now())
    }

    fn ms(&self, samples: u64) -> f64 {
        samples as f64 * 1000.0 / f64::from(self.spec.rate)
    }

    fn samples_of(&self, d: Duration) -> u64 {
        (d.as_nanos() * u128::from(self.spec.rate) / 1_000_000_000) as u64
    }

    fn error(&mut self, kind: ErrorKind, detail: impl Into<String>) {
        let at = self.ms(self.now());
        self.report.error(kind, at, detail);
        if kind.ends_call() {
            self.ending = Some(Ending::Fatal);
        }
    }

    async fn run(mut self) -> CallReport {
        let start = tokio::time::Instant::from_std(self.origin);
        let mut ticks = tokio::time::interval_at(start, Duration::from_millis(20));
        ticks.set_missed_tick_behavior(MissedTickBehavior::Burst);
        let mut pings = self
            .spec
            .profile
            .heart_beat()
            .map(|every| tokio::time::interval_at(start + every, every));
        while self.ending.is_none() {
            tokio::select! {
                tick = ticks.tick() => self.on_tick(tick.into_std()).await,
                event = self.link.next_event() => self.on_link_event(event).await,
                command = recv_command(&mut self.channel) => self.on_channel_command(command),
                _ = tick_opt(&mut pings) => self.send_ping().await,
            }
        }
        self.hang_up().await;
        self.finish()
    }

    // ---- the caller's clock -------------------------------------------------------------

    async fn on_tick(&mut self, scheduled: Instant) {
        if self.origin.elapsed() >= self.spec.max_duration {
            self.ending = Some(Ending::Duration);
            return;
        }
        let lag = scheduled.elapsed();
        let lag_ms = lag.as_secs_f64() * 1000.0;
        if lag_ms > self.report.max_tick_lag_ms {
            self.report.max_tick_lag_ms = lag_ms;
        }
        if lag > Duration::from_millis(20) {
            self.report.late_ticks += 1;
        }
        let now = self.samples_at(scheduled);
        self.player.advance_to(now);
        self.step_script(now);
        if self.ending.is_some() {
            return;
        }
        let caller = self.caller_frame();
        self.played.clear();
        if self.spec.mix != Mix::Mono {
            self.player.take_played(self.frame, &mut self.played);
        }
        self.samples_pushed += self.frame as u64;
        if let Some(message) = self.framer.push(&caller, &self.played) {
            self.send_audio(message).await;
        }
        if let Some((turn, due)) = self.speech_end_due {
            if self.framer.samples_out() >= due {
                self.speech_ended(turn, self.now());
            }
        }
    }

    fn step_script(&mut self, now: u64) {
        match self.phase {
            Phase::WaitConnect | Phase::Speaking { .. } => {}
            Phase::LeadIn { until } => {
                if now >= until {
                    self.start_turn(0, now, false);
                }
            }
            Phase::Waiting {
                turn,
                speech_end: Some(end),
            } => {
                let next = turn + 1;
                let more = self.spec.max_turns.is_none_or(|m| next < m);
                let first_audio = self.player.segment().first_audio_at;
                let barge_in = self.spec.script[next % self.spec.script.len()].barge_in_after_ms;
                if let (true, Some(after), Some(first)) = (more, barge_in, first_audio) {
                    let playing = self.player.queued_samples() > 0;
                    if playing
                        && now >= first + self.samples_of(Duration::from_millis(u64::from(after)))
                    {
                        self.start_turn(next, now, true);
                        return;
                    }
                }
                let answered = self
                    .player
                    .idle_for(now)
                    .is_some_and(|idle| idle >= self.samples_of(self.spec.pause));
                let timed_out = first_audio.is_none()
                    && now.saturating_sub(end) >= self.samples_of(self.spec.answer_timeout);
                if timed_out {
                    let waited = self.spec.answer_timeout.as_millis();
                    self.error(
                        ErrorKind::NoAnswer,
                        format!("turn {turn}: no answer audio within {waited} ms"),
                    );
                }
                if answered || timed_out {
                    if more {
                        self.start_turn(next, now, false);
                    } else {
                        self.ending = Some(Ending::ScriptDone);
                    }
                }
            }
            Phase::Waiting {
                speech_end: None, ..
            } => {}
        }
    }

    fn start_turn(&mut self, turn: usize, now: u64, barged_in: bool) {
        if barged_in {
            let at = self.ms(now);
            if let Some(previous) = self.report.turns.get_mut(turn.wrapping_sub(1)) {
                previous.interrupted_at_ms = Some(at);
            }
        }
        let utterance = &self.utterances[turn % self.utterances.len()];
        self.speech_end_due = Some((turn, self.samples_pushed + utterance.speech_samples as u64));
        self.report.turns.push(TurnReport {
            index: turn,
            caller_text: utterance.text.clone(),
            speech_start_ms: self.ms(now),
            barged_in,
            ..TurnReport::default()
        });
        self.phase = Phase::Speaking { turn, frame: 0 };
    }

    fn caller_frame(&mut self) -> bytes::Bytes {
        if let Phase::Speaking { turn, frame } = &mut self.phase {
            let utterance = &self.utterances[*turn % self.utterances.len()];
            let bytes = utterance.frame(*frame);
            *frame += 1;
            if *frame >= utterance.frames {
                self.phase = Phase::Waiting {
                    turn: *turn,
                    speech_end: None,
                };
            }
            return bytes;
        }
        silence(self.frame * 2)
    }

    /// The last sample of `turn`'s utterance has left: its answer starts now.
    fn speech_ended(&mut self, turn: usize, at: u64) {
        self.speech_end_due = None;
        let finished = self.player.start_segment(at);
        self.close_segment(finished);
        self.segment_turn = Some(turn);
        let at_ms = self.ms(at);
        if let Some(t) = self.report.turns.get_mut(turn) {
            t.speech_end_ms = Some(at_ms);
        }
        if let Phase::Waiting {
            turn: waiting,
            speech_end,
        } = &mut self.phase
        {
            if *waiting == turn {
                *speech_end = Some(at);
            }
        }
    }

    /// Folds a finished answer's playback stats into its turn.
    fn close_segment(&mut self, s: SegmentStats) {
        let rate = f64::from(self.spec.rate);
        let ms = move |n: u64| n as f64 * 1000.0 / rate;
        let Some(turn) = self.segment_turn else {
            self.report.greeting_audio_ms += ms(s.audio_samples);
            if self.report.greeting_first_audio_ms.is_none() {
                self.report.greeting_first_audio_ms = s.first_audio_at.map(ms);
            }
            return;
        };
        if s.chunks_after_clear > 0 {
            let detail = format!(
                "turn {turn}: {} chunks after the clear ({:.0} ms heard)",
                s.chunks_after_clear,
                ms(s.heard_after_clear_samples)
            );
            self.error(ErrorKind::AudioAfterClear, detail);
        }
        let total_delay = f64::from(self.spec.delays.total_ms());
        let Some(t) = self.report.turns.get_mut(turn) else {
            return;
        };
        t.first_audio_ms = s.first_audio_at.map(ms);
        t.response_ms = match (t.first_audio_ms, t.speech_end_ms) {
            (Some(first), Some(end)) => Some(first - end),
            _ => None,
        };
        t.turn_latency_ms = t.response_ms.map(|r| r - total_delay);
        t.answer_audio_ms = ms(s.audio_samples);
        t.answer_audio_bytes = s.audio_samples * 2;
        t.answer_chunks = s.chunks;
        t.playout_gaps = s.gaps;
        t.gap_ms = ms(s.gap_samples);
        t.late_frames = s.late_chunks;
        t.max_lead_ms = ms(s.max_lead_samples);
        t.clears = s.clears;
        t.heard_after_clear_ms = ms(s.heard_after_clear_samples);
    }

    // ---- the socket -------------------------------------------------------------------

    async fn on_link_event(&mut self, event: LinkEvent) {
        match event {
            LinkEvent::Connected(result) => match *result {
                Ok(ws) => self.on_connected(ws).await,
                Err((kind, detail)) => {
                    if self.spec.profile.reconnects() {
                        self.report.error(kind, self.ms(self.now()), detail);
                        self.schedule_reconnect();
                    } else {
                        self.link = Link::Down;
                        self.error(kind, detail);
                    }
                }
            },
            LinkEvent::RetryDue => {
                self.link = Link::connect(
                    self.report.url.clone(),
                    self.spec.profile.clone(),
                    self.spec.extra_headers.clone(),
                );
            }
            LinkEvent::Message(Some(Ok(message))) => self.on_message(message),
            LinkEvent::Message(Some(Err(e))) => self.lost(None, &e.to_string()),
            LinkEvent::Message(None) => self.lost(None, "connection closed without a Close frame"),
        }
    }

    /// The upgrade succeeded: metadata first (libwsc's open callback), the connect event,
    /// and the caller's lead-in starts on the first connection.
    async fn on_connected(&mut self, ws: WsStream) {
        self.link = Link::opened(ws);
        self.report.connected = true;
        self.report.connections += 1;
        self.retries = 0;
        self.ever_connected = true;
        if let Some(meta) = self.spec.metadata_text() {
            self.send(Message::text(meta)).await;
        }
        let (subclass, body) = if self.spec.profile.is_fork() {
            ("mod_audio_fork::connect", "")
        } else {
            ("mod_audio_stream::connect", r#"{"status":"connected"}"#)
        };
        self.fire_event(subclass, body);
        if matches!(self.phase, Phase::WaitConnect) {
            let until = self.now() + self.samples_of(self.spec.lead_in);
            self.phase = Phase::LeadIn { until };
        }
    }

    fn schedule_reconnect(&mut self) {
        let delay = reconnect_delay(self.retries);
        self.retries += 1;
        self.link = Link::Retry(tokio::time::Instant::now() + delay);
    }

    /// The bridge closed the socket or it dropped, before hangup.
    fn lost(&mut self, code: Option<u16>, detail: &str) {
        if self.hanging_up {
            self.link = Link::Down;
            return;
        }
        if let Some(code) = code {
            self.report.server_close_codes.push(code);
            if code != 1000 && code != 1001 {
                self.error(
                    ErrorKind::BadCloseCode,
                    format!("bridge closed with {code}: {detail}"),
                );
            }
        }
        let close = code.map_or("dropped".to_string(), |c| format!("closed with {c}"));
        if self.spec.profile.reconnects() {
            self.schedule_reconnect();
        } else {
            self.link = Link::Down;
            self.error(
                ErrorKind::UnexpectedClose,
                format!("{close} mid-call: {detail}"),
            );
        }
    }

    async fn send(&mut self, message: Message) -> bool {
        let Link::Open { sink, .. } = &mut self.link else {
            return false;
        };
        match tokio::time::timeout(SEND_TIMEOUT, sink.send(message)).await {
            Ok(Ok(())) => true,
            Ok(Err(e)) => {
                self.lost(None, &format!("send failed: {e}"));
                false
            }
            Err(_) => {
                self.lost(None, "send blocked for 5 s (bridge not reading)");
                false
            }
        }
    }

    async fn send_audio(&mut self, message: bytes::Bytes) {
        if !self.link.is_open() {
            if self.ever_connected {
                self.report.frames_dropped += 1;
            }
            return;
        }
        let len = message.len() as u64;
        if self.send(Message::Binary(message)).await {
            self.report.frames_sent += 1;
            self.report.bytes_sent += len;
        }
    }

    async fn send_ping(&mut self) {
        if self.link.is_open()
            && self
                .send(Message::Ping(bytes::Bytes::from_static(b"ping")))
                .await
        {
            self.report.pings_sent += 1;
        }
    }

    // ---- what the bridge sends ---------------------------------------------------------

    fn on_message(&mut self, message: Message) {
        match message {
            Message::Binary(data) => {
                let decoded = self.downlink.binary(&data);
                self.apply(decoded, None);
            }
            Message::Text(text) => {
                let decoded = self.downlink.text(&text);
                self.apply(decoded, Some(text.as_str()));
            }
            Message::Pong(_) => self.report.pongs_received += 1,
            Message::Close(frame) => {
                let (code, reason) = frame.map_or((1005, String::new()), |f| {
                    (u16::from(f.code), f.reason.to_string())
                });
                self.lost(Some(code), &reason);
            }
            Message::Ping(_) | Message::Frame(_) => {}
        }
    }

    fn apply(&mut self, decoded: Decoded, text: Option<&str>) {
        if let Some((kind, detail)) = decoded.violation {
            self.error(kind, detail);
        }
        if decoded.unconsumed_text {
            self.report.text(text.unwrap_or(""));
        }
        if let Some((subclass, body)) = decoded.event {
            self.fire_event(&subclass, &body);
        }
        let now = self.now();
        match decoded.effect {
            Effect::Play(chunk) => self.player.push(now, chunk),
            Effect::ClearStream(kind) => {
                self.player.clear_stream(now);
                self.count_clear(kind.name(), now);
            }
            Effect::BreakCurrentFile => {
                self.player.break_files(now, false);
                self.count_clear("killAudio", now);
            }
            Effect::FileWritten(path) => self.written_files.push(path),
            Effect::Nothing => {}
        }
    }

    fn count_clear(&mut self, kind: &str, now: u64) {
        *self
            .report
            .clears_by_kind
            .entry(kind.to_string())
            .or_insert(0) += 1;
        let at = self.ms(now);
        if let Some(t) = self.segment_turn.and_then(|i| self.report.turns.get_mut(i)) {
            if let (Some(barge), None) = (t.interrupted_at_ms, t.clear_after_barge_in_ms) {
                if at >= barge {
                    t.clear_after_barge_in_ms = Some(at - barge);
                }
            }
        }
    }

    fn fire_event(&mut self, subclass: &str, body: &str) {
        if let Some(fs) = &self.spec.freeswitch {
            fs.fire_channel_event(&self.spec.call_uuid, subclass, body);
            *self
                .report
                .events_fired
                .entry(subclass.to_string())
                .or_insert(0) += 1;
        }
    }

    fn on_channel_command(&mut self, command: Option<ChannelCommand>) {
        let Some(command) = command else {
            self.channel = None;
            return;
        };
        *self
            .report
            .esl_commands
            .entry(command.name().to_string())
            .or_insert(0) += 1;
        match command {
            ChannelCommand::Broadcast {
                chunk: Ok(chunk),
                at,
                ..
            } => {
                let at = self.samples_at(at);
                self.player.push(at, chunk);
            }
            ChannelCommand::Broadcast { chunk: Err(e), .. } => {
                self.error(ErrorKind::BroadcastFailed, e)
            }
            ChannelCommand::Break { all, at } => {
                let at = self.samples_at(at);
                self.player.break_files(at, all);
                self.count_clear(if all { "uuid_break all" } else { "uuid_break" }, at);
            }
            ChannelCommand::Kill { .. } => {
                self.report.killed_by_bridge = true;
                self.ending = Some(Ending::ByBridge);
            }
            ChannelCommand::Transfer { target } => {
                self.report.transferred_to = Some(target);
                self.ending = Some(Ending::ByBridge);
            }
            ChannelCommand::Other { .. } => {}
        }
    }

    // ---- hangup ------------------------------------------------------------------------

    async fn hang_up(&mut self) {
        self.hanging_up = true;
        match &self.link {
            Link::Open { .. } => {
                for frame in self.framer.closing_frames() {
                    self.send(Message::Binary(frame)).await;
                }
                let reason = if self.spec.profile.is_fork() {
                    ""
                } else {
                    "Normal closure"
                };
                let close = CloseFrame {
                    code: CloseCode::Normal,
                    reason: reason.into(),
                };
                if self.send(Message::Close(Some(close))).await {
                    self.await_close_reply().await;
                }
                if !self.spec.profile.is_fork() {
                    let body = r#"{"status":"disconnected","message":{"code":1000,"reason":"Normal closure"}}"#;
                    self.fire_event("mod_audio_stream::disconnect", body);
                }
            }
            Link::Connecting(task) => {
                task.abort();
                if self.spec.profile.reconnects() && self.ever_connected {
                    self.error(ErrorKind::ReconnectFailed, "still reconnecting at hangup");
                }
            }
            Link::Retry(_) if self.ever_connected => {
                self.error(ErrorKind::ReconnectFailed, "still reconnecting at hangup");
            }
            Link::Retry(_) | Link::Down => {}
        }
        self.link = Link::Down;
    }

    /// libwsc gives the peer 1 s to answer a Close; the others are given 2 s here.
    async fn await_close_reply(&mut self) {
        let Link::Open { stream, .. } = &mut self.link else {
            return;
        };
        let wait = if matches!(
            self.spec.profile,
            super::profile::ModuleProfile::AudioStreamLibwsc { .. }
        ) {
            Duration::from_secs(1)
        } else {
            Duration::from_secs(2)
        };
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, futures_util::StreamExt::next(stream)).await {
                Ok(Some(Ok(Message::Close(_)))) | Ok(Some(Err(_))) | Ok(None) => return,
                Ok(Some(Ok(_))) => continue,
                Err(_) => break,
            }
        }
        self.error(
            ErrorKind::CloseHandshakeTimeout,
            format!("no Close reply within {} ms", wait.as_millis()),
        );
    }

    fn finish(mut self) -> CallReport {
        let now = self.now();
        let last = self.player.start_segment(now);
        self.close_segment(last);
        let pending = self
            .report
            .pings_sent
            .saturating_sub(self.report.pongs_received);
        if pending > 1 {
            self.error(
                ErrorKind::MissingPong,
                format!("{pending} pings without a pong"),
            );
        }
        for path in &self.written_files {
            let _ = std::fs::remove_file(path);
        }
        self.report.duration_ms = self.origin.elapsed().as_secs_f64() * 1000.0;
        self.report.completed = self.report.connected && self.ending != Some(Ending::Fatal);
        drop(self.channel.take());
        self.report
    }
}

async fn recv_command(
    channel: &mut Option<(ChannelGuard, UnboundedReceiver<ChannelCommand>)>,
) -> Option<ChannelCommand> {
    match channel {
        Some((_, rx)) => rx.recv().await,
        None => std::future::pending().await,
    }
}

async fn tick_opt(interval: &mut Option<Interval>) {
    match interval {
        Some(i) => {
            i.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// Counts of each error kind over several calls, by name.
pub fn error_kinds<'a>(reports: impl IntoIterator<Item = &'a CallReport>) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for r in reports {
        for (kind, n) in &r.error_counts {
            *out.entry(kind.name()).or_insert(0) += u64::from(*n);
        }
    }
    out
}
