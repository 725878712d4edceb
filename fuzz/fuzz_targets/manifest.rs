//! Typed manifest models: any bytes that parse as a model serialize again, and the serialized
//! form parses to an equal model and serializes to the same bytes (nothing is lost or changed
//! on a second round trip). `GetManifestResult::parsed` never panics for any media type.
#![no_main]

use azure_containerregistry::{
    media_types, DockerManifestList, DockerManifestV2, GetManifestResult, OciDescriptor,
    OciImageIndex, OciImageManifest, Platform,
};
use libfuzzer_sys::fuzz_target;
use serde::{de::DeserializeOwned, Serialize};

fn round_trip<T>(data: &[u8])
where
    T: DeserializeOwned + Serialize + PartialEq + std::fmt::Debug,
{
    let Ok(first) = serde_json::from_slice::<T>(data) else {
        return;
    };
    let bytes = serde_json::to_vec(&first).expect("a parsed model serializes");
    let second: T = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
        panic!(
            "{}: re-serialized form does not parse: {e}\ninput: {}\nout: {}",
            std::any::type_name::<T>(),
            String::from_utf8_lossy(data),
            String::from_utf8_lossy(&bytes)
        )
    });
    assert_eq!(
        first,
        second,
        "{}: {}",
        std::any::type_name::<T>(),
        String::from_utf8_lossy(data)
    );
    let again = serde_json::to_vec(&second).expect("serializes");
    assert_eq!(
        bytes,
        again,
        "{}: serialization is stable",
        std::any::type_name::<T>()
    );
}

const TYPES: [&str; 6] = [
    media_types::OCI_MANIFEST,
    media_types::OCI_INDEX,
    media_types::DOCKER_MANIFEST_V2,
    media_types::DOCKER_MANIFEST_LIST,
    "application/vnd.oci.artifact.manifest.v1+json",
    "application/json",
];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    round_trip::<OciImageManifest>(body);
    round_trip::<OciImageIndex>(body);
    round_trip::<DockerManifestV2>(body);
    round_trip::<DockerManifestList>(body);
    round_trip::<OciDescriptor>(body);
    round_trip::<Platform>(body);

    let fetched = GetManifestResult {
        digest: format!("sha256:{}", "0".repeat(64)),
        media_type: TYPES[usize::from(selector) % TYPES.len()].to_string(),
        content: bytes::Bytes::copy_from_slice(body),
        digest_confirmed: true,
        request_id: None,
    };
    let _ = fetched.parsed();
});
