//! The Azure SDK shape: every pager resumes from a continuation taken after its first page,
//! responses expose the registry's headers (request id), and every request carries the
//! `User-Agent` and an `x-ms-client-request-id` (one per call, kept across retries).

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use acr_test_support::{FaultProxy, ProxyRequestRecord};
use azure_containerregistry::{
    ContainerRegistryClient, ContainerRegistryClientOptions, ListManifestPropertiesOptions,
    ListReferrersOptions, ListRepositoryNamesOptions, ListTagPropertiesOptions, OciDescriptor,
};
use azure_containerregistry_emulator::AuthMode;
use azure_core::http::pager::{Page, PagerContinuation, PagerOptions};
use azure_core::http::{Pager, Response};
use common::*;
use futures::TryStreamExt;

/// The items of the first page of `pager`, and the continuation after it.
async fn first_page<P>(pager: Pager<P>) -> (Vec<P::Item>, Option<PagerContinuation>)
where
    P: Page + serde::de::DeserializeOwned + Send + 'static,
{
    let mut pages = pager.into_pages();
    let page: Response<P> = pages
        .try_next()
        .await
        .expect("first page")
        .expect("a first page");
    let items: Vec<P::Item> = page
        .into_model()
        .expect("page model")
        .into_items()
        .await
        .expect("items")
        .collect();
    (items, pages.into_continuation())
}

fn resume(continuation: Option<PagerContinuation>) -> PagerOptions<'static> {
    assert!(
        continuation.is_some(),
        "a first page of one item has a next"
    );
    PagerOptions {
        continuation,
        ..Default::default()
    }
}

/// The items of a listing of one item a page: those of its first page, and those of a second
/// listing resumed from the continuation taken after it.
async fn first_and_resumed<P>(
    list: impl Fn(PagerOptions<'static>) -> Pager<P>,
) -> (Vec<P::Item>, Vec<P::Item>)
where
    P: Page + serde::de::DeserializeOwned + Send + 'static,
    P::Item: Send + 'static,
    P::IntoIter: Send + 'static,
{
    let (first, continuation) = first_page(list(PagerOptions::default())).await;
    let rest = list(resume(continuation)).try_collect().await.unwrap();
    (first, rest)
}

#[tokio::test]
async fn every_pager_resumes_from_a_continuation_taken_after_its_first_page() {
    bounded(60, async {
        let (emu, seeder) = open_seeded().await;
        for r in ["alpha", "beta", "gamma"] {
            push(&seeder, r, r, &["latest"]).await;
        }
        let image = push(&seeder, "tagged", "tags", &["a", "b", "c"]).await;
        push(&seeder, "tagged", "other", &["other"]).await;
        let client = anonymous(&emu);

        // Repositories: no name lost or repeated.
        let (first, rest) = first_and_resumed(|method_options| {
            let options = ListRepositoryNamesOptions {
                page_size: Some(1),
                method_options,
            };
            client.list_repository_names(Some(options)).unwrap()
        })
        .await;
        assert_eq!(first, ["alpha"]);
        assert_eq!(rest, ["beta", "gamma", "tagged"]);

        // Manifests.
        let repo = client.repository("tagged");
        let (first, rest) = first_and_resumed(|method_options| {
            let options = ListManifestPropertiesOptions {
                page_size: Some(1),
                method_options,
                ..Default::default()
            };
            repo.list_manifest_properties(Some(options)).unwrap()
        })
        .await;
        let digests: HashSet<String> = first
            .iter()
            .chain(&rest)
            .map(|m| m.digest.clone())
            .collect();
        assert_eq!((first.len(), rest.len(), digests.len()), (1, 1, 2));

        // Tags of one artifact (a resumed listing still keeps only this artifact's tags).
        let artifact = client.artifact("tagged", &image.digest);
        let (first, rest) = first_and_resumed(|method_options| {
            let options = ListTagPropertiesOptions {
                page_size: Some(1),
                method_options,
                ..Default::default()
            };
            artifact.list_tag_properties(Some(options)).unwrap()
        })
        .await;
        let names: Vec<String> = first.iter().chain(&rest).map(|t| t.name.clone()).collect();
        assert_eq!(names, ["a", "b", "c"]);
    })
    .await;
}

#[tokio::test]
async fn the_referrers_pager_resumes_from_a_continuation() {
    // Neither the emulator nor distribution 2.8 pages referrers: a double serves two pages.
    bounded(30, async {
        let subject = sha256_digest(b"subject");
        let descriptor = |n: u8| {
            serde_json::json!({
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": sha256_digest(&[n]),
                "size": 1,
                "artifactType": "application/example",
            })
        };
        let pages = Arc::new(AtomicU32::new(0));
        let server = HostileServer::start("127.0.0.1", {
            let (subject, pages) = (subject.clone(), pages.clone());
            move |request| {
                let first = format!("/v2/signed/referrers/{subject}");
                let index = |n: u8| {
                    serde_json::json!({
                        "schemaVersion": 2,
                        "mediaType": "application/vnd.oci.image.index.v1+json",
                        "manifests": [descriptor(n)],
                    })
                };
                pages.fetch_add(1, Ordering::SeqCst);
                match request.path_and_query.as_str() {
                    p if p == first => Reply::json(200, index(1))
                        .header("Link", &format!("<{first}?last=1>; rel=\"next\"")),
                    p if p == format!("{first}?last=1") => Reply::json(200, index(2)),
                    _ => Reply::json(
                        404,
                        serde_json::json!({"errors": [{"code": "NOT_FOUND", "message": "no"}]}),
                    ),
                }
            }
        })
        .await;
        let content = client(&server.endpoint(), "signed");
        let (first, continuation) =
            first_page(content.list_referrers(&subject, None).unwrap()).await;
        assert_eq!(first.len(), 1);
        let asked_before = pages.load(Ordering::SeqCst);
        let rest: Vec<OciDescriptor> = content
            .list_referrers(
                &subject,
                Some(ListReferrersOptions {
                    method_options: resume(continuation),
                    ..Default::default()
                }),
            )
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        assert_eq!(rest.len(), 1);
        assert_ne!(rest[0].digest, first[0].digest);
        assert_eq!(
            pages.load(Ordering::SeqCst),
            asked_before + 1,
            "the resumed listing asked for the second page only"
        );
    })
    .await;
}

fn header<'a>(request: &'a ProxyRequestRecord, name: &str) -> Option<&'a str> {
    request.header(name)
}

#[tokio::test]
async fn responses_carry_the_request_ids_and_requests_carry_telemetry() {
    bounded(60, async {
        let (emu, seeder) = open_seeded().await;
        let image = push(&seeder, "ids", "ids", &["v1", "v2"]).await;
        let proxy = FaultProxy::start(&emu.endpoint()).await.expect("proxy");
        let mut options = ContainerRegistryClientOptions::default();
        options.client_options.user_agent.application_id = Some("shape-test".into());
        let client = ContainerRegistryClient::new(&proxy.endpoint(), None, Some(options)).unwrap();

        // A metadata Response: the model, and the registry's headers.
        let response = client.repository("ids").get_properties(None).await.unwrap();
        assert_eq!(u16::from(response.status()), 200);
        let correlation = response
            .headers()
            .get_optional_str(&"x-ms-correlation-request-id".into())
            .expect("a correlation id")
            .to_string();
        assert_eq!(response.into_model().unwrap().name, "ids");

        // A /v2 answer: the registry's request id, and the caller's id repeated.
        let response = client
            .artifact("ids", "v2")
            .delete_tag("v2", None)
            .await
            .unwrap();
        assert_eq!(u16::from(response.status()), 202);
        let manifest = client
            .content_client("ids")
            .unwrap()
            .get_manifest(&image.digest, None)
            .await
            .unwrap();
        let request_id = manifest.request_id.clone().expect("x-ms-request-id");
        assert_eq!(request_id.len(), 36, "{request_id}");

        // Every request: the user agent, and a client request id of its own.
        let requests = proxy.requests();
        assert!(requests.len() >= 3, "{requests:?}");
        let mut ids = HashSet::new();
        for request in &requests {
            let agent = header(request, "user-agent").expect("a user agent");
            assert!(
                agent.starts_with("shape-test azsdk-rust-containerregistry/"),
                "{agent}"
            );
            let id = header(request, "x-ms-client-request-id").expect("a client request id");
            assert!(ids.insert(id.to_string()), "a fresh id per call: {id}");
        }
        assert_ne!(correlation, request_id);
    })
    .await;
}

#[tokio::test]
async fn retries_keep_the_client_request_id_and_uploads_carry_telemetry() {
    bounded(60, async {
        let emu = emulator(AuthMode::Open).await;
        let proxy = FaultProxy::start(&emu.endpoint()).await.expect("proxy");
        let content = content_client(&proxy.endpoint(), "retried", None, fast_options(3));
        // A streamed upload (chunked: it goes around the pipeline) carries the same headers.
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let blob = content
            .upload_blob(&data[..], chunked(100_000))
            .await
            .unwrap();
        let requests = proxy.requests();
        assert!(requests.iter().any(|r| r.method == "PATCH"), "{requests:?}");
        for request in &requests {
            assert!(
                header(request, "user-agent")
                    .is_some_and(|a| a.starts_with("azsdk-rust-containerregistry/")),
                "{request:?}"
            );
            assert!(
                header(request, "x-ms-client-request-id").is_some(),
                "{request:?}"
            );
        }

        // Two 503s, then the answer: three tries of one call, one client request id.
        proxy.clear_requests();
        let path = format!("/v2/retried/blobs/{}", blob.digest);
        proxy.add_rule(
            acr_test_support::Rule::new(
                acr_test_support::Match::any()
                    .method("HEAD")
                    .path_contains(&path),
                acr_test_support::Fault::Status {
                    status: 503,
                    retry_after: None,
                    body: Some(r#"{"errors":[{"code":"UNAVAILABLE","message":"busy"}]}"#.into()),
                },
            )
            .times(2),
        );
        assert!(content.blob_exists(&blob.digest).await.unwrap());
        let tries: Vec<ProxyRequestRecord> = proxy
            .requests()
            .into_iter()
            .filter(|r| r.path_and_query == path)
            .collect();
        assert_eq!(tries.len(), 3, "{tries:?}");
        let ids: HashSet<_> = tries
            .iter()
            .map(|r| header(r, "x-ms-client-request-id").map(str::to_string))
            .collect();
        assert_eq!(ids.len(), 1, "retries keep the id: {ids:?}");
    })
    .await;
}

/// A value a caller puts in the `Context` of a call.
#[derive(Debug, Clone, PartialEq)]
struct Marker(&'static str);

/// A caller's per-call policy: records the marker of each request's context, and its path.
#[derive(Debug, Default)]
struct Recorder(std::sync::Mutex<Vec<(Option<&'static str>, String)>>);

#[async_trait::async_trait]
impl azure_core::http::policies::Policy for Recorder {
    async fn send(
        &self,
        ctx: &azure_core::http::Context,
        request: &mut azure_core::http::Request,
        next: &[Arc<dyn azure_core::http::policies::Policy>],
    ) -> azure_core::http::policies::PolicyResult {
        self.0.lock().unwrap().push((
            ctx.value::<Marker>().map(|m| m.0),
            request.url().path().to_string(),
        ));
        next[0].send(ctx, request, &next[1..]).await
    }
}

/// A caller's transport: answers every request itself, with a repository's properties.
#[derive(Debug)]
struct CannedTransport;

#[async_trait::async_trait]
impl azure_core::http::policies::Policy for CannedTransport {
    async fn send(
        &self,
        _ctx: &azure_core::http::Context,
        _request: &mut azure_core::http::Request,
        _next: &[Arc<dyn azure_core::http::policies::Policy>],
    ) -> azure_core::http::policies::PolicyResult {
        let body = serde_json::json!({
            "registry": "canned.example", "imageName": "canned",
            "createdTime": "2024-01-01T00:00:00Z", "lastUpdateTime": "2024-01-02T00:00:00Z",
            "manifestCount": 1, "tagCount": 2,
            "changeableAttributes": {"deleteEnabled": true, "writeEnabled": true, "readEnabled": true, "listEnabled": true}
        });
        let mut headers = azure_core::http::headers::Headers::new();
        headers.insert("content-type", "application/json");
        headers.insert("x-ms-correlation-request-id", "canned-id");
        Ok(azure_core::http::AsyncRawResponse::from_bytes(
            azure_core::http::StatusCode::Ok,
            headers,
            body.to_string(),
        ))
    }
}

#[tokio::test]
async fn callers_policies_see_the_method_context_and_a_custom_transport_replaces_http() {
    bounded(30, async {
        let emu = emulator(AuthMode::Open).await;
        push(&seeder(&emu), "ctx", "ctx", &["v1"]).await;
        let recorder = Arc::new(Recorder::default());
        let mut options = ContainerRegistryClientOptions::default();
        options
            .client_options
            .per_call_policies
            .push(recorder.clone());
        let client = ContainerRegistryClient::new(&emu.endpoint(), None, Some(options)).unwrap();
        let context = azure_core::http::Context::new().with_value(Marker("call-1"));
        let props = client
            .repository("ctx")
            .get_properties(Some(
                azure_containerregistry::GetRepositoryPropertiesOptions {
                    method_options: azure_core::http::ClientMethodOptions { context },
                },
            ))
            .await
            .unwrap()
            .into_model()
            .unwrap();
        assert_eq!(props.tag_count, 1);
        // A pager's requests carry the pager's context too.
        let names: Vec<String> = client
            .list_repository_names(Some(ListRepositoryNamesOptions {
                method_options: PagerOptions {
                    context: azure_core::http::Context::new().with_value(Marker("pager")),
                    ..Default::default()
                },
                ..Default::default()
            }))
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        assert_eq!(names, ["ctx"]);
        let seen = recorder.0.lock().unwrap().clone();
        assert!(
            seen.contains(&(Some("call-1"), "/acr/v1/ctx".to_string())),
            "{seen:?}"
        );
        assert!(
            seen.contains(&(Some("pager"), "/acr/v1/_catalog".to_string())),
            "{seen:?}"
        );

        // A transport from ClientOptions answers instead of the network (nothing listens here).
        let mut options = ContainerRegistryClientOptions::default();
        options.client_options.transport = Some(azure_core::http::Transport::with_policy(
            Arc::new(CannedTransport),
        ));
        let canned =
            ContainerRegistryClient::new("http://127.0.0.1:9", None, Some(options)).unwrap();
        let response = canned
            .repository("canned")
            .get_properties(None)
            .await
            .unwrap();
        assert_eq!(
            response
                .headers()
                .get_optional_str(&"x-ms-correlation-request-id".into()),
            Some("canned-id")
        );
        let props = response.into_model().unwrap();
        assert_eq!((props.name.as_str(), props.tag_count), ("canned", 2));
    })
    .await;
}
