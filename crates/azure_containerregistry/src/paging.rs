//! Paging by `Link: <…>; rel="next"`, followed verbatim (ACR's `last` cursors are opaque), as
//! [`azure_core::http::Pager`]s.

use std::sync::Arc;

use azure_core::http::pager::{PagerContinuation, PagerOptions, PagerResult, PagerState};
use azure_core::http::{Context, JsonFormat, Pager, RawResponse, Response, StatusCode};
use futures::future::BoxFuture;
use reqwest::header::{HeaderMap, LINK};

use crate::error::{invalid_argument, response_error, to_core_headers};
use crate::pipeline::Pipeline;

/// The largest page body read, in bytes.
const MAX_PAGE: usize = 32 * 1024 * 1024;

/// One fetched page: its JSON body and headers.
pub(crate) struct RawPage {
    pub(crate) body: Vec<u8>,
    pub(crate) headers: HeaderMap,
}

/// The URL of the next page from the `Link` headers, if any. A `Link` with `rel="next"` whose
/// target is not in angle brackets is an error, not the end of the list.
pub(crate) fn next_link(headers: &HeaderMap) -> azure_core::Result<Option<String>> {
    for value in headers.get_all(LINK) {
        let text = value
            .to_str()
            .map_err(|_| invalid_argument("Link", "the registry's Link header is not text"))?;
        for link in split_links(text) {
            let link = link.trim();
            let mut parts = link.split(';');
            let target = parts.next().unwrap_or("").trim();
            let is_next = parts.any(|p| {
                let p = p.trim();
                p.split_once('=').is_some_and(|(k, v)| {
                    k.trim().eq_ignore_ascii_case("rel")
                        && v.trim()
                            .trim_matches('"')
                            .split_whitespace()
                            .any(|r| r.eq_ignore_ascii_case("next"))
                })
            });
            if !is_next {
                continue;
            }
            let url = target
                .strip_prefix('<')
                .and_then(|t| t.strip_suffix('>'))
                .filter(|u| !u.is_empty())
                .ok_or_else(|| {
                    invalid_argument(
                        "Link",
                        format!("malformed Link header from the registry: {text:?}"),
                    )
                })?;
            return Ok(Some(url.to_string()));
        }
    }
    Ok(None)
}

/// Splits a Link header on the commas between links (not those inside `<…>`).
fn split_links(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut depth = false;
    let mut start = 0;
    for (i, c) in text.char_indices() {
        match c {
            '<' => depth = true,
            '>' => depth = false,
            ',' if !depth => {
                out.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&text[start..]);
    out
}

/// The next-page links one listing has fetched, as 64-bit hashes (eight bytes a page): a link
/// seen again means the registry's links loop.
#[derive(Default)]
struct FetchedLinks(std::collections::HashSet<u64>);

impl FetchedLinks {
    /// Records `url`; `false` when this listing fetched it before.
    fn first_visit(&mut self, url: &url::Url) -> bool {
        use std::hash::{BuildHasher, BuildHasherDefault};
        let hash = BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default()
            .hash_one(url.as_str());
        self.0.insert(hash)
    }
}

/// A pager whose first page comes from `first` (given the listing's context) and whose further
/// pages are the `Link` URLs, fetched through the pipeline as they are (the generated client
/// cannot take a whole URL). A continuation in `options` starts the listing at that link.
pub(crate) fn link_pager<P, F>(
    pipeline: Arc<Pipeline>,
    operation: &'static str,
    options: PagerOptions<'_>,
    first: F,
) -> Pager<P>
where
    P: serde::de::DeserializeOwned + azure_core::http::pager::Page + Send + 'static,
    F: Fn(Context<'static>) -> BoxFuture<'static, azure_core::Result<RawPage>>
        + Send
        + Sync
        + 'static,
{
    let first = Arc::new(first);
    let fetched = Arc::new(std::sync::Mutex::new(FetchedLinks::default()));
    Pager::new(
        move |state: PagerState, options: PagerOptions<'static>| {
            let pipeline = pipeline.clone();
            let first = first.clone();
            let fetched = fetched.clone();
            Box::pin(async move {
                let page = match state {
                    PagerState::Initial => first(options.context).await?,
                    PagerState::More(continuation) => {
                        let url = pipeline.resolve(continuation.as_ref())?;
                        if !fetched
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .first_visit(&url)
                        {
                            return Err(crate::error::paging_loop(&url));
                        }
                        fetch(&pipeline, url, operation, &options.context).await?
                    }
                };
                let next = next_link(&page.headers)?;
                Ok(page_result(page.body, &page.headers, next))
            })
        },
        Some(owned(options)),
    )
}

/// Pager options that outlive the call (the pager runs after it returns).
pub(crate) fn owned(options: PagerOptions<'_>) -> PagerOptions<'static> {
    PagerOptions {
        context: options.context.into_owned(),
        continuation: options.continuation,
    }
}

/// One page for an `azure_core` pager: the JSON body (with the page's headers) and the
/// continuation, if a next page exists.
pub(crate) fn page_result<P>(
    body: Vec<u8>,
    headers: &HeaderMap,
    next: Option<String>,
) -> PagerResult<Response<P, JsonFormat>> {
    let raw = RawResponse::from_bytes(StatusCode::Ok, to_core_headers(headers), body);
    let response: Response<P, JsonFormat> = raw.into();
    match next {
        Some(link) => PagerResult::More {
            response,
            continuation: PagerContinuation::Token(link),
        },
        None => PagerResult::Done { response },
    }
}

/// GETs a page URL through the pipeline, its requests carrying `context`.
pub(crate) async fn fetch(
    pipeline: &Pipeline,
    url: url::Url,
    operation: &'static str,
    context: &Context<'_>,
) -> azure_core::Result<RawPage> {
    crate::operation::run(
        tracing::Span::none(),
        context,
        fetch_page(pipeline, url, operation),
    )
    .await
}

async fn fetch_page(
    pipeline: &Pipeline,
    url: url::Url,
    operation: &'static str,
) -> azure_core::Result<RawPage> {
    let request = pipeline
        .http()
        .get(url)
        .header(reqwest::header::ACCEPT, "application/json")
        .build()
        .map_err(crate::error::transport_error)?;
    let response = pipeline.send(request, operation).await?;
    if !response.status().is_success() {
        return Err(response_error(response).await);
    }
    let headers = response.headers().clone();
    let body = crate::http_body::read_bounded(response, MAX_PAGE)
        .await?
        .to_vec();
    Ok(RawPage { body, headers })
}

/// The `n` a listing sends: the call's page size, else the client's; checked once, when the
/// listing is made.
pub(crate) fn listing_page_size(
    pipeline: &Pipeline,
    per_call: Option<u32>,
) -> azure_core::Result<Option<i32>> {
    wire_page_size(per_call.or(pipeline.options().page_size))
}

/// The `n` to send: `None`, or a page size of at least 1.
pub(crate) fn wire_page_size(page_size: Option<u32>) -> azure_core::Result<Option<i32>> {
    match page_size {
        None => Ok(None),
        Some(0) => Err(crate::error::invalid_argument(
            "page_size",
            "must be at least 1",
        )),
        Some(n) => Ok(Some(i32::try_from(n).unwrap_or(i32::MAX))),
    }
}

/// A first page from the generated client, as the pager's raw page. The generated operation
/// builds the first URL (path, query, `api-version`); its typed body is serialized back to JSON
/// because the pager deserializes every page, first and `Link`-followed alike, the same way.
pub(crate) fn raw_page<T: serde::Serialize>(
    response: azure_containerregistry_rest::ResponseValue<T>,
) -> azure_core::Result<RawPage> {
    let headers = response.headers().clone();
    let body = serde_json::to_vec(&response.into_inner()).map_err(|e| {
        azure_core::Error::with_message(
            azure_core::error::ErrorKind::DataConversion,
            format!("page body: {e}"),
        )
    })?;
    Ok(RawPage { body, headers })
}

/// A pager over a `Link`-paged `/acr/v1` listing: its first page is the generated call
/// `$first`, made on `$rest` (the REST client) for `$name` (the repository, `""` for none) in a
/// span named `$span`; the pages after it follow each `Link` as given (see [`link_pager`]).
macro_rules! link_listing {
    ($span:literal, $pipeline:expr, $operation:literal, $repository:expr, $options:expr,
     |$rest:ident, $name:ident| $first:expr) => {{
        let pipeline = $pipeline.clone();
        let $name: String = $repository.to_owned();
        $crate::paging::link_pager(pipeline.clone(), $operation, $options, move |context| {
            let pipeline = pipeline.clone();
            let $name = $name.clone();
            $crate::operation::traced!($span, &$name, &context, async move {
                let $rest = pipeline.rest();
                let response = $first.await.map_err($crate::error::rest_error)?;
                $crate::paging::raw_page(response)
            })
        })
    }};
}
pub(crate) use link_listing;

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(LINK, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn acr_links() {
        assert_eq!(
            next_link(&headers(&[
                r#"</acr/v1/_catalog?last=alpine&n=1&orderby=>; rel="next""#
            ]))
            .unwrap()
            .as_deref(),
            Some("/acr/v1/_catalog?last=alpine&n=1&orderby=")
        );
        assert_eq!(
            next_link(&headers(&[r#"</acr/v1/library%2Fhello-world/_tags?last=639039224611470601%26v2&n=2&orderby=timeasc>; rel="next""#]))
                .unwrap()
                .as_deref(),
            Some("/acr/v1/library%2Fhello-world/_tags?last=639039224611470601%26v2&n=2&orderby=timeasc")
        );
        assert_eq!(next_link(&HeaderMap::new()).unwrap(), None);
        assert_eq!(
            next_link(&headers(&[
                r#"<https://x/p?a=1,2>; rel="prev", </n>; rel=next"#
            ]))
            .unwrap()
            .as_deref(),
            Some("/n")
        );
    }

    #[test]
    fn a_link_seen_again_is_a_loop() {
        let mut fetched = FetchedLinks::default();
        let a = url::Url::parse("http://r/acr/v1/_catalog?last=a&n=100").unwrap();
        let b = url::Url::parse("http://r/acr/v1/_catalog?last=b&n=100").unwrap();
        assert!(fetched.first_visit(&a));
        assert!(fetched.first_visit(&b));
        assert!(!fetched.first_visit(&a));
        assert!(!fetched.first_visit(&b));
    }

    #[test]
    fn malformed_links_are_errors() {
        for bad in [
            r#"/no/brackets; rel="next""#,
            r#"<>; rel="next""#,
            r#"<unterminated; rel="next""#,
        ] {
            assert!(next_link(&headers(&[bad])).is_err(), "{bad}");
        }
        assert_eq!(next_link(&headers(&["garbage"])).unwrap(), None);
    }
}
