//! Typed manifest models: OCI image manifest and index, Docker v2 manifest and manifest list.
//!
//! Every model keeps the fields it does not know in `extra` (`#[serde(flatten)]`), so a manifest
//! read, changed and written back loses nothing. The exact bytes of a fetched manifest are in
//! [`GetManifestResult::content`](crate::GetManifestResult::content); re-serializing a model may
//! order fields differently and so give a different digest.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Media types of manifests and common blobs.
pub mod media_types {
    /// OCI image manifest.
    pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    /// OCI image index.
    pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    /// Docker image manifest, schema 2.
    pub const DOCKER_MANIFEST_V2: &str = "application/vnd.docker.distribution.manifest.v2+json";
    /// Docker manifest list.
    pub const DOCKER_MANIFEST_LIST: &str =
        "application/vnd.docker.distribution.manifest.list.v2+json";
    /// OCI image configuration.
    pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
    /// The OCI empty descriptor's media type (`{}`), for artifacts without a config.
    pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
    /// OCI gzip-compressed tar layer.
    pub const OCI_LAYER_TAR_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
    /// OCI uncompressed tar layer.
    pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
    /// Docker image configuration.
    pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
    /// Docker gzip-compressed layer.
    pub const DOCKER_LAYER_TAR_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
}

/// The `Accept` value sent when reading manifests: the four manifest types the client models.
pub(crate) const DEFAULT_ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json";

/// Unknown JSON fields, kept as they were.
pub type ExtraFields = serde_json::Map<String, serde_json::Value>;

/// A content descriptor: a blob or manifest named by media type, digest and size.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct OciDescriptor {
    /// Media type of the referenced content.
    #[serde(rename = "mediaType")]
    pub media_type: String,
    /// Digest of the referenced content (`sha256:…`).
    pub digest: String,
    /// Size of the referenced content in bytes.
    pub size: u64,
    /// URLs the content may also be fetched from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urls: Option<Vec<String>>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    /// Base64 of the content itself, for small content.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    /// The platform of a manifest in an index or manifest list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    /// The artifact type of the referenced manifest (OCI 1.1).
    #[serde(
        rename = "artifactType",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub artifact_type: Option<String>,
    /// Fields this model does not know.
    #[serde(flatten)]
    pub extra: ExtraFields,
}

impl OciDescriptor {
    /// A descriptor of `media_type` for `digest` and `size`, without optional fields.
    pub fn new(media_type: impl Into<String>, digest: impl Into<String>, size: u64) -> Self {
        Self {
            media_type: media_type.into(),
            digest: digest.into(),
            size,
            ..Default::default()
        }
    }
}

/// The platform an image runs on.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Platform {
    /// CPU architecture (`amd64`, `arm64`, …).
    pub architecture: String,
    /// Operating system (`linux`, `windows`, …).
    pub os: String,
    /// Operating system version.
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
    /// Required operating system features.
    #[serde(
        rename = "os.features",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_features: Option<Vec<String>>,
    /// CPU variant (`v8`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// Required CPU features (Docker manifest lists).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub features: Option<Vec<String>>,
    /// Fields this model does not know.
    #[serde(flatten)]
    pub extra: ExtraFields,
}

fn schema_version_2() -> u32 {
    2
}

/// An OCI image manifest (`application/vnd.oci.image.manifest.v1+json`), including OCI 1.1
/// artifacts (`artifactType`, `subject`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OciImageManifest {
    /// Always 2.
    #[serde(rename = "schemaVersion", default = "schema_version_2")]
    pub schema_version: u32,
    /// `application/vnd.oci.image.manifest.v1+json` (optional in the format; set it).
    #[serde(rename = "mediaType", default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// The artifact type, for artifacts whose config is the empty descriptor.
    #[serde(
        rename = "artifactType",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub artifact_type: Option<String>,
    /// The configuration blob.
    pub config: OciDescriptor,
    /// The layers, base first.
    #[serde(default)]
    pub layers: Vec<OciDescriptor>,
    /// The manifest this one refers to (signatures, SBOMs, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<OciDescriptor>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    /// Fields this model does not know.
    #[serde(flatten)]
    pub extra: ExtraFields,
}

impl Default for OciImageManifest {
    fn default() -> Self {
        Self {
            schema_version: 2,
            media_type: Some(media_types::OCI_MANIFEST.to_string()),
            artifact_type: None,
            config: OciDescriptor::default(),
            layers: Vec::new(),
            subject: None,
            annotations: None,
            extra: ExtraFields::new(),
        }
    }
}

/// An OCI image index (`application/vnd.oci.image.index.v1+json`): a list of manifests, usually
/// one per platform.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OciImageIndex {
    /// Always 2.
    #[serde(rename = "schemaVersion", default = "schema_version_2")]
    pub schema_version: u32,
    /// `application/vnd.oci.image.index.v1+json` (optional in the format; set it).
    #[serde(rename = "mediaType", default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// The artifact type (OCI 1.1).
    #[serde(
        rename = "artifactType",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub artifact_type: Option<String>,
    /// The manifests.
    #[serde(default)]
    pub manifests: Vec<OciDescriptor>,
    /// The manifest this index refers to (OCI 1.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<OciDescriptor>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    /// Fields this model does not know.
    #[serde(flatten)]
    pub extra: ExtraFields,
}

impl Default for OciImageIndex {
    fn default() -> Self {
        Self {
            schema_version: 2,
            media_type: Some(media_types::OCI_INDEX.to_string()),
            artifact_type: None,
            manifests: Vec::new(),
            subject: None,
            annotations: None,
            extra: ExtraFields::new(),
        }
    }
}

/// A Docker image manifest, schema 2 (`application/vnd.docker.distribution.manifest.v2+json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DockerManifestV2 {
    /// Always 2.
    #[serde(rename = "schemaVersion", default = "schema_version_2")]
    pub schema_version: u32,
    /// `application/vnd.docker.distribution.manifest.v2+json`.
    #[serde(rename = "mediaType")]
    pub media_type: String,
    /// The configuration blob.
    pub config: OciDescriptor,
    /// The layers, base first.
    #[serde(default)]
    pub layers: Vec<OciDescriptor>,
    /// Fields this model does not know.
    #[serde(flatten)]
    pub extra: ExtraFields,
}

impl Default for DockerManifestV2 {
    fn default() -> Self {
        Self {
            schema_version: 2,
            media_type: media_types::DOCKER_MANIFEST_V2.to_string(),
            config: OciDescriptor::default(),
            layers: Vec::new(),
            extra: ExtraFields::new(),
        }
    }
}

/// A Docker manifest list (`application/vnd.docker.distribution.manifest.list.v2+json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DockerManifestList {
    /// Always 2.
    #[serde(rename = "schemaVersion", default = "schema_version_2")]
    pub schema_version: u32,
    /// `application/vnd.docker.distribution.manifest.list.v2+json`.
    #[serde(rename = "mediaType")]
    pub media_type: String,
    /// The manifests, one per platform.
    #[serde(default)]
    pub manifests: Vec<OciDescriptor>,
    /// Fields this model does not know.
    #[serde(flatten)]
    pub extra: ExtraFields,
}

impl Default for DockerManifestList {
    fn default() -> Self {
        Self {
            schema_version: 2,
            media_type: media_types::DOCKER_MANIFEST_LIST.to_string(),
            manifests: Vec::new(),
            extra: ExtraFields::new(),
        }
    }
}

/// A manifest model that [`set_manifest`](crate::ContainerRegistryContentClient::set_manifest)
/// can upload: it serializes to JSON and names its media type.
pub trait Manifest: Serialize {
    /// The media type sent as `Content-Type` (the model's `mediaType`, or the type's default).
    fn media_type(&self) -> &str;
}

impl Manifest for OciImageManifest {
    fn media_type(&self) -> &str {
        self.media_type
            .as_deref()
            .unwrap_or(media_types::OCI_MANIFEST)
    }
}

impl Manifest for OciImageIndex {
    fn media_type(&self) -> &str {
        self.media_type.as_deref().unwrap_or(media_types::OCI_INDEX)
    }
}

impl Manifest for DockerManifestV2 {
    fn media_type(&self) -> &str {
        &self.media_type
    }
}

impl Manifest for DockerManifestList {
    fn media_type(&self) -> &str {
        &self.media_type
    }
}

/// A fetched manifest, parsed according to its media type.
#[derive(Debug, Clone, PartialEq)]
pub enum ManifestKind {
    /// An OCI image manifest.
    OciImage(Box<OciImageManifest>),
    /// An OCI image index.
    OciIndex(Box<OciImageIndex>),
    /// A Docker v2 manifest.
    DockerV2(Box<DockerManifestV2>),
    /// A Docker manifest list.
    DockerList(Box<DockerManifestList>),
    /// Another media type: the JSON as it is.
    Other(serde_json::Value),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_fields_round_trip() {
        let text = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"application/x.demo","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2,"data":"e30=","x-future":1},"layers":[],"subject":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"annotations":{"a":"b"},"x-unknown":{"nested":[1,2]}}"#;
        let m: OciImageManifest = serde_json::from_str(text).unwrap();
        assert_eq!(m.extra["x-unknown"], serde_json::json!({"nested": [1, 2]}));
        assert_eq!(m.config.extra["x-future"], 1);
        assert_eq!(m.artifact_type.as_deref(), Some("application/x.demo"));
        let back: serde_json::Value = serde_json::to_value(&m).unwrap();
        let orig: serde_json::Value = serde_json::from_str(text).unwrap();
        assert_eq!(back, orig);
    }

    #[test]
    fn platform_dotted_fields() {
        let text =
            r#"{"architecture":"amd64","os":"windows","os.version":"10.0.17763.1","variant":"v8"}"#;
        let p: Platform = serde_json::from_str(text).unwrap();
        assert_eq!(p.os_version.as_deref(), Some("10.0.17763.1"));
        assert_eq!(
            serde_json::to_value(&p).unwrap(),
            serde_json::from_str::<serde_json::Value>(text).unwrap()
        );
    }
}
