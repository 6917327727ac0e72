//! What can go wrong with a provider stage (STT, LLM, TTS), in the words a fallback chain
//! needs: refuse (bad key, bad request: trying again will not help), unavailable (network,
//! 5xx, overloaded: the next provider may work), too slow, or talking nonsense.

/// Why a cascaded stage's provider failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProviderError {
    /// The provider said no: authentication, quota, a request it rejects (HTTP 4xx).
    #[error("provider refused: {0}")]
    Refused(String),
    /// Could not reach it, it broke off, or it is overloaded (HTTP 5xx, 429, reset).
    #[error("provider unavailable: {0}")]
    Unavailable(String),
    /// No answer within the stage's timeout.
    #[error("provider did not answer in time")]
    Timeout,
    /// It answered something that breaks its own protocol.
    #[error("provider protocol error: {0}")]
    Protocol(String),
    /// Our side is misconfigured (missing key, model file, bad URL).
    #[error("provider misconfigured: {0}")]
    Config(String),
}
