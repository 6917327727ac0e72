//! Recording storage: local disk (default) or any S3-compatible store, behind one
//! [`Storage`] handle built on `object_store`. Keys are checked ([`key::validate_key`])
//! before they reach a backend.

mod error;
pub mod key;
mod settings;

use std::ops::Range;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{ClientOptions, ObjectStore, PutPayload, RetryConfig, WriteMultipart};
use tokio::io::AsyncReadExt;
use voice_core::config::Secret;

pub use error::StorageError;
pub use key::{recording_key, validate_key, MAX_KEY_BYTES};
pub use settings::{Backend, S3Settings, StorageSettings};

/// Files up to this size are uploaded in one request; bigger ones in parts of this size.
const PART_BYTES: usize = 8 * 1024 * 1024;
/// Parts uploaded at once by `put_file`.
const PART_CONCURRENCY: usize = 2;
/// Largest object when no limit is configured (`Storage::local`): the config default.
pub const DEFAULT_MAX_RECORDING_BYTES: u64 = 200 * 1024 * 1024;

/// A handle on the recording store; cheap to clone.
#[derive(Clone)]
pub struct Storage {
    /// `Err`: the store could not be built at start; every call reports that reason.
    store: Result<Arc<dyn ObjectStore>, String>,
    backend: &'static str,
    /// Prepended to every key (`<prefix>/<key>`), empty for none.
    prefix: String,
    max_bytes: u64,
    /// Values scrubbed from error messages (the S3 credentials).
    secrets: Arc<[Secret]>,
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Storage")
            .field("backend", &self.backend)
            .field("prefix", &self.prefix)
            .field("ready", &self.store.is_ok())
            .finish()
    }
}

impl Storage {
    /// The configured backend; the local one creates its directory. S3 credentials left
    /// empty come from `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY`.
    pub fn from_settings(s: &StorageSettings) -> Result<Self, StorageError> {
        s.validate().map_err(StorageError::Failed)?;
        let storage = match s.backend {
            Backend::Local => Self::local(&s.local_dir)?,
            Backend::S3 => Self::s3(&s.s3, |name| std::env::var(name).ok())?,
        };
        Ok(Self {
            max_bytes: s.max_recording_bytes,
            ..storage
        })
    }

    /// Files under `dir` (created if missing). Writes go to a temporary file renamed into
    /// place (object_store's `LocalFileSystem`), so readers never see half an object.
    pub fn local(dir: impl AsRef<Path>) -> Result<Self, StorageError> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir)
            .map_err(|e| StorageError::Failed(format!("cannot create {}: {e}", dir.display())))?;
        let fs =
            LocalFileSystem::new_with_prefix(dir).map_err(|e| error::from_object_store(e, &[]))?;
        Ok(Self {
            store: Ok(Arc::new(fs)),
            backend: Backend::Local.name(),
            prefix: String::new(),
            max_bytes: DEFAULT_MAX_RECORDING_BYTES,
            secrets: Arc::from(Vec::new()),
        })
    }

    /// An S3-compatible store; `env` supplies AWS credentials left empty in `s`.
    pub fn s3(s: &S3Settings, env: impl Fn(&str) -> Option<String>) -> Result<Self, StorageError> {
        let (key_id, secret) = s.credentials(env);
        let secrets: Arc<[Secret]> = Arc::from(vec![key_id.clone(), secret.clone()]);
        let client = ClientOptions::new()
            .with_allow_http(s.allow_http)
            .with_connect_timeout(Duration::from_secs(s.connect_timeout_secs))
            .with_timeout(Duration::from_secs(s.request_timeout_secs));
        let retry = RetryConfig {
            max_retries: s.max_retries,
            retry_timeout: Duration::from_secs(s.request_timeout_secs.saturating_mul(2)),
            ..RetryConfig::default()
        };
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(&s.bucket)
            .with_region(&s.region)
            .with_allow_http(s.allow_http)
            .with_client_options(client)
            .with_retry(retry);
        if !s.endpoint.is_empty() {
            builder = builder.with_endpoint(&s.endpoint);
        }
        // Both empty: object_store's default chain (instance role, web identity).
        if !key_id.is_empty() || !secret.is_empty() {
            builder = builder
                .with_access_key_id(key_id.expose())
                .with_secret_access_key(secret.expose());
        }
        let store = builder.build().map_err(|e| {
            let exposed: Vec<&str> = secrets.iter().map(Secret::expose).collect();
            error::from_object_store(e, &exposed)
        })?;
        Ok(Self {
            store: Ok(Arc::new(store)),
            backend: Backend::S3.name(),
            prefix: s.prefix.trim_end_matches('/').to_string(),
            max_bytes: DEFAULT_MAX_RECORDING_BYTES,
            secrets,
        })
    }

    /// A store that could not be built: every call fails with `Unavailable(reason)` and
    /// [`Storage::check`] reports it, so the service can start and say what is wrong.
    pub fn unavailable(backend: Backend, reason: impl Into<String>) -> Self {
        Self {
            store: Err(reason.into()),
            backend: backend.name(),
            prefix: String::new(),
            max_bytes: DEFAULT_MAX_RECORDING_BYTES,
            secrets: Arc::from(Vec::new()),
        }
    }

    /// `"local"` or `"s3"`.
    pub fn backend(&self) -> &'static str {
        self.backend
    }

    /// Largest object `put` and `put_file` accept.
    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    pub async fn put(&self, key: &str, bytes: Bytes) -> Result<(), StorageError> {
        let size = bytes.len() as u64;
        self.refuse_too_large(size)?;
        let (store, path) = self.locate(key)?;
        store
            .put(&path, PutPayload::from_bytes(bytes))
            .await
            .map_err(|e| self.map(e))?;
        Ok(())
    }

    /// Streams the file at `path` to `key` (a multipart upload when bigger than one part);
    /// returns its size.
    pub async fn put_file(&self, key: &str, path: &Path) -> Result<u64, StorageError> {
        let (store, location) = self.locate(key)?;
        let mut file = tokio::fs::File::open(path)
            .await
            .map_err(|e| error::from_io("opening the file to store", e))?;
        let size = file
            .metadata()
            .await
            .map_err(|e| error::from_io("reading the file to store", e))?
            .len();
        self.refuse_too_large(size)?;
        if size <= PART_BYTES as u64 {
            let mut buf = Vec::with_capacity(size as usize);
            file.read_to_end(&mut buf)
                .await
                .map_err(|e| error::from_io("reading the file to store", e))?;
            let read = buf.len() as u64;
            store
                .put(&location, PutPayload::from(buf))
                .await
                .map_err(|e| self.map(e))?;
            return Ok(read);
        }
        let upload = store
            .put_multipart(&location)
            .await
            .map_err(|e| self.map(e))?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_BYTES);
        let mut buf = vec![0u8; 1024 * 1024];
        let mut read = 0u64;
        loop {
            let n = match file.read(&mut buf).await {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) => {
                    let _ = writer.abort().await;
                    return Err(error::from_io("reading the file to store", e));
                }
            };
            read += n as u64;
            if read > self.max_bytes {
                // The file grew while being read.
                let _ = writer.abort().await;
                return Err(StorageError::TooLarge {
                    size: read,
                    max: self.max_bytes,
                });
            }
            // Bounds memory: at most a few parts in flight.
            if let Err(e) = writer.wait_for_capacity(PART_CONCURRENCY).await {
                let _ = writer.abort().await;
                return Err(self.map(e));
            }
            writer.write(&buf[..n]);
        }
        writer.finish().await.map_err(|e| self.map(e))?;
        Ok(read)
    }

    pub async fn get(&self, key: &str) -> Result<Bytes, StorageError> {
        let (store, path) = self.locate(key)?;
        let result = store.get(&path).await.map_err(|e| self.map(e))?;
        result.bytes().await.map_err(|e| self.map(e))
    }

    /// The object's size in bytes.
    pub async fn size(&self, key: &str) -> Result<u64, StorageError> {
        let (store, path) = self.locate(key)?;
        let meta = store.head(&path).await.map_err(|e| self.map(e))?;
        Ok(meta.size)
    }

    /// Bytes `range` of the object; an empty range or one past the end is `InvalidRange`.
    pub async fn get_range(&self, key: &str, range: Range<u64>) -> Result<Bytes, StorageError> {
        if range.start >= range.end {
            return Err(StorageError::InvalidRange(format!(
                "{}..{} is empty",
                range.start, range.end
            )));
        }
        // Checked against the size first: backends differ on ranges past the end (S3
        // shortens them, the local one refuses), callers get one clear answer.
        let size = self.size(key).await?;
        if range.end > size {
            return Err(StorageError::InvalidRange(format!(
                "{}..{} is past the end of an object of {size} bytes",
                range.start, range.end
            )));
        }
        let (store, path) = self.locate(key)?;
        store.get_range(&path, range).await.map_err(|e| self.map(e))
    }

    /// Removes `key`; `Ok(false)` when it was not there (S3 does not say, so it is looked up
    /// first).
    pub async fn delete(&self, key: &str) -> Result<bool, StorageError> {
        let (store, path) = self.locate(key)?;
        match store.head(&path).await {
            Ok(_) => {}
            Err(object_store::Error::NotFound { .. }) => return Ok(false),
            Err(e) => return Err(self.map(e)),
        }
        match store.delete(&path).await {
            Ok(()) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(self.map(e)),
        }
    }

    /// Reachability for `/healthz`: one listing of the top level (S3: one request; a
    /// missing bucket or bad credentials fail it).
    pub async fn check(&self) -> Result<(), StorageError> {
        let store = self.store()?;
        let prefix = (!self.prefix.is_empty()).then(|| ObjectPath::from(self.prefix.as_str()));
        store
            .list_with_delimiter(prefix.as_ref())
            .await
            .map(|_| ())
            .map_err(|e| match e {
                // A listing never 404s on a missing prefix: this is the bucket.
                object_store::Error::NotFound { .. } => {
                    StorageError::Failed("the bucket does not exist".into())
                }
                other => self.map(other),
            })
    }

    fn store(&self) -> Result<&Arc<dyn ObjectStore>, StorageError> {
        self.store
            .as_ref()
            .map_err(|reason| StorageError::Unavailable(reason.clone()))
    }

    /// The backend and the object path of a checked `key`.
    fn locate(&self, key: &str) -> Result<(&Arc<dyn ObjectStore>, ObjectPath), StorageError> {
        validate_key(key)?;
        let full = if self.prefix.is_empty() {
            key.to_string()
        } else {
            format!("{}/{key}", self.prefix)
        };
        let path = ObjectPath::parse(&full).map_err(|e| StorageError::InvalidKey(e.to_string()))?;
        Ok((self.store()?, path))
    }

    fn refuse_too_large(&self, size: u64) -> Result<(), StorageError> {
        if size > self.max_bytes {
            return Err(StorageError::TooLarge {
                size,
                max: self.max_bytes,
            });
        }
        Ok(())
    }

    fn map(&self, e: object_store::Error) -> StorageError {
        let exposed: Vec<&str> = self.secrets.iter().map(Secret::expose).collect();
        error::from_object_store(e, &exposed)
    }
}

#[cfg(test)]
mod tests;
