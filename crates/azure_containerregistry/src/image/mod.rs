//! Whole images: references such as `myregistry.azurecr.io/hello-world:latest`, the choice of
//! a platform in a multi-architecture index, copies of images between repositories and
//! registries, and OCI image layouts on disk.

mod copy;
mod layout;
mod platform;
mod reference;

pub use copy::{
    copy_image, CopyImageOptions, CopyImageResult, DEFAULT_COPY_CONCURRENCY,
    DEFAULT_PULL_CONCURRENCY,
};
pub use layout::{
    pull_image, push_image, PullImageOptions, PullImageResult, PushImageOptions, PushImageResult,
    REF_NAME_ANNOTATION,
};
pub use platform::choose_platform;
pub use reference::ImageReference;

/// Parses manifest bytes as JSON, for reading the descriptors any manifest type names.
pub(crate) fn manifest_json(content: &[u8]) -> azure_core::Result<serde_json::Value> {
    serde_json::from_slice(content).map_err(|e| {
        azure_core::Error::with_message(
            azure_core::error::ErrorKind::DataConversion,
            format!("the manifest is not JSON: {e}"),
        )
    })
}

/// The descriptors of the array `field` (`manifests`, `layers`, `blobs`) of a manifest.
pub(crate) fn descriptors(
    manifest: &serde_json::Value,
    field: &str,
) -> azure_core::Result<Vec<crate::OciDescriptor>> {
    match manifest.get(field) {
        None | Some(serde_json::Value::Null) => Ok(Vec::new()),
        Some(value) => serde_json::from_value(value.clone()).map_err(|e| {
            azure_core::Error::with_message(
                azure_core::error::ErrorKind::DataConversion,
                format!("the manifest's {field:?} are not descriptors: {e}"),
            )
        }),
    }
}

/// The blobs an image manifest names: its config, then its layers (OCI artifact manifests'
/// `blobs` too), each digest once. Foreign layers (with `urls`) are left out: registries do not
/// hold them.
pub(crate) fn manifest_blobs(
    manifest: &serde_json::Value,
) -> azure_core::Result<Vec<crate::OciDescriptor>> {
    let mut out: Vec<crate::OciDescriptor> = Vec::new();
    if let Some(config) = manifest.get("config").filter(|c| !c.is_null()) {
        let config: crate::OciDescriptor = serde_json::from_value(config.clone()).map_err(|e| {
            azure_core::Error::with_message(
                azure_core::error::ErrorKind::DataConversion,
                format!("the manifest's config is not a descriptor: {e}"),
            )
        })?;
        out.push(config);
    }
    out.extend(descriptors(manifest, "layers")?);
    out.extend(descriptors(manifest, "blobs")?);
    let mut seen = std::collections::HashSet::new();
    out.retain(|d| {
        d.urls.as_ref().is_none_or(Vec::is_empty)
            && !d.media_type.contains(".foreign.")
            && seen.insert(d.digest.clone())
    });
    for d in &out {
        crate::reference::validate_digest(&d.digest)?;
    }
    Ok(out)
}

/// Whether a media type (or a manifest's JSON) is an index or manifest list.
pub(crate) fn is_index(media_type: &str, manifest: &serde_json::Value) -> bool {
    matches!(
        media_type,
        crate::media_types::OCI_INDEX | crate::media_types::DOCKER_MANIFEST_LIST
    ) || (manifest.get("manifests").is_some_and(|m| m.is_array())
        && manifest.get("config").is_none())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blobs_and_indexes_of_any_manifest_type() {
        let d = |c: char| format!("sha256:{}", c.to_string().repeat(64));
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "config": {"mediaType": "c", "digest": d('a'), "size": 1},
            "layers": [
                {"mediaType": "l", "digest": d('b'), "size": 2},
                {"mediaType": "l", "digest": d('b'), "size": 2},
                {"mediaType": "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
                 "digest": d('c'), "size": 3, "urls": ["https://example.com/x"]}
            ]
        });
        let blobs = manifest_blobs(&manifest).unwrap();
        let digests: Vec<_> = blobs.iter().map(|b| b.digest.clone()).collect();
        assert_eq!(
            digests,
            [d('a'), d('b')],
            "each once, foreign layers left out"
        );
        assert!(!is_index(crate::media_types::OCI_MANIFEST, &manifest));
        let index = serde_json::json!({"manifests": []});
        assert!(is_index("application/json", &index));
        assert!(is_index(
            crate::media_types::DOCKER_MANIFEST_LIST,
            &manifest
        ));
        let bad =
            serde_json::json!({"config": {"mediaType": "c", "digest": "sha256:../x", "size": 1}});
        assert!(
            manifest_blobs(&bad).is_err(),
            "a digest that is no digest names no file"
        );
        assert!(manifest_json(b"not json").is_err());
    }
}
