//! Everything a test process logs at debug level, kept in memory, for the checks that no
//! secret reaches the logs. The subscriber is the process's: installed once, by the first
//! caller of [`capture`].

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

/// The lines logged since the capture was installed.
pub struct LogCapture(Arc<Mutex<Vec<u8>>>);

impl LogCapture {
    pub fn text(&self) -> String {
        let bytes = self.0.lock().map(|b| b.clone()).unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

/// The capture, installing it on first use. When the process already had a subscriber,
/// nothing is captured: a test should check that the lines it expects are there.
pub fn capture() -> &'static LogCapture {
    static CAPTURE: OnceLock<LogCapture> = OnceLock::new();
    CAPTURE.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let writer = buffer.clone();
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("debug"))
            .with_writer(move || Appender(writer.clone()))
            .try_init();
        LogCapture(buffer)
    })
}

struct Appender(Arc<Mutex<Vec<u8>>>);

impl Write for Appender {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut all) = self.0.lock() {
            all.extend_from_slice(buf);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
