#!/usr/bin/env python3
"""Echo service (RFC 862) on TCP and UDP for the lab's inet host.

Tests use it to check that a flow passes through fairgate both ways and to measure round trips
without iperf3. Started by `tools/lab up` inside fglab-inet; `tools/lab down` stops it through the
pid file it writes once both sockets are bound (so the pid file also means "ready").
"""
import argparse
import os
import signal
import socket
import socketserver
import sys
import threading


class TcpEcho(socketserver.BaseRequestHandler):
    def handle(self):
        conn = self.request
        conn.settimeout(300)  # a forgotten client must not keep a thread forever
        try:
            while True:
                data = conn.recv(65536)
                if not data:
                    return
                conn.sendall(data)
        except OSError:
            return


class TcpServer(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


def udp_loop(sock):
    while True:
        try:
            data, peer = sock.recvfrom(65536)
            sock.sendto(data, peer)
        except OSError:
            continue


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--address", default="0.0.0.0")
    ap.add_argument("--port", type=int, default=7)
    ap.add_argument("--pidfile")
    args = ap.parse_args()

    tcp = TcpServer((args.address, args.port), TcpEcho)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    udp.bind((args.address, args.port))
    threading.Thread(target=udp_loop, args=(udp,), daemon=True).start()

    def stop(signum, frame):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if args.pidfile:
        tmp = args.pidfile + ".tmp"
        with open(tmp, "w") as f:
            f.write(f"{os.getpid()}\n")
        os.replace(tmp, args.pidfile)
    try:
        tcp.serve_forever()
    finally:
        if args.pidfile:
            try:
                os.unlink(args.pidfile)
            except OSError:
                pass


if __name__ == "__main__":
    sys.exit(main())
