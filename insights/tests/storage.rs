//! The S3 backend against moto's S3 server (http://127.0.0.1:5090, started by
//! `bash -c '. scripts/lib.sh; ensure_s3'`), a fresh bucket per test.

use std::time::{Duration, Instant};

use bytes::Bytes;
use call_insights::storage::{
    recording_key, Backend, S3Settings, Storage, StorageError, StorageSettings,
};
use uuid::Uuid;
use voice_core::config::Secret;

const S3: &str = "http://127.0.0.1:5090";
const KEY_ID: &str = "AKIATESTKEYID";
const SECRET: &str = "test-secret-access-key";

fn settings(bucket: &str, endpoint: &str) -> S3Settings {
    S3Settings {
        bucket: bucket.to_string(),
        region: "us-east-1".into(),
        endpoint: endpoint.to_string(),
        access_key_id: Secret::new(KEY_ID),
        secret_access_key: Secret::new(SECRET),
        allow_http: true,
        prefix: String::new(),
        connect_timeout_secs: 2,
        request_timeout_secs: 30,
        max_retries: 1,
    }
}

/// A new bucket on the moto server and a storage on it.
async fn fresh_s3(prefix: &str) -> Storage {
    fresh_bucket(prefix).await.0
}

async fn fresh_bucket(prefix: &str) -> (Storage, String) {
    let bucket = format!("rec-{}", Uuid::new_v4().simple());
    let response = reqwest::Client::new()
        .put(format!("{S3}/{bucket}"))
        .send()
        .await
        .expect("moto's S3 server at 127.0.0.1:5090 (scripts/lib.sh ensure_s3)");
    assert!(response.status().is_success(), "{}", response.status());
    let s = S3Settings {
        prefix: prefix.to_string(),
        ..settings(&bucket, S3)
    };
    let storage = Storage::from_settings(&StorageSettings {
        backend: Backend::S3,
        local_dir: "unused".into(),
        s3: s,
        max_recording_bytes: 64 * 1024 * 1024,
    })
    .unwrap();
    assert_eq!(storage.backend(), "s3");
    (storage, bucket)
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

#[tokio::test]
async fn s3_round_trip_and_health() {
    let storage = fresh_s3("").await;
    storage.check().await.unwrap();
    let key = recording_key(Uuid::new_v4(), Uuid::new_v4(), "mp3").unwrap();
    storage
        .put(&key, Bytes::from_static(b"hello s3"))
        .await
        .unwrap();
    assert_eq!(
        storage.get(&key).await.unwrap(),
        Bytes::from_static(b"hello s3")
    );
    assert_eq!(storage.size(&key).await.unwrap(), 8);
    storage
        .put(&key, Bytes::from_static(b"again"))
        .await
        .unwrap();
    assert_eq!(
        storage.get(&key).await.unwrap(),
        Bytes::from_static(b"again")
    );
    assert!(matches!(
        storage.get("recordings/nope.wav").await,
        Err(StorageError::NotFound)
    ));
    assert!(matches!(
        storage.size("recordings/nope.wav").await,
        Err(StorageError::NotFound)
    ));
}

#[tokio::test]
async fn s3_keys_live_under_the_prefix() {
    let storage = fresh_s3("tenant-a/env").await;
    storage
        .put("recordings/x.wav", Bytes::from_static(b"p"))
        .await
        .unwrap();
    assert_eq!(
        storage.get("recordings/x.wav").await.unwrap(),
        Bytes::from_static(b"p")
    );
    storage.check().await.unwrap();
}

#[tokio::test]
async fn s3_range_reads() {
    let storage = fresh_s3("").await;
    let data = pattern(5000);
    storage
        .put("r/x.bin", Bytes::from(data.clone()))
        .await
        .unwrap();
    assert_eq!(
        storage.get_range("r/x.bin", 0..16).await.unwrap(),
        &data[0..16]
    );
    assert_eq!(
        storage.get_range("r/x.bin", 1000..3000).await.unwrap(),
        &data[1000..3000]
    );
    assert_eq!(
        storage.get_range("r/x.bin", 4990..5000).await.unwrap(),
        &data[4990..]
    );
    for bad in [
        7..7,
        std::ops::Range { start: 9, end: 2 },
        4990..5001,
        9000..9100,
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
async fn s3_delete_is_idempotent() {
    let storage = fresh_s3("").await;
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
async fn s3_refuses_invalid_keys() {
    let storage = fresh_s3("").await;
    for key in ["", "../x", "/abs", "a/../b", "a\u{7}b", "a//b"] {
        let e = storage
            .put(key, Bytes::from_static(b"x"))
            .await
            .unwrap_err();
        assert!(matches!(e, StorageError::InvalidKey(_)), "{key:?}: {e}");
    }
    let long = "k".repeat(1025);
    assert!(matches!(
        storage.get(&long).await,
        Err(StorageError::InvalidKey(_))
    ));
}

#[tokio::test]
async fn s3_put_file_uploads_big_files_in_parts() {
    let (storage, bucket) = fresh_bucket("").await;
    let dir = std::env::temp_dir().join(format!("insights-s3-{}", Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("big.wav");
    let data = pattern(12 * 1024 * 1024 + 4321);
    std::fs::write(&file, &data).unwrap();
    let size = storage.put_file("big/x.wav", &file).await;
    let small = dir.join("small.wav");
    std::fs::write(&small, b"small file").unwrap();
    let small_size = storage.put_file("big/s.wav", &small).await;
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(size.unwrap(), data.len() as u64);
    assert_eq!(small_size.unwrap(), 10);
    assert_eq!(storage.size("big/x.wav").await.unwrap(), data.len() as u64);
    let back = storage.get("big/x.wav").await.unwrap();
    assert!(
        back == data[..],
        "the multipart object differs from the file"
    );
    let tail = storage
        .get_range("big/x.wav", (data.len() - 100) as u64..data.len() as u64)
        .await
        .unwrap();
    assert_eq!(tail, &data[data.len() - 100..]);
    assert_eq!(
        storage.get("big/s.wav").await.unwrap(),
        Bytes::from_static(b"small file")
    );
    // S3 marks a multipart object's ETag with its part count: "<md5>-2".
    let head = reqwest::Client::new()
        .head(format!("{S3}/{bucket}/big/x.wav"))
        .send()
        .await
        .unwrap();
    let etag = head.headers()["etag"].to_str().unwrap().to_string();
    assert!(etag.trim_matches('"').ends_with("-2"), "{etag}");
}

#[tokio::test]
async fn a_missing_bucket_fails_the_health_check() {
    let storage = Storage::s3(&settings("no-such-bucket-here", S3), |_| None).unwrap();
    let e = storage.check().await.unwrap_err();
    assert!(matches!(e, StorageError::Failed(_)), "{e}");
}

#[tokio::test]
async fn a_store_that_is_down_is_unavailable_quickly_and_leaks_no_secret() {
    // A port nothing listens on: bind one, then free it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let storage = Storage::s3(
        &settings("bucket", &format!("http://127.0.0.1:{port}")),
        |_| None,
    )
    .unwrap();
    let started = Instant::now();
    let outcome = tokio::time::timeout(Duration::from_secs(60), async {
        (
            storage.put("k/x.wav", Bytes::from_static(b"x")).await,
            storage.get("k/x.wav").await,
            storage.check().await,
        )
    })
    .await
    .expect("a store that is down must not hang");
    let (put, get, check) = outcome;
    for e in [put.unwrap_err(), get.unwrap_err(), check.unwrap_err()] {
        assert!(matches!(e, StorageError::Unavailable(_)), "{e}");
        let text = format!("{e} {e:?}");
        assert!(!text.contains(SECRET) && !text.contains(KEY_ID), "{text}");
    }
    eprintln!("down store reported after {:?}", started.elapsed());
}

#[test]
fn credentials_come_from_the_aws_environment_when_empty() {
    let s = S3Settings {
        access_key_id: Secret::default(),
        secret_access_key: Secret::default(),
        ..settings("b", S3)
    };
    let (id, secret) = s.credentials(|name| Some(format!("from-{name}")));
    assert_eq!(id.expose(), "from-AWS_ACCESS_KEY_ID");
    assert_eq!(secret.expose(), "from-AWS_SECRET_ACCESS_KEY");
}
