#!/usr/bin/python3
"""Checks bittorrent.py without the lab: two throwaway namespaces, fgbt-a (tracker and seeder, 10.99.0.1)
and fgbt-b (leecher, 10.99.0.2), joined by a veth pair, built at the start and always removed.

    /usr/bin/python3 tests/integration/bittorrent_selfcheck.py [--size-mib 16] [--runs 3]
        [--rate 20mbit] [--encrypted]

--rate shapes the seeder's side of the veth, the direction the payload flows, with tbf.
"""
import argparse
import signal
import subprocess

from bittorrent import BitTorrentSwarm

SEEDER, LEECHER = "a", "b"
ADDRESSES = {SEEDER: "10.99.0.1", LEECHER: "10.99.0.2"}


def ns(host):
    return f"fgbt-{host}"


class Namespaces:
    """The two methods of conftest.Lab that BitTorrentSwarm uses, on `ip netns exec` directly."""

    def exec(self, host, *cmd, check=True, timeout=60):
        result = subprocess.run(["ip", "netns", "exec", ns(host), *cmd], capture_output=True, text=True,
                                timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"{host}: {cmd} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
        return result

    def popen(self, host, *cmd):
        return subprocess.Popen(["ip", "netns", "exec", ns(host), *cmd], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)


def ip(*args):
    subprocess.run(["ip", *args], check=True)


def up(rate):
    for host in ADDRESSES:
        ip("netns", "add", ns(host))
        ip("-n", ns(host), "link", "set", "lo", "up")
    ip("link", "add", "fgbt-a0", "netns", ns(SEEDER), "type", "veth", "peer", "name", "fgbt-b0", "netns", ns(LEECHER))
    for host, address in ADDRESSES.items():
        ip("-n", ns(host), "addr", "add", address + "/24", "dev", ns(host) + "0")
        ip("-n", ns(host), "link", "set", ns(host) + "0", "up")
    if rate:
        subprocess.run(["tc", "-n", ns(SEEDER), "qdisc", "add", "dev", "fgbt-a0", "root", "tbf", "rate", rate,
                        "burst", "32k", "latency", "50ms"], check=True)


def down():
    # Deleting a namespace removes its end of the veth, and with it the other end.
    for host in ADDRESSES:
        subprocess.run(["ip", "netns", "delete", ns(host)], stderr=subprocess.DEVNULL)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mib", type=int, default=16)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--rate", help="tc rate, e.g. 20mbit")
    parser.add_argument("--encrypted", action="store_true")
    parser.add_argument("--timeout", type=float, default=120)
    args = parser.parse_args()
    # SIGTERM unwinds like Ctrl-C, through the `with` and the `finally` below.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    down()  # a previous run killed with SIGKILL
    try:
        up(args.rate)
        for run in range(1, args.runs + 1):
            with BitTorrentSwarm(Namespaces(), SEEDER, LEECHER, ADDRESSES[SEEDER], size_mib=args.size_mib,
                                 encrypted=args.encrypted) as swarm:
                seconds = swarm.transfer(timeout=args.timeout)
            print(f"run {run}: {args.size_mib} MiB in {seconds:.1f} s, {args.size_mib * 8.388608 / seconds:.1f} Mbit/s"
                  f" ({'encrypted' if args.encrypted else 'plain'}{', shaped to ' + args.rate if args.rate else ''})",
                  flush=True)
    finally:
        down()


if __name__ == "__main__":
    main()
