//! Bad input, table-driven: invalid repository names, tags, digests (wrong algorithm, wrong
//! length, uppercase hex, …), endpoints, chunk sizes and page sizes. Each operation refuses it
//! with a typed [`InvalidArgument`] naming the argument, and the registry (the emulator, in
//! token mode with a credential) receives no request at all: not even a token request.

mod common;

use azure_containerregistry::{
    media_types, ContainerRegistryClient, ContainerRegistryClientOptions,
    ContainerRegistryContentClient, DownloadBlobOptions, InvalidArgument,
    ListManifestPropertiesOptions, ListRepositoryNamesOptions, ListTagPropertiesOptions,
    SetManifestOptions, UploadBlobOptions,
};
use common::*;

/// Asserts that `result` failed with an `InvalidArgument` for `argument`.
#[track_caller]
fn refused<T: std::fmt::Debug>(case: &str, argument: &str, result: azure_core::Result<T>) {
    match result {
        Ok(v) => panic!("{case}: accepted ({v:?})"),
        Err(e) => {
            let invalid = e
                .downcast_ref::<InvalidArgument>()
                .unwrap_or_else(|| panic!("{case}: not an InvalidArgument: {e}"));
            assert_eq!(invalid.argument, argument, "{case}: {e}");
            assert!(
                e.to_string().contains(argument) || !invalid.message.is_empty(),
                "{case}: {e}"
            );
        }
    }
}

/// A result with its value shown, so that results of several operations go in one list.
fn shown<T: std::fmt::Debug>(result: azure_core::Result<T>) -> azure_core::Result<String> {
    result.map(|v| format!("{v:?}"))
}

const HEX64: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn bad_repository_names() -> Vec<String> {
    let mut names: Vec<String> = [
        "",
        "Upper",
        "UPPER/lower",
        "a//b",
        "/a",
        "a/",
        "-a",
        "a-",
        "_a",
        "a_",
        ".a",
        "a.",
        "a___b",
        "a..b",
        "a._b",
        "a b",
        "a:b",
        "a@b",
        "a/./b",
        "a/../b",
        "..",
        "ä",
        "a\n",
        "a\0b",
        "a%2Fb",
        "a?b",
        "a#b",
        "a\\b",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    names.push("a".repeat(256));
    names.push(format!("{}/{}", "a".repeat(200), "b".repeat(55)));
    names
}

fn bad_tags() -> Vec<String> {
    let mut tags: Vec<String> = [
        "", ".x", "-x", "a/b", "a b", "ä", "latest\n", "tag?x=1", "tag#x", "a\0", "..", "*",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    tags.push("t".repeat(129));
    tags
}

fn bad_digests() -> Vec<String> {
    vec![
        String::new(),
        "sha256".into(),
        "sha256:".into(),
        ":abc".into(),
        format!("sha256:{}", &HEX64[..63]),          // too short
        format!("sha256:{HEX64}0"),                  // too long
        format!("sha256:{}", HEX64.to_uppercase()),  // uppercase hex
        format!("SHA256:{HEX64}"),                   // uppercase algorithm
        format!("sha256:{}", "g".repeat(64)),        // not hex
        format!("md5:{}", &HEX64[..32]),             // wrong algorithm
        format!("sha1:{}", &HEX64[..40]),            // wrong algorithm
        format!("sha384:{}{}", HEX64, &HEX64[..32]), // unsupported algorithm
        format!("sha512:{HEX64}"),                   // wrong length for sha512
        format!("sha256:{HEX64}\n"),
        format!(" sha256:{HEX64}"),
        format!("sha256:{HEX64}:{HEX64}"),
        format!("sha256+b64:{HEX64}"),
    ]
}

#[test]
fn endpoints_and_client_options_are_checked_at_construction() {
    for endpoint in [
        "",
        "   ",
        "not a url",
        "ftp://registry.example",
        "file:///etc/passwd",
        "javascript:alert(1)",
        "http://",
        "https://",
        "https://registry.example/path",
        "https://registry.example/v2/",
        "https://registry.example?x=1",
        "https://registry.example#frag",
        "https://user:pass@registry.example",
        "https://user@registry.example",
        "https://[::1",
        "https://registry.example:99999",
    ] {
        refused(
            endpoint,
            "endpoint",
            ContainerRegistryClient::new(endpoint, None, None),
        );
        refused(
            endpoint,
            "endpoint",
            ContainerRegistryContentClient::new(endpoint, "repo", None, None),
        );
    }
    let zero_page = || {
        Some(ContainerRegistryClientOptions {
            page_size: Some(0),
            ..Default::default()
        })
    };
    for built in [
        ContainerRegistryClient::new("https://r.example", None, zero_page()).map(drop),
        ContainerRegistryContentClient::new("https://r.example", "repo", None, zero_page())
            .map(drop),
    ] {
        refused("page_size 0", "page_size", built);
    }
    for name in bad_repository_names() {
        refused(
            &format!("{name:?}"),
            "repository_name",
            ContainerRegistryContentClient::new("https://r.example", &name, None, None),
        );
    }
}

#[tokio::test]
async fn bad_input_is_refused_before_any_request() {
    let emulator = token_emulator(false, None).await;
    bounded(60, async {
        let endpoint = emulator.endpoint();
        let registry = registry_client(&endpoint, Some(credential()), fast_options(0));
        let content = content_client(&endpoint, "ok", Some(credential()), fast_options(0));
        let good_digest = format!("sha256:{HEX64}");

        for name in bad_repository_names() {
            let case = format!("repository {name:?}");
            for result in [
                shown(registry.repository(&name).get_properties(None).await),
                shown(registry.repository(&name).delete(None).await),
                shown(registry.delete_repository(&name, None).await),
                shown(
                    registry
                        .repository(&name)
                        .update_properties(Default::default(), None)
                        .await,
                ),
                shown(
                    registry
                        .repository(&name)
                        .list_manifest_properties(None)
                        .map(|_| ()),
                ),
                shown(
                    registry
                        .artifact(&name, "v1")
                        .get_tag_properties("v1", None)
                        .await,
                ),
                shown(
                    registry
                        .artifact(&name, &good_digest)
                        .get_manifest_properties(None)
                        .await,
                ),
                shown(
                    registry
                        .artifact(&name, "v1")
                        .list_tag_properties(None)
                        .map(|_| ()),
                ),
                shown(content.mount_blob(&good_digest, &name).await),
            ] {
                refused(&case, "repository_name", result);
            }
        }

        for tag in bad_tags() {
            let case = format!("tag {tag:?}");
            for result in [
                shown(content.get_manifest(&tag, None).await),
                shown(
                    content
                        .set_manifest_bytes(
                            &b"{}"[..],
                            media_types::OCI_MANIFEST,
                            Some(SetManifestOptions {
                                tag: Some(tag.clone()),
                                ..Default::default()
                            }),
                        )
                        .await,
                ),
                shown(
                    registry
                        .artifact("ok", &tag)
                        .get_manifest_properties(None)
                        .await,
                ),
                shown(
                    registry
                        .artifact("ok", "v1")
                        .get_tag_properties(&tag, None)
                        .await,
                ),
                shown(
                    registry
                        .artifact("ok", "v1")
                        .update_tag_properties(&tag, Default::default(), None)
                        .await,
                ),
                shown(registry.artifact("ok", "v1").delete_tag(&tag, None).await),
            ] {
                refused(&case, "tag", result);
            }
        }

        for digest in bad_digests() {
            let case = format!("digest {digest:?}");
            refused(&case, "digest", content.download_blob(&digest, None).await);
            refused(&case, "digest", content.blob_exists(&digest).await);
            refused(&case, "digest", content.delete_blob(&digest, None).await);
            refused(
                &case,
                "digest",
                content.delete_manifest(&digest, None).await,
            );
            refused(&case, "digest", content.mount_blob(&digest, "other").await);
            if digest.contains(':') {
                // Anything with ':' is read as a digest, never as a tag.
                refused(&case, "digest", content.get_manifest(&digest, None).await);
                refused(
                    &case,
                    "digest",
                    registry
                        .artifact("ok", &digest)
                        .get_manifest_properties(None)
                        .await,
                );
                refused(
                    &case,
                    "digest",
                    registry.artifact("ok", &digest).delete(None).await,
                );
            }
        }

        // Sizes.
        let zero_chunk = || {
            Some(UploadBlobOptions {
                chunk_size: Some(0),
                ..Default::default()
            })
        };
        let (_dir, file) = temp_file("f", b"data");
        for uploaded in [
            content.upload_blob(&b"data"[..], zero_chunk()).await,
            content.upload_blob_bytes(&b"data"[..], zero_chunk()).await,
            content.upload_blob_from_file(&file, zero_chunk()).await,
        ] {
            refused("chunk_size 0", "chunk_size", uploaded);
        }
        let zero_concurrency = DownloadBlobOptions {
            concurrency: Some(0),
            ..Default::default()
        };
        let zero_range = DownloadBlobOptions {
            range_size: Some(0),
            ..Default::default()
        };
        for (argument, zero) in [
            ("concurrency", zero_concurrency),
            ("range_size", zero_range),
        ] {
            refused(
                &format!("{argument} 0"),
                argument,
                content.download_blob(&good_digest, Some(zero)).await,
            );
        }
        macro_rules! page_size_0 {
            ($options:ident) => {
                Some($options {
                    page_size: Some(0),
                    ..Default::default()
                })
            };
        }
        let (repository, artifact) = (registry.repository("ok"), registry.artifact("ok", "v1"));
        let names = registry.list_repository_names(page_size_0!(ListRepositoryNamesOptions));
        let manifests =
            repository.list_manifest_properties(page_size_0!(ListManifestPropertiesOptions));
        let tags = artifact.list_tag_properties(page_size_0!(ListTagPropertiesOptions));
        refused("list_repository_names n=0", "page_size", names.map(drop));
        refused(
            "list_manifest_properties n=0",
            "page_size",
            manifests.map(drop),
        );
        refused("list_tag_properties n=0", "page_size", tags.map(drop));
        // Media types and manifest sizes of set_manifest_bytes.
        for media_type in ["", "bad\nvalue"] {
            refused(
                media_type,
                "media_type",
                content
                    .set_manifest_bytes(&b"{}"[..], media_type, None)
                    .await,
            );
        }
        let big = vec![b' '; azure_containerregistry::MAX_MANIFEST_SIZE + 1];
        refused(
            "manifest > 4 MiB",
            "manifest",
            content
                .set_manifest_bytes(big, media_types::OCI_MANIFEST, None)
                .await,
        );
        for scope in [
            "",
            " ",
            "pull",
            "repository:a",
            "repository::pull",
            "a:b:c\n",
            "a:\"b:c",
        ] {
            refused(
                scope,
                "scope",
                registry.get_acr_access_token(scope, None).await,
            );
        }

        assert_eq!(
            emulator.request_log(),
            vec![],
            "nothing reached the registry"
        );
    })
    .await;
}
