//! `ContainerRegistryClient`, `ContainerRepository` and `RegistryArtifact` end to end against
//! the in-process emulator (open mode: anonymous, no challenges).

mod common;

use std::sync::Arc;

use azure_containerregistry::{
    ArtifactArchitecture, ArtifactManifestOrder, ArtifactOperatingSystem, ArtifactTagOrder,
    ContainerRegistryClient, ContainerRegistryClientOptions, ListManifestPropertiesOptions,
    ListRepositoryNamesOptions, ListTagPropertiesOptions, ManifestWriteableProperties,
    RepositoryWriteableProperties,
};
use azure_containerregistry_emulator::AuthMode;
use common::*;
use futures::TryStreamExt;

#[tokio::test]
async fn catalog_paging_follows_links_for_page_sizes_1_2_and_default() {
    bounded(60, async {
        let (emu, seeder) = open_seeded().await;
        let repositories = [
            "alpha",
            "library/busybox",
            "library/hello-world",
            "mid/one",
            "zeta",
        ];
        for (i, r) in repositories.iter().enumerate() {
            push(&seeder, r, &format!("catalog-{i}"), &["latest"]).await;
        }
        let expected: Vec<String> = repositories.iter().map(|s| s.to_string()).collect();

        // Page size 1 from the client options, 2 per call, and the registry's default.
        let by_option = ContainerRegistryClient::new(
            &emu.endpoint(),
            None,
            Some(ContainerRegistryClientOptions {
                page_size: Some(1),
                ..fast_options(3)
            }),
        )
        .unwrap();
        let plain = anonymous(&emu);
        for (client, per_call, pages) in [
            (&by_option, None, 5),
            (&plain, Some(2), 3),
            (&plain, None, 1),
        ] {
            emu.clear_request_log();
            let names = items(
                client.list_repository_names(Some(ListRepositoryNamesOptions {
                    page_size: per_call,
                    ..Default::default()
                })),
            )
            .await;
            assert_eq!(names, expected, "page size {per_call:?}");
            let log = requests_to(&emu.request_log(), "/acr/v1/_catalog");
            assert_eq!(log.len(), pages, "pages for {per_call:?}: {log:#?}");
            assert!(log.iter().all(|r| r.method == "GET" && r.status == 200));
            // api-version on the first request only; follow-ups are the Link as given.
            assert!(
                log[0].path_and_query.contains("api-version=2021-07-01"),
                "{}",
                log[0].path_and_query
            );
            for r in &log[1..] {
                assert!(
                    !r.path_and_query.contains("api-version"),
                    "{}",
                    r.path_and_query
                );
                assert!(r.path_and_query.contains("last="), "{}", r.path_and_query);
            }
        }

        // Pages as pages: every page has at most 2 names, distinct from the previous one.
        let mut pages = plain
            .list_repository_names(Some(ListRepositoryNamesOptions {
                page_size: Some(2),
                ..Default::default()
            }))
            .unwrap()
            .into_pages();
        let mut seen = Vec::new();
        while let Some(page) = pages.try_next().await.unwrap() {
            let names: Vec<String> = azure_core::http::pager::Page::into_items(page)
                .await
                .unwrap()
                .collect();
            assert!(!names.is_empty() && names.len() <= 2, "{names:?}");
            assert!(names.iter().all(|n| !seen.contains(n)));
            seen.extend(names);
        }
        assert_eq!(seen, expected);
    })
    .await;
}

#[tokio::test]
async fn repository_properties_round_trip() {
    bounded(60, async {
        let (emu, seeder) = open_seeded().await;
        push(&seeder, "library/hello-world", "props", &["v1", "latest"]).await;
        let client = anonymous(&emu);
        assert_eq!(client.endpoint().as_str(), format!("{}/", emu.endpoint()));
        let repo = client.repository("library/hello-world");
        assert_eq!(repo.name(), "library/hello-world");

        let props = model(repo.get_properties(None)).await;
        assert_eq!(props.name, "library/hello-world");
        assert_eq!(props.registry_login_server, emu.service());
        assert_eq!((props.manifest_count, props.tag_count), (1, 2));
        assert_eq!(
            (
                props.can_delete,
                props.can_write,
                props.can_read,
                props.can_list
            ),
            (Some(true), Some(true), Some(true), Some(true))
        );

        emu.clear_request_log();
        let changed = model(repo.update_properties(repo_flag(Flag::Write, false), None)).await;
        assert_eq!(changed.can_write, Some(false));
        assert_eq!(
            (changed.can_delete, changed.can_read, changed.can_list),
            (Some(true), Some(true), Some(true))
        );
        let log = emu.request_log();
        assert_eq!(log.len(), 1, "{log:#?}");
        assert_eq!(log[0].method, "PATCH");
        assert!(
            log[0]
                .path_and_query
                .starts_with("/acr/v1/library%2Fhello-world?"),
            "{}",
            log[0].path_and_query
        );
        assert_eq!(
            model(repo.get_properties(None)).await.can_write,
            Some(false)
        );

        // All four off, then back on from the properties themselves.
        for value in [false, true] {
            let flags = all_flags(value);
            let changed = model(repo.update_properties(flags.clone(), None)).await;
            assert_eq!(RepositoryWriteableProperties::from(&changed), flags);
        }
    })
    .await;
}

#[tokio::test]
async fn manifest_listing_orders_and_pages() {
    bounded(60, async {
        let (emu, seeder) = open_seeded().await;
        let mut pushed = Vec::new();
        for i in 0..4 {
            pushed.push(
                push(
                    &seeder,
                    "ordered",
                    &format!("order-{i}"),
                    &[&format!("t{i}")],
                )
                .await
                .digest,
            );
        }
        let repo = anonymous(&emu).repository("ordered");
        let list = |order: Option<ArtifactManifestOrder>, page_size: Option<u32>| {
            collect(
                repo.list_manifest_properties(Some(ListManifestPropertiesOptions {
                    order_by: order,
                    page_size,
                    ..Default::default()
                }))
                .unwrap(),
            )
        };

        let default = list(None, None).await.unwrap();
        let mut by_digest = pushed.clone();
        by_digest.sort();
        assert_eq!(
            default.iter().map(|m| m.digest.clone()).collect::<Vec<_>>(),
            by_digest
        );

        let desc = list(Some(ArtifactManifestOrder::LastUpdatedOnDescending), None)
            .await
            .unwrap();
        let asc = list(Some(ArtifactManifestOrder::LastUpdatedOnAscending), None)
            .await
            .unwrap();
        assert_eq!(
            asc.iter().map(|m| m.digest.clone()).collect::<Vec<_>>(),
            pushed,
            "push order"
        );
        let mut reversed = desc.clone();
        reversed.reverse();
        assert_eq!(reversed, asc, "timeasc is the exact reverse of timedesc");
        assert!(desc
            .windows(2)
            .all(|w| w[0].last_updated_on > w[1].last_updated_on));
        assert!(asc
            .windows(2)
            .all(|w| w[0].last_updated_on < w[1].last_updated_on));

        // The same orders one per page, through the opaque ticks cursors.
        emu.clear_request_log();
        let asc_paged = list(Some(ArtifactManifestOrder::LastUpdatedOnAscending), Some(1))
            .await
            .unwrap();
        assert_eq!(asc_paged, asc);
        let log = requests_to(&emu.request_log(), "/acr/v1/ordered/_manifests");
        assert_eq!(log.len(), 4, "{log:#?}");
        assert!(
            log[1].path_and_query.contains("orderby=timeasc"),
            "{}",
            log[1].path_and_query
        );
        let desc_paged = list(
            Some(ArtifactManifestOrder::LastUpdatedOnDescending),
            Some(3),
        )
        .await
        .unwrap();
        assert_eq!(desc_paged, desc);

        for (i, m) in asc.iter().enumerate() {
            assert_eq!(m.repository_name, "ordered");
            assert_eq!(m.registry_login_server, emu.service());
            assert_eq!(m.tags, vec![format!("t{i}")]);
            assert_eq!(m.architecture, Some(ArtifactArchitecture::AMD64));
            assert_eq!(m.operating_system, Some(ArtifactOperatingSystem::LINUX));
            assert!(m.size_in_bytes.is_some_and(|s| s > 0), "{m:?}");
            assert_eq!(m.can_delete, Some(true));
        }
    })
    .await;
}

#[tokio::test]
async fn artifact_by_tag_or_digest() {
    bounded(60, async {
        let (emu, seeder) = open_seeded().await;
        let image = push(
            &seeder,
            "library/hello-world",
            "artifact",
            &["latest", "v1"],
        )
        .await;
        let client = anonymous(&emu);
        let by_tag = client.artifact("library/hello-world", "latest");
        let by_digest = client.artifact("library/hello-world", &image.digest);
        let host = emu.service();
        assert_eq!(
            by_tag.fully_qualified_reference(),
            format!("{host}/library/hello-world:latest")
        );
        assert_eq!(
            by_digest.fully_qualified_reference(),
            format!("{host}/library/hello-world@{}", image.digest)
        );
        assert_eq!(by_tag.repository_name(), "library/hello-world");
        assert_eq!(by_tag.reference(), "latest");

        emu.clear_request_log();
        let from_tag = model(by_tag.get_manifest_properties(None)).await;
        let log = emu.request_log();
        assert_eq!(log.len(), 2, "tag lookup, then the manifest: {log:#?}");
        assert!(log[0]
            .path_and_query
            .starts_with("/acr/v1/library%2Fhello-world/_tags/latest"));
        assert!(log[1]
            .path_and_query
            .starts_with("/acr/v1/library%2Fhello-world/_manifests/sha256"));
        let from_digest = model(by_digest.get_manifest_properties(None)).await;
        assert_eq!(from_tag, from_digest);
        assert_eq!(from_tag.digest, image.digest);
        assert_eq!(from_tag.tags, vec!["latest".to_string(), "v1".to_string()]);
        assert_eq!(
            from_tag.config_media_type.as_deref(),
            Some("application/vnd.oci.image.config.v1+json")
        );
        assert_eq!(
            from_tag.media_type.as_deref(),
            Some("application/vnd.oci.image.manifest.v1+json")
        );
        assert!(from_tag.related_artifacts.is_empty());

        let locked =
            model(by_tag.update_manifest_properties(manifest_flag(Flag::Write, false), None)).await;
        assert_eq!(
            (locked.can_write, locked.can_delete),
            (Some(false), Some(true))
        );
        let unlocked =
            model(by_digest.update_manifest_properties(manifest_flag(Flag::Write, true), None))
                .await;
        assert_eq!(unlocked.can_write, Some(true));
        assert_eq!(
            ManifestWriteableProperties::from(&unlocked).can_read,
            Some(true)
        );
    })
    .await;
}

#[tokio::test]
async fn tags_of_an_artifact() {
    bounded(60, async {
        let (emu, seeder) = open_seeded().await;
        // Tags in the order c, a, b, so that time order and name order differ.
        let image = push(&seeder, "tagged", "tags", &["c", "a", "b"]).await;
        push(&seeder, "tagged", "other", &["other"]).await;
        let artifact = anonymous(&emu).artifact("tagged", "a");
        let names = |tags: Vec<azure_containerregistry::ArtifactTagProperties>| {
            tags.into_iter().map(|t| t.name).collect::<Vec<_>>()
        };
        let list = |order: Option<ArtifactTagOrder>, page_size: Option<u32>| {
            collect(
                artifact
                    .list_tag_properties(Some(ListTagPropertiesOptions {
                        order_by: order,
                        page_size,
                        ..Default::default()
                    }))
                    .unwrap(),
            )
        };

        assert_eq!(
            names(list(None, None).await.unwrap()),
            ["a", "b", "c"],
            "by name; `other` filtered out by digest"
        );
        let asc = list(Some(ArtifactTagOrder::LastUpdatedOnAscending), None)
            .await
            .unwrap();
        let desc = list(Some(ArtifactTagOrder::LastUpdatedOnDescending), None)
            .await
            .unwrap();
        assert_eq!(names(asc.clone()), ["c", "a", "b"]);
        let mut reversed = desc.clone();
        reversed.reverse();
        assert_eq!(reversed, asc);
        assert_eq!(
            list(Some(ArtifactTagOrder::LastUpdatedOnDescending), Some(1))
                .await
                .unwrap(),
            desc
        );
        assert_eq!(
            list(Some(ArtifactTagOrder::LastUpdatedOnAscending), Some(2))
                .await
                .unwrap(),
            asc
        );
        assert!(asc
            .iter()
            .all(|t| t.digest == image.digest && t.repository_name == "tagged"));

        let b = model(artifact.get_tag_properties("b", None)).await;
        assert_eq!(
            (b.name.as_str(), b.digest.as_str()),
            ("b", image.digest.as_str())
        );
        assert_eq!(b.registry_login_server, emu.service());
        let hidden =
            model(artifact.update_tag_properties("b", tag_flag(Flag::List, false), None)).await;
        assert_eq!(
            (hidden.can_list, hidden.can_read),
            (Some(false), Some(true))
        );
        assert_eq!(
            names(list(None, None).await.unwrap()),
            ["a", "c"],
            "unlisted tags are not listed"
        );
        let shown =
            model(artifact.update_tag_properties("b", tag_flag(Flag::List, true), None)).await;
        assert_eq!(shown.can_list, Some(true));

        artifact.delete_tag("c", None).await.unwrap();
        assert_eq!(names(list(None, None).await.unwrap()), ["a", "b"]);
    })
    .await;
}

#[tokio::test]
async fn locked_items_refuse_changes_with_the_registry_code() {
    bounded(60, async {
        let (emu, seeder) = open_seeded().await;
        let image = push(&seeder, "locked", "locked", &["v1", "v2"]).await;
        let client = anonymous(&emu);
        let artifact = client.artifact("locked", "v1");
        let disallowed = |e: &azure_core::Error| {
            assert_http_error(e, 405, Some("REGISTRY_DISALLOWED_OPERATION"))
        };

        // can_delete: false on a tag.
        model(artifact.update_tag_properties("v1", tag_flag(Flag::Delete, false), None)).await;
        disallowed(&error(artifact.delete_tag("v1", None)).await);
        disallowed(&error(artifact.delete(None)).await);
        disallowed(&error(client.delete_repository("locked", None)).await);
        model(artifact.update_tag_properties("v1", tag_flag(Flag::Delete, true), None)).await;

        // can_write: false on a tag: it can be neither moved nor deleted.
        model(artifact.update_tag_properties("v2", tag_flag(Flag::Write, false), None)).await;
        disallowed(&error(artifact.delete_tag("v2", None)).await);
        let other = seeder
            .push_image("locked", "other", "arm64", "linux")
            .await
            .unwrap();
        let push_error = error(seeder.put_manifest("locked", "v2", &other.manifest))
            .await
            .to_string();
        assert!(
            push_error.contains("REGISTRY_DISALLOWED_OPERATION"),
            "{push_error}"
        );
        assert_eq!(
            model(artifact.get_tag_properties("v2", None)).await.digest,
            image.digest
        );

        // can_delete: false on the repository.
        let repo = client.repository("locked");
        model(repo.update_properties(repo_flag(Flag::Delete, false), None)).await;
        disallowed(&error(repo.delete(None)).await);

        // Unlocked, everything goes.
        model(artifact.update_tag_properties("v2", tag_flag(Flag::Write, true), None)).await;
        model(repo.update_properties(repo_flag(Flag::Delete, true), None)).await;
        artifact.delete_tag("v2", None).await.unwrap();
        repo.delete(None).await.unwrap();
        assert_http_error(
            &error(repo.get_properties(None)).await,
            404,
            Some("NAME_UNKNOWN"),
        );
    })
    .await;
}

#[tokio::test]
async fn not_found_errors_carry_the_registry_codes() {
    bounded(60, async {
        let (emu, seeder) = open_seeded().await;
        let image = push(&seeder, "present", "present", &["v1"]).await;
        let client = anonymous(&emu);
        let missing_digest = format!("{}aaaaaaaaaa", &image.digest[..image.digest.len() - 10]);
        let absent = client.repository("absent");
        let v1 = client.artifact("present", "v1");
        let no_tag = client.artifact("present", "nonexistent");
        let no_manifest = client.artifact("present", &missing_digest);
        let unlisted = tag_flag(Flag::Write, false);

        let name_unknown = [
            error(absent.get_properties(None)).await,
            error(collect(absent.list_manifest_properties(None).unwrap())).await,
        ];
        let tag_unknown = [
            error(v1.get_tag_properties("nonexistent", None)).await,
            error(no_tag.get_manifest_properties(None)).await,
            error(no_tag.update_tag_properties("nonexistent", unlisted, None)).await,
            error(collect(no_tag.list_tag_properties(None).unwrap())).await,
        ];
        let manifest_unknown = [error(no_manifest.get_manifest_properties(None)).await];
        for (code, errors) in [
            ("NAME_UNKNOWN", &name_unknown[..]),
            ("TAG_UNKNOWN", &tag_unknown[..]),
            ("MANIFEST_UNKNOWN", &manifest_unknown[..]),
        ] {
            for e in errors {
                assert_http_error(e, 404, Some(code));
            }
        }
    })
    .await;
}

#[tokio::test]
async fn deletes_succeed_and_missing_things_count_as_deleted() {
    bounded(60, async {
        let (emu, seeder) = open_seeded().await;
        let image = push(&seeder, "doomed", "doomed", &["v1", "v2"]).await;
        let keep = push(&seeder, "doomed", "kept", &["keep"]).await;
        let client = anonymous(&emu);
        let missing_digest = format!("sha256:{}", "0".repeat(64));
        let by_digest = client.artifact("doomed", &image.digest);

        let not_real = client.repository("not-real-repo");
        client
            .delete_repository(not_real.name(), None)
            .await
            .unwrap();
        not_real.delete(None).await.unwrap();
        let v1 = client.artifact("doomed", "v1");
        v1.delete_tag("never-was", None).await.unwrap();
        for (repository, reference) in [
            ("doomed", missing_digest.as_str()),
            ("doomed", "never-was"),
            ("not-real-repo", "v1"),
        ] {
            let artifact = client.artifact(repository, reference);
            artifact.delete(None).await.unwrap();
        }

        // Deleting by tag deletes the manifest by digest (a registry refuses it by tag).
        emu.clear_request_log();
        v1.delete(None).await.unwrap();
        let deletes: Vec<_> = emu
            .request_log()
            .into_iter()
            .filter(|r| r.method == "DELETE")
            .collect();
        assert_eq!(deletes.len(), 1, "{deletes:#?}");
        assert_eq!(
            deletes[0].path_and_query,
            format!("/v2/doomed/manifests/{}", image.digest)
        );
        let e = error(by_digest.get_manifest_properties(None)).await;
        assert_http_error(&e, 404, Some("MANIFEST_UNKNOWN"));
        let v2 = client.artifact("doomed", "v2");
        let e = error(v2.get_tag_properties("v2", None)).await;
        assert_http_error(&e, 404, Some("TAG_UNKNOWN"));
        // Deleting it again is fine.
        by_digest.delete(None).await.unwrap();
        let kept = client.artifact("doomed", "keep");
        assert_eq!(
            model(kept.get_manifest_properties(None)).await.digest,
            keep.digest
        );

        client.delete_repository("doomed", None).await.unwrap();
        let names = items(client.list_repository_names(None)).await;
        assert!(!names.contains(&"doomed".to_string()), "{names:?}");
        client.delete_repository("doomed", None).await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn bad_input_fails_before_any_request() {
    bounded(60, async {
        for endpoint in [
            "",
            "not a url",
            "ftp://registry.example",
            "https://r.example/path",
            "https://u:p@r.example",
        ] {
            let e = ContainerRegistryClient::new(endpoint, None, None).unwrap_err();
            assert!(is_invalid_argument(&e, "endpoint"), "{endpoint:?}: {e}");
        }
        let e = ContainerRegistryClient::new("http://registry.example", Some(credential()), None)
            .unwrap_err();
        assert!(
            is_invalid_argument(&e, "endpoint"),
            "credentials over plain http: {e}"
        );
        let e = ContainerRegistryClient::new(
            "https://r.example",
            None,
            Some(ContainerRegistryClientOptions {
                page_size: Some(0),
                ..Default::default()
            }),
        )
        .unwrap_err();
        assert!(is_invalid_argument(&e, "page_size"), "{e}");

        let emu = emulator(AuthMode::Open).await;
        let client = anonymous(&emu);
        let anon = Arc::new(client.clone());
        let digest = format!("sha256:{}", "a".repeat(64));
        let upper_digest = format!("sha256:{}", "A".repeat(64));
        let repo = |name: &str| client.repository(name);
        let artifact = |reference: &str| client.artifact("ok", reference);
        let name_errors = [
            error(repo("Upper").get_properties(None)).await,
            error(repo("a//b").update_properties(Default::default(), None)).await,
            error(repo("-x").delete(None)).await,
            error(client.delete_repository("", None)).await,
            repo("bad name").list_manifest_properties(None).unwrap_err(),
            error(client.artifact("UPPER", "v1").get_manifest_properties(None)).await,
            error(client.artifact("UPPER", &digest).delete(None)).await,
        ];
        let tag_errors = [
            error(artifact("bad tag").get_manifest_properties(None)).await,
            error(artifact("-x").delete(None)).await,
            error(artifact("v1").get_tag_properties(".hidden", None)).await,
            error(artifact("v1").update_tag_properties("a/b", Default::default(), None)).await,
            error(artifact("v1").delete_tag("", None)).await,
            artifact("bad tag").list_tag_properties(None).unwrap_err(),
        ];
        let digest_errors = [
            error(artifact("sha256:zz").get_manifest_properties(None)).await,
            error(artifact(&upper_digest).update_manifest_properties(Default::default(), None))
                .await,
            error(artifact("md5:00").delete(None)).await,
        ];
        for (argument, errors) in [
            ("repository_name", &name_errors[..]),
            ("tag", &tag_errors[..]),
            ("digest", &digest_errors[..]),
        ] {
            for e in errors {
                assert!(is_invalid_argument(e, argument), "{argument}: {e}");
            }
        }
        let e = anon
            .list_repository_names(Some(ListRepositoryNamesOptions {
                page_size: Some(0),
                ..Default::default()
            }))
            .unwrap_err();
        assert!(is_invalid_argument(&e, "page_size"), "{e}");
        let e = error(client.get_acr_access_token("not a scope", None)).await;
        assert!(is_invalid_argument(&e, "scope"), "{e}");
        assert_eq!(emu.request_log(), vec![], "nothing was sent");
    })
    .await;
}

#[test]
fn clients_are_clone_send_sync() {
    fn assert_traits<T: Clone + Send + Sync + 'static>() {}
    assert_traits::<ContainerRegistryClient>();
    assert_traits::<azure_containerregistry::ContainerRepository>();
    assert_traits::<azure_containerregistry::RegistryArtifact>();
}
