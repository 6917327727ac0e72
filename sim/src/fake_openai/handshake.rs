//! The WebSocket upgrade checks: path, `?model=`, bearer key, and the refusal fault.

use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request};
use tokio_tungstenite::tungstenite::http::StatusCode;

use super::Fault;
use crate::fake_common::server::{self, fault_status, query_param};

pub(crate) const PATH: &str = "/v1/realtime";

/// What the upgrade request told us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Upgrade {
    pub model: String,
    /// `OpenAI-Beta: realtime=v1` was sent: speak the beta dialect.
    pub beta: bool,
}

/// Why an upgrade is refused: an HTTP status and an OpenAI-style error body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub status: StatusCode,
    kind: &'static str,
    message: &'static str,
}

impl server::Refusal for Refusal {
    fn into_response(self) -> ErrorResponse {
        let body = serde_json::json!({"error": {"type": self.kind, "message": self.message}});
        let mut response = ErrorResponse::new(Some(body.to_string()));
        *response.status_mut() = self.status;
        response
    }
}

pub(crate) fn check(req: &Request, api_key: &str, fault: &Fault) -> Result<Upgrade, Refusal> {
    if let Fault::RefuseUpgrade(status) = fault {
        let status = fault_status(*status);
        return Err(refuse(status, "server_error", "refused by fault injection"));
    }
    if req.uri().path() != PATH {
        return Err(refuse(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            "unknown path",
        ));
    }
    let expected = format!("Bearer {api_key}");
    let authorized = req
        .headers()
        .get("authorization")
        .is_some_and(|v| v.as_bytes() == expected.as_bytes());
    if !authorized {
        // Like the real API, but without echoing any part of the key.
        return Err(refuse(
            StatusCode::UNAUTHORIZED,
            "invalid_request_error",
            "Incorrect API key provided.",
        ));
    }
    let model = query_param(req, "model").filter(|m| !m.is_empty());
    let Some(model) = model else {
        return Err(refuse(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "Missing required parameter: 'model'.",
        ));
    };
    let beta = req
        .headers()
        .get("openai-beta")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|p| p.trim() == "realtime=v1"));
    Ok(Upgrade {
        model: model.to_string(),
        beta,
    })
}

fn refuse(status: StatusCode, kind: &'static str, message: &'static str) -> Refusal {
    Refusal {
        status,
        kind,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(uri: &str, auth: Option<&str>, beta: bool) -> Request {
        let mut b = Request::builder().uri(uri);
        if let Some(a) = auth {
            b = b.header("Authorization", a);
        }
        if beta {
            b = b.header("OpenAI-Beta", "realtime=v1");
        }
        b.body(()).unwrap()
    }

    #[test]
    fn accepts_a_good_request_and_detects_beta() {
        let ok = check(
            &req("/v1/realtime?model=gpt-realtime", Some("Bearer k"), true),
            "k",
            &Fault::None,
        )
        .unwrap();
        assert_eq!(
            ok,
            Upgrade {
                model: "gpt-realtime".into(),
                beta: true
            }
        );
    }

    #[test]
    fn refuses_bad_requests_with_the_right_status() {
        let status = |r: Request, f: Fault| check(&r, "k", &f).unwrap_err().status.as_u16();
        assert_eq!(
            status(req("/v1/realtime?model=m", None, false), Fault::None),
            401
        );
        assert_eq!(
            status(
                req("/v1/realtime?model=m", Some("Bearer x"), false),
                Fault::None
            ),
            401
        );
        assert_eq!(
            status(req("/v1/realtime", Some("Bearer k"), false), Fault::None),
            400
        );
        assert_eq!(
            status(req("/other?model=m", Some("Bearer k"), false), Fault::None),
            404
        );
        assert_eq!(
            status(
                req("/v1/realtime?model=m", Some("Bearer k"), false),
                Fault::RefuseUpgrade(429)
            ),
            429
        );
    }
}
