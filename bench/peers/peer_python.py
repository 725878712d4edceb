#!/usr/bin/env python3
"""acr_bench peer: the official Python SDK (azure-containerregistry), anonymous.

usage: peer_python.py ENDPOINT REPO up FILE DIGEST     upload_blob(FILE); checks the digest
       peer_python.py ENDPOINT REPO down DIGEST SIZE   download_blob(DIGEST) into a sink
Prints one JSON line: {"op_s": seconds inside the SDK call, "bytes": bytes moved}.

Against a plain-http registry without auth: credential=None, and every call needs
enforce_https=False (the SDK's challenge policy refuses http otherwise). The registry must send
relative Location headers (docker-registry: http.relativeurls: true).
"""
import json
import sys
import time

from azure.containerregistry import ContainerRegistryClient


def main():
    if len(sys.argv) != 6 or sys.argv[3] not in ("up", "down"):
        sys.exit(__doc__)
    endpoint, repo, mode, a, b = sys.argv[1:]
    kw = {"enforce_https": False}
    client = ContainerRegistryClient(endpoint, None)
    if mode == "up":
        t0 = time.perf_counter()
        with open(a, "rb") as f:
            digest, size = client.upload_blob(repo, f, **kw)
        op_s = time.perf_counter() - t0
        if digest != b:
            sys.exit(f"uploaded digest {digest} != {b}")
        n = size
    else:
        t0 = time.perf_counter()
        n = 0
        # The stream verifies the sha256 at its end.
        for chunk in client.download_blob(repo, a, **kw):
            n += len(chunk)
        op_s = time.perf_counter() - t0
        if n != int(b):
            sys.exit(f"downloaded {n} bytes, expected {b}")
    client.close()
    print(json.dumps({"op_s": op_s, "bytes": n}))


main()
