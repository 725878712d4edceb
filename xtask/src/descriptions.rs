//! The project's own words for the operations and schemas of `specs/`.
//!
//! Upstream prose is dropped on import; these texts are written for this project. Every
//! entry must find its target, and every operation must have an entry, so the table cannot
//! silently fall out of step with the spec.

use anyhow::{anyhow, bail, Result};
use serde_json::{json, Value};

/// `(operationId, summary, description)`.
const OPERATIONS: &[(&str, &str, &str)] = &[
    ("CheckDockerV2Support", "Check that the registry speaks the distribution API",
     "Answers 200 when the registry implements the OCI distribution API, or a 401 challenge that starts authentication."),
    ("GetManifest", "Read a manifest",
     "Returns the exact manifest bytes for a tag or digest. `Accept` lists the media types the caller understands; a multi-platform index may be resolved to one platform when only single-image types are accepted."),
    ("CreateManifest", "Write a manifest",
     "Stores the bytes as a manifest under a tag or digest. `Content-Type` is the manifest's media type; the answer carries `Docker-Content-Digest`."),
    ("DeleteManifest", "Delete a manifest",
     "Deletes a manifest by digest. Registries refuse deletion by tag with 405 UNSUPPORTED."),
    ("GetRepositories", "List repository names",
     "One page of repository names in lexical order. Further pages are named by the `Link` header, which is followed as given."),
    ("GetProperties", "Read repository properties",
     "Counts, timestamps and changeable attributes of one repository."),
    ("DeleteRepository", "Delete a repository",
     "Deletes a repository with all its manifests and tags, answering with what was deleted."),
    ("UpdateProperties", "Change repository attributes",
     "Sets the changeable attributes given in the body (a partial object) and answers with the full repository properties."),
    ("GetTags", "List tags with their properties",
     "One page of tags of a repository, optionally ordered by update time and filtered by digest. Further pages are named by the `Link` header; their `last` cursor is opaque."),
    ("GetTagProperties", "Read tag properties", "The digest, timestamps and changeable attributes of one tag."),
    ("UpdateTagAttributes", "Change tag attributes", "Sets changeable attributes of one tag and answers with its properties."),
    ("DeleteTag", "Delete a tag", "Removes a tag; the manifest it pointed at stays."),
    ("GetManifests", "List manifests with their properties",
     "One page of manifests of a repository, optionally ordered by update time. Further pages are named by the `Link` header."),
    ("GetManifestProperties", "Read manifest properties",
     "Size, platform, media types, tags and changeable attributes of one manifest, and for an index the platforms it references."),
    ("UpdateManifestProperties", "Change manifest attributes", "Sets changeable attributes of one manifest and answers with its properties."),
    ("ExchangeAadAccessTokenForAcrRefreshToken", "Exchange a Microsoft Entra token for a registry refresh token",
     "Form fields: `grant_type=access_token`, `service`, `access_token` and optionally `tenant`. Fails with an empty 401."),
    ("ExchangeAcrRefreshTokenForAcrAccessToken", "Get a scoped access token",
     "Form fields: `grant_type=refresh_token` with `refresh_token`, or `grant_type=password` without one for anonymous access; `service` and `scope` (space-separated scopes) always. Fails with an empty 401."),
    ("GetAcrAccessTokenFromLogin", "Get a scoped access token with basic credentials",
     "The docker-login style token request: HTTP basic credentials, `service` and `scope` in the query."),
    ("GetBlob", "Read a blob",
     "Streams a blob, or the part named by `Range` (206). Registries may redirect to storage; the redirect is followed without credentials."),
    ("CheckBlobExists", "Check that a blob exists", "Answers 200 with `Content-Length` and `Docker-Content-Digest`, or 404."),
    ("DeleteBlob", "Delete a blob", "Removes a blob from a repository."),
    ("MountBlob", "Start an upload, or mount a blob from another repository",
     "Without `from` and `mount`, opens an upload session (202 with `Location`). With them, links an existing blob from another repository (201); a 202 means the registry declined the mount and opened an upload session instead."),
    ("GetUploadStatus", "Read the progress of an upload",
     "`Range` in the answer is the inclusive range of bytes received so far. The link is the upload's latest `Location`, used as given."),
    ("UploadChunk", "Send the next chunk of an upload",
     "Appends the body to the upload. The answer's `Location` is the link for the next step and `Range` the bytes received so far."),
    ("CompleteUpload", "Finish an upload",
     "Commits the upload under `digest`, optionally with a final body; the registry checks the content against the digest."),
    ("CancelUpload", "Cancel an upload", "Discards an unfinished upload and its bytes."),
    ("GetOciTags", "List the tag names of a repository (OCI distribution)",
     "One page of tag names in lexical order; `n` and `last` page through them, and `Link` names the next page."),
    ("GetOciCatalog", "List repository names (OCI distribution)",
     "One page of repository names in lexical order, the `/v2` form of the catalog; `Link` names the next page."),
    ("GetReferrers", "List the manifests that refer to a manifest (OCI 1.1)",
     "An image index whose descriptors are the manifests whose `subject` is the given digest, optionally filtered by `artifactType`."),
];

/// `(schema name, description)` for the schemas a user of the REST crate meets first. Upstream
/// files name some schemas differently; an entry applies where its schema exists, and at
/// least the error schemas must exist.
const SCHEMAS: &[(&str, &str)] = &[
    (
        "AcrErrors",
        "The error body of registry responses: a list of error codes and messages.",
    ),
    (
        "AcrErrorInfo",
        "One registry error: a code such as NAME_UNKNOWN, a message and free-form detail.",
    ),
    (
        "AcrRefreshToken",
        "A registry refresh token, from the token exchange.",
    ),
    (
        "AcrAccessToken",
        "A registry access token for the scopes that were asked for.",
    ),
    ("Repositories", "One page of repository names."),
    (
        "ContainerRepositoryProperties",
        "Properties of a repository.",
    ),
    (
        "RepositoryChangeableAttributes",
        "The attributes of a repository that can be changed.",
    ),
    (
        "TagChangeableAttributes",
        "The attributes of a tag that can be changed.",
    ),
    (
        "ManifestChangeableAttributes",
        "The attributes of a manifest that can be changed.",
    ),
    ("OciTagList", "One page of tag names of a repository."),
    (
        "ReferrersIndex",
        "The answer of the referrers API: an image index of referring manifests.",
    ),
    (
        "ReferrerDescriptor",
        "A manifest that refers to the subject, with its artifact type and annotations.",
    ),
];

/// Writes the descriptions into the spec, failing on any operation without one and on any
/// entry without a target.
pub fn apply(spec: &mut Value) -> Result<()> {
    let mut described = 0;
    if let Some(paths) = spec.get_mut("paths").and_then(Value::as_object_mut) {
        for item in paths.values_mut() {
            let Some(item) = item.as_object_mut() else {
                continue;
            };
            for op in item.values_mut() {
                let Some(id) = op.get("operationId").and_then(Value::as_str) else {
                    continue;
                };
                let (_, summary, description) = OPERATIONS
                    .iter()
                    .find(|(name, ..)| *name == id)
                    .ok_or_else(|| {
                        anyhow!("operation {id} has no description in xtask/src/descriptions.rs")
                    })?;
                op["summary"] = json!(summary);
                op["description"] = json!(description);
                described += 1;
            }
        }
    }
    if described != OPERATIONS.len() {
        bail!(
            "{} operation descriptions have no operation in the spec",
            OPERATIONS.len() - described
        );
    }
    let schemas = spec
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
        .ok_or_else(|| anyhow!("the spec has no components.schemas"))?;
    for (name, description) in SCHEMAS {
        match schemas.get_mut(*name) {
            Some(schema) => schema["description"] = json!(description),
            None if name.starts_with("AcrError") => {
                bail!("schema {name} named in descriptions.rs is not in the spec")
            }
            None => {}
        }
    }
    Ok(())
}
