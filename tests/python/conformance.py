#!/usr/bin/env python3
"""Drive a registry with Microsoft's Python SDK (azure-containerregistry) as an independent client.

usage: conformance.py ENDPOINT [full|content-only] [REPO_PREFIX]

  full          /acr/v1 metadata (repositories, tags, manifests: list/get/update/delete) and
                content (blobs, manifests); for the ACR emulator.
  content-only  blob upload/download and manifest set/get/delete only; for any OCI registry
                (e.g. docker-registry as a reference).

Anonymous access (credential=None), or, with ACR_TEST_AAD_TOKEN set, a static credential whose
token the registry's /oauth2/exchange accepts (the emulator's --auth --aad-token). Over plain http every call passes enforce_https=False; a few
SDK methods resolve a tag internally without forwarding kwargs, so those run by tag only over
https (REQUESTS_CA_BUNDLE names the emulator's CA).

Prints one line per check ("ok: ..."); on the first failure prints "FAIL: ..." with a traceback
and exits 1.
"""

import hashlib
import io
import json
import os
import sys
import time
import traceback

from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
import azure.containerregistry as acr

ENDPOINT = sys.argv[1]
MODE = sys.argv[2] if len(sys.argv) > 2 else "full"
PREFIX = sys.argv[3] if len(sys.argv) > 3 else "conformance/py"
HTTPS = ENDPOINT.startswith("https://")
K = {"enforce_https": False}
AUDIENCE = "https://containerregistry.azure.net"

ContentClient = getattr(acr, "ContainerRegistryContentClient", None)


def check(name, fn):
    try:
        fn()
    except Exception:  # noqa: BLE001 - report any failure with its traceback
        print(f"FAIL: {name}", flush=True)
        traceback.print_exc()
        sys.exit(1)
    print(f"ok: {name}", flush=True)


def expect(cond, msg):
    if not cond:
        raise AssertionError(msg)


def expect_not_found(fn, what):
    try:
        fn()
    except (ResourceNotFoundError, HttpResponseError) as e:
        expect(getattr(e, "status_code", 404) == 404, f"{what}: expected 404, got {e.status_code}")
        return
    raise AssertionError(f"{what}: expected 404, call succeeded")


def sha256(b):
    return "sha256:" + hashlib.sha256(b).hexdigest()


def pseudo_random(n, seed):
    out = bytearray()
    counter = 0
    while len(out) < n:
        out += hashlib.sha256(f"{seed}:{counter}".encode()).digest()
        counter += 1
    return bytes(out[:n])


class StaticCredential:
    """A TokenCredential handing out one fixed AAD token."""

    def __init__(self, token):
        self.token = token

    def get_token(self, *scopes, **kwargs):
        from azure.core.credentials import AccessToken
        return AccessToken(self.token, int(time.time()) + 3600)


AAD_TOKEN = os.environ.get("ACR_TEST_AAD_TOKEN")
CREDENTIAL = StaticCredential(AAD_TOKEN) if AAD_TOKEN else None

client = acr.ContainerRegistryClient(ENDPOINT, credential=CREDENTIAL, audience=AUDIENCE)
# Newer SDKs split content operations into ContainerRegistryContentClient; 1.2 has them on
# ContainerRegistryClient.
content = (
    ContentClient(ENDPOINT, credential=CREDENTIAL, audience=AUDIENCE) if ContentClient else client
)
print(f"sdk: azure-containerregistry {acr.__version__}, content client: "
      f"{'ContainerRegistryContentClient' if ContentClient else 'ContainerRegistryClient'}",
      flush=True)

REPO = PREFIX
REPO_B = PREFIX + "-b"
# Larger than the SDK's 4 MiB chunk, so the upload takes several PATCHes following Location.
layer = pseudo_random(5 * 1024 * 1024 + 123, "layer")
config = json.dumps({"architecture": "amd64", "os": "linux",
                     "rootfs": {"type": "layers", "diff_ids": [sha256(layer)]}}).encode()
state = {}


def upload_blobs():
    for repo in (REPO, REPO_B):
        d, size = content.upload_blob(repo, io.BytesIO(config), **K)
        expect(d == sha256(config), f"config digest {d}")
        expect(size == len(config), f"config size {size}")
    d, size = content.upload_blob(REPO, io.BytesIO(layer), **K)
    expect(d == sha256(layer), f"layer digest {d} != {sha256(layer)}")
    expect(size == len(layer), f"layer size {size}")


def download_blob():
    stream = content.download_blob(REPO, sha256(layer), **K)
    got = b"".join(stream)
    expect(len(got) == len(layer), f"downloaded {len(got)} bytes, expected {len(layer)}")
    expect(got == layer, "downloaded bytes differ")


manifest = {
    "schemaVersion": 2,
    "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
               "digest": sha256(config), "size": len(config)},
    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                "digest": sha256(layer), "size": len(layer)}],
}
small_manifest = {
    "schemaVersion": 2,
    "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
               "digest": sha256(config), "size": len(config)},
    "layers": [],
}


def set_manifest():
    d = content.set_manifest(REPO, manifest, tag="v1", **K)
    expect(d == sha256(json.dumps(manifest).encode()), f"manifest digest {d}")
    state["digest"] = d
    d2 = content.set_manifest(REPO, manifest, tag="v2", **K)
    expect(d2 == d, "same manifest, same digest")
    state["digest_b"] = content.set_manifest(REPO_B, small_manifest, tag="latest", **K)


def get_manifest():
    for ref in ("v1", state["digest"]):
        r = content.get_manifest(REPO, ref, **K)
        expect(r.digest == state["digest"], f"get_manifest({ref}).digest = {r.digest}")
        expect(r.manifest == manifest, f"get_manifest({ref}) body differs: {r.manifest}")
        expect(r.media_type == manifest["mediaType"], f"media type {r.media_type}")


def list_repositories():
    names = list(client.list_repository_names(**K))
    expect(REPO in names and REPO_B in names, f"repositories {names}")
    paged = list(client.list_repository_names(results_per_page=1, **K))
    expect(paged == names, f"paged listing {paged} != {names}")


def repository_properties():
    p = client.get_repository_properties(REPO, **K)
    expect(p.name == REPO, f"name {p.name}")
    expect(p.tag_count == 2, f"tag_count {p.tag_count}")
    expect(p.manifest_count == 1, f"manifest_count {p.manifest_count}")
    expect(p.can_delete and p.can_write and p.can_read and p.can_list, f"permissions {p}")
    expect(p.created_on is not None and p.last_updated_on is not None, "timestamps")


def lock_unlock_repository():
    p = client.update_repository_properties(REPO, can_write=False, can_delete=False, **K)
    expect(p.can_write is False and p.can_delete is False, f"after lock: {p}")
    p = client.get_repository_properties(REPO, **K)
    expect(p.can_write is False and p.can_delete is False, f"get after lock: {p}")
    expect(p.can_read and p.can_list, "lock kept read/list")
    p = client.update_repository_properties(REPO, can_write=True, can_delete=True, **K)
    expect(p.can_write and p.can_delete, f"after unlock: {p}")


def tags():
    names = sorted(t.name for t in client.list_tag_properties(REPO, **K))
    expect(names == ["v1", "v2"], f"tags {names}")
    paged = sorted(t.name for t in client.list_tag_properties(REPO, results_per_page=1, **K))
    expect(paged == names, f"paged tags {paged}")
    t = client.get_tag_properties(REPO, "v1", **K)
    expect(t.name == "v1" and t.digest == state["digest"], f"tag {t.name} {t.digest}")
    # (repository_name is not checked: SDK 1.2.0 passes `repository=` where the model reads
    # `repository_name`, so it is always None here whatever the server sends.)
    t = client.update_tag_properties(REPO, "v1", can_delete=False, can_write=False, **K)
    expect(t.can_delete is False and t.can_write is False, f"tag after lock {t}")
    t = client.get_tag_properties(REPO, "v1", **K)
    expect(t.can_delete is False, "tag lock persisted")
    t = client.update_tag_properties(REPO, "v1", can_delete=True, can_write=True, **K)
    expect(t.can_delete and t.can_write, "tag unlock")
    expect_not_found(lambda: client.get_tag_properties(REPO, "nope", **K), "missing tag")


def manifest_properties():
    ms = list(client.list_manifest_properties(REPO, **K))
    expect(len(ms) == 1, f"{len(ms)} manifests")
    m = ms[0]
    expect(m.digest == state["digest"], f"listed digest {m.digest}")
    expect(sorted(m.tags) == ["v1", "v2"], f"listed tags {m.tags}")
    expect(m.repository_name == REPO, f"repository_name {m.repository_name}")
    m = client.get_manifest_properties(REPO, state["digest"], **K)
    expect(m.digest == state["digest"] and sorted(m.tags) == ["v1", "v2"], f"get {m.digest}")
    # ACR's imageSize semantics are not pinned down; only its type is checked.
    expect(isinstance(m.size_in_bytes, int) and m.size_in_bytes >= 0, f"size {m.size_in_bytes}")
    if HTTPS:
        m = client.get_manifest_properties(REPO, "v1")
        expect(m.digest == state["digest"], "by tag")
    m = client.update_manifest_properties(REPO, state["digest"], can_write=False, **K)
    expect(m.can_write is False, f"manifest lock {m}")
    m = client.get_manifest_properties(REPO, state["digest"], **K)
    expect(m.can_write is False and m.can_read, "manifest lock persisted")
    m = client.update_manifest_properties(REPO, state["digest"], can_write=True, **K)
    expect(m.can_write, "manifest unlock")
    expect_not_found(
        lambda: client.get_manifest_properties(REPO, "sha256:" + "0" * 64, **K), "missing manifest")


def delete_tag():
    client.delete_tag(REPO, "v2", **K)
    expect_not_found(lambda: client.get_tag_properties(REPO, "v2", **K), "deleted tag")
    names = [t.name for t in client.list_tag_properties(REPO, **K)]
    expect(names == ["v1"], f"tags after delete {names}")


def delete_manifest():
    if HTTPS and MODE == "full":
        content.delete_manifest(REPO, "v1")  # resolves the tag through /acr/v1
    else:
        content.delete_manifest(REPO, state["digest"], **K)
    expect_not_found(lambda: content.get_manifest(REPO, state["digest"], **K), "deleted manifest")


def delete_blob():
    content.delete_blob(REPO, sha256(layer), **K)
    expect_not_found(lambda: content.download_blob(REPO, sha256(layer), **K), "deleted blob")


def delete_repository():
    client.delete_repository(REPO_B, **K)
    expect_not_found(lambda: client.get_repository_properties(REPO_B, **K), "deleted repository")
    names = list(client.list_repository_names(**K))
    expect(REPO_B not in names, f"repositories after delete {names}")


check("upload_blob (config, 5 MiB layer in chunks)", upload_blobs)
check("download_blob", download_blob)
check("set_manifest (tags v1, v2)", set_manifest)
check("get_manifest by tag and digest", get_manifest)
if MODE == "full":
    check("list_repository_names (+ paging)", list_repositories)
    check("get_repository_properties", repository_properties)
    check("update_repository_properties lock/unlock", lock_unlock_repository)
    check("list/get/update tag properties", tags)
    check("list/get/update manifest properties", manifest_properties)
    check("delete_tag", delete_tag)
check("delete_manifest", delete_manifest)
check("delete_blob", delete_blob)
if MODE == "full":
    check("delete_repository", delete_repository)
print("all checks passed", flush=True)
