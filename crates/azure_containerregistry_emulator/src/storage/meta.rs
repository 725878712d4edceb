//! The metadata model: repositories, tags, manifests and their changeable attributes.

use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

/// ACR's changeable attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Attrs {
    /// Deletes allowed.
    pub delete_enabled: bool,
    /// Writes allowed.
    pub write_enabled: bool,
    /// Reads allowed.
    pub read_enabled: bool,
    /// Shown in listings.
    pub list_enabled: bool,
}

impl Default for Attrs {
    fn default() -> Self {
        Attrs {
            delete_enabled: true,
            write_enabled: true,
            read_enabled: true,
            list_enabled: true,
        }
    }
}

impl Attrs {
    /// Applies a partial update.
    pub(crate) fn apply(&mut self, patch: &AttrsPatch) {
        if let Some(v) = patch.delete_enabled {
            self.delete_enabled = v;
        }
        if let Some(v) = patch.write_enabled {
            self.write_enabled = v;
        }
        if let Some(v) = patch.read_enabled {
            self.read_enabled = v;
        }
        if let Some(v) = patch.list_enabled {
            self.list_enabled = v;
        }
    }

    /// Deleting needs both delete and write enabled (a write lock also blocks deletes on ACR).
    pub(crate) fn can_delete(&self) -> bool {
        self.delete_enabled && self.write_enabled
    }

    /// JSON form.
    pub(crate) fn to_json(self) -> Value {
        json!({
            "deleteEnabled": self.delete_enabled,
            "writeEnabled": self.write_enabled,
            "readEnabled": self.read_enabled,
            "listEnabled": self.list_enabled,
        })
    }
}

/// A PATCH body: any subset of the attributes.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AttrsPatch {
    /// New `deleteEnabled`.
    pub delete_enabled: Option<bool>,
    /// New `writeEnabled`.
    pub write_enabled: Option<bool>,
    /// New `readEnabled`.
    pub read_enabled: Option<bool>,
    /// New `listEnabled`.
    pub list_enabled: Option<bool>,
}

/// A platform child of an index / manifest list.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct PlatformRef {
    /// Child digest.
    pub digest: String,
    /// `platform.architecture`.
    pub architecture: Option<String>,
    /// `platform.os`.
    pub os: Option<String>,
}

/// What the registry knows about one manifest.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ManifestMeta {
    /// Media type it was pushed with.
    pub media_type: String,
    /// Size of the manifest bytes.
    pub size: u64,
    /// First push.
    pub created: Timestamp,
    /// Last push.
    pub updated: Timestamp,
    /// Changeable attributes.
    pub attrs: Attrs,
    /// `subject.digest`, for referrers.
    pub subject: Option<String>,
    /// `artifactType`, or the config media type.
    pub artifact_type: Option<String>,
    /// `config.mediaType`.
    pub config_media_type: Option<String>,
    /// Top-level `annotations`.
    pub annotations: Option<Value>,
    /// Architecture from the config blob (images only).
    pub architecture: Option<String>,
    /// OS from the config blob (images only).
    pub os: Option<String>,
    /// Config + layers, or the sum over children for an index.
    pub image_size: u64,
    /// Children of an index / list.
    pub references: Vec<PlatformRef>,
    /// Whether this is an index / manifest list.
    pub is_index: bool,
}

/// A tag.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct TagMeta {
    /// Digest it points at.
    pub digest: String,
    /// Creation time.
    pub created: Timestamp,
    /// Last time it was moved.
    pub updated: Timestamp,
    /// Changeable attributes.
    pub attrs: Attrs,
}

/// A repository.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Repo {
    /// Creation time.
    pub created: Timestamp,
    /// Last write.
    pub updated: Timestamp,
    /// Changeable attributes.
    pub attrs: Attrs,
    /// Manifests by digest.
    pub manifests: BTreeMap<String, ManifestMeta>,
    /// Tags by name.
    pub tags: BTreeMap<String, TagMeta>,
    /// Blobs linked into this repository.
    pub blobs: BTreeSet<String>,
}

impl Repo {
    /// An empty repository created at `now`.
    pub(crate) fn new(now: Timestamp) -> Self {
        Repo {
            created: now,
            updated: now,
            attrs: Attrs::default(),
            manifests: BTreeMap::new(),
            tags: BTreeMap::new(),
            blobs: BTreeSet::new(),
        }
    }

    /// Whether a blob (or manifest) with this digest is readable through this repository.
    pub(crate) fn has_blob(&self, digest: &str) -> bool {
        self.blobs.contains(digest) || self.manifests.contains_key(digest)
    }

    /// Tags pointing at `digest`, sorted.
    pub(crate) fn tags_of(&self, digest: &str) -> Vec<String> {
        self.tags
            .iter()
            .filter(|(_, t)| t.digest == digest)
            .map(|(n, _)| n.clone())
            .collect()
    }
}

/// The whole registry's metadata.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Registry {
    /// Repositories by name.
    pub repos: BTreeMap<String, Repo>,
}

impl Registry {
    /// The latest timestamp stored anywhere (to seed the clock after a restart).
    pub(crate) fn max_timestamp(&self) -> Timestamp {
        let mut max = Timestamp(0);
        for repo in self.repos.values() {
            max = max.max(repo.created).max(repo.updated);
            for m in repo.manifests.values() {
                max = max.max(m.created).max(m.updated);
            }
            for t in repo.tags.values() {
                max = max.max(t.created).max(t.updated);
            }
        }
        max
    }
}
