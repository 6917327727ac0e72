//! [`EslClient`]: the cloneable handle callers use. The socket itself lives in the
//! connection task (`connection.rs`); the handle talks to it through [`Shared`].

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{broadcast, mpsc, oneshot, watch};

use super::protocol::{encode_command, Frame};
use super::{connection, EslConfig, EslError, EslEvent};

/// How many events a slow subscriber may fall behind before it sees `Lagged`.
const EVENT_BUFFER: usize = 1024;

/// A command on its way to the connection task, with where its reply goes.
pub(crate) struct Request {
    pub bytes: Vec<u8>,
    pub reply: oneshot::Sender<Frame>,
}

/// State shared by the handles and the connection task.
pub(crate) struct Shared {
    /// Present only while authenticated and subscribed; taking it away makes new commands
    /// fail fast with `NotConnected`.
    requests: Mutex<Option<mpsc::Sender<Request>>>,
    pub events: broadcast::Sender<EslEvent>,
    pub connected: watch::Sender<bool>,
    last_error: Mutex<Option<EslError>>,
    pub command_timeout: Duration,
}

impl Shared {
    pub fn set_requests(&self, sender: Option<mpsc::Sender<Request>>) {
        *lock(&self.requests) = sender;
    }

    pub fn set_last_error(&self, error: Option<EslError>) {
        *lock(&self.last_error) = error;
    }
}

/// The lock only guards plain assignments, so a poisoned one still holds valid data.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Handle to one kept-alive FreeSWITCH event-socket connection. Clones share it; the
/// background task stops when the last clone is dropped.
#[derive(Clone)]
pub struct EslClient {
    inner: Arc<Inner>,
}

struct Inner {
    shared: Arc<Shared>,
    /// Dropping this (with the last handle) tells the connection task to stop.
    _stop: oneshot::Sender<()>,
}

impl EslClient {
    /// Spawns the connection task: connect, authenticate, subscribe, and reconnect forever
    /// after `reconnect_delay_ms`. Must be called inside a tokio runtime; an invalid
    /// config or a missing runtime is logged and leaves the client permanently disconnected.
    pub fn start(cfg: EslConfig) -> EslClient {
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        let shared = Arc::new(Shared {
            requests: Mutex::new(None),
            events,
            connected: watch::Sender::new(false),
            last_error: Mutex::new(None),
            command_timeout: Duration::from_millis(cfg.command_timeout_ms),
        });
        let (stop_tx, stop_rx) = oneshot::channel();
        if let Err(e) = cfg.validate() {
            tracing::error!(error = %e, "ESL client not started");
            shared.set_last_error(Some(e));
        } else {
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) => {
                    runtime.spawn(connection::run(cfg, shared.clone(), stop_rx));
                }
                Err(_) => {
                    tracing::error!("ESL client not started: no tokio runtime");
                    shared.set_last_error(Some(EslError::Invalid("no tokio runtime".into())));
                }
            }
        }
        EslClient {
            inner: Arc::new(Inner {
                shared,
                _stop: stop_tx,
            }),
        }
    }

    /// Runs `api <command>` and returns the reply body (`+OK …`, `-ERR …` or data; see
    /// [`super::is_ok`]). Errors only when the reply never came.
    pub async fn api(&self, command: &str) -> Result<String, EslError> {
        let frame = self.request(&format!("api {command}")).await?;
        // FreeSWITCH answers some refusals (e.g. `-ERR permission denied`) with a
        // command/reply instead of an api/response.
        if frame.content_type() == Some("command/reply") {
            return Ok(frame.reply_text().unwrap_or("-ERR no reply").to_string());
        }
        Ok(frame.body_text())
    }

    /// Runs `bgapi <command>` and returns its Job-UUID. The output comes later as a
    /// `BACKGROUND_JOB` event with that `Job-UUID`: call [`Self::events`] *before* this, or
    /// use [`Self::bgapi_output`].
    pub async fn bgapi(&self, command: &str) -> Result<String, EslError> {
        let frame = self.request(&format!("bgapi {command}")).await?;
        match frame.header("Job-UUID") {
            Some(job) if !job.is_empty() => Ok(job.to_string()),
            _ => Err(EslError::Rejected(
                frame
                    .reply_text()
                    .unwrap_or("bgapi reply without Job-UUID")
                    .to_string(),
            )),
        }
    }

    /// `bgapi` and wait (up to `wait`) for the job's output, the `BACKGROUND_JOB` body.
    pub async fn bgapi_output(&self, command: &str, wait: Duration) -> Result<String, EslError> {
        let mut events = self.events();
        let job = self.bgapi(command).await?;
        let found = tokio::time::timeout(wait, async {
            loop {
                match events.recv().await {
                    Ok(event)
                        if event.name() == Some("BACKGROUND_JOB")
                            && event.job_uuid() == Some(job.as_str()) =>
                    {
                        return Ok(event.body().unwrap_or_default().to_string());
                    }
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => {
                        return Err(EslError::ConnectionLost)
                    }
                }
            }
        })
        .await;
        found.unwrap_or(Err(EslError::Timeout))
    }

    /// Every event received from now on, from this and later connections.
    pub fn events(&self) -> broadcast::Receiver<EslEvent> {
        self.inner.shared.events.subscribe()
    }

    /// Authenticated and subscribed right now.
    pub fn is_connected(&self) -> bool {
        *self.inner.shared.connected.borrow()
    }

    /// Waits until connected; `false` if `timeout` passes first.
    pub async fn wait_connected(&self, timeout: Duration) -> bool {
        let mut rx = self.inner.shared.connected.subscribe();
        let became_true = async { rx.wait_for(|c| *c).await.is_ok() };
        tokio::time::timeout(timeout, became_true)
            .await
            .unwrap_or(false)
    }

    /// Why the last connection attempt or connection failed (`AuthFailed`, `Io`, …);
    /// `None` once connected.
    pub fn last_error(&self) -> Option<EslError> {
        lock(&self.inner.shared.last_error).clone()
    }

    /// Sends one command line and waits for its reply frame.
    async fn request(&self, line: &str) -> Result<Frame, EslError> {
        let bytes = encode_command(line)?;
        let shared = &self.inner.shared;
        let sender = lock(&shared.requests)
            .clone()
            .ok_or(EslError::NotConnected)?;
        let (reply, reply_rx) = oneshot::channel();
        let exchange = async {
            sender
                .send(Request { bytes, reply })
                .await
                .map_err(|_| EslError::NotConnected)?;
            // The task drops the reply sender when the connection goes away.
            reply_rx.await.map_err(|_| EslError::ConnectionLost)
        };
        tokio::time::timeout(shared.command_timeout, exchange)
            .await
            .unwrap_or(Err(EslError::Timeout))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unused_address() -> String {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().to_string()
    }

    #[tokio::test]
    async fn command_while_disconnected_fails_fast() {
        let cfg = EslConfig {
            address: unused_address(),
            reconnect_delay_ms: 50,
            ..EslConfig::default()
        };
        let client = EslClient::start(cfg);
        assert!(!client.is_connected());
        assert_eq!(client.api("status").await, Err(EslError::NotConnected));
        assert_eq!(client.bgapi("status").await, Err(EslError::NotConnected));
        assert!(!client.wait_connected(Duration::from_millis(200)).await);
    }

    #[tokio::test]
    async fn invalid_config_is_reported_not_panicked() {
        let cfg = EslConfig {
            address: " ".into(),
            ..EslConfig::default()
        };
        let client = EslClient::start(cfg);
        assert!(matches!(client.last_error(), Some(EslError::Invalid(_))));
        assert_eq!(client.api("status").await, Err(EslError::NotConnected));
    }

    #[test]
    fn start_outside_a_runtime_does_not_panic() {
        let client = EslClient::start(EslConfig::default());
        assert!(!client.is_connected());
        assert!(matches!(client.last_error(), Some(EslError::Invalid(_))));
    }

    #[tokio::test]
    async fn commands_with_line_breaks_are_refused() {
        let client = EslClient::start(EslConfig {
            address: unused_address(),
            ..EslConfig::default()
        });
        assert!(matches!(
            client.api("status\n\napi shutdown").await,
            Err(EslError::Invalid(_))
        ));
    }
}
