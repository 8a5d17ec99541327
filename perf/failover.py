#!/usr/bin/env python3
"""Failover time and LPA reaction time through the lab, as distributions over repeated runs.

    sudo perf/failover.py [--runs 10] [--workers 2]

Each run, with both WANs up and lan1 pinging 192.0.2.10 through WAN A:
- cut: modem A's link goes down without a word (tools/lab modem a down): fairgate sees the
  carrier go; failover time = the longest silence between lan1's replies from the cut on
  (pings every 20 ms), i.e. until its pings come back through WAN B;
- blackhole: modem A's link stays up but its ISP forwards nothing any more (a drop-all
  forward chain in ispa): only the probes can tell; the same measure;
- lpa-down: modem A advertises its link down, then drops it (modem a down --advertise); the
  same measure, pings every 5 ms;
- lpa-rate: modem A advertises a new download rate (20 -> 8 Mbit/s or back); reaction time =
  what fairgate's `lpa` command reports: from the advertisement's arrival at the management
  thread to the schedulers running at the new rate.
The reference is the seed's method: a script that pings once a minute and then moves everyone
(and breaks every connection); its failover time is the wait for the next ping, 0-60 s, plus
the ping's timeout, whatever the network does.

Brings the lab up with conf/lab.json if it is not (and leaves it as it found it).
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
LAB = os.path.join(ROOT, "tools", "lab")
INET = "192.0.2.10"


def lab(*args, check=True, timeout=120):
    result = subprocess.run([LAB, *args], capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        sys.exit(f"failover: tools/lab {' '.join(args)} failed:\n{result.stdout}{result.stderr}")
    return result


def ctl(command, *args):
    return json.loads(lab("ctl", command, *args, "--json").stdout)["result"]


def wait(predicate, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def both_usable():
    return all(link["tier"] == "usable" for link in ctl("wan")["links"])


def outage(change, interval):
    """Runs `change` 2 s into a ping run and returns the longest silence after it, seconds."""
    ping = subprocess.Popen([LAB, "exec", "lan1", "ping", "-n", "-D", "-i", str(interval), "-w", "6", INET],
                            stdout=subprocess.PIPE, text=True)
    time.sleep(2)
    moment = time.time()
    change()
    out, _ = ping.communicate(timeout=60)
    times = [float(m) for m in re.findall(r"^\[(\d+\.\d+)\].*icmp_seq=", out, re.M)]
    before = [t for t in times if t <= moment]
    window = before[-1:] + [t for t in times if t > moment]
    return max(b - a for a, b in zip(window, window[1:]))


def blackhole(on):
    if on:
        lab("exec", "ispa", "nft", "add table inet fglab_blackhole")
        lab("exec", "ispa", "nft", "add chain inet fglab_blackhole forward "
            "{ type filter hook forward priority 0; policy drop; }")
    else:
        lab("exec", "ispa", "nft", "delete table inet fglab_blackhole", check=False)


def restore():
    blackhole(False)
    lab("modem", "a", "up", "--advertise")
    lab("modem", "a", "default", "--advertise")
    if not wait(both_usable, 20):
        sys.exit("failover: WAN A did not come back")


def summary(values, unit, scale):
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]
    return (f"n={len(values)} min {ordered[0] * scale:.0f} median {statistics.median(ordered) * scale:.0f} "
            f"p90 {p90 * scale:.0f} max {ordered[-1] * scale:.0f} {unit}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    was_up = lab("status", check=False).returncode == 0
    if not was_up:
        lab("up", "--workers", str(args.workers), timeout=300)
    try:
        if not wait(both_usable, 20):
            sys.exit("failover: the WANs are not both up")
        cut, dark, lpa_down, reaction = [], [], [], []
        for run in range(args.runs):
            cut.append(outage(lambda: lab("modem", "a", "down"), 0.02))
            restore()
            dark.append(outage(lambda: blackhole(True), 0.02))
            restore()
            lpa_down.append(outage(lambda: lab("modem", "a", "down", "--advertise"), 0.005))
            restore()
            for rate in ("20mbit", "8mbit"):
                changes = next(m for m in ctl("lpa")["modems"] if m["link"] == "wan0")["rate_changes"]
                lab("modem", "a", "rate", rate, "--advertise")
                wait(lambda: next(m for m in ctl("lpa")["modems"] if m["link"] == "wan0")["rate_changes"] > changes, 5)
                modem = next(m for m in ctl("lpa")["modems"] if m["link"] == "wan0")
                reaction.append(modem["last_reaction_ms"] / 1000)
            lab("modem", "a", "default", "--advertise")
            print(f"run {run + 1}: cut {cut[-1] * 1000:.0f} ms, blackhole {dark[-1] * 1000:.0f} ms, LPA down {lpa_down[-1] * 1000:.0f} ms, "
                  f"LPA rate {reaction[-2] * 1000:.0f} / {reaction[-1] * 1000:.0f} ms", flush=True)
        print(f"cut (carrier):      {summary(cut, 'ms', 1000)}")
        print(f"blackhole (probes): {summary(dark, 'ms', 1000)}")
        print(f"LPA link down:      {summary(lpa_down, 'ms', 1000)}")
        print(f"LPA rate change:    {summary(reaction, 'ms', 1000)}")
        print("reference (a ping once a minute): 0-60 000 ms plus the ping's timeout, mean 30 000 ms, "
              "and every open connection broken")
    finally:
        restore()
        if not was_up:
            lab("down", check=False)


if __name__ == "__main__":
    main()
