//! The local backend against a real directory.

use super::*;

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("insights-storage-{}", uuid::Uuid::new_v4()));
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

#[tokio::test]
async fn local_round_trip_sizes_and_overwrites() {
    let dir = TempDir::new();
    let storage = Storage::local(dir.0.join("nested/root")).unwrap();
    assert_eq!(storage.backend(), "local");
    let key = recording_key(uuid::Uuid::new_v4(), uuid::Uuid::new_v4(), "wav").unwrap();
    storage
        .put(&key, Bytes::from_static(b"hello"))
        .await
        .unwrap();
    assert_eq!(
        storage.get(&key).await.unwrap(),
        Bytes::from_static(b"hello")
    );
    assert_eq!(storage.size(&key).await.unwrap(), 5);
    // The object is a plain file where the key says.
    assert_eq!(
        std::fs::read(dir.0.join("nested/root").join(&key)).unwrap(),
        b"hello"
    );
    storage.put(&key, Bytes::from_static(b"bye")).await.unwrap();
    assert_eq!(storage.get(&key).await.unwrap(), Bytes::from_static(b"bye"));
    assert!(matches!(
        storage.get("recordings/none.wav").await,
        Err(StorageError::NotFound)
    ));
    assert!(matches!(
        storage.size("recordings/none.wav").await,
        Err(StorageError::NotFound)
    ));
    storage.check().await.unwrap();
}

#[tokio::test]
async fn local_writes_leave_no_temporary_files() {
    let dir = TempDir::new();
    let storage = Storage::local(&dir.0).unwrap();
    storage
        .put("a/b.wav", Bytes::from(pattern(1000)))
        .await
        .unwrap();
    let file = dir.0.join("big.bin");
    std::fs::write(&file, pattern(PART_BYTES + 12345)).unwrap();
    storage.put_file("a/c.wav", &file).await.unwrap();
    let names: Vec<String> = std::fs::read_dir(dir.0.join("a"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(sorted, vec!["b.wav", "c.wav"], "{names:?}");
}

#[tokio::test]
async fn local_range_reads() {
    let dir = TempDir::new();
    let storage = Storage::local(&dir.0).unwrap();
    let data = pattern(1000);
    storage
        .put("r/x.bin", Bytes::from(data.clone()))
        .await
        .unwrap();
    assert_eq!(
        storage.get_range("r/x.bin", 0..10).await.unwrap(),
        &data[0..10]
    );
    assert_eq!(
        storage.get_range("r/x.bin", 400..600).await.unwrap(),
        &data[400..600]
    );
    assert_eq!(
        storage.get_range("r/x.bin", 990..1000).await.unwrap(),
        &data[990..]
    );
    assert_eq!(
        storage.get_range("r/x.bin", 0..1000).await.unwrap(),
        &data[..]
    );
    for bad in [
        5..5,
        std::ops::Range { start: 10, end: 3 },
        990..1001,
        2000..3000,
    ] {
        let e = storage.get_range("r/x.bin", bad.clone()).await.unwrap_err();
        assert!(matches!(e, StorageError::InvalidRange(_)), "{bad:?}: {e}");
    }
    assert!(matches!(
        storage.get_range("r/missing.bin", 0..1).await,
        Err(StorageError::NotFound)
    ));
}

#[tokio::test]
async fn local_delete_is_idempotent() {
    let dir = TempDir::new();
    let storage = Storage::local(&dir.0).unwrap();
    storage
        .put("d/x.wav", Bytes::from_static(b"x"))
        .await
        .unwrap();
    assert!(storage.delete("d/x.wav").await.unwrap());
    assert!(!storage.delete("d/x.wav").await.unwrap());
    assert!(matches!(
        storage.get("d/x.wav").await,
        Err(StorageError::NotFound)
    ));
}

#[tokio::test]
async fn invalid_keys_never_touch_the_disk() {
    let dir = TempDir::new();
    let root = dir.0.join("root");
    let storage = Storage::local(&root).unwrap();
    for key in ["", "../escape.wav", "/abs.wav", "a/../../b", "a\nb", "a//b"] {
        let e = storage
            .put(key, Bytes::from_static(b"x"))
            .await
            .unwrap_err();
        assert!(matches!(e, StorageError::InvalidKey(_)), "{key:?}: {e}");
        assert!(matches!(
            storage.get(key).await,
            Err(StorageError::InvalidKey(_))
        ));
        assert!(matches!(
            storage.delete(key).await,
            Err(StorageError::InvalidKey(_))
        ));
    }
    assert!(!dir.0.join("escape.wav").exists());
}

#[tokio::test]
async fn local_put_file_streams_a_multi_megabyte_file() {
    let dir = TempDir::new();
    let storage = Storage::local(dir.0.join("store")).unwrap();
    let data = pattern(3 * PART_BYTES + 777);
    let file = dir.0.join("upload.bin");
    std::fs::write(&file, &data).unwrap();
    let size = storage.put_file("up/x.wav", &file).await.unwrap();
    assert_eq!(size, data.len() as u64);
    assert_eq!(storage.get("up/x.wav").await.unwrap(), &data[..]);
    let small = dir.0.join("small.bin");
    std::fs::write(&small, b"tiny").unwrap();
    assert_eq!(storage.put_file("up/s.wav", &small).await.unwrap(), 4);
    let e = storage
        .put_file("up/m.wav", &dir.0.join("missing"))
        .await
        .unwrap_err();
    assert!(matches!(e, StorageError::Failed(_)), "{e}");
}

#[tokio::test]
async fn objects_over_the_limit_are_refused() {
    let dir = TempDir::new();
    let settings = StorageSettings {
        backend: Backend::Local,
        local_dir: dir.0.clone(),
        s3: S3Settings::default(),
        max_recording_bytes: 10,
    };
    let storage = Storage::from_settings(&settings).unwrap();
    let e = storage
        .put("l/x.wav", Bytes::from(pattern(11)))
        .await
        .unwrap_err();
    assert!(
        matches!(e, StorageError::TooLarge { size: 11, max: 10 }),
        "{e}"
    );
    let file = dir.0.join("f.bin");
    std::fs::write(&file, pattern(11)).unwrap();
    assert!(matches!(
        storage.put_file("l/y.wav", &file).await,
        Err(StorageError::TooLarge { .. })
    ));
    storage
        .put("l/z.wav", Bytes::from(pattern(10)))
        .await
        .unwrap();
}

#[tokio::test]
async fn an_unbuilt_store_reports_why_on_every_call() {
    let storage = Storage::unavailable(Backend::S3, "bad endpoint");
    assert_eq!(storage.backend(), "s3");
    assert!(
        matches!(storage.check().await, Err(StorageError::Unavailable(m)) if m == "bad endpoint")
    );
    assert!(matches!(
        storage.get("a/b").await,
        Err(StorageError::Unavailable(_))
    ));
}

#[test]
fn the_storage_section_loads_validates_and_hides_secrets() {
    use crate::config::{InsightsConfig, DEFAULT_TOML, ENV_PREFIX};
    let c = InsightsConfig::from_toml("").unwrap();
    assert_eq!(c.storage.backend, Backend::Local);
    assert_eq!(
        c.storage.local_dir,
        std::path::PathBuf::from("data/recordings")
    );
    assert_eq!(c.storage.max_recording_bytes, 200 * 1024 * 1024);
    assert!(c.storage.s3.endpoint.is_empty());

    let env = vec![
        (
            "VOICE_INSIGHTS__STORAGE__BACKEND".to_string(),
            "s3".to_string(),
        ),
        (
            "VOICE_INSIGHTS__STORAGE__S3__BUCKET".to_string(),
            "recs".to_string(),
        ),
        (
            "VOICE_INSIGHTS__STORAGE__S3__SECRET_ACCESS_KEY".to_string(),
            "hunter2-secret".to_string(),
        ),
    ];
    let c: InsightsConfig =
        voice_core::config::load_with_env(DEFAULT_TOML, None, ENV_PREFIX, &env).unwrap();
    assert_eq!(c.storage.backend, Backend::S3);
    assert_eq!(c.storage.s3.secret_access_key.expose(), "hunter2-secret");
    assert!(!format!("{c:?}").contains("hunter2"));

    for bad in [
        "[storage]\nbackend = \"s3\"",
        "[storage]\nbackend = \"ftp\"",
        "[storage]\nmax_recording_bytes = 0",
        "[storage]\nbackend = \"s3\"\n[storage.s3]\nbucket = \"b\"\nendpoint = \"http://x:9000\"",
        "[storage]\nbackend = \"s3\"\n[storage.s3]\nbucket = \"b\"\nprefix = \"/abs\"",
        "[storage.s3]\nbuckett = \"b\"",
    ] {
        assert!(InsightsConfig::from_toml(bad).is_err(), "{bad}");
    }
    let ok = "[storage]\nbackend = \"s3\"\n[storage.s3]\nbucket = \"b\"\nendpoint = \"http://x:9000\"\nallow_http = true";
    assert!(InsightsConfig::from_toml(ok).is_ok());
}
