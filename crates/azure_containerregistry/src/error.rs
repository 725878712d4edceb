//! Errors: every fallible call returns [`azure_core::Error`].
//!
//! A registry error answer is `ErrorKind::HttpResponse { status, error_code, .. }` where
//! `error_code` is the first ACR/OCI error code of the body (`NAME_UNKNOWN`, `TAG_UNKNOWN`,
//! `MANIFEST_UNKNOWN`, `BLOB_UNKNOWN`, `DENIED`, `UNAUTHORIZED`, …). Bad input is refused
//! before any request with an [`InvalidArgument`] inside `ErrorKind::DataConversion`; content
//! that does not match its digest is a [`DigestMismatch`] inside `ErrorKind::DataConversion`;
//! a listing whose next-page links loop ends with a [`PagingLoop`] inside
//! `ErrorKind::DataConversion`; an index without the platform asked for is a
//! [`NoMatchingPlatform`] inside `ErrorKind::DataConversion`.

use std::fmt;

use azure_containerregistry_rest::types::AcrErrors;
use azure_core::error::ErrorKind;
use azure_core::http::{headers::Headers, RawResponse, StatusCode};

/// An argument that was refused before any request was sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidArgument {
    /// The argument's name, such as `repository_name`.
    pub argument: &'static str,
    /// Why it was refused.
    pub message: String,
}

impl fmt::Display for InvalidArgument {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid {}: {}", self.argument, self.message)
    }
}

impl std::error::Error for InvalidArgument {}

/// Content whose sha256 is not the digest it was asked for or announced with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestMismatch {
    /// The digest the content should have had.
    pub expected: String,
    /// The digest of the content received.
    pub actual: String,
}

impl fmt::Display for DigestMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "digest mismatch: expected {}, received content with digest {}",
            self.expected, self.actual
        )
    }
}

impl std::error::Error for DigestMismatch {}

/// A listing whose registry handed it a `Link` to a page it had already fetched (a loop, or a
/// link that does not advance). The listing ends with this error instead of going on forever.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PagingLoop {
    /// The repeated `Link` URL.
    pub url: String,
}

impl fmt::Display for PagingLoop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the registry's next-page link {} leads to a page this listing already fetched; \
             the listing was stopped",
            self.url
        )
    }
}

impl std::error::Error for PagingLoop {}

/// A manifest fetched by tag from a registry that sent no `Docker-Content-Digest`: nothing
/// confirms that the bytes are the ones the tag names. Returned unless the caller accepts
/// unconfirmed digests (`GetManifestOptions::accept_unconfirmed_digest`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnconfirmedDigest {
    /// The tag the manifest was fetched by.
    pub reference: String,
    /// The sha256 of the bytes received.
    pub computed: String,
}

impl fmt::Display for UnconfirmedDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the registry sent no Docker-Content-Digest for {:?} (received content with digest {}); \
             set GetManifestOptions::accept_unconfirmed_digest to accept it unconfirmed",
            self.reference, self.computed
        )
    }
}

impl std::error::Error for UnconfirmedDigest {}

/// An index or manifest list with no manifest for the platform asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoMatchingPlatform {
    /// The platform asked for (`os/architecture[/variant]`).
    pub wanted: String,
    /// The platforms the index has (`os/architecture[/variant]`), attestations left out.
    pub available: Vec<String>,
}

impl fmt::Display for NoMatchingPlatform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the index has no manifest for platform {}", self.wanted)?;
        if self.available.is_empty() {
            f.write_str(" (it lists no platforms)")
        } else {
            write!(f, " (available: {})", self.available.join(", "))
        }
    }
}

impl std::error::Error for NoMatchingPlatform {}

/// The error for an index without the wanted platform.
pub(crate) fn no_matching_platform(wanted: String, available: Vec<String>) -> azure_core::Error {
    azure_core::Error::new(
        ErrorKind::DataConversion,
        NoMatchingPlatform { wanted, available },
    )
}

/// The error for a manifest whose digest nothing confirms.
pub(crate) fn unconfirmed_digest(reference: &str, computed: &str) -> azure_core::Error {
    azure_core::Error::new(
        ErrorKind::DataConversion,
        UnconfirmedDigest {
            reference: reference.to_string(),
            computed: computed.to_string(),
        },
    )
}

/// The error for a listing that would loop.
pub(crate) fn paging_loop(url: &url::Url) -> azure_core::Error {
    azure_core::Error::new(
        ErrorKind::DataConversion,
        PagingLoop {
            url: url.to_string(),
        },
    )
}

/// `value` (`default` when unset), refused with [`invalid_argument`] when it is 0: for counts
/// that must be at least 1.
pub(crate) fn nonzero<N: Copy + Default + PartialEq>(
    argument: &'static str,
    value: Option<N>,
    default: N,
) -> azure_core::Result<N> {
    match value {
        Some(n) if n == N::default() => Err(invalid_argument(argument, "must be at least 1")),
        Some(n) => Ok(n),
        None => Ok(default),
    }
}

/// [`nonzero`] for a size in bytes (the refusal says so).
pub(crate) fn nonzero_bytes(
    argument: &'static str,
    value: Option<u64>,
    default: u64,
) -> azure_core::Result<u64> {
    nonzero(argument, value, default)
        .map_err(|_| invalid_argument(argument, "must be at least 1 byte"))
}

/// The error for a refused argument.
pub(crate) fn invalid_argument(
    argument: &'static str,
    message: impl Into<String>,
) -> azure_core::Error {
    azure_core::Error::new(
        ErrorKind::DataConversion,
        InvalidArgument {
            argument,
            message: message.into(),
        },
    )
}

/// The error for content that does not match its digest.
pub(crate) fn digest_mismatch(
    expected: impl Into<String>,
    actual: impl Into<String>,
) -> azure_core::Error {
    azure_core::Error::new(
        ErrorKind::DataConversion,
        DigestMismatch {
            expected: expected.into(),
            actual: actual.into(),
        },
    )
}

/// The ACR error code of an error, if it came from a registry answer that had one.
pub fn error_code(error: &azure_core::Error) -> Option<&str> {
    match error.kind() {
        ErrorKind::HttpResponse { error_code, .. } => error_code.as_deref(),
        _ => None,
    }
}

/// The first error code of an ACR error body, if the body is one.
pub(crate) fn first_error_code(body: &[u8]) -> Option<String> {
    first_code_and_message(body).0
}

/// The first error code and the first error message of an ACR error body (one parse).
fn first_code_and_message(body: &[u8]) -> (Option<String>, Option<String>) {
    match serde_json::from_slice::<AcrErrors>(body) {
        Ok(errors) => (
            errors.errors.iter().find_map(|e| e.code.clone()),
            errors.errors.into_iter().find_map(|e| e.message),
        ),
        Err(_) => (None, None),
    }
}

/// Converts reqwest headers to azure_core headers (values that are not text are dropped).
pub(crate) fn to_core_headers(headers: &reqwest::header::HeaderMap) -> Headers {
    let mut out = Headers::new();
    for (name, value) in headers {
        if let Ok(v) = value.to_str() {
            out.insert(name.as_str().to_string(), v.to_string());
        }
    }
    out
}

/// The error for a registry answer with an error status.
pub(crate) fn http_error(
    status: u16,
    headers: &reqwest::header::HeaderMap,
    body: &[u8],
) -> azure_core::Error {
    let (error_code, first_message) = first_code_and_message(body);
    let message = match (&error_code, first_message) {
        (Some(code), Some(message)) => format!("registry answered {status} {code}: {message}"),
        (Some(code), None) => format!("registry answered {status} {code}"),
        (None, Some(message)) => format!("registry answered {status}: {message}"),
        (None, None) => format!("registry answered {status}"),
    };
    let raw = RawResponse::from_bytes(
        StatusCode::from(status),
        to_core_headers(headers),
        body.to_vec(),
    );
    azure_core::Error::with_message(
        ErrorKind::HttpResponse {
            status: StatusCode::from(status),
            error_code,
            raw_response: Some(Box::new(raw)),
        },
        message,
    )
}

/// The error for a raw error response (the body is read, bounded).
pub(crate) async fn response_error(response: reqwest::Response) -> azure_core::Error {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = crate::http_body::read_bounded(response, 64 * 1024)
        .await
        .unwrap_or_default();
    http_error(status, &headers, &body)
}

/// The error for a transport failure.
pub(crate) fn transport_error(error: reqwest::Error) -> azure_core::Error {
    let kind = if error.is_connect() {
        ErrorKind::Connection
    } else {
        ErrorKind::Io
    };
    azure_core::Error::new(kind, error)
}

impl From<crate::http_body::BodyError> for azure_core::Error {
    fn from(error: crate::http_body::BodyError) -> Self {
        match error {
            crate::http_body::BodyError::Transport(e) => transport_error(e),
            too_large => {
                azure_core::Error::with_message(ErrorKind::DataConversion, too_large.to_string())
            }
        }
    }
}

/// The error for an answer that breaks the protocol (a missing or contradictory header, more
/// bytes than asked for).
pub(crate) fn protocol_error(message: impl Into<String>) -> azure_core::Error {
    azure_core::Error::with_message(ErrorKind::DataConversion, message.into())
}

/// Converts an error of the generated client.
pub(crate) fn rest_error(error: progenitor_client::Error<AcrErrors>) -> azure_core::Error {
    use progenitor_client::Error as E;
    match error {
        E::ErrorResponse(rv) => {
            let status = rv.status().as_u16();
            let headers = rv.headers().clone();
            let body = serde_json::to_vec(rv.as_ref()).unwrap_or_default();
            http_error(status, &headers, &body)
        }
        E::UnexpectedResponse(response) => {
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            http_error(status, &headers, b"")
        }
        E::CommunicationError(e) | E::InvalidUpgrade(e) | E::ResponseBodyError(e) => {
            transport_error(e)
        }
        E::InvalidResponsePayload(_, e) => azure_core::Error::with_message(
            ErrorKind::DataConversion,
            format!("the registry's answer could not be read: {e}"),
        ),
        E::InvalidRequest(message) => azure_core::Error::with_message(ErrorKind::Other, message),
        E::Custom(message) => azure_core::Error::with_message(ErrorKind::Other, message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonzero_takes_the_value_or_the_default_and_refuses_zero() {
        assert_eq!(nonzero("n", Some(3_usize), 7).unwrap(), 3);
        assert_eq!(nonzero("n", None, 7_u64).unwrap(), 7);
        for (error, message) in [
            (nonzero("n", Some(0_u64), 7), "must be at least 1"),
            (
                nonzero_bytes("chunk_size", Some(0_u64), 7),
                "must be at least 1 byte",
            ),
        ] {
            let error = error.unwrap_err();
            let invalid = error
                .downcast_ref::<InvalidArgument>()
                .expect("InvalidArgument");
            assert_eq!(invalid.message, message);
        }
    }

    #[test]
    fn error_codes_from_every_detail_shape() {
        let bodies: [&[u8]; 4] = [
            br#"{"errors":[{"code":"UNAUTHORIZED","message":"m","detail":[{"Type":"repository","Name":"a","Action":"pull"}]}]}"#,
            br#"{"errors":[{"code":"NAME_UNKNOWN","message":"m","detail":{"name":"x"}}]}"#,
            br#"{"errors":[{"code":"DIGEST_INVALID","message":"m","detail":"digest parsing failed"}]}"#,
            br#"{"errors":[{"code":"TAG_UNKNOWN","message":"the specified tag does not exist"}]}"#,
        ];
        let codes: Vec<_> = bodies.iter().map(|b| first_error_code(b)).collect();
        assert_eq!(
            codes,
            [
                Some("UNAUTHORIZED"),
                Some("NAME_UNKNOWN"),
                Some("DIGEST_INVALID"),
                Some("TAG_UNKNOWN")
            ]
            .map(|c| c.map(String::from))
        );
        assert_eq!(first_error_code(b"404 page not found\n"), None);
        assert_eq!(first_error_code(b""), None);
    }

    #[test]
    fn http_errors_carry_status_and_code() {
        let err = http_error(
            404,
            &Default::default(),
            br#"{"errors":[{"code":"NAME_UNKNOWN","message":"repository \"x\" is not found"}]}"#,
        );
        assert_eq!(err.http_status(), Some(StatusCode::NotFound));
        assert_eq!(error_code(&err), Some("NAME_UNKNOWN"));
        assert!(err.to_string().contains("NAME_UNKNOWN"), "{err}");
        let text = http_error(404, &Default::default(), b"404 page not found\n");
        assert_eq!(error_code(&text), None);
        assert_eq!(text.http_status(), Some(StatusCode::NotFound));
    }

    #[test]
    fn typed_input_errors_downcast() {
        let err = invalid_argument("tag", "must not be empty");
        assert_eq!(
            err.downcast_ref::<InvalidArgument>().map(|e| e.argument),
            Some("tag")
        );
        let err = digest_mismatch("sha256:aa", "sha256:bb");
        assert_eq!(
            err.downcast_ref::<DigestMismatch>()
                .map(|e| e.actual.as_str()),
            Some("sha256:bb")
        );
    }
}
