//! The WebSocket upgrade checks: path, API key (header or `?key=`), and the refusal fault.

use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request};
use tokio_tungstenite::tungstenite::http::StatusCode;

use super::Fault;
use crate::fake_common::server::{self, fault_status, query_param};

/// The v1beta path; v1alpha is accepted too.
pub(crate) const PATH: &str =
    "/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent";
const PATH_V1ALPHA: &str =
    "/ws/google.ai.generativelanguage.v1alpha.GenerativeService.BidiGenerateContent";

/// Why an upgrade is refused: an HTTP status and a Google-style error body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub status: StatusCode,
    reason: &'static str,
    message: &'static str,
}

impl server::Refusal for Refusal {
    fn into_response(self) -> ErrorResponse {
        let body = serde_json::json!({"error": {"code": self.status.as_u16(),
            "message": self.message, "status": self.reason}});
        let mut response = ErrorResponse::new(Some(body.to_string()));
        *response.status_mut() = self.status;
        response
    }
}

pub(crate) fn check(req: &Request, api_key: &str, fault: &Fault) -> Result<(), Refusal> {
    if let Fault::RefuseUpgrade(status) = fault {
        return Err(refuse(
            fault_status(*status),
            "UNAVAILABLE",
            "refused by fault injection",
        ));
    }
    let path = req.uri().path();
    if path != PATH && path != PATH_V1ALPHA {
        return Err(refuse(StatusCode::NOT_FOUND, "NOT_FOUND", "unknown path"));
    }
    let from_header = req
        .headers()
        .get("x-goog-api-key")
        .map(|v| v.as_bytes() == api_key.as_bytes());
    let from_query = query_param(req, "key").map(|k| k == api_key);
    match from_header.or(from_query) {
        Some(true) => Ok(()),
        // Like the real API, without echoing any part of the key.
        Some(false) => Err(refuse(
            StatusCode::FORBIDDEN,
            "PERMISSION_DENIED",
            "API key not valid. Please pass a valid API key.",
        )),
        None => Err(refuse(
            StatusCode::UNAUTHORIZED,
            "UNAUTHENTICATED",
            "Method doesn't allow unregistered callers. Please use an API key.",
        )),
    }
}

fn refuse(status: StatusCode, reason: &'static str, message: &'static str) -> Refusal {
    Refusal {
        status,
        reason,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(uri: &str, key: Option<&str>) -> Request {
        let mut b = Request::builder().uri(uri);
        if let Some(k) = key {
            b = b.header("x-goog-api-key", k);
        }
        b.body(()).unwrap()
    }

    #[test]
    fn accepts_the_key_in_the_header_or_the_query() {
        assert_eq!(check(&req(PATH, Some("k")), "k", &Fault::None), Ok(()));
        let q = format!("{PATH_V1ALPHA}?key=k");
        assert_eq!(check(&req(&q, None), "k", &Fault::None), Ok(()));
    }

    #[test]
    fn refuses_bad_requests_with_the_right_status() {
        let status = |r: Request, f: Fault| check(&r, "k", &f).unwrap_err().status.as_u16();
        assert_eq!(status(req(PATH, None), Fault::None), 401);
        assert_eq!(status(req(PATH, Some("x")), Fault::None), 403);
        assert_eq!(
            status(req(&format!("{PATH}?key=x"), None), Fault::None),
            403
        );
        assert_eq!(status(req("/v1/realtime", Some("k")), Fault::None), 404);
        assert_eq!(status(req(PATH, Some("k")), Fault::RefuseUpgrade(429)), 429);
    }
}
