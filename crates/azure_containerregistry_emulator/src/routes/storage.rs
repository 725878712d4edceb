//! The "blob storage" listener: SAS-style signed URLs, no `Authorization` accepted.

use super::{blob_body::serve_blob, build, Logged};
use crate::errors::ApiResult;
use crate::paging::{encode_query_value, Query};
use crate::state::AppState;
use crate::Listener;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// How long a redirect URL stays valid.
const SAS_LIFETIME_SECS: i64 = 20 * 60;

/// HMAC-SHA256 (RFC 2104) of `message` with a key of at most 64 bytes, hex encoded.
fn hmac_hex(key: &[u8], message: &[u8]) -> String {
    let mut ipad = [0x36u8; 64];
    let mut opad = [0x5cu8; 64];
    for (i, k) in key.iter().take(64).enumerate() {
        ipad[i] ^= k;
        opad[i] ^= k;
    }
    let inner = Sha256::new()
        .chain_update(ipad)
        .chain_update(message)
        .finalize();
    hex::encode(
        Sha256::new()
            .chain_update(opad)
            .chain_update(inner)
            .finalize(),
    )
}

fn signature(state: &AppState, hex: &str, se: &str) -> String {
    hmac_hex(&state.sas_key, format!("{hex}\n{se}").as_bytes())
}

/// `<storage>/blobs/sha256/<hex>/data?se=<expiry>&sig=<hmac>`.
pub(crate) fn signed_blob_url(state: &AppState, digest: &str) -> String {
    let hex = crate::names::digest_hex(digest);
    let expiry = chrono::Utc::now() + chrono::Duration::seconds(SAS_LIFETIME_SECS);
    let se = expiry.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let sig = signature(state, hex, &se);
    format!(
        "{}/blobs/sha256/{hex}/data?se={}&sig={sig}&sp=r&sr=b",
        state.storage_endpoint,
        encode_query_value(&se)
    )
}

fn storage_error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>{code}</Code><Message>{message}</Message></Error>"
    );
    build(
        status,
        &[("content-type", "application/xml".into())],
        Body::from(body),
    )
    .unwrap_or_else(IntoResponse::into_response)
}

async fn serve(state: &AppState, req: &axum::http::request::Parts) -> ApiResult {
    if req.headers.contains_key(header::AUTHORIZATION) {
        return Ok(storage_error(
            StatusCode::FORBIDDEN,
            "AuthenticationFailed",
            "Authorization header is not accepted on a signed URL.",
        ));
    }
    if req.method != Method::GET && req.method != Method::HEAD {
        return Ok(storage_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "UnsupportedHttpVerb",
            "Only GET and HEAD.",
        ));
    }
    let hex = req
        .uri
        .path()
        .strip_prefix("/blobs/sha256/")
        .and_then(|p| p.strip_suffix("/data"))
        .filter(|h| {
            h.len() == 64
                && h.bytes()
                    .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
        });
    let Some(hex) = hex else {
        return Ok(storage_error(
            StatusCode::NOT_FOUND,
            "ResourceNotFound",
            "The specified resource does not exist.",
        ));
    };
    let query = Query::parse(req.uri.query());
    let (se, sig) = (
        query.get("se").unwrap_or(""),
        query.get("sig").unwrap_or(""),
    );
    let expired = chrono::DateTime::parse_from_rfc3339(se)
        .map(|t| t < chrono::Utc::now())
        .unwrap_or(true);
    if expired || sig != signature(state, hex, se) {
        return Ok(storage_error(
            StatusCode::FORBIDDEN,
            "AuthenticationFailed",
            "Signature did not match or the URL has expired.",
        ));
    }
    let digest = format!("sha256:{hex}");
    let Some(size) = state.store.blobs.size(&digest).await else {
        return Ok(storage_error(
            StatusCode::NOT_FOUND,
            "BlobNotFound",
            "The specified blob does not exist.",
        ));
    };
    let extra = [
        ("x-ms-blob-type", "BlockBlob".to_owned()),
        ("x-ms-version", "2016-05-31".to_owned()),
    ];
    serve_blob(state, &digest, size, &req.headers, &extra).await
}

/// Fallback handler of the storage listener.
pub(crate) async fn storage_handler(State(state): State<Arc<AppState>>, req: Request) -> Response {
    let logged = Logged::of(&req);
    let (parts, _body) = req.into_parts();
    let resp = serve(&state, &parts)
        .await
        .unwrap_or_else(IntoResponse::into_response);
    logged.record(&state, Listener::Storage, resp.status().as_u16());
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_rfc4231_case_2() {
        assert_eq!(
            hmac_hex(b"Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
