//! The load tool (`voice-sim turn-load`) against an in-process turn-api: a short open-loop
//! run at fixed provider delays is answered without errors and yields an overhead figure.

use turn_api::config::TurnApiConfig;
use turn_api::http;
use voice_sim::turn_load::{
    run_turns, write_caller_wav, TurnDelays, TurnFakes, TurnLoadSpec, WorkDir,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_open_loop_run_has_no_errors_and_measures_the_overhead() {
    let dir = WorkDir::new("turn-load-test").unwrap();
    let wav = write_caller_wav(&dir.0).unwrap();
    let delays = TurnDelays {
        stt_ms: 50,
        llm_first_token_ms: 80,
        llm_token_interval_ms: 5,
        tts_first_byte_ms: 40,
    };
    let fakes = TurnFakes::start(delays).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let toml = fakes.turn_api_config(&addr, &dir.0, "warn");
    let state = http::state(TurnApiConfig::from_toml(&toml).unwrap())
        .await
        .unwrap();
    let server = tokio::spawn(http::serve(listener, state, std::future::pending()));

    let mut spec = TurnLoadSpec::new(wav.display().to_string());
    spec.rate = 20.0;
    spec.seconds = 2.0;
    spec.delays = Some(delays);
    let report = run_turns(&format!("http://{addr}"), &spec).await.unwrap();
    server.abort();

    assert_eq!(report.requests, 40);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(report.ok, 40);
    assert_eq!(report.providers_source, "timings");
    let providers = report.providers_ms.expect("providers' time");
    let minimum = (delays.stt_ms + delays.llm_first_token_ms + delays.tts_first_byte_ms) as f64;
    assert!(providers.p50 >= minimum, "{providers:?} < {minimum}");
    let latency = report.latency_ms.expect("latency");
    let overhead = report.overhead_ms.expect("overhead");
    // Stage timings are rounded down, so the overhead is never negative, and it is what
    // the latency has beyond the providers.
    assert!(
        overhead.p50 >= 0.0 && overhead.max < latency.max,
        "{overhead:?}"
    );
    assert!(
        (latency.p50 - providers.p50 - overhead.p50).abs() < 50.0,
        "{latency:?} {providers:?} {overhead:?}"
    );
    // The fake STT saw every turn.
    assert_eq!(fakes.stt.stats().transcriptions, 40);
    let rate = report.achieved_rate;
    // Open loop: late sends catch up, so only a badly starved machine lowers this.
    assert!((10.0..=25.0).contains(&rate), "achieved {rate}/s");
    let server = report.server_overhead.expect("the overhead histogram");
    assert_eq!(server.turns, 40);
}
