#!/usr/bin/env python3
"""compare.py GO.json OURS.json: how our /manifest.json differs from the Go
importer's, one line a difference, paths with [] for array indexes:

  missing PATH           a key path of the Go importer's that we lack
  type PATH GO OURS      the same path with another JSON type
  value PATH             the same path and type, another value
  added PATH             a key path we write that it does not

Values of the keys that differ by nature are not compared: created_at,
the producer's version, row and live row estimates, vacuum and analyze
times.
"""
import json
import sys

SEEN = set()


def detail(line, go, ours):
    """The first instance of each difference, on stderr, for a reader."""
    if line not in SEEN:
        SEEN.add(line)
        g = json.dumps(go)[:160]
        o = json.dumps(ours)[:160]
        print(f"{line}: go {g} ours {o}", file=sys.stderr)

EXEMPT = {"created_at", "pg_basebackup_version", "basetar_version",
          "row_estimate", "live_row_estimate", "last_vacuum",
          "last_analyze", "last_autovacuum", "last_autoanalyze"}


def kind(v):
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, (int, float)):
        return "number"
    return {str: "string", list: "array", dict: "object"}[type(v)]


def walk(go, ours, path, out):
    if kind(go) != kind(ours):
        out.add(f"type {path} {kind(go)} {kind(ours)}")
        detail(f"type {path}", go, ours)
        return
    if isinstance(go, dict):
        for k in go:
            if k in ours:
                walk(go[k], ours[k], f"{path}.{k}", out)
            else:
                out.add(f"missing {path}.{k}")
                detail(f"missing {path}.{k}", go[k], None)
        for k in ours:
            if k not in go:
                out.add(f"added {path}.{k}")
                detail(f"added {path}.{k}", None, ours[k])
    elif isinstance(go, list):
        for a, b in zip(go, ours):
            walk(a, b, f"{path}[]", out)
        if len(go) != len(ours):
            out.add(f"value {path} (length {len(go)} and {len(ours)})")
    elif go != ours and path.rsplit(".", 1)[-1] not in EXEMPT:
        out.add(f"value {path}")
        detail(f"value {path}", go, ours)


def main():
    with open(sys.argv[1]) as f:
        go = json.load(f)
    with open(sys.argv[2]) as f:
        ours = json.load(f)
    out = set()
    walk(go, ours, "", out)
    for line in sorted(out):
        print(line)


main()
