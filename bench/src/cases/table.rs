//! The table of cases: what each measures, its limit, its target.

use super::{case, target, unlink, CaseDef, Server, Unit};

use Server::{Emulator as Emu, None as Local, Registry as Reg};
use Unit::{MibPerS, MsPerOp};

/// All cases, in the order each repetition runs them.
pub const CASES: &[CaseDef] = &[
    case(
        "sha256",
        "limit",
        "sha2 over the tmpfs file, 1 MiB reads",
        MibPerS,
        "sha256",
        Local,
    ),
    unlink(
        case(
            "raw_upload",
            "limit",
            "reqwest POST + PUT, streamed body, digest known, no hashing",
            MibPerS,
            "raw_upload",
            Reg,
        ),
        "bench/raw-up",
    ),
    case(
        "raw_get_sha256",
        "limit",
        "reqwest GET + sha256 of the stream",
        MibPerS,
        "raw_get_sha256",
        Reg,
    ),
    case(
        "raw_get_sha256_to_file",
        "limit",
        "reqwest GET + sha256, chunks written to a tmpfs file by a separate thread, fsync",
        MibPerS,
        "raw_get_sha256_to_file",
        Reg,
    ),
    case(
        "raw_tiny_upload",
        "limit",
        "reqwest 1 KiB POST + PUT, one connection",
        MsPerOp,
        "raw_tiny_upload",
        Reg,
    ),
    case(
        "raw_manifest_get",
        "limit",
        "reqwest manifest GET + sha256 check, warm connection",
        MsPerOp,
        "raw_manifest_get",
        Reg,
    ),
    case(
        "raw_list",
        "limit",
        "reqwest GET /acr/v1/_catalog pages following Link (emulator), ms per full listing",
        MsPerOp,
        "raw_list",
        Emu,
    ),
    target(
        unlink(
            case(
                "upload_blob",
                "ours",
                "ContainerRegistryContentClient::upload_blob(tokio File)",
                MibPerS,
                "raw_upload",
                Reg,
            ),
            "bench/ours-up",
        ),
        0.95,
        Some(32.0),
    ),
    target(
        unlink(
            case(
                "upload_blob_from_file",
                "ours",
                "upload_blob_from_file (sends while a thread hashes the file; HEAD once hashed)",
                MibPerS,
                "raw_upload",
                Reg,
            ),
            "bench/ours-up-file",
        ),
        0.95,
        Some(32.0),
    ),
    target(
        case(
            "download_blob",
            "ours",
            "download_blob stream, sequential, verified",
            MibPerS,
            "raw_get_sha256",
            Reg,
        ),
        0.90,
        Some(32.0),
    ),
    target(
        case(
            "download_blob_parallel",
            "ours",
            "download_blob stream, 4 ranges of 8 MiB in flight, verified",
            MibPerS,
            "raw_get_sha256",
            Reg,
        ),
        0.90,
        None,
    ),
    target(
        case(
            "download_blob_to_file",
            "ours",
            "download_blob_to_file onto tmpfs (write + fsync + rename)",
            MibPerS,
            "raw_get_sha256_to_file",
            Reg,
        ),
        0.90,
        Some(32.0),
    ),
    target(
        case(
            "tiny_upload",
            "ours",
            "upload_blob_bytes of fresh 1 KiB blobs",
            MsPerOp,
            "raw_tiny_upload",
            Reg,
        ),
        1.2,
        None,
    ),
    target(
        case(
            "manifest_get",
            "ours",
            "get_manifest(tag), warm client",
            MsPerOp,
            "raw_manifest_get",
            Reg,
        ),
        1.2,
        None,
    ),
    target(
        case(
            "list_repository_names",
            "ours",
            "ContainerRegistryClient::list_repository_names pager (emulator), ms per full listing",
            MsPerOp,
            "raw_list",
            Emu,
        ),
        1.5,
        None,
    ),
    unlink(
        case(
            "oci_push_blob_stream_chunked",
            "peer",
            "oci-client 0.18 push_blob_stream_chunked, 4 MiB items",
            MibPerS,
            "raw_upload",
            Reg,
        ),
        "bench/oci-up",
    ),
    case(
        "oci_pull_blob",
        "peer",
        "oci-client 0.18 pull_blob into a sink (verifies)",
        MibPerS,
        "raw_get_sha256",
        Reg,
    ),
    case(
        "oci_tiny_push_blob",
        "peer",
        "oci-client 0.18 push_blob of fresh 1 KiB blobs",
        MsPerOp,
        "raw_tiny_upload",
        Reg,
    ),
    case(
        "oci_pull_manifest_raw",
        "peer",
        "oci-client 0.18 pull_manifest_raw, Anonymous",
        MsPerOp,
        "raw_manifest_get",
        Reg,
    ),
];

/// Diagnostic cases, run only when named with `--cases`: the same chunked upload protocol as
/// `upload_blob` (POST, 8 MiB PATCHes, PUT) with plain reqwest, once with reading and hashing
/// serialized after each PATCH and once overlapped with it, to show what bounds the upload.
pub const DIAG_CASES: &[CaseDef] = &[
    unlink(
        case(
            "diag_patch_serial",
            "diag",
            "reqwest POST + 8 MiB PATCHes + PUT; read and hash after each PATCH returns",
            MibPerS,
            "raw_upload",
            Reg,
        ),
        "bench/diag-serial",
    ),
    unlink(
        case(
            "diag_patch_overlap",
            "diag",
            "reqwest POST + 8 MiB PATCHes + PUT; read and hash while each PATCH is in flight",
            MibPerS,
            "raw_upload",
            Reg,
        ),
        "bench/diag-overlap",
    ),
    unlink(
        case(
            "diag_patch_stream",
            "diag",
            "reqwest POST + one PATCH streaming the file (hashed as it is sent) + PUT",
            MibPerS,
            "raw_upload",
            Reg,
        ),
        "bench/diag-stream",
    ),
];
