//! Public models of registry metadata: repository, manifest and tag properties, the values that
//! can be changed, list orderings and the pages of list operations.
//!
//! The wire types come from the generated REST crate; these are the SDK-facing shapes, with the
//! names the other Azure SDKs use (`can_delete`, `last_updated_on`, …) and `time` timestamps.

use std::borrow::Cow;
use std::fmt;

use azure_containerregistry_rest::types;
use azure_core::error::ErrorKind;
use time::OffsetDateTime;

/// A timestamp from its Unix seconds and nanoseconds (the generated types use `chrono`).
fn timestamp(seconds: i64, nanos: u32) -> azure_core::Result<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp(seconds)
        .map(|t| t + time::Duration::nanoseconds(i64::from(nanos)))
        .map_err(|e| {
            azure_core::Error::with_message(
                ErrorKind::DataConversion,
                format!("timestamp out of range: {e}"),
            )
        })
}

/// Converts a generated `chrono` timestamp.
macro_rules! ts {
    ($value:expr) => {
        timestamp($value.timestamp(), $value.timestamp_subsec_nanos())
    };
}

macro_rules! open_string {
    ($(#[$doc:meta])* $name:ident { $($(#[$cdoc:meta])* $constant:ident = $value:literal,)* }) => {
        $(#[$doc])*
        ///
        /// An open set: values the SDK has no constant for (such as `unknown`) are kept as they are.
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Cow<'static, str>);

        impl $name {
            $($(#[$cdoc])* pub const $constant: Self = Self(Cow::Borrowed($value));)*

            /// The value as sent by the registry.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<String> for $name {
            fn from(value: String) -> Self {
                Self(Cow::Owned(value))
            }
        }

        impl From<&str> for $name {
            fn from(value: &str) -> Self {
                Self(Cow::Owned(value.to_string()))
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

open_string! {
    /// The CPU architecture of an image (`architecture` in the OCI image config).
    ArtifactArchitecture {
        /// `386`
        I386 = "386",
        /// `amd64`
        AMD64 = "amd64",
        /// `arm`
        ARM = "arm",
        /// `arm64`
        ARM64 = "arm64",
        /// `mips`
        MIPS = "mips",
        /// `mipsle`
        MIPS_LE = "mipsle",
        /// `mips64`
        MIPS64 = "mips64",
        /// `mips64le`
        MIPS64_LE = "mips64le",
        /// `ppc64`
        PPC64 = "ppc64",
        /// `ppc64le`
        PPC64_LE = "ppc64le",
        /// `riscv64`
        RISC_V64 = "riscv64",
        /// `s390x`
        S390X = "s390x",
        /// `wasm`
        WASM = "wasm",
    }
}

open_string! {
    /// The operating system of an image (`os` in the OCI image config).
    ArtifactOperatingSystem {
        /// `aix`
        AIX = "aix",
        /// `android`
        ANDROID = "android",
        /// `darwin`
        DARWIN = "darwin",
        /// `dragonfly`
        DRAGONFLY = "dragonfly",
        /// `freebsd`
        FREEBSD = "freebsd",
        /// `illumos`
        ILLUMOS = "illumos",
        /// `ios`
        IOS = "ios",
        /// `js`
        JS = "js",
        /// `linux`
        LINUX = "linux",
        /// `netbsd`
        NETBSD = "netbsd",
        /// `openbsd`
        OPENBSD = "openbsd",
        /// `plan9`
        PLAN9 = "plan9",
        /// `solaris`
        SOLARIS = "solaris",
        /// `windows`
        WINDOWS = "windows",
    }
}

/// The order of manifests in [`list_manifest_properties`](crate::ContainerRepository::list_manifest_properties).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ArtifactManifestOrder {
    /// The registry's default order (by digest); no `orderby` is sent.
    #[default]
    None,
    /// Most recently updated first (`orderby=timedesc`).
    LastUpdatedOnDescending,
    /// Least recently updated first (`orderby=timeasc`).
    LastUpdatedOnAscending,
}

impl ArtifactManifestOrder {
    pub(crate) fn to_wire(self) -> Option<types::GetManifestsOrderby> {
        match self {
            Self::None => None,
            Self::LastUpdatedOnDescending => Some(types::GetManifestsOrderby::Timedesc),
            Self::LastUpdatedOnAscending => Some(types::GetManifestsOrderby::Timeasc),
        }
    }
}

/// The order of tags in [`list_tag_properties`](crate::RegistryArtifact::list_tag_properties).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ArtifactTagOrder {
    /// The registry's default order (by name); no `orderby` is sent.
    #[default]
    None,
    /// Most recently updated first (`orderby=timedesc`).
    LastUpdatedOnDescending,
    /// Least recently updated first (`orderby=timeasc`).
    LastUpdatedOnAscending,
}

impl ArtifactTagOrder {
    pub(crate) fn to_wire(self) -> Option<types::GetTagsOrderby> {
        match self {
            Self::None => None,
            Self::LastUpdatedOnDescending => Some(types::GetTagsOrderby::Timedesc),
            Self::LastUpdatedOnAscending => Some(types::GetTagsOrderby::Timeasc),
        }
    }
}

/// Properties of a repository.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(try_from = "types::ContainerRepositoryProperties")]
pub struct RepositoryProperties {
    /// The registry's login server, e.g. `myregistry.azurecr.io`.
    pub registry_login_server: String,
    /// The repository name, e.g. `library/hello-world`.
    pub name: String,
    /// When the repository was created.
    pub created_on: OffsetDateTime,
    /// When the repository was last changed (ACR may report a time before `created_on`).
    pub last_updated_on: OffsetDateTime,
    /// Number of manifests.
    pub manifest_count: i64,
    /// Number of tags.
    pub tag_count: i64,
    /// Whether the repository can be deleted.
    pub can_delete: Option<bool>,
    /// Whether content can be written (pushed) to the repository.
    pub can_write: Option<bool>,
    /// Whether content can be read (pulled).
    pub can_read: Option<bool>,
    /// Whether the repository appears in the catalog.
    pub can_list: Option<bool>,
}

impl RepositoryProperties {
    pub(crate) fn from_wire(p: types::ContainerRepositoryProperties) -> azure_core::Result<Self> {
        let a = p.changeable_attributes;
        Ok(Self {
            registry_login_server: p.registry,
            name: p.image_name,
            created_on: ts!(p.created_time)?,
            last_updated_on: ts!(p.last_update_time)?,
            manifest_count: i64::from(p.manifest_count),
            tag_count: i64::from(p.tag_count),
            can_delete: a.delete_enabled,
            can_write: a.write_enabled,
            can_read: a.read_enabled,
            can_list: a.list_enabled,
        })
    }
}

/// A platform that a manifest list or OCI index references.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArtifactManifestPlatform {
    /// The digest of the platform's manifest.
    pub digest: String,
    /// Its CPU architecture.
    pub architecture: Option<ArtifactArchitecture>,
    /// Its operating system.
    pub operating_system: Option<ArtifactOperatingSystem>,
}

/// Properties of a manifest (an image or other artifact).
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(try_from = "types::ArtifactManifestProperties")]
pub struct ArtifactManifestProperties {
    /// The registry's login server.
    pub registry_login_server: String,
    /// The repository name.
    pub repository_name: String,
    /// The manifest digest, `sha256:…`.
    pub digest: String,
    /// Total size of the artifact in bytes (0 for artifact manifests; the sum for lists).
    pub size_in_bytes: Option<i64>,
    /// When the manifest was created.
    pub created_on: OffsetDateTime,
    /// When the manifest was last changed.
    pub last_updated_on: OffsetDateTime,
    /// CPU architecture (absent for lists, indexes and artifacts).
    pub architecture: Option<ArtifactArchitecture>,
    /// Operating system (absent for lists, indexes and artifacts).
    pub operating_system: Option<ArtifactOperatingSystem>,
    /// The media type of the image config, e.g. `application/vnd.oci.image.config.v1+json`.
    pub config_media_type: Option<String>,
    /// The media type of the manifest itself, e.g. `application/vnd.oci.image.manifest.v1+json`.
    pub media_type: Option<String>,
    /// The quarantine state set by a scanner, e.g. `Passed`.
    pub quarantine_state: Option<String>,
    /// The scanner's details, a JSON document in a string as ACR sends it.
    pub quarantine_details: Option<String>,
    /// For a manifest list or index, the platforms it references.
    pub related_artifacts: Vec<ArtifactManifestPlatform>,
    /// Tags pointing at this manifest.
    pub tags: Vec<String>,
    /// Whether the manifest can be deleted.
    pub can_delete: Option<bool>,
    /// Whether the manifest can be overwritten.
    pub can_write: Option<bool>,
    /// Whether the manifest can be pulled.
    pub can_read: Option<bool>,
    /// Whether the manifest appears in lists.
    pub can_list: Option<bool>,
}

impl ArtifactManifestProperties {
    pub(crate) fn from_wire(
        registry: Option<String>,
        repository: Option<String>,
        m: types::ManifestAttributesBase,
    ) -> azure_core::Result<Self> {
        let a = m.changeable_attributes.unwrap_or_default();
        Ok(Self {
            registry_login_server: registry.unwrap_or_default(),
            repository_name: repository.unwrap_or_default(),
            digest: m.digest,
            size_in_bytes: m.image_size,
            created_on: ts!(m.created_time)?,
            last_updated_on: ts!(m.last_update_time)?,
            architecture: m.architecture.map(|a| ArtifactArchitecture::from(a.0)),
            operating_system: m.os.map(|o| ArtifactOperatingSystem::from(o.0)),
            config_media_type: m.config_media_type,
            media_type: m.media_type,
            quarantine_state: a.quarantine_state.clone(),
            quarantine_details: a.quarantine_details.clone(),
            related_artifacts: m
                .references
                .into_iter()
                .map(|r| ArtifactManifestPlatform {
                    digest: r.digest,
                    architecture: r.architecture.map(|a| ArtifactArchitecture::from(a.0)),
                    operating_system: r.os.map(|o| ArtifactOperatingSystem::from(o.0)),
                })
                .collect(),
            tags: m.tags,
            can_delete: a.delete_enabled,
            can_write: a.write_enabled,
            can_read: a.read_enabled,
            can_list: a.list_enabled,
        })
    }
}

/// Properties of a tag.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(try_from = "types::ArtifactTagProperties")]
pub struct ArtifactTagProperties {
    /// The registry's login server.
    pub registry_login_server: String,
    /// The repository name.
    pub repository_name: String,
    /// The tag.
    pub name: String,
    /// The digest of the manifest the tag points at.
    pub digest: String,
    /// When the tag was created.
    pub created_on: OffsetDateTime,
    /// When the tag was last changed (pushed or moved).
    pub last_updated_on: OffsetDateTime,
    /// Whether the tag can be deleted.
    pub can_delete: Option<bool>,
    /// Whether the tag can be moved (pushed over).
    pub can_write: Option<bool>,
    /// Whether the tag can be pulled.
    pub can_read: Option<bool>,
    /// Whether the tag appears in lists.
    pub can_list: Option<bool>,
}

impl ArtifactTagProperties {
    pub(crate) fn from_wire(
        registry: String,
        repository: String,
        t: types::TagAttributesBase,
    ) -> azure_core::Result<Self> {
        let a = t.changeable_attributes;
        Ok(Self {
            registry_login_server: registry,
            repository_name: repository,
            name: t.name,
            digest: t.digest,
            created_on: ts!(t.created_time)?,
            last_updated_on: ts!(t.last_update_time)?,
            can_delete: a.delete_enabled,
            can_write: a.write_enabled,
            can_read: a.read_enabled,
            can_list: a.list_enabled,
        })
    }
}

macro_rules! writeable {
    ($(#[$doc:meta])* $name:ident, $from:ident, $wire:ident) => {
        $(#[$doc])*
        ///
        /// Only the fields that are `Some` are sent (a partial update); the others keep their
        /// value in the registry.
        #[derive(Clone, Debug, Default, PartialEq, Eq)]
        pub struct $name {
            /// Allow or forbid deletion.
            pub can_delete: Option<bool>,
            /// Allow or forbid writes (push, overwrite).
            pub can_write: Option<bool>,
            /// Allow or forbid reads (pull).
            pub can_read: Option<bool>,
            /// Show or hide in lists.
            pub can_list: Option<bool>,
        }

        impl $name {
            // Read-only attributes (a manifest's quarantine state) are never sent.
            #[allow(clippy::needless_update)]
            pub(crate) fn to_wire(&self) -> types::$wire {
                types::$wire {
                    delete_enabled: self.can_delete,
                    write_enabled: self.can_write,
                    read_enabled: self.can_read,
                    list_enabled: self.can_list,
                    ..Default::default()
                }
            }
        }

        impl From<&$from> for $name {
            /// All four values as they are now, e.g. to change one and send them back.
            fn from(p: &$from) -> Self {
                Self {
                    can_delete: p.can_delete,
                    can_write: p.can_write,
                    can_read: p.can_read,
                    can_list: p.can_list,
                }
            }
        }
    };
}

writeable!(
    /// The changeable attributes of a repository, for
    /// [`ContainerRepository::update_properties`](crate::ContainerRepository::update_properties).
    RepositoryWriteableProperties,
    RepositoryProperties,
    RepositoryChangeableAttributes
);
writeable!(
    /// The changeable attributes of a manifest, for
    /// [`RegistryArtifact::update_manifest_properties`](crate::RegistryArtifact::update_manifest_properties).
    ManifestWriteableProperties,
    ArtifactManifestProperties,
    ManifestChangeableAttributes
);
writeable!(
    /// The changeable attributes of a tag, for
    /// [`RegistryArtifact::update_tag_properties`](crate::RegistryArtifact::update_tag_properties).
    TagWriteableProperties,
    ArtifactTagProperties,
    TagChangeableAttributes
);

/// One page of [`list_repository_names`](crate::ContainerRegistryClient::list_repository_names):
/// repository names.
#[derive(Debug, serde::Deserialize)]
#[serde(transparent)]
pub struct RepositoryNamesPage(types::Repositories);

#[async_trait::async_trait]
impl azure_core::http::pager::Page for RepositoryNamesPage {
    type Item = String;
    type IntoIter = std::vec::IntoIter<String>;

    async fn into_items(self) -> azure_core::Result<Self::IntoIter> {
        Ok(self.0.repositories.into_iter())
    }
}

/// One page of [`list_manifest_properties`](crate::ContainerRepository::list_manifest_properties).
#[derive(Debug, serde::Deserialize)]
#[serde(transparent)]
pub struct ManifestPropertiesPage(types::AcrManifests);

#[async_trait::async_trait]
impl azure_core::http::pager::Page for ManifestPropertiesPage {
    type Item = ArtifactManifestProperties;
    type IntoIter = std::vec::IntoIter<ArtifactManifestProperties>;

    async fn into_items(self) -> azure_core::Result<Self::IntoIter> {
        let page = self.0;
        let items = page
            .manifests
            .into_iter()
            .map(|m| {
                ArtifactManifestProperties::from_wire(
                    page.registry.clone(),
                    page.image_name.clone(),
                    m,
                )
            })
            .collect::<azure_core::Result<Vec<_>>>()?;
        Ok(items.into_iter())
    }
}

/// One page of [`list_tag_properties`](crate::RegistryArtifact::list_tag_properties).
#[derive(Debug, serde::Deserialize)]
#[serde(transparent)]
pub struct TagPropertiesPage(types::TagList);

#[async_trait::async_trait]
impl azure_core::http::pager::Page for TagPropertiesPage {
    type Item = ArtifactTagProperties;
    type IntoIter = std::vec::IntoIter<ArtifactTagProperties>;

    async fn into_items(self) -> azure_core::Result<Self::IntoIter> {
        let page = self.0;
        let items = page
            .tags
            .into_iter()
            .map(|t| {
                ArtifactTagProperties::from_wire(page.registry.clone(), page.image_name.clone(), t)
            })
            .collect::<azure_core::Result<Vec<_>>>()?;
        Ok(items.into_iter())
    }
}

impl TryFrom<types::ContainerRepositoryProperties> for RepositoryProperties {
    type Error = azure_core::Error;
    fn try_from(p: types::ContainerRepositoryProperties) -> azure_core::Result<Self> {
        Self::from_wire(p)
    }
}

impl TryFrom<types::ArtifactManifestProperties> for ArtifactManifestProperties {
    type Error = azure_core::Error;
    fn try_from(p: types::ArtifactManifestProperties) -> azure_core::Result<Self> {
        Self::from_wire(p.registry, p.image_name, p.manifest)
    }
}

impl TryFrom<types::ArtifactTagProperties> for ArtifactTagProperties {
    type Error = azure_core::Error;
    fn try_from(p: types::ArtifactTagProperties) -> azure_core::Result<Self> {
        Self::from_wire(p.registry, p.image_name, p.tag)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patch_bodies_carry_only_set_fields() {
        let p = RepositoryWriteableProperties {
            can_write: Some(false),
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_string(&p.to_wire()).unwrap(),
            r#"{"writeEnabled":false}"#
        );
        let p = TagWriteableProperties {
            can_delete: Some(true),
            can_write: Some(false),
            can_read: Some(true),
            can_list: Some(false),
        };
        let body: serde_json::Value = serde_json::to_value(p.to_wire()).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"deleteEnabled": true, "writeEnabled": false, "readEnabled": true, "listEnabled": false})
        );
        assert_eq!(
            serde_json::to_string(&ManifestWriteableProperties::default().to_wire()).unwrap(),
            "{}"
        );
    }

    #[test]
    fn six_and_seven_fractional_digits() {
        let page: TagPropertiesPage = serde_json::from_str(
            r#"{"registry":"r.io","imageName":"alpine","tags":[
                {"name":"a","digest":"sha256:00","createdTime":"2024-01-24T06:16:24.927259Z","lastUpdateTime":"2024-01-24T06:16:12.6787894Z","signed":false,
                 "changeableAttributes":{"deleteEnabled":true,"writeEnabled":false,"readEnabled":true,"listEnabled":true}}]}"#,
        )
        .unwrap();
        let tags: Vec<_> =
            futures::executor::block_on(azure_core::http::pager::Page::into_items(page))
                .unwrap()
                .collect();
        assert_eq!(tags[0].created_on.nanosecond(), 927_259_000);
        assert_eq!(tags[0].last_updated_on.nanosecond(), 678_789_400);
        assert_eq!(tags[0].created_on.unix_timestamp(), 1_706_076_984);
        assert_eq!(tags[0].can_write, Some(false));
        assert_eq!(tags[0].repository_name, "alpine");
        assert_eq!(tags[0].registry_login_server, "r.io");
    }

    #[test]
    fn open_strings() {
        assert_eq!(
            ArtifactArchitecture::from("amd64"),
            ArtifactArchitecture::AMD64
        );
        assert_eq!(ArtifactArchitecture::from("unknown").as_str(), "unknown");
        assert_eq!(ArtifactOperatingSystem::LINUX.to_string(), "linux");
        assert!(ArtifactOperatingSystem::LINUX == "linux");
    }
}
