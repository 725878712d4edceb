//! The table of cases: what each measures, its limit, its targets, under which profiles.

use super::{CaseDef, Kind, Server, Target, Tool, Unit};

use Kind::{Download, Image, ManifestGet, TinyUpload, Upload};
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
    miss_hint: "",
};

/// What an upload does that `raw_upload` does not.
const UPLOAD_HINT: &str = "It hashes what it sends (its digest is not known beforehand); \
     `raw_upload` sends a blob whose digest it knows and hashes nothing";

/// Peak RSS bound of uploads and sequential downloads, both profiles (MiB).
const RSS: Option<f64> = Some(32.0);

/// Under WAN, this project's big uploads and sequential downloads: 0.9 × the limit, RSS
/// bounded, 1.5 × the best peer.
const WAN_BIG: Target = Target::new(0.90, RSS).vs_peers(1.5);

/// A limit case: its own limit, loopback only.
const fn limit(name: &'static str, what: &'static str) -> CaseDef {
    CaseDef {
        name,
        what,
        limit: name,
        ..BASE
    }
}

/// A `group` case doing `kind`, divided by `limit`, under both profiles, no target.
const fn both_profiles(
    group: &'static str,
    name: &'static str,
    what: &'static str,
    limit: &'static str,
    kind: Kind,
) -> CaseDef {
    CaseDef {
        name,
        group,
        what,
        limit,
        wan: true,
        kind: Some(kind),
        ..BASE
    }
}

/// One of this project's cases doing `kind`, divided by `limit`, both profiles, no target.
const fn ours(name: &'static str, what: &'static str, limit: &'static str, kind: Kind) -> CaseDef {
    both_profiles("ours", name, what, limit, kind)
}

/// This project's upload of the big blob into `repo`, divided by `raw_upload`.
const fn ours_upload(name: &'static str, what: &'static str, repo: &'static str) -> CaseDef {
    ours(name, what, "raw_upload", Upload)
        .unlinking(repo)
        .targets(Target::new(0.95, RSS).vs_peers(1.0), WAN_BIG)
}

/// This project's sequential, verified download of the big blob, divided by `limit`.
const fn ours_download(name: &'static str, what: &'static str, limit: &'static str) -> CaseDef {
    ours(name, what, limit, Download).targets(Target::new(0.90, RSS).vs_peers(1.0), WAN_BIG)
}

/// This project's tiny operations (ms per op): within 1.2 × the limit and the best peer.
const fn ours_per_op(
    name: &'static str,
    what: &'static str,
    limit: &'static str,
    kind: Kind,
) -> CaseDef {
    const TINY: Target = Target::new(1.2, None).vs_peers(1.0);
    ours(name, what, limit, kind)
        .ms_per_op()
        .targets(TINY, TINY)
}

/// A peer case doing `kind`, divided by `limit`, both profiles.
const fn peer(name: &'static str, what: &'static str, limit: &'static str, kind: Kind) -> CaseDef {
    both_profiles("peer", name, what, limit, kind)
}

/// A peer's upload of the big blob into `repo`, divided by `raw_upload`.
const fn peer_upload(name: &'static str, what: &'static str, repo: &'static str) -> CaseDef {
    peer(name, what, "raw_upload", Upload).unlinking(repo)
}

/// A peer's verified download of the big blob, divided by `raw_get_sha256`.
const fn peer_download(name: &'static str, what: &'static str) -> CaseDef {
    peer(name, what, "raw_get_sha256", Download)
}

/// A diagnostic upload into `repo` (loopback), divided by `raw_upload`.
const fn diag(name: &'static str, what: &'static str, repo: &'static str) -> CaseDef {
    CaseDef {
        name,
        group: "diag",
        what,
        limit: "raw_upload",
        ..BASE
    }
    .unlinking(repo)
}

/// Adjustments of a case, for the table.
impl CaseDef {
    /// Also runs under WAN.
    const fn and_wan(self) -> Self {
        CaseDef { wan: true, ..self }
    }

    /// Runs under WAN only.
    const fn wan_only(self) -> Self {
        CaseDef {
            loopback: false,
            wan: true,
            ..self
        }
    }

    /// Measured in milliseconds per operation.
    const fn ms_per_op(self) -> Self {
        CaseDef {
            unit: MsPerOp,
            ..self
        }
    }

    /// Talks to `server` instead of the registry.
    const fn on(self, server: Server) -> Self {
        CaseDef { server, ..self }
    }

    /// Deletes `repo`'s link to the big blob before it runs.
    const fn unlinking(self, repo: &'static str) -> Self {
        CaseDef {
            unlink_repo: Some(repo),
            ..self
        }
    }

    /// Run by `tool`.
    const fn by(self, tool: Tool) -> Self {
        CaseDef { tool, ..self }
    }

    /// Said beside a missed target: what costs this case time that its limit does not pay.
    const fn hint(self, miss_hint: &'static str) -> Self {
        CaseDef { miss_hint, ..self }
    }

    /// The goals on loopback and under WAN.
    const fn targets(self, loopback: Target, wan: Target) -> Self {
        CaseDef {
            target: Some(loopback),
            wan_target: Some(wan),
            ..self
        }
    }
}

/// All cases, in the order each repetition runs them (per profile).
pub const CASES: &[CaseDef] = &[
    // -- Limits -------------------------------------------------------------------------------
    limit("sha256", "sha2 over the tmpfs file, 1 MiB reads").on(Local),
    limit(
        "raw_upload",
        "reqwest POST + PUT, streamed body, digest known, no hashing; one connection",
    )
    .unlinking("bench/raw-up")
    .and_wan(),
    limit(
        "raw_get_sha256",
        "reqwest GET + sha256 of the stream; one connection",
    )
    .and_wan(),
    limit(
        "raw_get_sha256_to_file",
        "reqwest GET + sha256, chunks written to a tmpfs file by a separate thread, fsync",
    )
    .and_wan(),
    limit(
        "raw_get_parallel",
        "reqwest GET of 4 ranges at once, 4 connections, bytes counted (the link limit of 4 connections)",
    )
    .wan_only(),
    limit("raw_tiny_upload", "reqwest 1 KiB POST + PUT, one connection")
        .ms_per_op()
        .and_wan(),
    limit(
        "raw_manifest_get",
        "reqwest manifest GET + sha256 check, warm connection",
    )
    .ms_per_op()
    .and_wan(),
    limit(
        "raw_list",
        "reqwest GET /acr/v1/_catalog pages following Link (emulator), ms per full listing",
    )
    .ms_per_op()
    .on(Emu),
    // -- This project -------------------------------------------------------------------------
    ours_upload(
        "upload_blob",
        "ContainerRegistryContentClient::upload_blob(tokio File)",
        "bench/ours-up",
    )
    .hint(UPLOAD_HINT),
    ours_upload(
        "upload_blob_from_file",
        "upload_blob_from_file (sends while a thread hashes the file; HEAD once hashed)",
        "bench/ours-up-file",
    )
    .hint(UPLOAD_HINT),
    ours_download(
        "download_blob",
        "download_blob stream, sequential, verified",
        "raw_get_sha256",
    ),
    // A WAN feature: on loopback one connection already outruns the hash, so no target there.
    CaseDef {
        wan_limit: "raw_get_parallel",
        wan_target: Some(
            Target::new(3.0, Some(64.0))
                .against("download_blob")
                .vs_peers(1.5),
        ),
        ..ours(
            "download_blob_parallel",
            "download_blob stream, 4 ranges of 8 MiB in flight, verified",
            "raw_get_sha256",
            Download,
        )
    },
    ours_download(
        "download_blob_to_file",
        "download_blob_to_file onto tmpfs (write + fsync + rename)",
        "raw_get_sha256_to_file",
    ),
    ours_per_op(
        "tiny_upload",
        "upload_blob_bytes of fresh 1 KiB blobs",
        "raw_tiny_upload",
        TinyUpload,
    ),
    ours_per_op(
        "manifest_get",
        "get_manifest(tag), warm client",
        "raw_manifest_get",
        ManifestGet,
    ),
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
    ours(
        "pull_image",
        "pull_image of a 5-layer image (the blob cut in 5) into an OCI layout on tmpfs, 6 connections (one per layer here), verified",
        "raw_get_sha256_to_file",
        Image,
    )
    .targets(
        Target::new(0.90, Some(64.0)).vs_peers(1.0),
        Target::new(0.90, Some(64.0)).vs_peers(1.0),
    )
    .hint(
        "Six blobs stream at once, each hashed and written to its own file, on the cores the \
         registry uses too; the limit is one stream",
    ),
    // -- Peers --------------------------------------------------------------------------------
    peer_upload(
        "oci_push_blob_stream_chunked",
        "oci-client 0.18 push_blob_stream_chunked, 4 MiB items",
        "bench/oci-up",
    ),
    peer_download(
        "oci_pull_blob",
        "oci-client 0.18 pull_blob into a sink (verifies)",
    ),
    peer_upload(
        "py_upload_blob",
        "Python azure-containerregistry upload_blob(open file), own process",
        "bench/py-up",
    )
    .by(Tool::Python),
    peer_download(
        "py_download_blob",
        "Python azure-containerregistry download_blob into a sink (verifies), own process",
    )
    .by(Tool::Python),
    peer_upload(
        "js_upload_blob",
        "JS @azure/container-registry uploadBlob(fs.createReadStream), own process",
        "bench/js-up",
    )
    .by(Tool::Node),
    peer_download(
        "js_download_blob",
        "JS @azure/container-registry downloadBlob into a sink (verifies), own process",
    )
    .by(Tool::Node),
    peer(
        "skopeo_copy",
        "skopeo copy docker://… oci:… of the same image, own process (start-up included)",
        "raw_get_sha256_to_file",
        Image,
    )
    .by(Tool::Skopeo),
    peer(
        "oci_tiny_push_blob",
        "oci-client 0.18 push_blob of fresh 1 KiB blobs",
        "raw_tiny_upload",
        TinyUpload,
    )
    .ms_per_op(),
    peer(
        "oci_pull_manifest_raw",
        "oci-client 0.18 pull_manifest_raw, Anonymous",
        "raw_manifest_get",
        ManifestGet,
    )
    .ms_per_op(),
];

/// Diagnostic cases, run only when named with `--cases` (loopback): the same chunked upload
/// protocol as `upload_blob` (POST, 8 MiB PATCHes, PUT) with plain reqwest, once with reading
/// and hashing serialized after each PATCH and once overlapped with it, to show what bounds
/// the upload.
pub const DIAG_CASES: &[CaseDef] = &[
    diag(
        "diag_patch_serial",
        "reqwest POST + 8 MiB PATCHes + PUT; read and hash after each PATCH returns",
        "bench/diag-serial",
    ),
    diag(
        "diag_patch_overlap",
        "reqwest POST + 8 MiB PATCHes + PUT; read and hash while each PATCH is in flight",
        "bench/diag-overlap",
    ),
    diag(
        "diag_patch_stream",
        "reqwest POST + one PATCH streaming the file (hashed as it is sent) + PUT",
        "bench/diag-stream",
    ),
];
