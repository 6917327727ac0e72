//! Starting and stopping the real `voice-bridge` binary for load runs and end-to-end tests,
//! and reading what it costs from `/proc` (CPU ticks, VmRSS).

use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

/// How to start the bridge.
#[derive(Debug, Clone)]
pub struct BridgeLaunch {
    /// The `voice-bridge` executable.
    pub binary: PathBuf,
    /// `--config FILE`, if any.
    pub config: Option<PathBuf>,
    /// Other command-line arguments (before `--config`).
    pub args: Vec<String>,
    /// Address to listen on; `None` picks a free port on 127.0.0.1.
    pub listen: Option<SocketAddr>,
    /// `VOICE_BRIDGE__…` overrides (and any other environment), applied in order.
    pub env: Vec<(String, String)>,
    /// Log level (`VOICE_BRIDGE__LOG__LEVEL`).
    pub log_level: String,
    /// How long to wait for `/readyz` to answer 200.
    pub ready_timeout: Duration,
}

impl BridgeLaunch {
    /// Defaults: a free port, log level `warn`, 20 s to become ready.
    pub fn new(binary: impl Into<PathBuf>) -> Self {
        BridgeLaunch {
            binary: binary.into(),
            config: None,
            args: Vec::new(),
            listen: None,
            env: Vec::new(),
            log_level: "warn".into(),
            ready_timeout: Duration::from_secs(20),
        }
    }

    /// Adds an environment variable.
    pub fn env(mut self, key: &str, value: impl Into<String>) -> Self {
        self.env.push((key.to_string(), value.into()));
        self
    }

    /// Enables the bridge's ESL client towards `addr` with `password`.
    pub fn esl(self, addr: SocketAddr, password: &str) -> Self {
        self.env("VOICE_BRIDGE__ESL__ENABLED", "true")
            .env("VOICE_BRIDGE__ESL__ADDRESS", addr.to_string())
            .env("VOICE_BRIDGE__ESL__PASSWORD", password)
    }
}

/// A running bridge. Killed (SIGKILL) if dropped without [`BridgeProcess::stop`].
pub struct BridgeProcess {
    child: Child,
    pid: u32,
    listen: SocketAddr,
}

impl BridgeProcess {
    /// Starts the bridge and waits until `GET /readyz` answers 200. Its output goes to this
    /// process's stderr, so stdout stays ours.
    pub async fn start(launch: BridgeLaunch) -> anyhow::Result<Self> {
        let listen = match launch.listen {
            Some(addr) => addr,
            None => free_port().context("finding a free port for the bridge")?,
        };
        let mut command = Command::new(&launch.binary);
        command.args(&launch.args);
        if let Some(config) = &launch.config {
            command.arg("--config").arg(config);
        }
        command
            .env("VOICE_BRIDGE__SERVER__LISTEN", listen.to_string())
            .env("VOICE_BRIDGE__LOG__LEVEL", &launch.log_level)
            .envs(launch.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(to_stderr()?)
            .stderr(to_stderr()?)
            .kill_on_drop(true);
        let mut child = command
            .spawn()
            .with_context(|| format!("starting {}", launch.binary.display()))?;
        let pid = child.id().context("the bridge exited at once")?;
        let deadline = Instant::now() + launch.ready_timeout;
        loop {
            if let Some(status) = child.try_wait()? {
                bail!("the bridge exited before it was ready ({status})");
            }
            if let Ok(200) = http_status(listen, "/readyz", Duration::from_secs(1)).await {
                break;
            }
            if Instant::now() >= deadline {
                let _ = child.kill().await;
                bail!(
                    "the bridge was not ready on {listen} within {:?}",
                    launch.ready_timeout
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(BridgeProcess { child, pid, listen })
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Where it listens.
    pub fn listen(&self) -> SocketAddr {
        self.listen
    }

    /// `ws://ADDR`, the base for stream URLs.
    pub fn ws_base(&self) -> String {
        format!("ws://{}", self.listen)
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Graceful stop: SIGTERM, up to `grace` to exit, then SIGKILL (an error).
    pub async fn stop(mut self, grace: Duration) -> anyhow::Result<std::process::ExitStatus> {
        if let Some(status) = self.child.try_wait()? {
            return Ok(status);
        }
        let pid = libc::pid_t::try_from(self.pid).context("pid out of range")?;
        // SAFETY: kill(2) with a pid we spawned and still own (not yet reaped), and a valid signal.
        if unsafe { libc::kill(pid, libc::SIGTERM) } != 0 {
            bail!("SIGTERM to {pid}: {}", std::io::Error::last_os_error());
        }
        match tokio::time::timeout(grace, self.child.wait()).await {
            Ok(status) => Ok(status?),
            Err(_) => {
                self.child.kill().await?;
                bail!("the bridge did not exit within {grace:?} of SIGTERM; killed it")
            }
        }
    }
}

/// The bridge binary: `$VOICE_BRIDGE_BIN`, else `voice-bridge` next to this executable, else
/// `../release/voice-bridge` from it (a debug `voice-sim` or a test binary in `deps/`).
pub fn find_bridge_binary() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("VOICE_BRIDGE_BIN") {
        let path = PathBuf::from(path);
        if path.is_file() {
            return Ok(path);
        }
        bail!("VOICE_BRIDGE_BIN={} is not a file", path.display());
    }
    let exe = std::env::current_exe().context("locating this executable")?;
    let mut candidates = Vec::new();
    for dir in exe.ancestors().skip(1).take(3) {
        candidates.push(dir.join("voice-bridge"));
        if let Some(target) = dir.parent() {
            candidates.push(target.join("release").join("voice-bridge"));
        }
    }
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .with_context(|| format!("voice-bridge not found near {} (build it: cargo build --release -p voice-bridge, or set VOICE_BRIDGE_BIN)", exe.display()))
}

/// The status code of `GET path` on `addr` (plain HTTP/1.1).
pub async fn http_status(addr: SocketAddr, path: &str, timeout: Duration) -> anyhow::Result<u16> {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await?;
        let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        let mut head = [0u8; 64];
        let mut got = 0;
        while got < 12 {
            let n = stream.read(&mut head[got..]).await?;
            if n == 0 {
                break;
            }
            got += n;
        }
        anyhow::Ok(String::from_utf8_lossy(&head[..got]).to_string())
    };
    let head = tokio::time::timeout(timeout, exchange)
        .await
        .context("HTTP timeout")??;
    let status = head
        .strip_prefix("HTTP/1.1 ")
        .or_else(|| head.strip_prefix("HTTP/1.0 "))
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .with_context(|| format!("not an HTTP response: {head:?}"))?;
    Ok(status)
}

fn free_port() -> std::io::Result<SocketAddr> {
    std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()
}

fn to_stderr() -> anyhow::Result<Stdio> {
    let fd = std::io::stderr()
        .as_fd()
        .try_clone_to_owned()
        .context("duplicating stderr")?;
    Ok(Stdio::from(fd))
}

/// CPU time (user + system) a process has used, in clock ticks (`/proc/PID/stat`).
pub fn cpu_ticks(pid: u32) -> anyhow::Result<u64> {
    parse_cpu_ticks(&std::fs::read_to_string(format!("/proc/{pid}/stat"))?)
}

/// Our own CPU ticks.
pub fn own_cpu_ticks() -> anyhow::Result<u64> {
    parse_cpu_ticks(&std::fs::read_to_string("/proc/self/stat")?)
}

/// utime + stime from a `/proc/PID/stat` line (fields 14 and 15; the name may hold spaces).
pub fn parse_cpu_ticks(stat: &str) -> anyhow::Result<u64> {
    let after_name = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .context("no ')' in /proc stat")?;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let field = |i: usize| -> anyhow::Result<u64> {
        fields
            .get(i)
            .context("short /proc stat line")?
            .parse()
            .context("bad /proc stat number")
    };
    // After ")": state is field 3, so utime (14) is index 11 and stime (15) index 12.
    Ok(field(11)? + field(12)?)
}

/// Resident memory of a process in KiB (`VmRSS` in `/proc/PID/status`).
pub fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    parse_rss_kib(&std::fs::read_to_string(format!("/proc/{pid}/status"))?)
}

/// `VmRSS:   1234 kB` → 1234.
pub fn parse_rss_kib(status: &str) -> anyhow::Result<u64> {
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .context("no VmRSS line")?;
    line.split_whitespace()
        .nth(1)
        .context("empty VmRSS line")?
        .parse()
        .context("bad VmRSS number")
}

/// Clock ticks per second for `/proc` CPU times (`sysconf(_SC_CLK_TCK)`, normally 100).
pub fn clock_ticks_per_sec() -> u64 {
    // SAFETY: sysconf only reads a configuration value.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(ticks).ok().filter(|&t| t > 0).unwrap_or(100)
}

/// CPU use between two tick readings over `wall`, as % of one core.
pub fn cpu_percent(ticks_delta: u64, wall: Duration) -> f64 {
    let secs = wall.as_secs_f64();
    if secs <= 0.0 {
        return 0.0;
    }
    ticks_delta as f64 / clock_ticks_per_sec() as f64 / secs * 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_files() {
        let stat = "1234 (voice bridge) S 1 1234 1234 0 -1 4194560 500 0 0 0 250 75 0 0 20 0 9 0 100 1000 200";
        assert_eq!(parse_cpu_ticks(stat).unwrap(), 325);
        assert!(parse_cpu_ticks("garbage").is_err());
        let status = "Name:\tvoice-bridge\nVmPeak:\t  9000 kB\nVmRSS:\t   5120 kB\nThreads: 9\n";
        assert_eq!(parse_rss_kib(status).unwrap(), 5120);
        assert!(parse_rss_kib("Name: x\n").is_err());
        assert!(own_cpu_ticks().is_ok());
        assert!(rss_kib(std::process::id()).unwrap() > 0);
        assert_eq!(
            cpu_percent(clock_ticks_per_sec(), Duration::from_secs(2)),
            50.0
        );
    }

    #[tokio::test]
    async fn reads_an_http_status() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 256];
            let _ = s.read(&mut buf).await;
            s.write_all(b"HTTP/1.1 503 Service Unavailable\r\n\r\n")
                .await
                .unwrap();
        });
        assert_eq!(
            http_status(addr, "/readyz", Duration::from_secs(5))
                .await
                .unwrap(),
            503
        );
    }

    #[tokio::test]
    async fn starts_waits_for_ready_and_stops_a_process() {
        // A stand-in bridge: python's http.server answering 200 to every GET.
        let Ok(python) = which("python3") else { return };
        let port = free_port().unwrap().port();
        let script = format!(
            "import http.server,socketserver\nclass H(http.server.BaseHTTPRequestHandler):\n  def do_GET(self):\n    self.send_response(200); self.end_headers()\n  def log_message(self,*a): pass\nsocketserver.TCPServer(('127.0.0.1',{port}),H).serve_forever()\n"
        );
        let mut launch = BridgeLaunch::new(python);
        launch.listen = Some(SocketAddr::from(([127, 0, 0, 1], port)));
        launch.args = vec!["-c".into(), script];
        let process = BridgeProcess::start(launch).await.unwrap();
        assert_eq!(process.ws_base(), format!("ws://127.0.0.1:{port}"));
        assert!(cpu_ticks(process.pid()).is_ok());
        assert!(rss_kib(process.pid()).unwrap() > 0);
        let status = process.stop(Duration::from_secs(10)).await.unwrap();
        assert!(!status.success(), "ended by SIGTERM");
    }

    #[tokio::test]
    async fn a_process_that_exits_early_is_an_error() {
        let Ok(sh) = which("sh") else { return };
        let mut launch = BridgeLaunch::new(sh);
        launch.args = vec!["-c".into(), "exit 3".into()];
        let err = BridgeProcess::start(launch).await.err().unwrap();
        assert!(err.to_string().contains("exited"), "{err}");
    }

    fn which(name: &str) -> Result<PathBuf, ()> {
        std::env::var_os("PATH")
            .and_then(|paths| {
                std::env::split_paths(&paths)
                    .map(|d| d.join(name))
                    .find(|p| p.is_file())
            })
            .ok_or(())
    }
}
