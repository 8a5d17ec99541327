"""Fair sharing through the lab: bufferbloat without shaping, latency and an even split between
heavy users with shaping on, per-subscriber ceilings changed at run time, BORROW=0 caps, and an
idle subscriber's share going to the others and coming back.

Modem A (the path every LAN host takes to the internet) runs at 20 Mbit/s down and 5 Mbit/s up
with its deep (400 ms) buffer, and fairgate is told so at run time with `link-rate`; it then
shapes to 90 % of that. Each test restores the modem and the link rate of conf/lab.json and
deletes the subscribers it added, also when it fails.

Targets (the fair-sharing issue) assume loss-based TCP: `iperf3 -C cubic`. BBR, this machine's
default, is also run and printed; see test_shaping_with_bbr for what is asserted about it.
"""
import json
import os
import statistics
import tempfile
import time

import pytest

from conftest import ROOT

INET = "192.0.2.10"
PORTS = {"lan1": 5201, "lan2": 5202, "lan3": 5203}
MODEM_DOWN, MODEM_UP = "20mbit", "5mbit"
MODEM_DOWN_BPS, MODEM_UP_BPS = 20e6, 5e6
OMIT_S = 3          # iperf3 -O: slow start does not count
LOAD_S = 12         # measured seconds of each loaded run
# A full-sized TCP segment carries 1448 bytes of payload (MSS 1460 less 12 of timestamps) in a
# frame that the scheduler counts as 1514 bytes plus 24 of Ethernet framing (the port's default
# overhead): goodput is at most this fraction of a shaped (wire) rate.
PAYLOAD_FRACTION = 1448 / (1514 + 24)
# fairgate shapes at 90 % of the link (5 % margin, 5 % for the gateway's own traffic): the most
# goodput the subscribers can have, as a fraction of the modem rate.
SHAPED_PAYLOAD = 0.90 * PAYLOAD_FRACTION

with open(os.path.join(ROOT, "conf", "lab.json")) as _f:
    _WAN0 = next(p for p in json.load(_f)["ports"] if p["name"] == "wan0")
DEFAULT_LINK = (_WAN0.get("rate_down", "50mbit"), _WAN0.get("rate_up", "10mbit"))


# ------------------------------------------------------------------------------------------
# Helpers

def percentile(values, p):
    ordered = sorted(values)
    rank = max(1, min(len(ordered), -(-p * len(ordered) // 100)))
    return ordered[rank - 1]


def ping_start(lab, count):
    return lab.popen("lan1", "ping", "-n", "-i", "0.2", "-c", str(count), "-W", "3", INET)


def ping_stats(process, timeout=90):
    out, err = process.communicate(timeout=timeout)
    rtts = [float(w[5:]) for line in out.splitlines() for w in line.split() if w.startswith("time=")]
    assert rtts, f"no ping reply: {out}{err}"
    return {"p50": statistics.median(rtts), "p99": percentile(rtts, 99), "replies": len(rtts)}


def iperf_start(lab, host, *args, cc="cubic", seconds=LOAD_S + OMIT_S, omit=OMIT_S):
    return lab.popen(host, "iperf3", "-c", INET, "-p", str(PORTS[host]), "-C", cc, "-t", str(seconds),
                     "-O", str(omit), "-J", *args)


def iperf_report(host, process, timeout=120):
    out, err = process.communicate(timeout=timeout)
    assert process.returncode == 0, f"iperf3 on {host}: {err}{out[-1500:]}"
    return json.loads(out)


def bidir_goodput(report):
    """Receiver-side bits/s of a --bidir run, measured seconds only: (download, upload)."""
    end = report["end"]
    return end["sum_received_bidir_reverse"]["bits_per_second"], end["sum_received"]["bits_per_second"]


def received(report):
    return report["end"]["sum_received"]["bits_per_second"]


def per_second(report):
    """Received bits/s of each one-second interval of a -R run, omitted ones included, in order."""
    return [i["sum"]["bits_per_second"] for i in report["intervals"]]


def kill_all(processes):
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait()


def mbit(bps):
    return f"{bps / 1e6:.2f}"


def loaded_run(lab, cc):
    """lan1 pings idle, then while lan2 (8 flows) and lan3 (1 flow) load both directions."""
    idle = ping_stats(ping_start(lab, 40))
    clients = {"lan2": iperf_start(lab, "lan2", "-P", "8", "--bidir", cc=cc),
               "lan3": iperf_start(lab, "lan3", "-P", "1", "--bidir", cc=cc)}
    try:
        time.sleep(OMIT_S + 1)
        loaded = ping_stats(ping_start(lab, int((LOAD_S - 2) / 0.2)))
        goodput = {host: bidir_goodput(iperf_report(host, client)) for host, client in clients.items()}
    finally:
        kill_all(clients.values())
    time.sleep(2)   # queues drain before whatever runs next
    down = {h: g[0] for h, g in goodput.items()}
    up = {h: g[1] for h, g in goodput.items()}
    result = {"idle": idle, "loaded": loaded, "down": down, "up": up,
              "share_down": down["lan2"] / sum(down.values()), "share_up": up["lan2"] / sum(up.values()),
              "total_down": sum(down.values()) / MODEM_DOWN_BPS, "total_up": sum(up.values()) / MODEM_UP_BPS}
    print(f"\n[{cc}, {lab.workers} worker(s)] ping idle p50 {idle['p50']:.2f} p99 {idle['p99']:.2f} ms, "
          f"loaded p50 {loaded['p50']:.2f} p99 {loaded['p99']:.2f} ms; download lan2 {mbit(down['lan2'])} "
          f"lan3 {mbit(down['lan3'])} Mbit/s (lan2 {result['share_down']:.0%}, total {result['total_down']:.0%} "
          f"of {MODEM_DOWN}); upload lan2 {mbit(up['lan2'])} lan3 {mbit(up['lan3'])} Mbit/s "
          f"(lan2 {result['share_up']:.0%}, total {result['total_up']:.0%} of {MODEM_UP})")
    return result


# ------------------------------------------------------------------------------------------
# Fixtures

@pytest.fixture
def modem(lab):
    """Modem A at 20/5 Mbit/s and fairgate told so; everything back to the defaults afterwards,
    and every subscriber the test added (names appended to the yielded list) deleted."""
    added = []
    try:
        lab.run("modem", "a", "down", MODEM_DOWN, "up", MODEM_UP)
        lab.ctl("link-rate", "port=wan0", f"down={MODEM_DOWN}", f"up={MODEM_UP}")
        for host in PORTS:   # neighbours, NAT mappings and automatic subscribers before anything is timed
            lab.exec(host, "ping", "-c", "2", "-i", "0.2", INET, check=False)
        yield added
    finally:
        for name in added:
            lab.ctl("subscriber-del", f"name={name}", check=False)
        lab.run("modem", "a", "default", check=False)
        lab.ctl("link-rate", "port=wan0", f"down={DEFAULT_LINK[0]}", f"up={DEFAULT_LINK[1]}", check=False)


@pytest.fixture
def borrow_off_lab(lab):
    """The lab restarted with conf/lab.json plus qos.borrow = false and a subscriber for lan2 with
    a 4 Mbit/s guarantee down and 1 Mbit/s up; at the end the session's default lab is back."""
    with open(os.path.join(ROOT, "conf", "lab.json")) as f:
        config = json.load(f)
    config.setdefault("qos", {})["borrow"] = False
    config["subscribers"] = [{"name": "capped", "addresses": ["10.10.0.12"],
                              "down": {"rate": "4mbit"}, "up": {"rate": "1mbit"}}]
    fd, path = tempfile.mkstemp(prefix="fairgate-borrow-off-", suffix=".json", dir="/tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(config, f, indent=1)
    try:
        lab.run("up", "--workers", str(lab.workers), "--config", path, timeout=180)
        yield lab
    finally:
        os.unlink(path)
        lab.up()


# ------------------------------------------------------------------------------------------
# Scenarios

def test_bufferbloat_without_shaping(lab, modem):
    # fairgate shapes at 9 Gbit/s: never the bottleneck, so the modem's 400 ms buffer fills.
    lab.ctl("link-rate", "port=wan0", "down=10gbit", "up=10gbit")
    run = loaded_run(lab, "cubic")
    # The premise of the other scenarios: without shaping, the lab shows bufferbloat.
    assert run["loaded"]["p50"] > run["idle"]["p50"] + 50, run
    assert run["loaded"]["p99"] > run["idle"]["p99"] + 50, run


def test_shaping_keeps_latency_and_splits_evenly(lab, modem):
    run = loaded_run(lab, "cubic")
    # lan1's ping stays within 10 ms of idle, median and 99th percentile.
    assert run["loaded"]["p50"] <= run["idle"]["p50"] + 10, run
    assert run["loaded"]["p99"] <= run["idle"]["p99"] + 10, run
    # 8 flows or 1: each heavy user gets half of what the two get, within 10 % of the link.
    assert 0.40 <= run["share_down"] <= 0.60, run
    assert 0.40 <= run["share_up"] <= 0.60, run
    # Total goodput. The issue asks for 90 % of the modem rate, which a gateway shaping below the
    # link cannot give: counted with its Ethernet framing, a full segment carries 1448 of 1538
    # bytes, so at fairgate's 90 % (95 % while the gateway's own share is idle) the most is 84.7 %
    # (89.4 %) of the modem rate in goodput, less the other direction's ACKs on the same link
    # (about 0.45 Mbit/s of the 5 up here). Measured 79-87 % down, 79-84 % up. Asserted: 85 % of
    # what the guaranteed 90 % can carry, so a shaper that wastes its rate is caught.
    assert run["total_down"] >= 0.85 * SHAPED_PAYLOAD, run
    assert run["total_up"] >= 0.85 * SHAPED_PAYLOAD, run


def test_shaping_with_bbr(lab, modem):
    # BBR paces at the bandwidth it measures and mostly ignores loss. On the download path
    # fairgate's shaper sits after the modem: the BBR flows of two users, probing at 1.25 times
    # their estimates, now and then overshoot the 10 % between fairgate's rate and the modem's,
    # and the modem's buffer holds a burst (seen: up to 45 kB, 18 ms at 20 Mbit/s, while the
    # modem's upload queue stayed empty). lan1's ping waits behind it: the median stays at idle,
    # the 99th percentile measured 20-22 ms above it. No gateway after the modem can prevent
    # that, so the 99th percentile is printed, not asserted; the split, which the scheduler
    # alone decides, and the median are.
    run = loaded_run(lab, "bbr")
    assert run["loaded"]["p50"] <= run["idle"]["p50"] + 10, run
    assert 0.40 <= run["share_down"] <= 0.60, run
    assert 0.40 <= run["share_up"] <= 0.60, run


def test_subscriber_ceil_holds_and_changes_at_run_time(lab, modem):
    pid = lab.run("exec", "fg", "cat", "/run/fairgate-lab/fairgate.pid").stdout.strip()
    modem.append("capped")   # deleted at the end, also on failure
    lab.ctl("subscriber-add", "name=capped", 'addresses=["10.10.0.12"]', 'down={"rate": "3mbit", "ceil": "6mbit"}')
    measured = {}
    for ceil_mbit in (6, 3):
        if ceil_mbit != 6:
            lab.ctl("subscriber-set", "name=capped", f'down={{"rate": "1500kbit", "ceil": "{ceil_mbit}mbit"}}')
        report = iperf_report("lan2", iperf_start(lab, "lan2", "-R", "-P", "4", seconds=10))
        goodput = received(report)
        expected = ceil_mbit * 1e6 * PAYLOAD_FRACTION
        sub = next(s for s in lab.result("subscribers") if s["name"] == "capped")
        measured[ceil_mbit] = (goodput, expected, sub["down"])
        print(f"\n[{lab.workers} worker(s)] ceil {ceil_mbit} Mbit/s: lan2 alone gets {mbit(goodput)} Mbit/s of "
              f"goodput (payload at the ceil: {mbit(expected)}); fairgate reports {sub['down']}")
    for ceil_mbit, (goodput, expected, down) in measured.items():
        assert down["ceil_bps"] == ceil_mbit * 1e6, down
        assert abs(goodput - expected) <= 0.05 * expected, (ceil_mbit, goodput, expected)
    # Both ceilings took effect without a restart.
    assert lab.run("exec", "fg", "cat", "/run/fairgate-lab/fairgate.pid").stdout.strip() == pid


def test_borrow_off_caps_every_subscriber(borrow_off_lab):
    lab = borrow_off_lab
    for host in PORTS:
        lab.exec(host, "ping", "-c", "2", "-i", "0.2", INET, check=False)
    # With the link otherwise idle, lan2 alone still gets only its 4 Mbit/s guarantee: no borrowing.
    # Everything is measured and printed first, then asserted.
    lan2 = {}
    for direction, args, cap in (("download", ["-R"], 4e6), ("upload", [], 1e6)):
        goodput = received(iperf_report("lan2", iperf_start(lab, "lan2", *args, "-P", "4", seconds=10)))
        lan2[direction] = (goodput, cap * PAYLOAD_FRACTION)
        print(f"\n[{lab.workers} worker(s)] BORROW=0, lan2 alone, {direction}: {mbit(goodput)} Mbit/s "
              f"(cap {mbit(cap)} Mbit/s, payload at the cap {mbit(cap * PAYLOAD_FRACTION)})")
    # lan3 has no plan: an automatic subscriber, capped at its equal share of what is left.
    lan3 = received(iperf_report("lan3", iperf_start(lab, "lan3", "-R", "-P", "4", seconds=10)))
    sub = next(s for s in lab.result("subscribers") if "10.10.0.13" in s["addresses"])
    print(f"[{lab.workers} worker(s)] BORROW=0, lan3 (automatic) alone, download: {mbit(lan3)} Mbit/s; "
          f"fairgate reports {sub['down']}")
    for direction, (goodput, expected) in lan2.items():
        assert abs(goodput - expected) <= 0.05 * expected, (direction, goodput, expected)
    assert sub["down"]["ceil_bps"] == sub["down"]["rate_bps"], sub
    assert lan3 <= sub["down"]["ceil_bps"] * PAYLOAD_FRACTION * 1.05, (lan3, sub)


def test_idle_subscribers_share_goes_to_others_and_comes_back(lab, modem):
    # lan2 downloads for 30 s; lan3 downloads in seconds 0-10 and 20-30 and is idle in between.
    lan2 = iperf_start(lab, "lan2", "-R", seconds=30, omit=0)
    lan3_runs = []
    try:
        start = time.monotonic()
        lan3_runs.append(iperf_start(lab, "lan3", "-R", seconds=10, omit=0))
        first = iperf_report("lan3", lan3_runs[0])
        time.sleep(max(0.0, 20 - (time.monotonic() - start)))
        lan3_runs.append(iperf_start(lab, "lan3", "-R", seconds=10, omit=0))
        second = iperf_report("lan3", lan3_runs[1])
        both = iperf_report("lan2", lan2)
    finally:
        kill_all([lan2, *lan3_runs])
    lan2_s, lan3_first, lan3_second = per_second(both), per_second(first), per_second(second)
    print(f"\n[{lab.workers} worker(s)] lan2 per second: {[round(x / 1e6, 1) for x in lan2_s]}\n"
          f"lan3: {[round(x / 1e6, 1) for x in lan3_first]} ... {[round(x / 1e6, 1) for x in lan3_second]}")
    assert len(lan2_s) >= 29 and len(lan3_first) >= 9 and len(lan3_second) >= 9, (both["end"], first["end"], second["end"])
    # 3 s after each change for TCP and the scheduler to settle.
    phases = {"shared": (3, 9), "alone": (14, 19), "back": (24, 29)}
    lan2_mean = {name: statistics.mean(lan2_s[a:b]) for name, (a, b) in phases.items()}
    lan3_mean = {"shared": statistics.mean(lan3_first[3:9]), "back": statistics.mean(lan3_second[4:9])}
    shared_total = lan2_mean["shared"] + lan3_mean["shared"]
    back_total = lan2_mean["back"] + lan3_mean["back"]
    assert 0.40 <= lan2_mean["shared"] / shared_total <= 0.60, (lan2_mean, lan3_mean)
    # lan3 idle: lan2 gets about the whole link.
    assert lan2_mean["alone"] >= 0.90 * shared_total, (lan2_mean, lan3_mean)
    # lan3 back: half each again.
    assert 0.40 <= lan3_mean["back"] / back_total <= 0.60, (lan2_mean, lan3_mean)
