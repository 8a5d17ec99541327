#!/usr/bin/python3
"""Fair sharing in the lab: latency under load and the split between heavy users, through
fairgate with shaping off, through fairgate with shaping on, and through the Linux kernel set up
the FairNAT way (HTB class per user), side by side.

    sudo perf/fair_share.py [--duration 20] [--modes off,fairgate,kernel] [--cc cubic,bbr] [--loads bidir]
                            [--workers 1]

Every mode runs on the same veths with modem A (the only path LAN traffic takes to the internet)
at 20 Mbit/s down and 5 Mbit/s up with its deep (400 ms) buffer:

- off:      fairgate with a generated copy of conf/lab.json without the qos section and the
            ports' rates: NAT only, nothing shaped, the modem's buffer is the bottleneck queue.
- fairgate: fairgate with conf/lab.json (shaping on; every LAN host its own subscriber), told the
            modem's rates at run time with `link-rate port=wan0 down=20mbit up=5mbit`; it shapes
            to them less conf/lab.json's qos.rate_sub_percent (5 %, the default).
- uncounted: the same with qos.count_download_drops off: downloads fairgate drops do not count
            against the download rate (what the option changes).
- kernel:   `tools/lab up --kernel` (nftables masquerade) plus FairNAT's HTB set-up: on lan0
            egress (download) and wan0 egress (upload) a root class at the same 95 % of the modem rate and
            a class per LAN host (rate = equal share, ceil = the root rate) with a pfifo leaf
            (FairNAT's fallback where sfq is missing, as on this kernel). Download is classified
            by u32 on the destination; upload, whose source is masqueraded by then, by nftables
            `meta priority set 1:1X` in the forward chain (FairNAT's iptables CLASSIFY).

For each mode, each TCP congestion control (cubic: loss-based, fills the modem buffer; bbr:
this machine's default) and each load (--loads; bidir: both directions at once, the issue's
scenario; down or up: one direction only): lan1's idle ping RTT (median and 99th percentile),
then lan2 with 8 TCP flows and lan3 with 1 (iperf3, the first 3 s omitted so slow start does not
count), lan1's ping during that load, modem A's download queue during it (sampled every 50 ms),
each heavy user's goodput per direction, lan2's share of the two users' sum, and the sum as a
percentage of the modem rate.

The script takes the lab down and up for every mode, so it refuses to start while a lab is up
(someone may be using it), and always leaves it down, also on Ctrl-C.
"""
import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
LAB = os.path.join(ROOT, "tools", "lab")
LAB_CONFIG = os.path.join(ROOT, "conf", "lab.json")
INET = "192.0.2.10"
MODES = ("off", "fairgate", "uncounted", "kernel")
MODE_TITLES = {"off": "fairgate, shaping off", "fairgate": "fairgate, shaping on",
               "uncounted": "fairgate, shaping on, drops not counted",
               "kernel": "Linux kernel, HTB per user (FairNAT way)"}
# What the heavy users load: both directions at once (the scenario), or one.
LOADS = ("bidir", "down", "up")
LAN_HOSTS = {"lan1": "10.10.0.11", "lan2": "10.10.0.12", "lan3": "10.10.0.13"}
HEAVY = {"lan2": (5202, 8), "lan3": (5203, 1)}   # host: (iperf3 port, TCP flows)
OMIT_S = 3
PING_INTERVAL_S = 0.05  # 20 a second: the 99th percentile is not the maximum
with open(LAB_CONFIG) as _f:
    # Both gateways shape at the modem rate less fairgate's margin (qos.rate_sub_percent).
    SHAPED_FRACTION = (100 - json.load(_f).get("qos", {}).get("rate_sub_percent", 5)) / 100


class ModeFailed(Exception):
    """A mode could not be measured (e.g. a command fairgate does not have yet)."""


def lab(*args, timeout=240, check=True):
    done = subprocess.run([LAB, *args], capture_output=True, text=True, timeout=timeout)
    if check and done.returncode != 0:
        raise ModeFailed(f"tools/lab {' '.join(args)} failed ({done.returncode}): "
                         f"{(done.stderr + done.stdout).strip()[-1500:]}")
    return done.stdout


def lab_is_down():
    return subprocess.run([LAB, "status"], capture_output=True, text=True).returncode == 3


def ctl(command, *args):
    out = lab("ctl", "--json", command, *args, check=False)
    try:
        reply = json.loads(out)
    except ValueError:
        raise ModeFailed(f"fairgate {command}: no reply ({out.strip()[-300:]})") from None
    if not reply.get("ok"):
        raise ModeFailed(f"fairgate {command} {' '.join(args)}: {reply.get('error')}")
    return reply["result"]


def rate_bps(rate):
    """tc-style rate ("20mbit", "500kbit") -> bits per second."""
    units = {"gbit": 1e9, "mbit": 1e6, "kbit": 1e3, "bit": 1}
    for unit, factor in units.items():
        if rate.endswith(unit):
            return float(rate[: -len(unit)]) * factor
    return float(rate)


def tc_kbit(bps):
    return f"{int(bps / 1000)}kbit"


# ------------------------------------------------------------------------------------------
# Bringing each mode up

def config_with(change, name):
    """A copy of conf/lab.json changed by `change(config)`, in /tmp."""
    with open(LAB_CONFIG) as f:
        config = json.load(f)
    change(config)
    fd, path = tempfile.mkstemp(prefix=f"fair_share-{name}-", suffix=".json", dir="/tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(config, f, indent=1)
    return path


def config_without_counting():
    """conf/lab.json with qos.count_download_drops off."""
    return config_with(lambda config: config["qos"].update({"count_download_drops": False}), "uncounted")


def config_without_shaping():
    """conf/lab.json without the qos section and the WAN rates: fairgate does NAT only."""
    def change(config):
        config.pop("qos", None)
        config.pop("subscribers", None)
        # One link, as FairNAT had: unshaped, the modem's buffer would delay the WAN probes past
        # their timeout and failover would move everyone to the other WAN.
        config.pop("wan", None)
        for port in config["ports"]:
            port.pop("rate_down", None)
            port.pop("rate_up", None)
    return config_with(change, "off")


def kernel_htb(down_bps, up_bps):
    """FairNAT's classes in fglab-fg: HTB per LAN host under a root at fairgate's fraction of the modem."""
    def tc(*args):
        lab("exec", "fg", "tc", *args)

    for dev, link_bps in (("lan0", down_bps), ("wan0", up_bps)):
        root = link_bps * SHAPED_FRACTION
        share = root / len(LAN_HOSTS)
        # default 99 names no class: unclassified frames (ARP) go out unshaped, as in FairNAT.
        tc("qdisc", "replace", "dev", dev, "root", "handle", "1:", "htb", "default", "99")
        tc("class", "add", "dev", dev, "parent", "1:", "classid", "1:1", "htb",
           "rate", tc_kbit(root), "ceil", tc_kbit(root))
        for address in LAN_HOSTS.values():
            minor = address.rsplit(".", 1)[1]
            tc("class", "add", "dev", dev, "parent", "1:1", "classid", f"1:{minor}", "htb",
               "rate", tc_kbit(share), "ceil", tc_kbit(root))
            tc("qdisc", "add", "dev", dev, "parent", f"1:{minor}", "handle", f"{minor}:", "pfifo")
            if dev == "lan0":
                tc("filter", "add", "dev", dev, "parent", "1:", "protocol", "ip", "prio", "1", "u32",
                   "match", "ip", "dst", f"{address}/32", "flowid", f"1:{minor}")
    # Upload: after masquerade every packet has the WAN address, so u32 cannot tell users apart.
    # FairNAT sets the class with iptables CLASSIFY before NAT; here nftables sets skb->priority,
    # which HTB takes as the class when it names one of its own (major 1).
    rules = "\n".join(f'    oifname "wan0" ip saddr {address} meta priority set 1:{address.rsplit(".", 1)[1]}'
                      for address in LAN_HOSTS.values())
    ruleset = ("table ip fair_share {\n  chain forward {\n"
               "    type filter hook forward priority filter; policy accept;\n" + rules + "\n  }\n}\n")
    done = subprocess.run([LAB, "exec", "fg", "nft", "-f", "-"], input=ruleset, capture_output=True, text=True,
                          timeout=30)
    if done.returncode != 0:
        raise ModeFailed(f"nft: {done.stderr.strip()}")


def kernel_class_bytes():
    """{(dev, classid): bytes sent} of the per-user HTB classes."""
    counts = {}
    for dev in ("lan0", "wan0"):
        out = lab("exec", "fg", "tc", "-s", "class", "show", "dev", dev)
        current = None
        for line in out.splitlines():
            words = line.split()
            if line.startswith("class htb"):
                current = words[2]
            elif words[:1] == ["Sent"] and current:
                counts[(dev, current)] = int(words[1])
    return counts


def bring_up(mode, workers, down, up, configs):
    lab("down")
    if mode == "kernel":
        lab("up", "--kernel")
    elif mode in configs:
        lab("up", "--workers", str(workers), "--config", configs[mode])
    else:
        lab("up", "--workers", str(workers))
    lab("modem", "a", "down", down, "up", up)
    if mode == "kernel":
        kernel_htb(rate_bps(down), rate_bps(up))
    elif mode in ("fairgate", "uncounted"):
        ctl("wan-set", "link=wan0", "state=up")  # one link: see config_without_shaping
        ctl("link-rate", "port=wan0", f"down={down}", f"up={up}")
    # Resolve neighbours and create the NAT mappings before anything is timed.
    lab("exec", "lan1", "ping", "-c", "2", "-i", "0.2", INET, check=False)


# ------------------------------------------------------------------------------------------
# Measuring

def percentile(values, p):
    """Nearest-rank percentile."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-p * len(ordered) // 100))))
    return ordered[rank - 1]


def ping_start(count):
    return subprocess.Popen([LAB, "exec", "lan1", "ping", "-n", "-i", str(PING_INTERVAL_S), "-c", str(count),
                             "-W", "3", INET], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def ping_result(process, timeout):
    out, _ = process.communicate(timeout=timeout)
    rtts = [float(word[5:]) for line in out.splitlines() for word in line.split() if word.startswith("time=")]
    if not rtts:
        raise ModeFailed(f"ping from lan1 got no reply:\n{out[-500:]}")
    sent = next((int(line.split()[0]) for line in out.splitlines() if "packets transmitted" in line), len(rtts))
    return {"p50": statistics.median(rtts), "p99": percentile(rtts, 99), "replies": len(rtts), "sent": sent}


def iperf_start(host, cc, duration, load):
    port, flows = HEAVY[host]
    direction = {"bidir": ["--bidir"], "down": ["-R"], "up": []}[load]
    return subprocess.Popen([LAB, "exec", host, "iperf3", "-c", INET, "-p", str(port), "-P", str(flows), *direction,
                             "-C", cc, "-t", str(duration), "-O", str(OMIT_S), "-J"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


class ModemQueue(threading.Thread):
    """Samples modem A's download queue (bytes in its tbf on ispa's side) every 50 ms: the queue
    upstream of fairgate on the download path, which no shaper after the modem controls."""
    def __init__(self):
        super().__init__(daemon=True)
        self.samples = []
        self.done = threading.Event()

    def run(self):
        while not self.done.wait(0.05):
            out = subprocess.run(["ip", "netns", "exec", "fglab-ispa", "tc", "-s", "qdisc", "show", "dev", "fg"],
                                 capture_output=True, text=True).stdout
            words = out.split()
            if "backlog" in words:
                self.samples.append(tc_bytes(words[words.index("backlog") + 1]))

    def stop(self):
        self.done.set()
        self.join()
        if not self.samples:
            return None
        return {"p50": statistics.median(self.samples), "p99": percentile(self.samples, 99), "max": max(self.samples)}


def tc_bytes(text):
    """tc's "12Kb" or "1514b" as bytes."""
    units = {"b": 1, "Kb": 1024, "Mb": 1024 * 1024}
    for unit in ("Mb", "Kb", "b"):
        if text.endswith(unit):
            return int(float(text[:-len(unit)]) * units[unit])
    return int(text)


def iperf_result(host, process, timeout, load):
    out, err = process.communicate(timeout=timeout)
    try:
        report = json.loads(out)
    except ValueError:
        raise ModeFailed(f"iperf3 on {host}: {err.strip()[-500:]}") from None
    if "error" in report:
        raise ModeFailed(f"iperf3 on {host}: {report['error']}")
    end = report["end"]
    # Receiver-side goodput over the measured (non-omitted) seconds: upload as the server
    # received it, download as the client received it (sum_received is the receiver's either way).
    if load == "bidir":
        return {"down": end["sum_received_bidir_reverse"]["bits_per_second"],
                "up": end["sum_received"]["bits_per_second"]}
    return {"down": 0.0, "up": 0.0, load: end["sum_received"]["bits_per_second"]}


def measure(mode, cc, load, duration, down_bps, up_bps):
    idle = ping_result(ping_start(50), timeout=60)
    pings = max(10, int((duration - OMIT_S - 2) / PING_INTERVAL_S))
    before = kernel_class_bytes() if mode == "kernel" else None
    clients = {host: iperf_start(host, cc, duration, load) for host in HEAVY}
    modem_queue = ModemQueue()
    try:
        time.sleep(OMIT_S + 1)   # slow start is over, queues have formed
        modem_queue.start()
        loaded = ping_result(ping_start(pings), timeout=duration + 60)
        modem_queue = modem_queue.stop()
        goodput = {host: iperf_result(host, client, duration + 60, load) for host, client in clients.items()}
    finally:
        if isinstance(modem_queue, ModemQueue) and modem_queue.is_alive():
            modem_queue.stop()
        for client in clients.values():
            if client.poll() is None:
                client.kill()
                client.wait()
    qos = None
    if mode == "kernel":
        after = kernel_class_bytes()
        for dev in ("lan0", "wan0"):
            for minor in ("12", "13"):
                key = (dev, f"1:{minor}")
                if after.get(key, 0) - before.get(key, 0) < 100000:
                    raise ModeFailed(f"kernel HTB: class {key[1]} on {dev} carried almost nothing: "
                                     f"classification does not work ({after})")
    elif mode in ("fairgate", "uncounted"):
        qos = ctl("qos")
    time.sleep(3)   # let the queues drain before the next run's idle ping
    row = {"mode": mode, "cc": cc, "load": load, "idle": idle, "loaded": loaded, "modem_queue": modem_queue,
           "goodput": goodput, "qos": qos}
    for direction, link in (("down", down_bps), ("up", up_bps)):
        a, b = goodput["lan2"][direction], goodput["lan3"][direction]
        row[f"share_{direction}"] = a / (a + b) if a + b else None
        row[f"total_{direction}"] = (a + b) / link if a + b else None
    return row


def run_mode(mode, args, configs):
    rows = []
    try:
        bring_up(mode, args.workers, args.down, args.up, configs)
        for load in args.loads:
            for cc in args.cc:
                rows.append(measure(mode, cc, load, args.duration, rate_bps(args.down), rate_bps(args.up)))
                print(f"fair_share: {mode} {cc} {load}: done", file=sys.stderr, flush=True)
    except ModeFailed as failure:
        print(f"fair_share: {mode}: {failure}", file=sys.stderr, flush=True)
        done = {(row["cc"], row["load"]) for row in rows}
        rows += [{"mode": mode, "cc": cc, "load": load, "error": str(failure).splitlines()[0][:160]}
                 for load in args.loads for cc in args.cc if (cc, load) not in done]
    finally:
        lab("down", check=False)
    return rows


# ------------------------------------------------------------------------------------------
# Reporting

def targets(row):
    """The issue's targets for shaping: which ones this row meets, per loaded direction."""
    met = []
    ok_latency = (row["loaded"]["p50"] <= row["idle"]["p50"] + 10 and row["loaded"]["p99"] <= row["idle"]["p99"] + 10)
    met.append("latency " + ("yes" if ok_latency else "no"))
    directions = [d for d in ("down", "up") if row[f"total_{d}"] is not None]
    ok_split = all(0.40 <= row[f"share_{d}"] <= 0.60 for d in directions)
    met.append("split " + ("yes" if ok_split else "no"))
    met += [f"total {d} " + ("yes" if row[f"total_{d}"] >= 0.90 else "no") for d in directions]
    return ", ".join(met)


def table(rows, args):
    mbit = lambda bps: f"{bps / 1e6:.2f}"
    percent = lambda value: "-" if value is None else f"{value * 100:.0f} %"
    kbytes = lambda q: "-" if not q else f"{q['p50'] / 1000:.0f} / {q['p99'] / 1000:.0f} / {q['max'] / 1000:.0f}"
    lines = [
        "| gateway | TCP | load | idle ping p50 / p99 (ms) | ping under load p50 / p99 (ms) | "
        "modem A's download queue p50 / p99 / max (kB) | "
        "download lan2 (8 flows) / lan3 (1 flow) (Mbit/s) | lan2's share of download | download total, % of "
        f"{args.down} | upload lan2 / lan3 (Mbit/s) | lan2's share of upload | upload total, % of {args.up} | "
        "issue targets met |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        title = MODE_TITLES[row["mode"]]
        if "error" in row:
            lines.append(f"| {title} | {row['cc']} | {row['load']} | not measured: {row['error']} |" + " |" * 9)
            continue
        g = row["goodput"]
        lines.append(
            f"| {title} | {row['cc']} | {row['load']} | {row['idle']['p50']:.2f} / {row['idle']['p99']:.2f} | "
            f"{row['loaded']['p50']:.1f} / {row['loaded']['p99']:.1f} | {kbytes(row['modem_queue'])} | "
            f"{mbit(g['lan2']['down'])} / {mbit(g['lan3']['down'])} | {percent(row['share_down'])} | "
            f"{percent(row['total_down'])} | {mbit(g['lan2']['up'])} / {mbit(g['lan3']['up'])} | "
            f"{percent(row['share_up'])} | {percent(row['total_up'])} | {targets(row)} |")
    return "\n".join(lines)


def interrupt(*_):
    raise KeyboardInterrupt


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=20, help="seconds of iperf3 load per run (default 20)")
    parser.add_argument("--modes", default="off,fairgate,kernel",
                        help="comma-separated: off, fairgate, uncounted, kernel (default off,fairgate,kernel)")
    parser.add_argument("--loads", default="bidir", help="comma-separated: bidir, down, up (default bidir)")
    parser.add_argument("--cc", default="cubic,bbr", help="comma-separated TCP congestion controls")
    parser.add_argument("--workers", type=int, default=1, help="fairgate's workers (default 1)")
    parser.add_argument("--down", default="20mbit", help="modem A's download rate (default 20mbit)")
    parser.add_argument("--up", default="5mbit", help="modem A's upload rate (default 5mbit)")
    parser.add_argument("--json", help="also write every measurement to this file")
    args = parser.parse_args()
    args.modes = [m for m in args.modes.split(",") if m]
    args.cc = [c for c in args.cc.split(",") if c]
    args.loads = [load for load in args.loads.split(",") if load]
    if set(args.loads) - set(LOADS):
        parser.error(f"unknown load(s) {', '.join(sorted(set(args.loads) - set(LOADS)))}; choose from {', '.join(LOADS)}")
    unknown = set(args.modes) - set(MODES)
    if unknown:
        parser.error(f"unknown mode(s) {', '.join(sorted(unknown))}; choose from {', '.join(MODES)}")
    if args.duration < OMIT_S + 5:
        parser.error(f"--duration must be at least {OMIT_S + 5} s")
    if os.geteuid() != 0:
        sys.exit("fair_share: needs root (tools/lab creates network namespaces)")
    if not lab_is_down():
        sys.exit("fair_share: a lab is up (tools/lab status); it may be someone's test run. "
                 "Try again once tools/lab status says the lab is down.")

    # SIGTERM ends the run like Ctrl-C: through the finally below, which takes the lab down.
    signal.signal(signal.SIGTERM, interrupt)
    configs = {"off": config_without_shaping(), "uncounted": config_without_counting()}
    rows = []
    try:
        for mode in args.modes:
            rows += run_mode(mode, args, configs)
    except KeyboardInterrupt:
        print("fair_share: interrupted; taking the lab down", file=sys.stderr)
        raise SystemExit(130)
    finally:
        lab("down", check=False)
        for path in configs.values():
            os.unlink(path)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    print(f"modem A {args.down} down / {args.up} up, 400 ms buffer; lan2 8 TCP flows and lan3 1 flow, "
          f"{args.duration} s (first {OMIT_S} s omitted); lan1 pings {INET} every "
          f"{PING_INTERVAL_S} s; fairgate workers: {args.workers}\n")
    print(table(rows, args))


if __name__ == "__main__":
    main()
