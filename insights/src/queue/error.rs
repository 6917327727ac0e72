//! What can go wrong talking to the queue.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum QueueError {
    /// Redis could not be reached or refused a command. The message never holds the URL
    /// (it may carry a password).
    #[error("job queue unavailable: {0}")]
    Unavailable(String),
    /// Redis answered with a shape this code does not understand (a different Redis version
    /// or someone else writing to our keys).
    #[error("unexpected reply from Redis: {0}")]
    UnexpectedReply(String),
    /// The job could not be turned into stream fields.
    #[error("cannot encode job: {0}")]
    Encode(String),
}

impl From<fred::error::Error> for QueueError {
    fn from(e: fred::error::Error) -> Self {
        QueueError::Unavailable(e.to_string())
    }
}
