#!/usr/bin/env python3
"""A stand-in peer for the P2P lab tests: a TCP server that answers like a BitTorrent peer and
then streams data, and a client that opens a flow with a BitTorrent handshake (or with random
bytes, as an encrypted peer connection looks) and reports how much it received over time.

  p2p_peer.py serve PORT [--bytes N] [--chunk BYTES] [--interval SECONDS]
  p2p_peer.py fetch HOST PORT --kind bt|random [--timeout SECONDS]

The client prints one line "ELAPSED_S TOTAL_BYTES" every 0.25 s and "total TOTAL_BYTES" at
the end (when the server closes or the timeout passes), so a test can tell whether a flow kept
going after a policy change.
"""
import argparse
import os
import socket
import sys
import threading
import time

HANDSHAKE = b"\x13BitTorrent protocol"


def handshake():
    return HANDSHAKE + bytes(8) + os.urandom(20) + os.urandom(20)  # reserved, info hash, peer id


def serve(args):
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("0.0.0.0", args.port))
    listener.listen(16)

    def stream(conn):
        with conn:
            try:
                first = conn.recv(128)
                if first.startswith(HANDSHAKE):
                    conn.sendall(handshake())
                sent, chunk = 0, os.urandom(args.chunk)
                while sent < args.bytes:
                    conn.sendall(chunk[: min(args.chunk, args.bytes - sent)])
                    sent += min(args.chunk, args.bytes - sent)
                    if args.interval:
                        time.sleep(args.interval)
            except OSError:
                pass  # the client went away or its flow was dropped

    while True:
        conn, _ = listener.accept()
        threading.Thread(target=stream, args=(conn,), daemon=True).start()


def fetch(args):
    start = time.monotonic()
    try:
        conn = socket.create_connection((args.host, args.port), timeout=args.timeout)
        conn.sendall(handshake() if args.kind == "bt" else os.urandom(68))
    except OSError:  # no answer at all: a policy may drop the flow from its first packet
        print("total 0", flush=True)
        return
    conn.settimeout(0.25)
    total, last_report = 0, 0.0
    while time.monotonic() - start < args.timeout:
        try:
            data = conn.recv(65536)
            if not data:
                break
            total += len(data)
        except socket.timeout:
            pass
        except OSError:
            break
        now = time.monotonic() - start
        if now - last_report >= 0.25:
            print(f"{now:.2f} {total}", flush=True)
            last_report = now
    print(f"total {total}", flush=True)


def main():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="mode", required=True)
    s = sub.add_parser("serve")
    s.add_argument("port", type=int)
    s.add_argument("--bytes", type=int, default=1_000_000)
    s.add_argument("--chunk", type=int, default=16384)
    s.add_argument("--interval", type=float, default=0.0)
    f = sub.add_parser("fetch")
    f.add_argument("host")
    f.add_argument("port", type=int)
    f.add_argument("--kind", choices=["bt", "random"], required=True)
    f.add_argument("--timeout", type=float, default=20.0)
    args = parser.parse_args()
    serve(args) if args.mode == "serve" else fetch(args)


if __name__ == "__main__":
    sys.exit(main())
