#!/usr/bin/env python3
"""Forge a restored copy's backup_manifest, as a hostile server could.

reforge.py DIR PATH...: each PATH (relative to DIR, as the manifest names
it) gets the Size and CRC-32C of its file as it now is in DIR, added to
Files if the manifest lacks it; Manifest-Checksum is recomputed.  What
the restore step then meets is a snapshot whose manifest vouches for
what the server chose to put in it.
"""
import hashlib
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tartool import crc32c  # noqa: E402


def main():
    top, paths = sys.argv[1], sys.argv[2:]
    mpath = os.path.join(top, "backup_manifest")
    with open(mpath, encoding="utf-8") as f:
        manifest = json.load(f)
    files = {e["Path"]: e for e in manifest["Files"]}
    for p in paths:
        with open(os.path.join(top, p), "rb") as f:
            data = f.read()
        e = files.get(p)
        if e is None:
            e = {"Path": p, "Last-Modified": "2026-01-01 00:00:00 GMT"}
            manifest["Files"].append(e)
        e["Size"] = len(data)
        e["Checksum-Algorithm"] = "CRC32C"
        e["Checksum"] = crc32c(data)
    manifest.pop("Manifest-Checksum", None)
    body = json.dumps(manifest, indent=None, separators=(", ", ": "))
    # the checksum covers everything before its own line
    body = body[:-1] + ",\n"
    digest = hashlib.sha256(body.encode()).hexdigest()
    with open(mpath, "w", encoding="utf-8") as f:
        f.write(body + '"Manifest-Checksum": "%s"}\n' % digest)


if __name__ == "__main__":
    main()
