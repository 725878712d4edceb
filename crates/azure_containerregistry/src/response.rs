//! `azure_core` [`Response`]s from the generated client's answers: the registry's status and
//! headers (request id, digest) with the body as JSON, read into the model by `into_model()`.

use azure_core::error::ErrorKind;
use azure_core::http::{NoFormat, RawResponse, Response, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;

use azure_containerregistry_rest::types::AcrErrors;
use azure_containerregistry_rest::ResponseValue;

use crate::error::{rest_error, to_core_headers};

/// What a generated call returns.
type RestResult<T> = Result<ResponseValue<T>, progenitor_client::Error<AcrErrors>>;

/// The model response of a generated call, or its error read as the registry's.
pub(crate) fn model_result<W, T>(result: RestResult<W>) -> azure_core::Result<Response<T>>
where
    W: Serialize,
    T: DeserializeOwned,
{
    model_response(result.map_err(rest_error)?)
}

/// The response of a generated delete. A 404 (the thing is already gone) counts as done, as
/// in the other Azure SDKs: its answer is the response.
pub(crate) fn delete_result(result: RestResult<()>) -> azure_core::Result<Response<(), NoFormat>> {
    match result.map(empty_response).map_err(rest_error) {
        Err(error) if error.http_status() == Some(StatusCode::NotFound) => {
            tracing::debug!(
                code = crate::error_code(&error),
                "already gone; delete succeeds"
            );
            Ok(error_response(&error))
        }
        other => other,
    }
}

/// A response whose model `T` is read from the registry's JSON body `W`. The body is read
/// into `T` once here, so that a body the model cannot hold fails the call, not `into_model()`.
fn model_response<W, T>(response: ResponseValue<W>) -> azure_core::Result<Response<T>>
where
    W: Serialize,
    T: DeserializeOwned,
{
    let status = StatusCode::from(response.status().as_u16());
    let headers = to_core_headers(response.headers());
    let body = serde_json::to_vec(&response.into_inner()).map_err(conversion)?;
    serde_json::from_slice::<T>(&body).map_err(conversion)?;
    Ok(RawResponse::from_bytes(status, headers, body).into())
}

/// A response without a model (deletes).
fn empty_response(response: ResponseValue<()>) -> Response<(), NoFormat> {
    let status = StatusCode::from(response.status().as_u16());
    let headers = to_core_headers(response.headers());
    RawResponse::from_bytes(status, headers, Vec::new()).into()
}

/// The registry's answer inside an HTTP error (a delete's 404 that counts as done).
pub(crate) fn error_response(error: &azure_core::Error) -> Response<(), NoFormat> {
    match error.kind() {
        ErrorKind::HttpResponse {
            raw_response: Some(raw),
            ..
        } => RawResponse::from_bytes(raw.status(), raw.headers().clone(), Vec::new()).into(),
        _ => RawResponse::from_bytes(
            StatusCode::NotFound,
            azure_core::http::headers::Headers::new(),
            Vec::new(),
        )
        .into(),
    }
}

fn conversion(e: serde_json::Error) -> azure_core::Error {
    azure_core::Error::with_message(
        ErrorKind::DataConversion,
        format!("the registry's answer could not be read: {e}"),
    )
}
