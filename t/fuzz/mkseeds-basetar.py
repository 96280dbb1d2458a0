#!/usr/bin/env python3
# The seeds of t/fuzz/basetar.c: a tablespace's archive and the data
# directory's, as a server of each protocol generation sends them.
import io, os, struct, sys, tarfile

out = sys.argv[1]

def tar(members, trailer):
    b = io.BytesIO()
    with tarfile.open(fileobj=b, mode="w", format=tarfile.USTAR_FORMAT) as t:
        for name, kind, data in members:
            ti = tarfile.TarInfo(name)
            ti.mtime = 1700000000
            ti.uid = ti.gid = 999
            if kind == "dir":
                ti.type, ti.mode = tarfile.DIRTYPE, 0o700
                t.addfile(ti)
            elif kind == "link":
                ti.type, ti.linkname, ti.mode = tarfile.SYMTYPE, data, 0o777
                t.addfile(ti)
            else:
                ti.size, ti.mode = len(data), 0o600
                t.addfile(ti, io.BytesIO(data))
    raw = b.getvalue()
    # tarfile pads to a record; keep the members and, if asked, 2 blocks
    end = raw.rstrip(b"\0")
    end = raw[: (len(end) + 511) // 512 * 512]
    return end + (b"\0" * 1024 if trailer else b"")

space = [("PG_16_202307071", "dir", None),
         ("PG_16_202307071/5", "dir", None),
         ("PG_16_202307071/5/16385", "file", b"\1" * 8192)]
base = [("PG_VERSION", "file", b"16\n"),
        ("pg_tblspc", "dir", None),
        ("pg_tblspc/16384", "link", "/srv/ts"),
        ("global", "dir", None),
        ("global/pg_control", "file", b"\2" * 8192)]
manifest = b'{"PostgreSQL-Backup-Manifest-Version": 1, "Files": []}\n'

def frame(msgs):
    o = b""
    for m in msgs:
        for i in range(0, len(m), 65535):
            o += struct.pack(">H", len(m[i:i + 65535])) + m[i:i + 65535]
    return o

def chunks(b, n=3000):
    return [b[i:i + n] for i in range(0, len(b), n)]

modern = [b"n16384.tar\0/srv/ts\0"] + [b"d" + c for c in chunks(tar(space, True))] + \
    [b"nbase.tar\0\0"] + [b"d" + c for c in chunks(tar(base, True))] + \
    [b"p" + struct.pack(">q", 20000), b"m", b"d" + manifest]
legacy = [b"A"] + chunks(tar(space, False)) + [b"A"] + chunks(tar(base, False)) + \
    [b"M", manifest]
long_name = [("PG_16_202307071/" + "d" * 90, "dir", None)]
modern_long = [b"n16384.tar\0/srv/ts\0", b"d" + tar(long_name, True),
               b"nbase.tar\0\0", b"d" + tar(base, True), b"m", b"d" + manifest]

for name, gen, msgs in [("modern", b"\0", modern), ("legacy", b"\1", legacy),
                        ("modern-longname", b"\0", modern_long)]:
    with open(os.path.join(out, name), "wb") as f:
        f.write(gen + frame(msgs))
