#!/usr/bin/env python3
"""Make damaged or hand-built tar streams for the tests.

tartool.py OP [ARGS] < in.tar > out.tar, members kept in order:
  flip MEMBER            change one byte in the middle of MEMBER
  truncate MEMBER N      drop the last N bytes of MEMBER
  append MEMBER N        add N bytes to MEMBER
  remove MEMBER          leave MEMBER out
  extra NAME             add a small member NAME before backup_manifest
  replace MEMBER FILE    give MEMBER the contents of FILE
  manifest-digit         change the first digit of a checksum in
                         backup_manifest: still JSON, no longer what its
                         Manifest-Checksum covers
  late NAME              add an empty member NAME after backup_manifest
  link TYPE NAME TARGET  add a member NAME before backup_manifest: TYPE
                         symlink or hardlink to TARGET, or dir
  manifest-v2 SYSID      make backup_manifest version 2 with that
                         System-Identifier, its checksum recomputed
  big SIZE               (no input) one member of SIZE zero bytes,
                         streamed, with a base-256 size when SIZE >= 8 GiB
  many N                 (no input) a backup of N empty files with its
                         backup_label and a version 1 backup_manifest
  listed N               (no input) the same manifest, without the files
"""
import hashlib
import io
import json
import re
import sys
import tarfile


def rewrite(transform, late=None):
    src = tarfile.open(fileobj=sys.stdin.buffer, mode="r|")
    dst = tarfile.open(fileobj=sys.stdout.buffer, mode="w|",
                       format=tarfile.GNU_FORMAT)
    for m in src:
        data = src.extractfile(m).read() if m.isreg() else None
        for m2, d2 in transform(m, data):
            if d2 is not None:
                m2.size = len(d2)
            dst.addfile(m2, io.BytesIO(d2) if d2 is not None else None)
    if late is not None:
        dst.addfile(tarfile.TarInfo(late), io.BytesIO(b""))
    dst.close()


def flip_digit(data):
    def other(m):
        return b'"Checksum": "' + (b"1" if m.group(1) == b"0" else b"0")
    return re.sub(rb'"Checksum": "(.)', other, data, count=1)


def manifest_v2(data, sysid):
    text = data.decode()
    text = text.replace('"PostgreSQL-Backup-Manifest-Version": 1,',
                        '"PostgreSQL-Backup-Manifest-Version": 2,\n'
                        '"System-Identifier": %d,' % sysid, 1)
    body = text[:text.rindex("\n", 0, len(text) - 1) + 1]
    digest = hashlib.sha256(body.encode()).hexdigest()
    return (body + '"Manifest-Checksum": "%s"}\n' % digest).encode()


def big(size):
    out = sys.stdout.buffer
    info = tarfile.TarInfo("base/1/big")
    info.size = size
    info.mode = 0o600
    out.write(info.tobuf(format=tarfile.GNU_FORMAT))
    block = bytes(1 << 20)
    left = size
    while left:
        n = min(left, len(block))
        out.write(block[:n])
        left -= n
    out.write(bytes((512 - size % 512) % 512))
    out.write(bytes(1024))


def crc32c(data):
    """CRC-32C (Castagnoli), as pg_basebackup's manifest writes it."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return (crc ^ 0xFFFFFFFF).to_bytes(4, "little").hex()


def many(n, files=True):
    """A backup of n empty files: backup_label, the files, backup_manifest."""
    dst = tarfile.open(fileobj=sys.stdout.buffer, mode="w|",
                       format=tarfile.GNU_FORMAT)

    def add(name, data):
        info = tarfile.TarInfo(name)
        info.size = len(data)
        info.mode = 0o600
        dst.addfile(info, io.BytesIO(data))

    label = (b"START WAL LOCATION: 0/2000028 (file "
             b"000000010000000000000002)\nSTART TIMELINE: 1\n")
    add("backup_label", label)
    entries = ['{ "Path": "backup_label", "Size": %d, "Last-Modified": '
               '"2026-11-26 00:00:00 GMT", "Checksum-Algorithm": "CRC32C", '
               '"Checksum": "%s" }' % (len(label), crc32c(label))]
    # one name with what a JSON scanner could trip on
    names = ['base/1/we"ird]}{[\\,'] + ["base/1/%d" % (100000 + i)
                                         for i in range(n - 1)]
    for name in names:
        if files:
            add(name, b"")
        entries.append('{ "Path": %s, "Size": 0, "Last-Modified": '
                       '"2026-11-26 00:00:00 GMT", "Checksum-Algorithm": '
                       '"CRC32C", "Checksum": "00000000" }' % json.dumps(name))
    body = ('{ "PostgreSQL-Backup-Manifest-Version": 1,\n"Files": [\n' +
            ",\n".join(entries) + '\n],\n"WAL-Ranges": [\n'
            '{ "Timeline": 1, "Start-LSN": "0/2000028", "End-LSN": '
            '"0/2000100" }\n],\n')
    digest = hashlib.sha256(body.encode()).hexdigest()
    add("backup_manifest", (body + '"Manifest-Checksum": "%s"}\n'
                            % digest).encode())
    dst.close()


def main():
    op, args = sys.argv[1], sys.argv[2:]

    def each(m, data):
        name = m.name.rstrip("/")
        if op == "flip" and name == args[0]:
            b = bytearray(data)
            b[len(b) // 2] ^= 0x01
            return [(m, bytes(b))]
        if op == "truncate" and name == args[0]:
            return [(m, data[:-int(args[1])])]
        if op == "append" and name == args[0]:
            return [(m, data + b"x" * int(args[1]))]
        if op == "remove" and name == args[0]:
            return []
        if op == "extra" and name == "backup_manifest":
            extra = tarfile.TarInfo(args[0])
            extra.mode = 0o600
            return [(extra, b"extra\n"), (m, data)]
        if op == "link" and name == "backup_manifest":
            extra = tarfile.TarInfo(args[1])
            extra.mode = 0o700
            extra.type = {"symlink": tarfile.SYMTYPE, "hardlink": tarfile.LNKTYPE,
                          "dir": tarfile.DIRTYPE}[args[0]]
            if args[0] != "dir":
                extra.linkname = args[2]
            return [(extra, None), (m, data)]
        if op == "replace" and name == args[0]:
            with open(args[1], "rb") as f:
                return [(m, f.read())]
        if op == "manifest-digit" and name == "backup_manifest":
            return [(m, flip_digit(data))]
        if op == "manifest-v2" and name == "backup_manifest":
            return [(m, manifest_v2(data, int(args[0])))]
        return [(m, data)]

    if op == "big":
        big(int(args[0]))
    elif op == "many":
        many(int(args[0]))
    elif op == "listed":
        many(int(args[0]), files=False)
    else:
        rewrite(each, args[0] if op == "late" else None)


if __name__ == "__main__":
    main()
