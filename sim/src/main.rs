//! `voice-sim`: simulated FreeSWITCH calls against the bridge, a load tool, and the fakes.
//!
//! - `voice-sim call`: one call, explained turn by turn.
//! - `voice-sim load --calls N --seconds S`: N real-time calls; the last stdout line is JSON.
//! - `voice-sim fake-openai` / `voice-sim fake-esl`: the fakes on their own.
//! - `voice-sim metrics-bench`: the event log and daily metrics with 1 M events.
//!
//! Without `--bridge`, `call` and `load` start the fake provider in-process and the release
//! bridge binary (next to this executable, or `$VOICE_BRIDGE_BIN`), and stop it at the end.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};
use voice_sim::fake_esl::{EslBackend, FakeEslServer};
use voice_sim::fake_openai::{FakeOpenAi, FakeOpenAiConfig};
use voice_sim::freeswitch::{
    run_call, CallReport, CallSpec, CallerTurn, ClearKind, FakeFreeswitch, Mix, ModuleProfile,
    Playout, ProviderDelays, UrlStyle,
};
use voice_sim::load::{
    read_bridge_turns, run_load, CascadedDelays, CascadedOptions, LoadSpec, ProviderChoice, Stack,
    StackOptions,
};
use voice_sim::report::TurnDetection;

mod metrics_bench;

#[derive(Parser)]
#[command(
    name = "voice-sim",
    about = "Simulated FreeSWITCH calls, load tests and fake providers for voice-bridge"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// One call, explained turn by turn.
    Call(CallCmd),
    /// N concurrent real-time calls; prints one JSON summary as the last stdout line.
    ///
    /// The summary's `turn_latency_ms` is the caller's end of speech → first answer audio,
    /// minus `subtracted`. `turn_detection` says who ended the turns, from the sessions the
    /// fake provider saw: "server" (its server VAD) subtracts the VAD silence window
    /// (--vad-silence-ms) and the think time (--think-ms), leaving the bridge's and the
    /// transport's overhead; "client" (the bridge set `turn_detection: null` and commits each
    /// turn itself) subtracts only the think time, leaving the bridge's end-of-turn decision
    /// plus that overhead; "mixed" subtracts as "server". With client turns,
    /// `end_of_speech_to_turn_ms` is the decision alone: the silence the fake had received
    /// after the caller's last speech at each `input_audio_buffer.commit`, audio being
    /// streamed in real time (`client_commits`, `client_commits_without_speech` count the
    /// commits). With --bridge the provider is not ours: `turn_detection` is null and the
    /// configured delays are subtracted. Progress and a turns line go to stderr.
    ///
    /// `--provider cascaded` starts fake Deepgram, a fake chat model and fake ElevenLabs
    /// TTS with fixed delays (--stt-final-ms, --llm-first-token-ms, --tts-first-byte-ms)
    /// and needs a profile with local turns (--config sim/configs/cascaded.toml): the three
    /// delays are subtracted, so `turn_latency_ms` is the bridge's turn decision plus its
    /// overhead. With recording on in the profile, `bridge_turns` gives the bridge's own
    /// figures from the facts of this run's calls: `decision_ms`,
    /// `decided_to_first_frame_ms` (turn decided → first answer frame out),
    /// `pipeline_overhead_ms` (that minus the provider's delays) and
    /// `response_beyond_decision_ms` (each answer heard here, paired with the bridge turn
    /// that sent it: response − that turn's decision − the delays). `fake_provider` is what
    /// the fake provider saw.
    Load(LoadCmd),
    /// Run the fake OpenAI Realtime server until Ctrl-C.
    FakeOpenai(FakeOpenAiCmd),
    /// Run a fake FreeSWITCH event socket until Ctrl-C.
    FakeEsl(FakeEslCmd),
    /// Benchmark the turn-api: fake providers at fixed delays, turns posted open-loop at
    /// --rate for --seconds; prints one JSON report (latency, providers' time, overhead =
    /// latency − providers' time, the turn-api's CPU and RSS) as the last stdout line.
    /// Needs the turn-api binary next to this one (cargo build [--release] -p turn-api) or
    /// $VOICE_TURN_API_BIN.
    TurnLoad(voice_sim::turn_load::TurnLoadCmd),
    /// Start the turn-api with fake providers (no delays) and keep it up until Ctrl-C; prints
    /// its base URL, API key and a caller recording as JSON (used by scripts/schemathesis).
    TurnStack(voice_sim::turn_load::TurnStackCmd),
    /// Benchmark the event log and daily metrics in a scratch PostgreSQL database: seeds
    /// --events events (1 M by default) over a month for --tenants tenants, aggregates them,
    /// then times the dashboard read of one tenant's month (p50/p95/max) against the same
    /// month computed from the events; the last stdout line is JSON.
    MetricsBench(metrics_bench::MetricsBenchCmd),
}

/// What every simulated call shares.
#[derive(Args, Clone)]
struct CallOptions {
    /// The bridge's base URL (e.g. ws://127.0.0.1:8080). Default: start the bridge here.
    #[arg(long)]
    bridge: Option<String>,
    /// Bridge config file (when the bridge is started here).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Module build: libwsc (mod_audio_stream ≥ v1.0.3), ixws (≤ v1.0.2) or fork (mod_audio_fork).
    #[arg(long, default_value = "libwsc")]
    profile: String,
    /// STREAM_BUFFER_SIZE: ms per binary message (multiple of 20).
    #[arg(long, default_value_t = 20)]
    buffer_ms: u32,
    /// STREAM_HEART_BEAT seconds (libwsc pings; 0 = off).
    #[arg(long, default_value_t = 0)]
    heart_beat: u32,
    /// Call sample rate.
    #[arg(long, default_value_t = 16000)]
    rate: u32,
    /// mono, mixed or stereo.
    #[arg(long, default_value = "mono")]
    mix: String,
    /// binary, stream_audio, raw_audio, play_audio or file.
    #[arg(long, default_value = "binary")]
    playout: String,
    /// Ask for this clear message (clearAudio, killAudio, speech_started, stopAudio, none).
    #[arg(long)]
    clear: Option<String>,
    /// Tenant (domain name).
    #[arg(long, default_value = "sim.example.com")]
    domain: String,
    /// Put tenant and call in the metadata frame instead of the URL path.
    #[arg(long)]
    metadata_only: bool,
    /// What the caller says (repeat for several; cycled). Default: a short pt-BR script.
    #[arg(long)]
    text: Vec<String>,
    /// Every utterance after the first interrupts the answer this many ms into it.
    #[arg(long)]
    barge_in_ms: Option<u32>,
    /// Silence after an answer before the caller speaks again, ms.
    #[arg(long, default_value_t = 800)]
    pause_ms: u64,
    /// What the fake agent answers (when started here).
    #[arg(long)]
    reply: Option<String>,
    /// The fake provider's thinking time, ms (subtracted from latency).
    #[arg(long, default_value_t = 0)]
    think_ms: u64,
    /// Cascaded: fake Deepgram holds each final back this long, ms (subtracted).
    #[arg(long, default_value_t = CascadedDelays::default().stt_final_ms)]
    stt_final_ms: u64,
    /// Cascaded: the fake chat model's first token comes this long after its headers, ms
    /// (subtracted).
    #[arg(long, default_value_t = CascadedDelays::default().llm_first_token_ms)]
    llm_first_token_ms: u64,
    /// Cascaded: fake TTS audio starts this long after a text is complete, ms (subtracted).
    #[arg(long, default_value_t = CascadedDelays::default().tts_first_byte_ms)]
    tts_first_byte_ms: u64,
    /// The provider's VAD silence window, ms (subtracted from latency, unless the bridge
    /// detects turns itself).
    #[arg(long, default_value_t = 500)]
    vad_silence_ms: u32,
    /// Bridge log level (when started here).
    #[arg(long, default_value = "warn")]
    log_level: String,
    /// The fake provider (when the bridge is started here): openai, gemini, elevenlabs or
    /// cascaded (with a local-turns profile: --config sim/configs/cascaded.toml).
    #[arg(long, default_value = "openai")]
    provider: ProviderChoice,
}

#[derive(Args)]
struct CallCmd {
    #[command(flatten)]
    options: CallOptions,
    /// Caller turns before hanging up.
    #[arg(long, default_value_t = 2)]
    turns: usize,
    /// Hang up after this long in any case, seconds.
    #[arg(long, default_value_t = 60.0)]
    seconds: f64,
    /// Print the full report as JSON instead of the explanation.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct LoadCmd {
    #[command(flatten)]
    options: CallOptions,
    /// Concurrent calls.
    #[arg(long)]
    calls: usize,
    /// Length of each call, seconds.
    #[arg(long)]
    seconds: f64,
    /// PID of an already running bridge (with --bridge), to measure its CPU and RSS.
    #[arg(long)]
    bridge_pid: Option<u32>,
    /// Calls start evenly over this many ms.
    #[arg(long, default_value_t = 5000)]
    ramp_ms: u64,
}

#[derive(Args)]
struct FakeOpenAiCmd {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8765")]
    listen: SocketAddr,
    /// What the agent answers.
    #[arg(long)]
    reply: Option<String>,
    /// Thinking time before answering, ms.
    #[arg(long, default_value_t = 300)]
    think_ms: u64,
    /// The bearer key clients must present.
    #[arg(long, default_value = "sk-fake-openai")]
    api_key: String,
}

#[derive(Args)]
struct FakeEslCmd {
    /// ESL password.
    #[arg(long, default_value = "ClueCon")]
    password: String,
}

fn main() {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("voice-sim: cannot start the runtime: {e}");
            std::process::exit(2);
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Call(cmd) => call(cmd).await,
            Command::Load(cmd) => load(cmd).await,
            Command::FakeOpenai(cmd) => fake_openai(cmd).await,
            Command::FakeEsl(cmd) => fake_esl(cmd).await,
            Command::TurnLoad(cmd) => cmd.run().await,
            Command::TurnStack(cmd) => cmd.run().await,
            Command::MetricsBench(cmd) => cmd.run().await,
        }
    });
    if let Err(e) = result {
        eprintln!("voice-sim: {e:#}");
        std::process::exit(1);
    }
}

/// The parsed call template (without bridge URL and switch).
fn template(o: &CallOptions) -> anyhow::Result<CallSpec> {
    let mut spec = CallSpec::new(o.bridge.clone().unwrap_or_default());
    spec.profile =
        ModuleProfile::parse(&o.profile, o.buffer_ms, o.heart_beat).map_err(anyhow::Error::msg)?;
    spec.rate = o.rate;
    spec.mix = o.mix.parse::<Mix>().map_err(anyhow::Error::msg)?;
    spec.playout = o.playout.parse::<Playout>().map_err(anyhow::Error::msg)?;
    spec.clear = o
        .clear
        .as_deref()
        .map(str::parse::<ClearKind>)
        .transpose()
        .map_err(anyhow::Error::msg)?;
    spec.domain = o.domain.clone();
    spec.url_style = if o.metadata_only {
        UrlStyle::Metadata
    } else {
        UrlStyle::Path
    };
    if !o.text.is_empty() {
        spec.script = o.text.iter().map(CallerTurn::new).collect();
    }
    if let Some(ms) = o.barge_in_ms {
        for turn in &mut spec.script {
            turn.barge_in_after_ms = Some(ms);
        }
    }
    spec.pause = Duration::from_millis(o.pause_ms);
    spec.delays = match cascaded(o) {
        // The bridge decides the turns: no VAD window; the fakes' delays add up.
        Some(d) => ProviderDelays {
            vad_silence_ms: 0,
            think_ms: d.total_ms().min(u64::from(u32::MAX)) as u32,
        },
        None => ProviderDelays {
            vad_silence_ms: o.vad_silence_ms,
            think_ms: o.think_ms.min(u64::from(u32::MAX)) as u32,
        },
    };
    spec.validate_format().map_err(anyhow::Error::msg)?;
    Ok(spec)
}

/// The cascaded fakes' delays, when they are started here.
fn cascaded(o: &CallOptions) -> Option<CascadedDelays> {
    (o.provider == ProviderChoice::Cascaded && o.bridge.is_none()).then_some(CascadedDelays {
        stt_final_ms: o.stt_final_ms,
        llm_first_token_ms: o.llm_first_token_ms,
        tts_first_byte_ms: o.tts_first_byte_ms,
    })
}

/// A positive, finite number of seconds.
fn seconds(s: f64) -> anyhow::Result<Duration> {
    match Duration::try_from_secs_f64(s) {
        Ok(d) if !d.is_zero() => Ok(d),
        _ => bail!("--seconds must be a positive number, got {s}"),
    }
}

/// The bridge to call: the given URL, or a stack started here.
struct Target {
    stack: Option<Stack>,
    freeswitch: Option<FakeFreeswitch>,
    url: String,
    pid: Option<u32>,
    reply: String,
}

async fn target(o: &CallOptions, spec: &CallSpec, pid: Option<u32>) -> anyhow::Result<Target> {
    let mut fake = FakeOpenAiConfig {
        think_ms: o.think_ms,
        ..FakeOpenAiConfig::default()
    };
    if let Some(reply) = &o.reply {
        fake.reply_text = reply.clone();
    }
    let reply = fake.reply_text.clone();
    let needs_switch = spec.playout.uses_files();
    if let Some(url) = &o.bridge {
        let freeswitch = if needs_switch {
            let fs = FakeFreeswitch::start("ClueCon").await?;
            eprintln!(
                "fake FreeSWITCH ESL on {} (password ClueCon): point the bridge at it",
                fs.esl_addr()
            );
            Some(fs)
        } else {
            None
        };
        return Ok(Target {
            stack: None,
            freeswitch,
            url: url.clone(),
            pid,
            reply: "(the bridge's provider)".into(),
        });
    }
    let options = StackOptions {
        provider: o.provider,
        fake,
        cascaded: CascadedOptions {
            delays: cascaded(o).unwrap_or_default(),
            // Deepgram transcribes what the caller says, turn by turn.
            utterances: spec.script.iter().map(|t| t.text.clone()).collect(),
        },
        config: o.config.clone(),
        with_freeswitch: needs_switch,
        log_level: o.log_level.clone(),
        domain: spec.domain.clone(),
        ..StackOptions::default()
    };
    let stack = Stack::start(options).await?;
    eprintln!(
        "bridge pid {} on {}, fake provider on {}",
        stack.bridge.pid(),
        stack.bridge_url(),
        stack.fake.url()
    );
    Ok(Target {
        url: stack.bridge_url(),
        pid: Some(stack.bridge.pid()),
        freeswitch: stack.freeswitch.clone(),
        stack: Some(stack),
        reply,
    })
}

async fn stop(stack: Option<Stack>) {
    if let Some(stack) = stack {
        if let Err(e) = stack.stop().await {
            eprintln!("warning: {e:#}");
        }
    }
}

async fn call(cmd: CallCmd) -> anyhow::Result<()> {
    let mut spec = template(&cmd.options)?;
    let target = target(&cmd.options, &spec, None).await?;
    spec.bridge = target.url.clone();
    spec.freeswitch = target.freeswitch.clone();
    spec.max_turns = Some(cmd.turns.max(1));
    spec.max_duration = seconds(cmd.seconds)?;
    let delays = spec.delays;
    let mut report = run_call(spec).await;
    let fake_stats = target
        .stack
        .as_ref()
        .and_then(|s| s.fake.openai())
        .map(|f| f.stats());
    let fake_summary = target.stack.as_ref().map(|s| s.fake.summary());
    stop(target.stack).await;
    // The bridge decided the turns: there was no provider VAD window to take out.
    if let Some(mode) = fake_stats.as_ref().and_then(TurnDetection::of) {
        report.resubtract(mode.delays(delays));
    }
    if cmd.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        explain(&report, &target.reply);
        if let Some(stats) = fake_stats {
            println!(
                "fake provider: {} session(s), {} response(s), {} cancelled, {} truncate(s), {} protocol error(s)",
                stats.sessions_opened,
                stats.turns,
                stats.responses_cancelled,
                stats.truncates.len(),
                stats.protocol_errors.len()
            );
            if let Some(mode) = TurnDetection::of(&stats) {
                println!("turn detection: {}", mode.name());
            }
            if stats.client_commits > 0 {
                println!(
                    "bridge commits: {} ({} without speech); end of speech → commit, ms: {:?}",
                    stats.client_commits,
                    stats.client_commits_without_speech,
                    stats.commit_trailing_silence_ms
                );
            }
            for e in stats.protocol_errors.iter().take(10) {
                println!("  provider protocol error: {e}");
            }
        } else if let Some(summary) = &fake_summary {
            println!("fake provider: {summary}");
        }
    }
    if !report.completed || report.error_total() > 0 {
        bail!("the call had errors");
    }
    Ok(())
}

fn explain(r: &CallReport, reply: &str) {
    println!("call {} → {}", r.call_uuid, r.url);
    println!(
        "{} build, {} Hz {}, playout {} (clear: {})",
        r.profile, r.rate, r.mix, r.playout, r.clear
    );
    println!(
        "connected: {} ({} connection(s)), {:.1} s, {} frames sent",
        r.connected,
        r.connections,
        r.duration_ms / 1000.0,
        r.frames_sent
    );
    if r.greeting_audio_ms > 0.0 {
        println!(
            "greeting: {:.0} ms of audio before the first turn",
            r.greeting_audio_ms
        );
    }
    let delays = r.subtracted;
    for t in &r.turns {
        println!();
        println!(
            "turn {}{}",
            t.index + 1,
            if t.barged_in { " (barge-in)" } else { "" }
        );
        println!("  caller said: {:?}", t.caller_text);
        println!("  agent said:  {reply:?} (the fake's reply and transcript)");
        println!(
            "  heard: {:.0} ms of answer audio ({} B in {} chunks), {} gap(s) ({:.0} ms), {} late, lead ≤ {:.0} ms",
            t.answer_audio_ms, t.answer_audio_bytes, t.answer_chunks, t.playout_gaps, t.gap_ms, t.late_frames, t.max_lead_ms
        );
        match (t.response_ms, t.turn_latency_ms) {
            (Some(response), Some(latency)) if delays.vad_silence_ms == 0 => println!(
                "  latency: end of speech → first audio {response:.0} ms = think {} + turn decision and bridge/transport {latency:.0} ms",
                delays.think_ms
            ),
            (Some(response), Some(latency)) => println!(
                "  latency: end of speech → first audio {response:.0} ms = VAD silence {} + think {} + bridge/transport {latency:.0} ms",
                delays.vad_silence_ms, delays.think_ms
            ),
            _ => println!("  latency: no answer audio"),
        }
        if let Some(clear) = t.clear_after_barge_in_ms {
            println!("  cleared {clear:.0} ms after the caller barged in; {:.0} ms heard after the clear", t.heard_after_clear_ms);
        }
    }
    println!();
    if !r.clears_by_kind.is_empty() {
        println!("clears: {:?}", r.clears_by_kind);
    }
    if !r.esl_commands.is_empty() {
        println!(
            "ESL commands on this channel: {:?}; events fired: {:?}",
            r.esl_commands, r.events_fired
        );
    }
    if r.text_message_count > 0 {
        println!(
            "{} other text message(s), first: {:?}",
            r.text_message_count,
            r.text_messages.first()
        );
    }
    if let Some(target) = &r.transferred_to {
        println!("transferred to {target}");
    }
    if r.errors.is_empty() {
        println!("errors: none");
    } else {
        println!("errors: {:?}", r.error_counts);
        for e in &r.errors {
            println!("  [{:>7.0} ms] {}: {}", e.at_ms, e.kind.name(), e.detail);
        }
    }
}

async fn load(cmd: LoadCmd) -> anyhow::Result<()> {
    if cmd.calls == 0 {
        bail!("--calls must be positive");
    }
    let call_duration = seconds(cmd.seconds)?;
    let mut template = template(&cmd.options)?;
    let target = target(&cmd.options, &template, cmd.bridge_pid).await?;
    template.bridge = target.url.clone();
    template.freeswitch = target.freeswitch.clone();
    let spec = LoadSpec {
        calls: cmd.calls,
        call_duration,
        ramp: Duration::from_millis(cmd.ramp_ms),
        template,
        bridge_pid: target.pid,
        provider: target
            .stack
            .as_ref()
            .and_then(|s| s.fake.openai())
            .map(|f| f.stats_handle()),
        cascaded: cascaded(&cmd.options),
        progress: true,
    };
    eprintln!(
        "{} calls × {} s against {} (ramp {} ms)",
        cmd.calls, cmd.seconds, target.url, cmd.ramp_ms
    );
    let subtracted = u64::from(spec.template.delays.think_ms);
    let mut result = run_load(spec).await;
    if let Some(fake) = target.stack.as_ref().map(|s| &s.fake) {
        let summary = fake.summary();
        eprintln!("fake provider: {summary}");
        result.summary.fake_provider = Some(summary);
    }
    let recordings = target
        .stack
        .as_ref()
        .and_then(|s| s.profile.recordings.clone());
    if let Some(stats) = target
        .stack
        .as_ref()
        .and_then(|s| s.fake.openai())
        .map(|f| f.stats())
    {
        eprintln!(
            "fake provider: {} sessions ({} server VAD, {} client turns), {} responses, {} cancelled, {} client commits, {} protocol errors",
            stats.sessions_opened,
            stats.server_turn_sessions,
            stats.client_turn_sessions,
            stats.turns,
            stats.responses_cancelled,
            stats.client_commits,
            stats.protocol_errors.len()
        );
    }
    stop(target.stack).await;
    // After the bridge has stopped: its recording writers have finished the facts.
    if let Some(dir) = recordings {
        let turns = read_bridge_turns(&dir, &result.reports, subtracted);
        eprintln!("{}", turns.line(&dir));
        result.summary.bridge_turns = Some(turns);
    }
    println!("{}", result.summary.to_json_line());
    Ok(())
}

async fn fake_openai(cmd: FakeOpenAiCmd) -> anyhow::Result<()> {
    let mut cfg = FakeOpenAiConfig {
        think_ms: cmd.think_ms,
        api_key: cmd.api_key,
        ..FakeOpenAiConfig::default()
    };
    if let Some(reply) = cmd.reply {
        cfg.reply_text = reply;
    }
    let fake = FakeOpenAi::start_on(cfg, cmd.listen).await?;
    eprintln!("fake OpenAI Realtime on {} (Ctrl-C to stop)", fake.url());
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    let stats = fake.stats();
    eprintln!(
        "{} sessions, {} responses, {} cancelled, {} protocol errors",
        stats.sessions_opened,
        stats.turns,
        stats.responses_cancelled,
        stats.protocol_errors.len()
    );
    Ok(())
}

/// A switch with no channels: every channel command answers like FreeSWITCH for an unknown UUID.
struct NoChannels;

impl EslBackend for NoChannels {
    fn api(&self, command: &str, _args: &str) -> String {
        match command {
            "uuid_broadcast" => "+OK Message Sent\n".into(),
            "uuid_break" => "-ERR No Such Channel!\n".into(),
            "uuid_exists" => "false".into(),
            c if c.starts_with("uuid_") => "-ERR No such channel!\n".into(),
            other => format!("-ERR {other} Command not found!\n"),
        }
    }
}

async fn fake_esl(cmd: FakeEslCmd) -> anyhow::Result<()> {
    let server = FakeEslServer::start(&cmd.password, Arc::new(NoChannels)).await?;
    eprintln!(
        "fake ESL on {} (password {:?}; Ctrl-C to stop)",
        server.addr(),
        cmd.password
    );
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    for line in server.commands() {
        eprintln!("received: {line}");
    }
    Ok(())
}
