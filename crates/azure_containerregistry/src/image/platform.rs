//! Choosing the manifest of one platform in a multi-architecture index, the way containerd
//! does, and fetching it.

use std::fmt;
use std::str::FromStr;

use crate::content::{
    ContainerRegistryContentClient, DockerManifestList, GetManifestOptions, GetManifestResult,
    OciDescriptor, OciImageIndex, Platform,
};
use crate::error::{invalid_argument, no_matching_platform};

/// The annotation Docker's build tools put on attestation manifests in an index.
const DOCKER_REFERENCE_TYPE: &str = "vnd.docker.reference.type";

impl Platform {
    /// A platform of `os` and `architecture`, without a variant.
    pub fn new(os: impl Into<String>, architecture: impl Into<String>) -> Self {
        Self {
            os: os.into(),
            architecture: architecture.into(),
            ..Default::default()
        }
    }

    /// The platform of the running host, in OCI terms: Rust's `std::env::consts::OS` and
    /// `ARCH` mapped to GOOS/GOARCH names (`x86_64` → `amd64`, `aarch64` → `arm64`, `arm` →
    /// `arm` `v7`, `x86` → `386`, `powerpc64` → `ppc64le` on little-endian hosts, …).
    pub fn host() -> Self {
        let os = match std::env::consts::OS {
            "macos" => "darwin",
            other => other,
        };
        let (architecture, variant) = match std::env::consts::ARCH {
            "x86_64" => ("amd64", None),
            "x86" => ("386", None),
            "aarch64" => ("arm64", Some("v8")),
            "arm" => ("arm", Some("v7")),
            "powerpc64" if cfg!(target_endian = "little") => ("ppc64le", None),
            "powerpc64" => ("ppc64", None),
            "powerpc" => ("ppc", None),
            "riscv64" => ("riscv64", None),
            "s390x" => ("s390x", None),
            "mips64" if cfg!(target_endian = "little") => ("mips64le", None),
            "mips" if cfg!(target_endian = "little") => ("mipsle", None),
            "loongarch64" => ("loong64", None),
            other => (other, None),
        };
        Self {
            os: os.to_string(),
            architecture: architecture.to_string(),
            variant: variant.map(str::to_string),
            ..Default::default()
        }
    }

    /// The platform with containerd's normal names: `x86_64` → `amd64`, `aarch64` → `arm64`,
    /// lowercase, and the variant a missing one stands for (`v8` for `arm64`, `v7` for `arm`).
    fn normalized(&self) -> (String, String, Option<u32>) {
        let os = self.os.to_ascii_lowercase();
        let mut architecture = self.architecture.to_ascii_lowercase();
        let mut variant = self
            .variant
            .as_deref()
            .map(str::to_ascii_lowercase)
            .filter(|v| !v.is_empty());
        match architecture.as_str() {
            "x86_64" | "x86-64" => architecture = "amd64".into(),
            "i386" => architecture = "386".into(),
            "aarch64" => architecture = "arm64".into(),
            "armhf" => {
                architecture = "arm".into();
                variant = Some("v7".into());
            }
            "armel" => {
                architecture = "arm".into();
                variant = Some("v6".into());
            }
            _ => {}
        }
        let level = |v: &str| v.strip_prefix('v').unwrap_or(v).parse::<u32>().ok();
        let variant = match (architecture.as_str(), variant.as_deref()) {
            ("arm64", None) => Some(8),
            ("arm", None) => Some(7),
            ("amd64", None) => Some(1),
            (_, None) => None,
            (_, Some(v)) => level(v).or(Some(u32::MAX)),
        };
        (os, architecture, variant)
    }

    /// Whether an image of platform `image` runs on this platform: the same OS and
    /// architecture (after normalizing names), and for variants (`arm` `v5`–`v8`, `arm64`,
    /// `amd64` `v1`–`v4`) an image variant no higher than this one (an `arm` `v7` host runs
    /// `v6` and `v5` images; `arm64` without a variant is `v8`).
    pub fn runs(&self, image: &Platform) -> bool {
        let (os, arch, variant) = self.normalized();
        let (image_os, image_arch, image_variant) = image.normalized();
        if os != image_os || arch != image_arch {
            return false;
        }
        match (variant, image_variant) {
            (Some(w), Some(i)) if w != u32::MAX && i != u32::MAX => i <= w,
            (w, i) => w == i || i.is_none(),
        }
    }
}

impl fmt::Display for Platform {
    /// `os/architecture[/variant]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(variant) = self.variant.as_deref().filter(|v| !v.is_empty()) {
            write!(f, "/{variant}")?;
        }
        Ok(())
    }
}

impl FromStr for Platform {
    type Err = azure_core::Error;

    /// Parses `os/architecture[/variant]` (`linux/arm64`, `linux/arm/v7`).
    fn from_str(text: &str) -> azure_core::Result<Self> {
        let parts: Vec<&str> = text.split('/').collect();
        let ok = |s: &str| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        };
        match parts.as_slice() {
            [os, arch] if ok(os) && ok(arch) => Ok(Self::new(*os, *arch)),
            [os, arch, variant] if ok(os) && ok(arch) && ok(variant) => Ok(Self {
                variant: Some(variant.to_string()),
                ..Self::new(*os, *arch)
            }),
            _ => Err(invalid_argument(
                "platform",
                format!("{text:?}: a platform is os/architecture[/variant]"),
            )),
        }
    }
}

/// Whether a descriptor of an index is an attestation (Docker's `unknown/unknown` platform or
/// its `vnd.docker.reference.type` annotation), not an image to run.
fn is_attestation(descriptor: &OciDescriptor) -> bool {
    descriptor
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key(DOCKER_REFERENCE_TYPE))
        || descriptor
            .platform
            .as_ref()
            .is_some_and(|p| p.os == "unknown" && p.architecture == "unknown")
}

/// Chooses the manifest for `wanted` among the `manifests` of an index or manifest list, as
/// containerd does: attestations are left out, the OS and architecture must match, and among
/// the variants that run on `wanted` (see [`Platform::runs`]) the highest is taken (the first
/// listed on a tie). No match is a [`NoMatchingPlatform`](crate::NoMatchingPlatform) error
/// listing the platforms there are.
pub fn choose_platform<'a>(
    manifests: &'a [OciDescriptor],
    wanted: &Platform,
) -> azure_core::Result<&'a OciDescriptor> {
    let mut best: Option<(&OciDescriptor, u32)> = None;
    for descriptor in manifests.iter().filter(|d| !is_attestation(d)) {
        let Some(platform) = &descriptor.platform else {
            continue;
        };
        if wanted.runs(platform) {
            let level = platform.normalized().2.unwrap_or(0);
            if best.is_none_or(|(_, b)| level > b) {
                best = Some((descriptor, level));
            }
        }
    }
    match best {
        Some((descriptor, _)) => Ok(descriptor),
        None => Err(no_matching_platform(
            wanted.to_string(),
            manifests
                .iter()
                .filter(|d| !is_attestation(d))
                .filter_map(|d| d.platform.as_ref().map(Platform::to_string))
                .collect(),
        )),
    }
}

impl OciImageIndex {
    /// The manifest of this index for `platform` (see [`choose_platform`]).
    pub fn manifest_for_platform(&self, platform: &Platform) -> azure_core::Result<&OciDescriptor> {
        choose_platform(&self.manifests, platform)
    }
}

impl DockerManifestList {
    /// The manifest of this list for `platform` (see [`choose_platform`]).
    pub fn manifest_for_platform(&self, platform: &Platform) -> azure_core::Result<&OciDescriptor> {
        choose_platform(&self.manifests, platform)
    }
}

impl ContainerRegistryContentClient {
    /// Reads the manifest of `tag_or_digest` for `platform` ([`Platform::host`] for the
    /// running host): when the registry answers with an index or manifest list, the manifest
    /// for the platform is chosen (see [`choose_platform`]) and fetched by its digest (so its
    /// bytes are checked against the index); a single-image manifest is returned as it is.
    pub async fn get_manifest_for_platform(
        &self,
        tag_or_digest: &str,
        platform: &Platform,
        options: Option<GetManifestOptions<'_>>,
    ) -> azure_core::Result<GetManifestResult> {
        crate::operation::traced!(
            "ContainerRegistryContentClient.get_manifest_for_platform",
            &self.repository_name(),
            &options,
            async move {
                let top = self.get_manifest(tag_or_digest, options.clone()).await?;
                let json = super::manifest_json(&top.content)?;
                if !super::is_index(&top.media_type, &json) {
                    return Ok(top);
                }
                let manifests = super::descriptors(&json, "manifests")?;
                let child = choose_platform(&manifests, platform)?;
                crate::reference::validate_digest(&child.digest)?;
                self.get_manifest(&child.digest, options).await
            }
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NoMatchingPlatform;

    fn descriptor(platform: &str) -> OciDescriptor {
        OciDescriptor {
            platform: Some(platform.parse().unwrap()),
            ..OciDescriptor::new(
                crate::media_types::OCI_MANIFEST,
                format!("sha256:{:0>64}", platform.len()),
                1,
            )
        }
    }

    fn chosen(manifests: &[OciDescriptor], wanted: &str) -> azure_core::Result<String> {
        choose_platform(manifests, &wanted.parse().unwrap()).map(|d| {
            d.platform
                .as_ref()
                .map(Platform::to_string)
                .unwrap_or_default()
        })
    }

    #[test]
    fn containerd_matching() {
        let index = [
            descriptor("linux/amd64"),
            descriptor("linux/arm64/v8"),
            descriptor("linux/arm/v6"),
            descriptor("linux/arm/v7"),
            descriptor("windows/amd64"),
        ];
        assert_eq!(chosen(&index, "linux/amd64").unwrap(), "linux/amd64");
        assert_eq!(chosen(&index, "linux/x86_64").unwrap(), "linux/amd64");
        assert_eq!(chosen(&index, "linux/arm64").unwrap(), "linux/arm64/v8");
        assert_eq!(chosen(&index, "linux/aarch64").unwrap(), "linux/arm64/v8");
        assert_eq!(chosen(&index, "linux/arm").unwrap(), "linux/arm/v7");
        assert_eq!(chosen(&index, "linux/arm/v7").unwrap(), "linux/arm/v7");
        assert_eq!(chosen(&index, "linux/arm/v6").unwrap(), "linux/arm/v6");
        assert_eq!(chosen(&index, "windows/amd64").unwrap(), "windows/amd64");
        assert!(chosen(&index, "linux/arm/v5").is_err());
        // arm64 without a variant in the image is v8.
        let plain = [descriptor("linux/arm64")];
        assert_eq!(chosen(&plain, "linux/arm64/v8").unwrap(), "linux/arm64");
        // A v7 host runs v6 and v5 images, the highest first.
        let old = [descriptor("linux/arm/v5"), descriptor("linux/arm/v6")];
        assert_eq!(chosen(&old, "linux/arm/v7").unwrap(), "linux/arm/v6");
        assert!(chosen(&old, "linux/arm64").is_err());
    }

    #[test]
    fn attestations_are_never_chosen_and_no_match_lists_platforms() {
        let mut attestation = descriptor("linux/amd64");
        attestation.annotations = Some(
            [(
                DOCKER_REFERENCE_TYPE.to_string(),
                "attestation-manifest".to_string(),
            )]
            .into_iter()
            .collect(),
        );
        let index = [
            attestation,
            descriptor("unknown/unknown"),
            descriptor("linux/arm64"),
        ];
        let error = chosen(&index, "linux/amd64").expect_err("only an attestation is amd64");
        let none = error.downcast_ref::<NoMatchingPlatform>().expect("typed");
        assert_eq!(none.wanted, "linux/amd64");
        assert_eq!(none.available, ["linux/arm64"]);
        assert!(error.to_string().contains("linux/arm64"), "{error}");
    }

    #[test]
    fn host_and_parsing() {
        let host = Platform::host();
        assert!(!host.os.is_empty());
        assert!(!["x86_64", "aarch64"].contains(&host.architecture.as_str()));
        if cfg!(all(target_os = "linux", target_arch = "x86_64")) {
            assert_eq!(host.to_string(), "linux/amd64");
        }
        assert!("linux".parse::<Platform>().is_err());
        assert!("a/b/c/d".parse::<Platform>().is_err());
        assert_eq!(
            "linux/arm/v7".parse::<Platform>().unwrap().to_string(),
            "linux/arm/v7"
        );
    }
}
