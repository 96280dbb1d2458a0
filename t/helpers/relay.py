#!/usr/bin/python3
"""A TCP relay in front of a real PostgreSQL server that misbehaves on
cue, for the tests that need a server which stalls or lies.

    relay.py PORTFILE HOST PORT MODE

It listens on 127.0.0.1 (a free port, written to PORTFILE once it
listens) and relays every connection to HOST:PORT.  MODE:

  pass    relay as it comes
  stall   once a connection has carried 1 MB from the server, stop
          forwarding either way, the connections left open: a server
          gone silent mid-stream, at the TCP level
  mute    accept, and never answer nor reach the server: a server
          that takes the connection and says nothing
  noclock once the server starts streaming WAL (CopyBothResponse, as for
          the clock probe), stop forwarding: a server whose clock
          never comes
  lie     change one hex digit of the first '"Checksum": "' the server
          sends (inside backup_manifest): a server whose manifest does
          not match its files

A connection whose client asks for TLS gets 'N' from the server as it
would; the relay never reads TLS.
"""

import os
import socket
import struct
import sys
import threading

TRIGGER = b'"Checksum": "'
# CopyBothResponse: 'W', length 7, text format, no columns
COPY_BOTH = b"W\x00\x00\x00\x07\x00\x00\x00"


def lie(data, state):
    """The digit after the trigger changed, the trigger perhaps split
    between this chunk and the one before."""
    tail = state["tail"]
    both = tail + data
    at = both.find(TRIGGER)
    state["tail"] = both[-len(TRIGGER):]
    if at < 0:
        return data
    i = at + len(TRIGGER) - len(tail)
    if i >= len(data):
        # the digit comes with the next chunk
        state["tail"] = TRIGGER
        return data
    c = data[i:i + 1]
    state["lied"] = True
    return data[:i] + (b"1" if c != b"1" else b"2") + data[i + 1:]


def pump(src, dst, state, from_server):
    carried = 0
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            if from_server:
                carried += len(data)
                if (state["mode"] == "stall" and carried > 1 << 20) or \
                        (state["mode"] == "noclock" and COPY_BOTH in data):
                    state["stalled"].wait()
                    return
                if state["mode"] == "lie" and not state["lied"]:
                    data = lie(data, state)
            dst.sendall(data)
    except OSError:
        pass
    finally:
        # a reset, not a FIN: the server's side, blocked in a write to a
        # stalled peer, learns at once that it is gone
        for s in (src, dst):
            try:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                             struct.pack("ii", 1, 0))
                s.close()
            except OSError:
                pass


HELD = []


def serve(conn, host, port, mode):
    if mode == "mute":
        HELD.append(conn)
        return
    try:
        up = socket.create_connection((host, port))
    except OSError:
        conn.close()
        return
    # each connection lies or stalls on its own: the preflight's passes
    state = {"mode": mode, "lied": False, "tail": b"",
             "stalled": threading.Event()}
    threading.Thread(target=pump, args=(conn, up, state, False),
                     daemon=True).start()
    threading.Thread(target=pump, args=(up, conn, state, True),
                     daemon=True).start()


def main():
    portfile, host, port, mode = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    if mode not in ("pass", "stall", "lie", "noclock", "mute"):
        sys.exit("relay.py: mode: pass, stall, lie, noclock or mute")
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", 0))
    ls.listen(16)
    with open(portfile + ".tmp", "w") as f:
        f.write("%d\n" % ls.getsockname()[1])
    os.rename(portfile + ".tmp", portfile)
    while True:
        conn, _ = ls.accept()
        serve(conn, host, port, mode)


if __name__ == "__main__":
    main()
