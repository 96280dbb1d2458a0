#!/usr/bin/python3
"""A PostgreSQL server that lies about its version, for the test of a
server older than 13: it admits anyone and says it is what VERSION says,
then answers nothing.

    fakepg.py SOCKETDIR PORT VERSION

It listens on SOCKETDIR/.s.PGSQL.PORT as a server does.
"""

import os
import socket
import struct
import sys
import threading


def message(kind, payload):
    return kind + struct.pack("!I", len(payload) + 4) + payload


def param(name, value):
    return message(b"S", name.encode() + b"\0" + value.encode() + b"\0")


def read_exact(conn, n):
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            raise OSError("closed")
        data += chunk
    return data


def serve(conn, version):
    try:
        while True:
            length = struct.unpack("!I", read_exact(conn, 4))[0]
            body = read_exact(conn, length - 4)
            code = struct.unpack("!I", body[:4])[0]
            # SSLRequest, GSSENCRequest: not here
            if code in (80877103, 80877104):
                conn.sendall(b"N")
                continue
            break
        conn.sendall(message(b"R", struct.pack("!I", 0)) +
                     param("server_version", version) +
                     param("server_encoding", "UTF8") +
                     param("client_encoding", "UTF8") +
                     param("standard_conforming_strings", "on") +
                     param("integer_datetimes", "on") +
                     message(b"K", struct.pack("!II", 1, 2)) +
                     message(b"Z", b"I"))
        while conn.recv(65536):
            pass
    except OSError:
        pass
    finally:
        conn.close()


def main():
    sockdir, port, version = sys.argv[1], sys.argv[2], sys.argv[3]
    path = os.path.join(sockdir, ".s.PGSQL." + port)
    ls = socket.socket(socket.AF_UNIX)
    ls.bind(path)
    ls.listen(8)
    while True:
        conn, _ = ls.accept()
        threading.Thread(target=serve, args=(conn, version),
                         daemon=True).start()


if __name__ == "__main__":
    main()
