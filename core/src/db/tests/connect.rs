//! Connection errors and URL redaction.

use super::*;

#[tokio::test]
async fn connect_errors_name_the_url_without_its_password() {
    let err = Db::connect("postgres://postgres:s3cret@127.0.0.1:1/voice_nowhere")
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, DbError::Connect { .. }), "{err:?}");
    assert!(
        text.contains("postgres://postgres@127.0.0.1:1/voice_nowhere") && !text.contains("s3cret"),
        "{text}"
    );

    let err = Db::connect("postgres://u:s3cret@db.example:notaport/x")
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, DbError::InvalidUrl { .. }), "{err:?}");
    assert!(
        text.contains("postgres://u:***@db.example:notaport/x") && !text.contains("s3cret"),
        "{text}"
    );

    // A database that does not exist, on the real server: its message comes through.
    let mut config = server_config();
    config.dbname("voice_no_such_database").password("s3cret");
    let err = Db::from_config(config, 1).await.unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("voice_no_such_database")
            && text.contains("does not exist")
            && !text.contains("s3cret"),
        "{text}"
    );
}

#[test]
fn urls_are_redacted() {
    for (url, redacted) in [
        (
            "postgres://voice:p%40ss@db:5432/voice",
            "postgres://voice:***@db:5432/voice",
        ),
        ("postgres://voice@db/voice", "postgres://voice@db/voice"),
        (
            "postgresql://a:b@h1,h2/d?sslmode=require",
            "postgresql://a:***@h1,h2/d?sslmode=require",
        ),
        (
            "postgres://db/voice?user=v&password=pw&sslmode=disable",
            "postgres://db/voice?user=v&password=***&sslmode=disable",
        ),
        (
            "host=db user=v password=pw dbname=voice",
            "host=db user=v password=*** dbname=voice",
        ),
        (
            "host=db PASSWORD='p w\\'x' dbname=voice",
            "host=db PASSWORD=*** dbname=voice",
        ),
        ("host=db password='unterminated", "host=db password=***"),
    ] {
        assert_eq!(redact_url(url), redacted, "{url}");
    }
}
