#!/usr/bin/env python3
"""An independent reader of record frames v1, for the tests.

frames.py < stream: prints every header as one compact JSON line, skipping
payloads; a payload cut short or a header that is not JSON prints
{"type":"TRUNCATED"} or {"type":"GARBAGE"} and stops.
"""
import json
import sys


def main():
    data = sys.stdin.buffer
    while True:
        line = data.readline()
        if not line:
            return
        if not line.endswith(b"\n"):
            print('{"type":"TRUNCATED"}')
            return
        try:
            header = json.loads(line)
        except ValueError:
            print('{"type":"GARBAGE"}')
            return
        print(json.dumps(header, separators=(",", ":")))
        if header.get("type") == "file":
            size = header["size"]
            while size:
                chunk = data.read(min(size, 1 << 20))
                if not chunk:
                    print('{"type":"TRUNCATED"}')
                    return
                size -= len(chunk)


if __name__ == "__main__":
    main()
