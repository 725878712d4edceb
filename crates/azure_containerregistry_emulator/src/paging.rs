//! Query parsing, `Link` headers and page slicing for list endpoints.

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use std::collections::HashMap;

/// Characters left unencoded in query values (RFC 3986 unreserved).
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encodes a query value (`/` → `%2F`, `:` → `%3A`, `&` → `%26`).
pub(crate) fn encode_query_value(value: &str) -> String {
    utf8_percent_encode(value, QUERY_VALUE).to_string()
}

/// Parsed query parameters (first value wins).
#[derive(Debug, Default)]
pub(crate) struct Query(HashMap<String, String>, Vec<(String, String)>);

impl Query {
    /// Parses a raw query string; malformed pairs are skipped.
    pub(crate) fn parse(raw: Option<&str>) -> Self {
        let mut map = HashMap::new();
        let pairs: Vec<(String, String)> = raw
            .and_then(|r| serde_urlencoded::from_str(r).ok())
            .unwrap_or_default();
        for (k, v) in &pairs {
            map.entry(k.clone()).or_insert_with(|| v.clone());
        }
        Query(map, pairs)
    }

    /// Every value of a repeated parameter.
    pub(crate) fn all(&self, key: &str) -> Vec<&str> {
        self.1
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// A parameter's value.
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// A non-empty parameter's value.
    pub(crate) fn non_empty(&self, key: &str) -> Option<&str> {
        self.get(key).filter(|v| !v.is_empty())
    }

    /// The page size `n`; absent, zero or malformed means "no limit".
    pub(crate) fn page_size(&self) -> Option<usize> {
        self.get("n")
            .and_then(|v| v.parse::<usize>().ok())
            .filter(|n| *n > 0)
    }
}

/// Takes at most `n` items; returns the page and whether more remain.
pub(crate) fn take_page<T>(items: Vec<T>, n: Option<usize>) -> (Vec<T>, bool) {
    match n {
        Some(n) if items.len() > n => {
            let mut items = items;
            items.truncate(n);
            (items, true)
        }
        _ => (items, false),
    }
}

/// `</path?last=<enc>&n=<n>[&orderby=<o>]>; rel="next"`.
pub(crate) fn link_header(path: &str, last: &str, n: usize, orderby: Option<&str>) -> String {
    let mut url = format!("{path}?last={}&n={n}", encode_query_value(last));
    if let Some(o) = orderby {
        url.push_str("&orderby=");
        url.push_str(&encode_query_value(o));
    }
    format!("<{url}>; rel=\"next\"")
}

/// Sort order of the `/acr/v1` list endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OrderBy {
    /// Lexical by name/digest (`orderby` empty or absent).
    Lexical,
    /// Oldest `lastUpdateTime` first.
    TimeAsc,
    /// Newest `lastUpdateTime` first.
    TimeDesc,
}

impl OrderBy {
    /// Parses `orderby` (unknown values fall back to lexical).
    pub(crate) fn parse(value: Option<&str>) -> Self {
        match value.map(str::to_ascii_lowercase).as_deref() {
            Some("timeasc") => OrderBy::TimeAsc,
            Some("timedesc") => OrderBy::TimeDesc,
            _ => OrderBy::Lexical,
        }
    }

    /// The value written back into `Link`.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            OrderBy::Lexical => "",
            OrderBy::TimeAsc => "timeasc",
            OrderBy::TimeDesc => "timedesc",
        }
    }
}

/// An item of an `/acr/v1` list: its key (tag name or digest) and `lastUpdateTime` ticks.
pub(crate) trait Keyed {
    /// Name or digest.
    fn key(&self) -> &str;
    /// .NET ticks of `lastUpdateTime`.
    fn ticks(&self) -> i64;
}

/// Sorts `items`, skips everything up to the `last` cursor and cuts a page of `n`.
/// Returns the page and the cursor for the `Link` header when more remain.
pub(crate) fn acr_page<T: Keyed>(
    mut items: Vec<T>,
    order: OrderBy,
    last: Option<&str>,
    n: Option<usize>,
) -> (Vec<T>, Option<String>) {
    match order {
        OrderBy::Lexical => items.sort_by(|a, b| a.key().cmp(b.key())),
        OrderBy::TimeAsc => items.sort_by(|a, b| (a.ticks(), a.key()).cmp(&(b.ticks(), b.key()))),
        OrderBy::TimeDesc => items.sort_by(|a, b| (b.ticks(), b.key()).cmp(&(a.ticks(), a.key()))),
    }
    if let Some(last) = last.filter(|l| !l.is_empty()) {
        items = match order {
            OrderBy::Lexical => items.into_iter().filter(|i| i.key() > last).collect(),
            _ => {
                // Opaque `<ticks>&<key>`; a bare key is accepted too.
                let cursor = match last.split_once('&') {
                    Some((t, k)) => t.parse::<i64>().ok().map(|t| (t, k.to_owned())),
                    None => items
                        .iter()
                        .find(|i| i.key() == last)
                        .map(|i| (i.ticks(), last.to_owned())),
                };
                match cursor {
                    Some((t, k)) if order == OrderBy::TimeAsc => items
                        .into_iter()
                        .filter(|i| (i.ticks(), i.key()) > (t, k.as_str()))
                        .collect(),
                    Some((t, k)) => items
                        .into_iter()
                        .filter(|i| (i.ticks(), i.key()) < (t, k.as_str()))
                        .collect(),
                    None => items,
                }
            }
        };
    }
    let (page, more) = take_page(items, n);
    let cursor = match (more, page.last()) {
        (true, Some(last)) => Some(match order {
            OrderBy::Lexical => last.key().to_owned(),
            _ => format!("{}&{}", last.ticks(), last.key()),
        }),
        _ => None,
    };
    (page, cursor)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct T(&'static str, i64);
    impl Keyed for T {
        fn key(&self) -> &str {
            self.0
        }
        fn ticks(&self) -> i64 {
            self.1
        }
    }

    fn items() -> Vec<T> {
        vec![T("b", 3), T("a", 2), T("c", 1)]
    }

    #[test]
    fn link_format_matches_acr() {
        assert_eq!(
            link_header("/acr/v1/_catalog", "library/busybox", 2, Some("")),
            "</acr/v1/_catalog?last=library%2Fbusybox&n=2&orderby=>; rel=\"next\""
        );
        assert_eq!(
            link_header("/acr/v1/library/hello-world/_tags", "639039224611470601&v2", 2, Some("timeasc")),
            "</acr/v1/library/hello-world/_tags?last=639039224611470601%26v2&n=2&orderby=timeasc>; rel=\"next\""
        );
    }

    #[test]
    fn lexical_paging() {
        let (p, c) = acr_page(items(), OrderBy::Lexical, None, Some(2));
        assert_eq!(p.iter().map(|t| t.0).collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(c.as_deref(), Some("b"));
        let (p, c) = acr_page(items(), OrderBy::Lexical, Some("b"), Some(2));
        assert_eq!(p.iter().map(|t| t.0).collect::<Vec<_>>(), ["c"]);
        assert_eq!(c, None);
    }

    #[test]
    fn time_paging_uses_opaque_cursor() {
        let (p, c) = acr_page(items(), OrderBy::TimeAsc, None, Some(1));
        assert_eq!(p[0].0, "c");
        assert_eq!(c.as_deref(), Some("1&c"));
        let (p, _) = acr_page(items(), OrderBy::TimeAsc, Some("1&c"), Some(1));
        assert_eq!(p[0].0, "a");
        let (p, c) = acr_page(items(), OrderBy::TimeDesc, Some("3&b"), None);
        assert_eq!(p.iter().map(|t| t.0).collect::<Vec<_>>(), ["a", "c"]);
        assert_eq!(c, None);
    }

    #[test]
    fn query_parsing() {
        let q = Query::parse(Some("n=2&last=a%2Fb&orderby=&n=5"));
        assert_eq!(q.page_size(), Some(2));
        assert_eq!(q.get("last"), Some("a/b"));
        assert_eq!(q.non_empty("orderby"), None);
        assert_eq!(Query::parse(Some("n=x")).page_size(), None);
    }
}
