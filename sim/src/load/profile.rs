//! What the load tool needs to know of the bridge's configuration, read the way the bridge
//! reads it (the `--config` file, then `VOICE_BRIDGE__…` variables, the last one winning)
//! but leniently, since only a few keys matter here: whether turns are decided locally,
//! and where recordings and their facts go.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde_json::Value;

/// The bridge's own defaults for the keys read here (bridge/config/default.toml).
const DEFAULT_DETECTION: &str = "provider";
const DEFAULT_RECORDING_DIR: &str = "recordings";

/// The few settings of the bridge a run depends on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BridgeProfile {
    /// `[agent.turn] detection = "local"` (the run's tenant's override, when it has one).
    pub local_turns: bool,
    /// `[recording] dir` when recording is on: the calls' facts are under it. Relative to
    /// the bridge's working directory, which is ours when the bridge is started here.
    pub recordings: Option<PathBuf>,
}

impl BridgeProfile {
    /// From `config` and `env` (in the order the bridge applies them), for calls of
    /// tenant `domain`.
    pub fn read(
        config: Option<&Path>,
        env: &[(String, String)],
        domain: &str,
    ) -> anyhow::Result<Self> {
        let merged: Value = voice_core::config::load_with_env("", config, "VOICE_BRIDGE", env)
            .context("reading the bridge configuration")?;
        Ok(Self::of(&merged, domain))
    }

    fn of(config: &Value, domain: &str) -> Self {
        let detection = |agent: &Value| agent["turn"]["detection"].as_str().map(str::to_owned);
        let tenant = config["tenants"]
            .as_object()
            .and_then(|t| t.iter().find(|(name, _)| name.eq_ignore_ascii_case(domain)))
            .map(|(_, tenant)| detection(&tenant["agent"]));
        let detection = tenant
            .flatten()
            .or_else(|| detection(&config["agent"]))
            .unwrap_or_else(|| DEFAULT_DETECTION.into());
        let recording = &config["recording"];
        let recordings = (recording["enabled"].as_bool() == Some(true))
            .then(|| PathBuf::from(recording["dir"].as_str().unwrap_or(DEFAULT_RECORDING_DIR)));
        Self {
            local_turns: detection == "local",
            recordings,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_committed_cascaded_profile_has_local_turns_and_recordings() {
        let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/cascaded.toml");
        let p = BridgeProfile::read(Some(&file), &[], "sim.example.com").unwrap();
        assert!(p.local_turns);
        assert_eq!(p.recordings, Some(PathBuf::from("target/sim-recordings")));
    }

    #[test]
    fn env_overrides_the_file_and_tenants_override_the_top_level() {
        let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/cascaded.toml");
        let vars = env(&[
            ("VOICE_BRIDGE__AGENT__TURN__DETECTION", "provider"),
            ("VOICE_BRIDGE__RECORDING__DIR", "/tmp/elsewhere"),
            ("OTHER", "x"),
        ]);
        let p = BridgeProfile::read(Some(&file), &vars, "sim.example.com").unwrap();
        assert_eq!(
            p,
            BridgeProfile {
                local_turns: false,
                recordings: Some(PathBuf::from("/tmp/elsewhere")),
            }
        );
        let tenant = env(&[(
            "VOICE_BRIDGE__TENANTS__SIM.EXAMPLE.COM__AGENT__TURN__DETECTION",
            "local",
        )]);
        let p = BridgeProfile::read(None, &tenant, "sim.example.com").unwrap();
        assert!(p.local_turns);
        assert!(
            !BridgeProfile::read(None, &tenant, "other.example.com")
                .unwrap()
                .local_turns
        );
        // The bridge's defaults: provider turns, no recording.
        assert_eq!(
            BridgeProfile::read(None, &[], "x").unwrap(),
            BridgeProfile::default()
        );
        let off = env(&[("VOICE_BRIDGE__RECORDING__ENABLED", "false")]);
        assert_eq!(
            BridgeProfile::read(Some(&file), &off, "x")
                .unwrap()
                .recordings,
            None
        );
    }

    #[test]
    fn a_missing_file_is_an_error() {
        let err =
            BridgeProfile::read(Some(Path::new("/nonexistent/x.toml")), &[], "x").unwrap_err();
        assert!(
            format!("{err:#}").contains("/nonexistent/x.toml"),
            "{err:#}"
        );
    }
}
