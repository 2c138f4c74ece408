#!/usr/bin/python3
"""zprobe.py - a hostile or curious peer for the security e2e tests (pyzmq, Debian's python3-zmq).

  zprobe.py handshake ENDPOINT SERVER_PUB KEY_FILE
      Connects a DEALER with CURVE (KEY_FILE's pair, SERVER_PUB the server's public key) and prints
      "accepted" when the CURVE handshake succeeds, "refused STATUS" when the server's ZAP handler
      says no, "failed" for another handshake failure, "timeout" when nothing happens in 5 s.
  zprobe.py garbage ENDPOINT [SERVER_PUB KEY_FILE]
      Sends junk over ZeroMQ (random frames, truncated and oversized envelopes, too many frames,
      empty frames) and over raw TCP (bytes that are not ZMTP, a truncated greeting). Prints what
      it sent, one kind per line.
  zprobe.py blobget ENDPOINT SERVER_PUB KEY_FILE SHA256
      Asks the blob socket for the first KiB of blob SHA256 (a hand-encoded Envelope{version 1,
      blob_get}) and prints "refused: MESSAGE" for a BlobError, "served" for data, "timeout".
  zprobe.py http HOST:PORT
      Sends junk to an HTTP port: random bytes, a truncated request, an oversized header.

Key files are reelfarm keygen's: `public = "Z85"` and `secret = "Z85"` lines.
"""
import os
import socket
import sys
import time

import zmq
import zmq.utils.monitor


def read_key(path):
    keys = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#") or "=" not in line:
                if len(line) == 40:
                    keys["public"] = line
                continue
            k, v = line.split("=", 1)
            v = v.strip()
            if v.startswith('"'):
                v = v[1:v.index('"', 1)]
            keys[k.strip()] = v
    return keys


def dealer(ctx, endpoint, server_pub=None, key_file=None):
    s = ctx.socket(zmq.DEALER)
    s.setsockopt(zmq.LINGER, 2000)
    if server_pub:
        mine = read_key(key_file)
        s.curve_serverkey = read_key(server_pub)["public"].encode()
        s.curve_publickey = mine["public"].encode()
        s.curve_secretkey = mine["secret"].encode()
    return s


def handshake(endpoint, server_pub, key_file):
    ctx = zmq.Context()
    s = dealer(ctx, endpoint, server_pub, key_file)
    mon = s.get_monitor_socket(zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_HANDSHAKE_FAILED_AUTH |
                               zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL)
    s.connect(endpoint)
    verdict = "timeout"
    deadline = time.time() + 5
    while time.time() < deadline:
        if not mon.poll(100):
            continue
        ev = zmq.utils.monitor.recv_monitor_message(mon)
        if ev["event"] == zmq.EVENT_HANDSHAKE_SUCCEEDED:
            verdict = "accepted"
        elif ev["event"] == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
            verdict = "refused %d" % ev["value"]
        else:
            verdict = "failed"
        break
    print(verdict)
    s.disable_monitor()
    mon.close(0)
    s.close(0)
    ctx.term()


def garbage(endpoint, server_pub=None, key_file=None):
    ctx = zmq.Context()
    rnd = os.urandom
    sends = [
        ("random", [rnd(1), rnd(200)]),
        ("random-big", [rnd(64 * 1024)]),
        # protobuf field 1 (version) varint, then a length-delimited field cut short
        ("truncated", [b"\x08\x01\x52\x80\x80\x04\x01\x02"]),
        ("truncated-varint", [b"\x08\xff\xff\xff\xff\xff\xff\xff\xff"]),
        ("empty", [b""]),
        ("too-many-frames", [b"a", b"b", b"c", b"d", b"e", b"f"]),
        ("two-frames", [b"\x08\x01", rnd(10)]),
        # 1.5 MiB: over the default 1 MiB message limit, under the 2x the socket lets through
        ("oversized", [b"\x08\x01\x52" + rnd(3 * 512 * 1024)]),
    ]
    for name, frames in sends:
        s = dealer(ctx, endpoint, server_pub, key_file)
        s.connect(endpoint)
        s.send_multipart(frames)
        time.sleep(0.05)
        s.close()
        print("sent", name)
    host, port = endpoint[len("tcp://"):].rsplit(":", 1)
    for name, data in [("tcp-junk", rnd(4096)),
                       ("tcp-greeting-cut", b"\xff\x00\x00\x00\x00\x00\x00\x00\x01\x7f\x03"),
                       ("tcp-http", b"GET / HTTP/1.0\r\n\r\n")]:
        with socket.create_connection((host, int(port)), timeout=5) as t:
            try:
                t.sendall(data)
                time.sleep(0.1)
            except OSError:
                pass
        print("sent", name)
    ctx.term()


def varint(n):
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        out += bytes([b | (0x80 if n else 0)])
        if not n:
            return out


def blobget(endpoint, server_pub, key_file, sha):
    ctx = zmq.Context()
    s = dealer(ctx, endpoint, server_pub, key_file)
    s.connect(endpoint)
    get = b"\x0a" + varint(len(sha)) + sha.encode() + b"\x18" + varint(1024)  # sha256, length
    s.send(b"\x08\x01" + varint(30 << 3 | 2) + varint(len(get)) + get)     # version 1, blob_get
    if not s.poll(5000):
        print("timeout")
    else:
        reply = s.recv()
        err_tag = varint(33 << 3 | 2)                                           # blob_error
        i = reply.find(err_tag)
        if i >= 0 and reply[2:2 + len(err_tag)] == err_tag or b"may download only" in reply:
            print("refused:", reply[reply.rfind(b"\x12") + 2:].decode(errors="replace"))
        else:
            print("served")
    s.close(0)
    ctx.term()


def http(hostport):
    host, port = hostport.rsplit(":", 1)
    for name, data in [("random", os.urandom(8192)),
                       ("truncated", b"GET /metr"),
                       ("oversized-header", b"GET /metrics HTTP/1.1\r\nX: " + b"a" * (1 << 20) + b"\r\n\r\n"),
                       ("bad-method", b"\x00\x01\x02 / HTTP/1.1\r\n\r\n")]:
        with socket.create_connection((host, int(port)), timeout=5) as t:
            try:
                t.sendall(data)
                t.settimeout(2)
                t.recv(1024)
            except OSError:
                pass
        print("sent", name)


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "handshake":
        handshake(*sys.argv[2:5])
    elif mode == "garbage":
        garbage(*sys.argv[2:])
    elif mode == "blobget":
        blobget(*sys.argv[2:6])
    elif mode == "http":
        http(sys.argv[2])
    else:
        sys.exit("zprobe.py: unknown mode " + mode)
