//! The `turn-api` binary as a child process, and what it costs (from `/proc`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use tokio::process::{Child, Command};

use crate::bridge_process::{cpu_percent, cpu_ticks, http_status, rss_kib};

/// A running turn-api. Killed if dropped without [`TurnApiProcess::stop`].
pub struct TurnApiProcess {
    child: Child,
    pid: u32,
    listen: SocketAddr,
}

impl TurnApiProcess {
    /// Starts `binary --config config` (which must listen on `listen`) and waits until
    /// `GET /healthz` answers 200. Its output goes to stderr.
    pub async fn start(binary: &Path, config: &Path, listen: SocketAddr) -> anyhow::Result<Self> {
        let mut child = Command::new(binary)
            .arg("--config")
            .arg(config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let pid = child.id().context("the turn-api exited at once")?;
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = child.try_wait()? {
                bail!("the turn-api exited before it was ready ({status})");
            }
            if let Ok(200) = http_status(listen, "/healthz", Duration::from_secs(1)).await {
                break;
            }
            if Instant::now() >= deadline {
                let _ = child.kill().await;
                bail!("the turn-api was not ready on {listen} within 20 s");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(Self { child, pid, listen })
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// `http://ADDR`.
    pub fn base(&self) -> String {
        format!("http://{}", self.listen)
    }

    /// CPU ticks so far (for [`CpuMeter`]).
    pub fn cpu_ticks(&self) -> Option<u64> {
        cpu_ticks(self.pid).ok()
    }

    /// CPU percent of one core between `ticks_at_start` and now, and the RSS now.
    pub fn cost_since(&self, ticks_at_start: Option<u64>, wall: Duration) -> super::ProcessCost {
        let cpu_pct = match (ticks_at_start, self.cpu_ticks()) {
            (Some(a), Some(b)) => {
                Some(super::stats::round1(cpu_percent(b.saturating_sub(a), wall)))
            }
            _ => None,
        };
        super::ProcessCost {
            pid: self.pid,
            cpu_pct,
            rss_mb: rss_kib(self.pid)
                .ok()
                .map(|kib| super::stats::round1(kib as f64 / 1024.0)),
        }
    }

    /// SIGTERM, up to 10 s to finish, then SIGKILL.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if self.child.try_wait()?.is_some() {
            return Ok(());
        }
        let pid = libc::pid_t::try_from(self.pid).context("pid out of range")?;
        // SAFETY: kill(2) on a child we spawned and have not reaped, with a valid signal.
        if unsafe { libc::kill(pid, libc::SIGTERM) } != 0 {
            bail!("SIGTERM to {pid}: {}", std::io::Error::last_os_error());
        }
        if tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .is_err()
        {
            self.child.kill().await?;
            bail!("the turn-api did not exit within 10 s of SIGTERM; killed it");
        }
        Ok(())
    }
}

/// The turn-api binary: `$VOICE_TURN_API_BIN`, else `turn-api` next to this executable (or
/// one or two folders up, for test binaries in `deps/`).
pub fn find_turn_api_binary() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("VOICE_TURN_API_BIN") {
        let path = PathBuf::from(path);
        if path.is_file() {
            return Ok(path);
        }
        bail!("VOICE_TURN_API_BIN={} is not a file", path.display());
    }
    let exe = std::env::current_exe().context("locating this executable")?;
    exe.ancestors()
        .skip(1)
        .take(3)
        .map(|dir| dir.join("turn-api"))
        .find(|p| p.is_file())
        .with_context(|| {
            format!(
                "turn-api not found next to {} (build it: cargo build -p turn-api, with \
                 --release for a benchmark; or set VOICE_TURN_API_BIN)",
                exe.display()
            )
        })
}

/// A free port on 127.0.0.1.
pub fn free_addr() -> anyhow::Result<SocketAddr> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}
