//! The table of cases: what each measures, its limit, its targets, under which profiles.

use super::{CaseDef, Kind, Server, Target, Tool, Unit};

use Kind::{Download, ManifestGet, TinyUpload, Upload};
use Server::{Emulator as Emu, None as Local, Registry as Reg};
use Unit::{MibPerS, MsPerOp};

/// The fields most cases share: a loopback-only Rust case against the registry, no target.
const BASE: CaseDef = CaseDef {
    name: "",
    group: "limit",
    what: "",
    unit: MibPerS,
    limit: "",
    wan_limit: "",
    unlink_repo: None,
    server: Reg,
    loopback: true,
    wan: false,
    kind: None,
    tool: Tool::Rust,
    target: None,
    wan_target: None,
};

/// Peak RSS bound of uploads and sequential downloads, both profiles (MiB).
const RSS: Option<f64> = Some(32.0);

/// All cases, in the order each repetition runs them (per profile).
pub const CASES: &[CaseDef] = &[
    // -- Limits -------------------------------------------------------------------------------
    CaseDef {
        name: "sha256",
        what: "sha2 over the tmpfs file, 1 MiB reads",
        limit: "sha256",
        server: Local,
        ..BASE
    },
    CaseDef {
        name: "raw_upload",
        what: "reqwest POST + PUT, streamed body, digest known, no hashing; one connection",
        limit: "raw_upload",
        unlink_repo: Some("bench/raw-up"),
        wan: true,
        ..BASE
    },
    CaseDef {
        name: "raw_get_sha256",
        what: "reqwest GET + sha256 of the stream; one connection",
        limit: "raw_get_sha256",
        wan: true,
        ..BASE
    },
    CaseDef {
        name: "raw_get_sha256_to_file",
        what: "reqwest GET + sha256, chunks written to a tmpfs file by a separate thread, fsync",
        limit: "raw_get_sha256_to_file",
        wan: true,
        ..BASE
    },
    CaseDef {
        name: "raw_get_parallel",
        what: "reqwest GET of 4 ranges at once, 4 connections, bytes counted (the link limit of 4 connections)",
        limit: "raw_get_parallel",
        loopback: false,
        wan: true,
        ..BASE
    },
    CaseDef {
        name: "raw_tiny_upload",
        what: "reqwest 1 KiB POST + PUT, one connection",
        unit: MsPerOp,
        limit: "raw_tiny_upload",
        wan: true,
        ..BASE
    },
    CaseDef {
        name: "raw_manifest_get",
        what: "reqwest manifest GET + sha256 check, warm connection",
        unit: MsPerOp,
        limit: "raw_manifest_get",
        wan: true,
        ..BASE
    },
    CaseDef {
        name: "raw_list",
        what: "reqwest GET /acr/v1/_catalog pages following Link (emulator), ms per full listing",
        unit: MsPerOp,
        limit: "raw_list",
        server: Emu,
        ..BASE
    },
    // -- This project -------------------------------------------------------------------------
    CaseDef {
        name: "upload_blob",
        group: "ours",
        what: "ContainerRegistryContentClient::upload_blob(tokio File)",
        limit: "raw_upload",
        unlink_repo: Some("bench/ours-up"),
        wan: true,
        kind: Some(Upload),
        target: Some(Target::new(0.95, RSS).vs_peers(1.0)),
        wan_target: Some(Target::new(0.90, RSS).vs_peers(1.5)),
        ..BASE
    },
    CaseDef {
        name: "upload_blob_from_file",
        group: "ours",
        what: "upload_blob_from_file (sends while a thread hashes the file; HEAD once hashed)",
        limit: "raw_upload",
        unlink_repo: Some("bench/ours-up-file"),
        wan: true,
        kind: Some(Upload),
        target: Some(Target::new(0.95, RSS).vs_peers(1.0)),
        wan_target: Some(Target::new(0.90, RSS).vs_peers(1.5)),
        ..BASE
    },
    CaseDef {
        name: "download_blob",
        group: "ours",
        what: "download_blob stream, sequential, verified",
        limit: "raw_get_sha256",
        wan: true,
        kind: Some(Download),
        target: Some(Target::new(0.90, RSS).vs_peers(1.0)),
        wan_target: Some(Target::new(0.90, RSS).vs_peers(1.5)),
        ..BASE
    },
    CaseDef {
        name: "download_blob_parallel",
        group: "ours",
        what: "download_blob stream, 4 ranges of 8 MiB in flight, verified",
        limit: "raw_get_sha256",
        wan_limit: "raw_get_parallel",
        wan: true,
        kind: Some(Download),
        target: Some(Target::new(0.90, None).vs_peers(1.0)),
        wan_target: Some(
            Target::new(3.0, Some(64.0))
                .against("download_blob")
                .vs_peers(1.5),
        ),
        ..BASE
    },
    CaseDef {
        name: "download_blob_to_file",
        group: "ours",
        what: "download_blob_to_file onto tmpfs (write + fsync + rename)",
        limit: "raw_get_sha256_to_file",
        wan: true,
        kind: Some(Download),
        target: Some(Target::new(0.90, RSS).vs_peers(1.0)),
        wan_target: Some(Target::new(0.90, RSS).vs_peers(1.5)),
        ..BASE
    },
    CaseDef {
        name: "tiny_upload",
        group: "ours",
        what: "upload_blob_bytes of fresh 1 KiB blobs",
        unit: MsPerOp,
        limit: "raw_tiny_upload",
        wan: true,
        kind: Some(TinyUpload),
        target: Some(Target::new(1.2, None).vs_peers(1.0)),
        wan_target: Some(Target::new(1.2, None).vs_peers(1.0)),
        ..BASE
    },
    CaseDef {
        name: "manifest_get",
        group: "ours",
        what: "get_manifest(tag), warm client",
        unit: MsPerOp,
        limit: "raw_manifest_get",
        wan: true,
        kind: Some(ManifestGet),
        target: Some(Target::new(1.2, None).vs_peers(1.0)),
        wan_target: Some(Target::new(1.2, None).vs_peers(1.0)),
        ..BASE
    },
    CaseDef {
        name: "list_repository_names",
        group: "ours",
        what: "ContainerRegistryClient::list_repository_names pager (emulator), ms per full listing",
        unit: MsPerOp,
        limit: "raw_list",
        server: Emu,
        target: Some(Target::new(1.5, None)),
        ..BASE
    },
    // Whole-image case (issue 18, once the image-pull API exists): `pull_image`, a 5-layer
    // 1 GiB image pulled into an OCI layout (group "ours", a `Kind::Image`), beside a
    // `skopeo_copy` peer (`skopeo copy` of the same image, tool `Tool::Skopeo`), both profiles.
    // -- Peers --------------------------------------------------------------------------------
    CaseDef {
        name: "oci_push_blob_stream_chunked",
        group: "peer",
        what: "oci-client 0.18 push_blob_stream_chunked, 4 MiB items",
        limit: "raw_upload",
        unlink_repo: Some("bench/oci-up"),
        wan: true,
        kind: Some(Upload),
        ..BASE
    },
    CaseDef {
        name: "oci_pull_blob",
        group: "peer",
        what: "oci-client 0.18 pull_blob into a sink (verifies)",
        limit: "raw_get_sha256",
        wan: true,
        kind: Some(Download),
        ..BASE
    },
    CaseDef {
        name: "py_upload_blob",
        group: "peer",
        what: "Python azure-containerregistry upload_blob(open file), own process",
        limit: "raw_upload",
        unlink_repo: Some("bench/py-up"),
        wan: true,
        kind: Some(Upload),
        tool: Tool::Python,
        ..BASE
    },
    CaseDef {
        name: "py_download_blob",
        group: "peer",
        what: "Python azure-containerregistry download_blob into a sink (verifies), own process",
        limit: "raw_get_sha256",
        wan: true,
        kind: Some(Download),
        tool: Tool::Python,
        ..BASE
    },
    CaseDef {
        name: "js_upload_blob",
        group: "peer",
        what: "JS @azure/container-registry uploadBlob(fs.createReadStream), own process",
        limit: "raw_upload",
        unlink_repo: Some("bench/js-up"),
        wan: true,
        kind: Some(Upload),
        tool: Tool::Node,
        ..BASE
    },
    CaseDef {
        name: "js_download_blob",
        group: "peer",
        what: "JS @azure/container-registry downloadBlob into a sink (verifies), own process",
        limit: "raw_get_sha256",
        wan: true,
        kind: Some(Download),
        tool: Tool::Node,
        ..BASE
    },
    CaseDef {
        name: "oci_tiny_push_blob",
        group: "peer",
        what: "oci-client 0.18 push_blob of fresh 1 KiB blobs",
        unit: MsPerOp,
        limit: "raw_tiny_upload",
        wan: true,
        kind: Some(TinyUpload),
        ..BASE
    },
    CaseDef {
        name: "oci_pull_manifest_raw",
        group: "peer",
        what: "oci-client 0.18 pull_manifest_raw, Anonymous",
        unit: MsPerOp,
        limit: "raw_manifest_get",
        wan: true,
        kind: Some(ManifestGet),
        ..BASE
    },
];

/// Diagnostic cases, run only when named with `--cases` (loopback): the same chunked upload
/// protocol as `upload_blob` (POST, 8 MiB PATCHes, PUT) with plain reqwest, once with reading
/// and hashing serialized after each PATCH and once overlapped with it, to show what bounds
/// the upload.
pub const DIAG_CASES: &[CaseDef] = &[
    CaseDef {
        name: "diag_patch_serial",
        group: "diag",
        what: "reqwest POST + 8 MiB PATCHes + PUT; read and hash after each PATCH returns",
        limit: "raw_upload",
        unlink_repo: Some("bench/diag-serial"),
        ..BASE
    },
    CaseDef {
        name: "diag_patch_overlap",
        group: "diag",
        what: "reqwest POST + 8 MiB PATCHes + PUT; read and hash while each PATCH is in flight",
        limit: "raw_upload",
        unlink_repo: Some("bench/diag-overlap"),
        ..BASE
    },
    CaseDef {
        name: "diag_patch_stream",
        group: "diag",
        what: "reqwest POST + one PATCH streaming the file (hashed as it is sent) + PUT",
        limit: "raw_upload",
        unlink_repo: Some("bench/diag-stream"),
        ..BASE
    },
];
