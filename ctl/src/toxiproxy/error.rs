//! Toxiproxy's API errors, with its messages and statuses (api.go's `Err*` values), and the body
//! it writes for them: `{"error":"…","status":N}`.

use serde::Serialize;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ApiError {
    #[serde(rename = "error")]
    pub message: String,
    #[serde(rename = "status")]
    pub status: u16,
}

impl ApiError {
    pub fn new(message: impl Into<String>, status: u16) -> ApiError {
        ApiError {
            message: message.into(),
            status,
        }
    }

    /// api.go's `joinError`: the wrapper's message, `: `, then the cause.
    pub fn joined(&self, cause: impl std::fmt::Display) -> ApiError {
        ApiError::new(format!("{}: {cause}", self.message), self.status)
    }

    /// An error Toxiproxy has no `ApiError` for (a failed listen, an unresolvable address): its
    /// `apiError` turns those into a 500 with the error's own text.
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(message, 500)
    }
}

pub fn bad_request_body() -> ApiError {
    ApiError::new("bad request body", 400)
}
pub fn missing_field() -> ApiError {
    ApiError::new("missing required field", 400)
}
pub fn proxy_not_found() -> ApiError {
    ApiError::new("proxy not found", 404)
}
pub fn proxy_already_exists() -> ApiError {
    ApiError::new("proxy already exists", 409)
}
pub fn invalid_stream() -> ApiError {
    ApiError::new(
        "stream was invalid, can be either upstream or downstream",
        400,
    )
}
pub fn invalid_toxic_type() -> ApiError {
    ApiError::new("invalid toxic type", 400)
}
pub fn toxic_already_exists() -> ApiError {
    ApiError::new("toxic already exists", 409)
}
pub fn toxic_not_found() -> ApiError {
    ApiError::new("toxic not found", 404)
}
