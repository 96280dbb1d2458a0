#!/usr/bin/python3
"""A real gRPC client (Debian's python3-grpcio) that does what Plakar does
with an importer: Init, Import with each record acknowledged after its
content was read with Open, Close.

grpc_client.py STUBS SOCKET OP CONFIG_JSON [ARG]
  init                  print the InitResponse as JSON
  ping                  Ping
  import OUTDIR         rebuild the /data/ records in OUTDIR, print a summary
  read                  read every record and its content, keep nothing
  drop N                read N records, then hang up without a word
A gRPC error prints "grpc-error CODE: DETAILS" and exits 2.
"""
import json
import os
import queue
import sys

sys.path.insert(0, sys.argv[1])
import grpc  # noqa: E402
import connectors_pb2  # noqa: E402
import importer_pb2  # noqa: E402
import importer_service_pb2_grpc  # noqa: E402

GO_DIR = 0x80000000
GO_SYMLINK = 0x08000000


def init(stub, config):
    return stub.Init(importer_pb2.InitRequest(
        options=importer_pb2.Options(hostname="test", os="linux"),
        proto="postgres+bin", config=config), timeout=60)


def rebuild(stub, outdir):
    keep = outdir is not None
    acks = queue.Queue()

    def requests():
        while True:
            item = acks.get()
            if item is None:
                return
            yield item

    dirs = []
    records = files = 0
    finished = False
    manifest = None
    responses = stub.Import(requests(), timeout=600)
    for resp in responses:
        if resp.finished:
            finished = True
            acks.put(None)
            break
        rec = resp.record
        records += 1
        info = rec.fileInfo
        content = b""
        if rec.hasReader:
            content = b"".join(c.chunk for c in stub.Open(
                importer_pb2.OpenRequest(record=rec), timeout=600))
            files += 1
            assert len(content) == info.size, rec.pathname
        if rec.pathname == "/manifest.json":
            manifest = json.loads(content)
        elif keep and rec.pathname.startswith("/data/") and not rec.error:
            path = os.path.join(outdir, rec.pathname[len("/data/"):])
            perm = info.mode & 0o7777
            if info.mode & GO_DIR:
                os.makedirs(path, mode=0o700, exist_ok=True)
                dirs.append((path, perm, info.mod_time.seconds))
            elif info.mode & GO_SYMLINK:
                os.symlink(rec.target, path)
            else:
                os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
                with open(path, "wb") as f:
                    f.write(content)
                os.chmod(path, perm)
                os.utime(path, (info.mod_time.seconds, info.mod_time.seconds))
        acks.put(importer_pb2.ImportRequest(
            result=connectors_pb2.Result(header=rec)))
    for path, perm, mtime in reversed(dirs):
        os.chmod(path, perm)
        os.utime(path, (mtime, mtime))
    if keep:
        os.chmod(outdir, 0o700)
    stub.Close(importer_pb2.CloseRequest(), timeout=30)
    print(json.dumps({"records": records, "files": files,
                      "finished": finished,
                      "manifest_version": manifest and manifest.get("version")}))


def drop(stub, n):
    acks = queue.Queue()
    responses = stub.Import(iter(acks.get, None), timeout=600)
    for i, resp in enumerate(responses):
        if i + 1 >= n:
            break
        acks.put(importer_pb2.ImportRequest(
            result=connectors_pb2.Result(header=resp.record)))
    os._exit(0)


def main():
    sock, op, config = sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
    channel = grpc.insecure_channel("unix:" + sock)
    stub = importer_service_pb2_grpc.ImporterStub(channel)
    try:
        resp = init(stub, config)
        if op == "init":
            print(json.dumps({"origin": resp.origin, "type": resp.type,
                              "root": resp.root, "flags": resp.flags}))
        elif op == "ping":
            stub.Ping(importer_pb2.PingRequest(), timeout=60)
            print("pong")
        elif op == "import":
            os.makedirs(sys.argv[5], mode=0o700, exist_ok=True)
            rebuild(stub, sys.argv[5])
        elif op == "read":
            rebuild(stub, None)
        elif op == "drop":
            drop(stub, int(sys.argv[5]))
    except grpc.RpcError as e:
        print("grpc-error %s: %s" % (e.code().name, e.details()))
        sys.exit(2)


if __name__ == "__main__":
    main()
