//! Everything a run drives, started together: the fake provider (OpenAI Realtime, Gemini
//! Live, ElevenLabs, or the cascaded agent's STT, LLM and TTS), the simulated switch (ESL
//! + temp files) when the playout needs it, and the real bridge binary pointed at both.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};

use super::cascaded::CascadedOptions;
use super::profile::BridgeProfile;
use super::provider::{ProviderChoice, RunningFake};
use crate::bridge_process::{find_bridge_binary, BridgeLaunch, BridgeProcess};
use crate::fake_openai::FakeOpenAiConfig;
use crate::freeswitch::FakeFreeswitch;

/// How to start a [`Stack`].
#[derive(Debug, Clone)]
pub struct StackOptions {
    /// Which fake provider the bridge talks to.
    pub provider: ProviderChoice,
    /// The fake provider's behaviour (reply, caller transcript and think time are used by
    /// every provider; the rest by OpenAI's).
    pub fake: FakeOpenAiConfig,
    /// The cascaded fakes' delays and caller script (with [`ProviderChoice::Cascaded`]).
    pub cascaded: CascadedOptions,
    /// The bridge executable; `None` finds it ([`find_bridge_binary`]).
    pub bridge_binary: Option<PathBuf>,
    /// `--config FILE` for the bridge.
    pub config: Option<PathBuf>,
    /// Start a [`FakeFreeswitch`] and point the bridge's ESL client at it.
    pub with_freeswitch: bool,
    /// ESL password.
    pub esl_password: String,
    /// Bridge log level.
    pub log_level: String,
    /// More environment for the bridge.
    pub env: Vec<(String, String)>,
    /// The calls' tenant (a tenant may override the turn detection).
    pub domain: String,
}

impl Default for StackOptions {
    fn default() -> Self {
        StackOptions {
            provider: ProviderChoice::default(),
            fake: FakeOpenAiConfig::default(),
            cascaded: CascadedOptions::default(),
            bridge_binary: None,
            config: None,
            with_freeswitch: false,
            esl_password: "ClueCon".into(),
            log_level: "warn".into(),
            env: Vec::new(),
            domain: "sim.example.com".into(),
        }
    }
}

/// The running fake provider, switch and bridge.
pub struct Stack {
    /// The fake provider.
    pub fake: RunningFake,
    /// The simulated switch, when started.
    pub freeswitch: Option<FakeFreeswitch>,
    /// The bridge process.
    pub bridge: BridgeProcess,
    /// What the run needs of the bridge's configuration (its recordings folder).
    pub profile: BridgeProfile,
}

impl Stack {
    /// Starts the fake, the switch (if asked) and the bridge, and waits for the bridge to be ready.
    pub async fn start(options: StackOptions) -> anyhow::Result<Stack> {
        let fake = RunningFake::start(options.provider, options.fake, &options.cascaded).await?;
        let mut env = fake.bridge_env();
        env.extend(options.env.iter().cloned());
        let profile = read_profile(options.config.as_deref(), &env, &options.domain)?;
        if options.provider == ProviderChoice::Cascaded && !profile.local_turns {
            bail!(
                "--provider cascaded needs the bridge's local turn detection ([agent.turn] \
                 detection = \"local\"): use --config sim/configs/cascaded.toml"
            );
        }
        let freeswitch = if options.with_freeswitch {
            Some(
                FakeFreeswitch::start(&options.esl_password)
                    .await
                    .context("starting the fake FreeSWITCH")?,
            )
        } else {
            None
        };
        let binary = match options.bridge_binary {
            Some(path) => path,
            None => find_bridge_binary()?,
        };
        let mut launch = BridgeLaunch::new(binary);
        launch.env.extend(fake.bridge_env());
        if let Some(fs) = &freeswitch {
            launch = launch.esl(fs.esl_addr(), fs.password());
        }
        launch.config = options.config;
        launch.log_level = options.log_level;
        launch.env.extend(options.env);
        let bridge = BridgeProcess::start(launch).await?;
        Ok(Stack {
            fake,
            freeswitch,
            bridge,
            profile,
        })
    }

    /// `ws://ADDR` of the bridge.
    pub fn bridge_url(&self) -> String {
        self.bridge.ws_base()
    }

    /// Stops the bridge (SIGTERM, 10 s grace) and drops the fakes.
    pub async fn stop(self) -> anyhow::Result<()> {
        let status = self.bridge.stop(Duration::from_secs(10)).await?;
        if !status.success() {
            anyhow::bail!("the bridge exited with {status} after SIGTERM");
        }
        Ok(())
    }
}

/// The bridge's profile as the process will see it: our environment, then `env`.
fn read_profile(
    config: Option<&std::path::Path>,
    env: &[(String, String)],
    domain: &str,
) -> anyhow::Result<BridgeProfile> {
    let mut all: Vec<(String, String)> = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect();
    all.extend(env.iter().cloned());
    BridgeProfile::read(config, &all, domain)
}
