//! Every way FreeSWITCH streams audio, end to end: simulated module build → real bridge →
//! fake OpenAI Realtime → the answer played back in the build's own playout format.

use std::time::Duration;

use e2e_tests::Harness;
use voice_sim::freeswitch::call_spec::{CallSpec, UrlStyle};
use voice_sim::freeswitch::esl_backend::FakeFreeswitch;
use voice_sim::freeswitch::profile::{ClearKind, Mix, ModuleProfile, Playout};
use voice_sim::freeswitch::run_call;
use voice_sim::freeswitch::script::CallerTurn;
use voice_sim::speech::{synthesize, PT_BR};

const REPLY: &str = "Claro, posso ajudar com isso.";
const ESL_PASSWORD: &str = "ClueCon-test";

struct Case {
    name: &'static str,
    profile: ModuleProfile,
    rate: u32,
    mix: Mix,
    playout: Playout,
    clear: Option<ClearKind>,
    metadata_only: bool,
}

fn case(name: &'static str, profile: ModuleProfile, rate: u32, mix: Mix, playout: Playout) -> Case {
    Case {
        name,
        profile,
        rate,
        mix,
        playout,
        clear: None,
        metadata_only: false,
    }
}

fn cases() -> Vec<Case> {
    let libwsc_100ms = ModuleProfile::AudioStreamLibwsc {
        buffer_ms: 100,
        heart_beat_secs: 1,
        offer_deflate: true,
    };
    vec![
        case(
            "libwsc 16k mono binary",
            ModuleProfile::libwsc(),
            16000,
            Mix::Mono,
            Playout::Binary,
        ),
        case(
            "libwsc 8k mono stream_audio",
            ModuleProfile::libwsc(),
            8000,
            Mix::Mono,
            Playout::StreamAudio,
        ),
        case(
            "libwsc 24k mono raw_audio",
            ModuleProfile::libwsc(),
            24000,
            Mix::Mono,
            Playout::RawAudio,
        ),
        case(
            "libwsc 16k mono file",
            ModuleProfile::libwsc(),
            16000,
            Mix::Mono,
            Playout::File,
        ),
        case(
            "libwsc 100 ms batches + pings, 8k stereo",
            libwsc_100ms,
            8000,
            Mix::Stereo,
            Playout::Binary,
        ),
        case(
            "libwsc 48k mono binary",
            ModuleProfile::libwsc(),
            48000,
            Mix::Mono,
            Playout::Binary,
        ),
        case(
            "libwsc 32k mono binary",
            ModuleProfile::libwsc(),
            32000,
            Mix::Mono,
            Playout::Binary,
        ),
        Case {
            clear: Some(ClearKind::SpeechStarted),
            ..case(
                "VoiSmart-style binary, speech_started clear",
                ModuleProfile::libwsc(),
                16000,
                Mix::Mono,
                Playout::Binary,
            )
        },
        Case {
            metadata_only: true,
            ..case(
                "ixwebsocket, ids in metadata",
                ModuleProfile::ixws(),
                16000,
                Mix::Mono,
                Playout::Binary,
            )
        },
        case(
            "mod_audio_fork 16k mono binary",
            ModuleProfile::AudioFork,
            16000,
            Mix::Mono,
            Playout::Binary,
        ),
        case(
            "mod_audio_fork 8k stereo play_audio",
            ModuleProfile::AudioFork,
            8000,
            Mix::Stereo,
            Playout::PlayAudio,
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_inbound_dialect_and_playout_mode_gets_its_answer() {
    let switch = FakeFreeswitch::start(ESL_PASSWORD).await.unwrap();
    let esl_addr = switch.esl_addr().to_string();
    let fake = e2e_tests::fake_answering(REPLY);
    let h = Harness::start(
        fake,
        &[
            ("VOICE_BRIDGE__ESL__ENABLED", "true"),
            ("VOICE_BRIDGE__ESL__ADDRESS", &esl_addr),
            ("VOICE_BRIDGE__ESL__PASSWORD", ESL_PASSWORD),
            // Timing is not under test here (the load tool measures gaps and latency).
            ("VOICE_BRIDGE__PLAYOUT__LEAD_MS", "160"),
        ],
    )
    .await
    .unwrap();
    let reply_ms = synthesize(REPLY, PT_BR, 24000).unwrap().len() as f64 / 24.0;

    let mut calls = Vec::new();
    for (i, c) in cases().into_iter().enumerate() {
        let mut spec = CallSpec::new(h.ws_base());
        spec.call_uuid = format!("dialect-{i}");
        spec.profile = c.profile;
        spec.rate = c.rate;
        spec.mix = c.mix;
        spec.playout = c.playout;
        spec.clear = c.clear;
        if c.metadata_only {
            spec.url_style = UrlStyle::Metadata;
        }
        spec.script = vec![CallerTurn::new("Bom dia, qual é o horário de atendimento?")];
        spec.max_turns = Some(1);
        spec.max_duration = Duration::from_secs(30);
        spec.answer_timeout = Duration::from_secs(15);
        if matches!(c.playout, Playout::File | Playout::PlayAudio) {
            spec.freeswitch = Some(switch.clone());
        }
        spec.seed = i as u64 + 7;
        calls.push((c.name, tokio::spawn(run_call(spec))));
    }
    let mut failures = Vec::new();
    for (name, call) in calls {
        let report = call.await.unwrap();
        let turn = report.turns.first();
        let heard = turn.map_or(0.0, |t| t.answer_audio_ms);
        let problems = [
            (!report.connected, "never connected".to_string()),
            (!report.completed, "did not complete".to_string()),
            (
                report.error_total() > 0,
                format!("errors {:?}", report.errors),
            ),
            (
                heard < reply_ms - 60.0,
                format!("heard {heard:.0} of {reply_ms:.0} ms"),
            ),
            (
                report.connections != 1,
                format!("{} connections", report.connections),
            ),
        ];
        for (bad, why) in problems {
            if bad {
                failures.push(format!("{name}: {why}"));
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    // The file modes played through the event socket, as stock builds need.
    let commands = switch.commands();
    assert!(
        commands
            .iter()
            .any(|c| c.starts_with("uuid_broadcast dialect-3 ")),
        "{commands:?}"
    );
    assert!(
        commands
            .iter()
            .any(|c| c.starts_with("uuid_broadcast dialect-10 ")),
        "{commands:?}"
    );
    assert_eq!(h.fake.stats().sessions_opened, 11);
    assert!(
        h.fake.stats().protocol_errors.is_empty(),
        "{:?}",
        h.fake.stats().protocol_errors
    );
    h.stop().await;
}

/// `mixed` sums the caller and what FreeSWITCH plays into one channel: the agent hears its
/// own answer (the README says to use mono or stereo). The stream is still decoded and
/// answered; what the provider makes of the echo is its own business.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_streams_are_decoded_and_answered() {
    let fake = e2e_tests::fake_answering(REPLY);
    let h = Harness::start(fake, &[]).await.unwrap();
    let mut spec = CallSpec::new(h.ws_base());
    spec.mix = Mix::Mixed;
    spec.rate = 8000;
    spec.script = vec![CallerTurn::new("Bom dia, qual é o horário de atendimento?")];
    spec.max_turns = Some(1);
    spec.max_duration = Duration::from_secs(15);
    let report = run_call(spec).await;
    let turn = report.turns.first().expect("one turn");
    assert!(
        turn.first_audio_ms.is_some(),
        "no answer: {:?}",
        report.errors
    );
    assert!(
        report.server_close_codes.iter().all(|&c| c == 1000),
        "{:?}",
        report.server_close_codes
    );
    h.stop().await;
}

/// One short call through a bridge configured with `env`; returns the audio heard (ms).
async fn one_call(env: &[(&str, &str)], rate: u32) -> (f64, Harness) {
    let fake = e2e_tests::fake_answering(REPLY);
    let h = Harness::start(fake, env).await.unwrap();
    let mut spec = CallSpec::new(h.ws_base());
    spec.rate = rate;
    spec.script = vec![CallerTurn::new("Bom dia, qual é o horário de atendimento?")];
    spec.max_turns = Some(1);
    spec.max_duration = Duration::from_secs(20);
    let report = run_call(spec).await;
    assert_eq!(report.error_total(), 0, "{:?}", report.errors);
    (report.turns.first().map_or(0.0, |t| t.answer_audio_ms), h)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn g711_passthrough_and_the_beta_protocol_answer_too() {
    let reply_ms = synthesize(REPLY, PT_BR, 24000).unwrap().len() as f64 / 24.0;
    // 8 kHz calls straight to μ-law, no resampling.
    let (heard, h) = one_call(
        &[(
            "VOICE_BRIDGE__PROVIDERS__OPENAI_REALTIME__G711_PASSTHROUGH",
            "true",
        )],
        8000,
    )
    .await;
    assert!(
        heard >= reply_ms - 60.0,
        "passthrough: heard {heard:.0} of {reply_ms:.0} ms"
    );
    assert!(
        h.fake.stats().protocol_errors.is_empty(),
        "{:?}",
        h.fake.stats().protocol_errors
    );
    h.stop().await;
    // The old beta protocol, behind a setting.
    let (heard, h) = one_call(
        &[("VOICE_BRIDGE__PROVIDERS__OPENAI_REALTIME__PROTOCOL", "beta")],
        16000,
    )
    .await;
    assert!(
        heard >= reply_ms - 60.0,
        "beta: heard {heard:.0} of {reply_ms:.0} ms"
    );
    assert!(
        h.fake.stats().protocol_errors.is_empty(),
        "{:?}",
        h.fake.stats().protocol_errors
    );
    h.stop().await;
}
