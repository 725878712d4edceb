//! Real ACR JSON (the samples of docs/wire-facts.md) decodes with the generated types.

use azure_containerregistry_rest::types;

#[test]
fn error_bodies_with_every_detail_shape() {
    let challenge: types::AcrErrors = serde_json::from_str(r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required, visit https://aka.ms/acr/authorization for more information.","detail":[{"Type":"repository","Name":"alpine","Action":"pull"}]}]}"#).unwrap();
    assert_eq!(challenge.errors[0].code.as_deref(), Some("UNAUTHORIZED"));
    assert!(challenge.errors[0].detail.as_ref().unwrap().is_array());
    let string_detail: types::AcrErrors = serde_json::from_str(r#"{"errors":[{"code":"DIGEST_INVALID","message":"provided digest did not match uploaded content","detail":"digest parsing failed"}]}"#).unwrap();
    assert!(string_detail.errors[0].detail.as_ref().unwrap().is_string());
    let object_detail: types::AcrErrors = serde_json::from_str(r#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest tagged by \"wrong-tag\" is not found","detail":{"Tag":"wrong-tag"}}]}"#).unwrap();
    assert_eq!(
        object_detail.errors[0].detail.as_ref().unwrap()["Tag"],
        "wrong-tag"
    );
    let no_detail: types::AcrErrors = serde_json::from_str(
        r#"{"errors":[{"code":"TAG_UNKNOWN","message":"the specified tag does not exist"}]}"#,
    )
    .unwrap();
    assert!(no_detail.errors[0].detail.is_none());
}

#[test]
fn manifest_list_item_with_unknown_architecture_and_quarantine() {
    let page: types::AcrManifests = serde_json::from_str(r#"{"registry":"r.azurecr.io","imageName":"alpine","manifests":[
        {"digest":"sha256:aa","imageSize":0,"createdTime":"2024-01-24T06:16:24.927259Z","lastUpdateTime":"2024-01-24T06:16:12.6787894Z",
         "architecture":"unknown","os":"unknown","mediaType":"application/vnd.oci.image.manifest.v1+json",
         "changeableAttributes":{"deleteEnabled":true,"writeEnabled":true,"readEnabled":true,"listEnabled":true,
           "quarantineDetails":"{\"state\":\"Scan Passed\"}","quarantineState":"Passed"}},
        {"digest":"sha256:bb","imageSize":22581618,"createdTime":"2024-01-24T06:16:01.8012938Z","lastUpdateTime":"2024-01-24T06:16:01.8012938Z",
         "mediaType":"application/vnd.docker.distribution.manifest.list.v2+json","tags":["3.17.1"],
         "changeableAttributes":{"deleteEnabled":true,"writeEnabled":true,"readEnabled":true,"listEnabled":true}}]}"#).unwrap();
    let first = &page.manifests[0];
    assert_eq!(
        first.architecture.as_ref().map(|a| a.0.as_str()),
        Some("unknown")
    );
    assert_eq!(first.os.as_ref().map(|o| o.0.as_str()), Some("unknown"));
    assert_eq!(page.manifests[1].tags, ["3.17.1"]);
    assert_eq!(page.manifests[1].image_size, Some(22581618));
}

#[test]
fn repository_tag_and_manifest_properties() {
    let repo: types::ContainerRepositoryProperties = serde_json::from_str(r#"{"registry":"mohitcontainerregistry.azurecr.io","imageName":"library/hello-world",
        "createdTime":"2022-03-07T23:32:10.4188972Z","lastUpdateTime":"2022-03-07T23:32:08.7235872Z","manifestCount":12,"tagCount":5,
        "changeableAttributes":{"deleteEnabled":true,"writeEnabled":true,"readEnabled":true,"listEnabled":true}}"#).unwrap();
    assert_eq!(repo.image_name, "library/hello-world");
    assert_eq!(repo.manifest_count, 12);
    let tags: types::TagList = serde_json::from_str(r#"{"registry":"azacrlivetest.azurecr.io","imageName":"alpine",
        "tags":[{"name":"3.15.6","digest":"sha256:cf34","createdTime":"2024-01-24T06:16:24.927259Z","lastUpdateTime":"2024-01-24T06:16:24.927259Z","signed":false,
        "changeableAttributes":{"deleteEnabled":true,"writeEnabled":true,"readEnabled":true,"listEnabled":true}}]}"#).unwrap();
    assert_eq!(tags.tags[0].name, "3.15.6");
    let tag: types::ArtifactTagProperties = serde_json::from_str(r#"{"registry":"azacrlivetest.azurecr.io","imageName":"alpine",
        "tag":{"name":"3.17.1","digest":"sha256:f271","createdTime":"2024-01-24T06:16:01.7676267Z","lastUpdateTime":"2024-01-24T06:16:01.7676267Z","signed":false,
        "changeableAttributes":{"deleteEnabled":true,"writeEnabled":true,"readEnabled":true,"listEnabled":true}}}"#).unwrap();
    assert_eq!(tag.tag.digest, "sha256:f271");
    let manifest: types::ArtifactManifestProperties = serde_json::from_str(r#"{"registry":"azacrlivetest.azurecr.io","imageName":"alpine",
        "manifest":{"digest":"sha256:f271","imageSize":22581618,"createdTime":"2024-01-24T06:16:01.8012938Z","lastUpdateTime":"2024-01-24T06:16:01.8012938Z",
        "mediaType":"application/vnd.docker.distribution.manifest.list.v2+json","tags":["3.17.1"],
        "changeableAttributes":{"deleteEnabled":true,"writeEnabled":true,"readEnabled":true,"listEnabled":true},
        "references":[{"digest":"sha256:93d5","architecture":"amd64","os":"linux"},{"digest":"sha256:01a4","architecture":"arm","os":"linux"}]}}"#).unwrap();
    assert_eq!(manifest.manifest.references.len(), 2);
    assert_eq!(
        manifest.manifest.references[1]
            .architecture
            .as_ref()
            .map(|a| a.0.as_str()),
        Some("arm")
    );
}

#[test]
fn token_answers() {
    let rt: types::AcrRefreshToken =
        serde_json::from_str(r#"{"refresh_token":"eyJ.a.b"}"#).unwrap();
    assert_eq!(rt.refresh_token.as_deref(), Some("eyJ.a.b"));
    let at: types::AcrAccessToken = serde_json::from_str(r#"{"access_token":"eyJ.c.d"}"#).unwrap();
    assert_eq!(at.access_token.as_deref(), Some("eyJ.c.d"));
}
