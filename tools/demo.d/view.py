#!/usr/bin/env python3
"""Live view of the lab's fairgate for tools/demo: per-port rates, each subscriber's share of the
link per direction, drops by reason, workers, and lan1's ping, refreshed every second."""
import argparse
import json
import os
import re
import subprocess
import sys
import time

LAB = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lab")


def ctl(command):
    out = subprocess.run([LAB, "ctl", command, "--json"], capture_output=True, text=True, timeout=10).stdout
    reply = json.loads(out)
    if not reply.get("ok"):
        raise RuntimeError(reply.get("error"))
    return reply["result"]


def ping_times(path):
    try:
        with open(path) as log:
            return [float(t) for t in re.findall(r"time=([\d.]+) ms", log.read())]
    except OSError:
        return []


def last_ping(path):
    times = ping_times(path)
    if not times:
        return "-"
    ordered = sorted(times)
    return f"{times[-1]:.2f} ms now, median {ordered[len(ordered) // 2]:.2f} ms"


def subscriber_lines():
    """Each subscriber's rate now, guarantee and ceil, per shaped port (the `qos` command)."""
    try:
        qos = ctl("qos")
    except (RuntimeError, json.JSONDecodeError):
        return []
    lines = ["", f"{'subscriber':12} {'port':5} {'direction':9} {'now Mbit/s':>10} {'share':>6} "
             f"{'guarantee':>9} {'ceil':>6} {'queued':>6} {'drops':>6}"]
    for port in qos["ports"]:
        active = [s for s in port["subscribers"] if s["now_bps"] > 0]
        total = sum(s["now_bps"] for s in active) or 1
        for s in active:
            lines.append(f"{s['name']:12} {port['name']:5} {port['direction']:9} {s['now_bps'] / 1e6:10.2f} "
                         f"{100 * s['now_bps'] / total:5.0f}% {s['rate_bps'] / 1e6:9.1f} {s['ceil_bps'] / 1e6:6.1f} "
                         f"{s['queued']:6} {s['drops']:6}")
    return lines


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--ping-log", default="")
    args = parser.parse_args()
    clear = "\033[H\033[2J" if sys.stdout.isatty() else ""
    previous, previous_time = None, None
    end = time.monotonic() + args.seconds
    while time.monotonic() < end:
        ports, stats = ctl("ports"), ctl("stats")
        now = time.monotonic()
        lines = [f"fairgate live view ({int(end - now)} s left)   pipeline {stats['pipeline']}, "
                 f"{len(stats['workers'])} workers, uptime {stats['uptime_s']:.0f} s", ""]
        lines.append(f"{'port':6} {'role':4} {'address':18} {'rx Mbit/s':>10} {'tx Mbit/s':>10} "
                     f"{'rx pkt/s':>9} {'tx pkt/s':>9} {'dropped':>8}")
        for port in ports:
            rx_rate = tx_rate = rx_pps = tx_pps = 0.0
            if previous:
                old = previous[port["name"]]
                span = now - previous_time
                rx_rate = (port["rx_bytes"] - old["rx_bytes"]) * 8 / span / 1e6
                tx_rate = (port["tx_bytes"] - old["tx_bytes"]) * 8 / span / 1e6
                rx_pps = (port["rx_packets"] - old["rx_packets"]) / span
                tx_pps = (port["tx_packets"] - old["tx_packets"]) / span
            dropped = port["rx_dropped"] + port["tx_dropped"] + port["rx_missed"]
            lines.append(f"{port['name']:6} {port['role']:4} {port['address']:18} {rx_rate:10.2f} {tx_rate:10.2f} "
                         f"{rx_pps:9.0f} {tx_pps:9.0f} {dropped:8}")
        lines += subscriber_lines()
        drops = {k: v for k, v in stats["drops"].items() if v}
        lines += ["", "drops by reason: " + (", ".join(f"{k} {v}" for k, v in drops.items()) or "none")]
        lines.append("workers: " + ", ".join(
            f"#{w['worker']} {w['busy_polls']} busy / {w['idle_sleeps']} idle sleeps" for w in stats["workers"]))
        if any(stage["stage"] == "nat" for stage in stats["stages"]):
            nat = ctl("nat-stats")
            lines.append(f"NAT: {nat['sessions']} sessions, {nat['created']} created, {nat['expired']} expired, "
                         f"{nat['quota_hits']} refused by quota")
        lines.append(f"mbufs in use: {stats['mempool']['in_use']} of {stats['mempool']['size']}   "
                     f"neighbours: {stats['neighbors']}   lan1 -> 192.0.2.10 ping: {last_ping(args.ping_log)}")
        lines.append("traffic: lan2 8 TCP flows and lan3 1 TCP flow, both directions; lan1 pings "
                     "(modem A: 20/5 Mbit/s, deep buffer)")
        print(clear + "\n".join(lines), flush=True)
        if not clear:
            print()
        previous = {p["name"]: p for p in ports}
        previous_time = now
        time.sleep(1)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        pass
