"""Fair sharing through the lab: bufferbloat without shaping, latency and an even split between
heavy users with shaping on, per-subscriber ceilings changed at run time, BORROW=0 caps, and an
idle subscriber's share going to the others and coming back.

Modem A (the path every LAN host takes to the internet) runs at 20 Mbit/s down and 5 Mbit/s up
with its deep (400 ms) buffer, and fairgate is told so at run time with `link-rate`; it then
shapes to the link less conf/lab.json's margin (5 %, the default). Each test restores the modem and the link rate of
conf/lab.json and deletes the subscribers it added, also when it fails.

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
PING_INTERVAL_S = 0.05  # 20 pings a second: enough samples that the 99th percentile is not the maximum
# A full-sized TCP segment carries 1448 bytes of payload (MSS 1460 less 12 of timestamps) in a
# 1514-byte frame, which is what the lab's tbf modems count (no preamble or FCS: conf/lab.json
# gives its WANs overhead 0): goodput is at most this fraction of a shaped (wire) rate.
PAYLOAD_FRACTION = 1448 / 1514
# The download's ACKs share the upload link: one 66-byte frame (no SACK blocks) for every two
# 1448-byte segments received (delayed ACK), as a fraction of the download's goodput.
ACK_WIRE_PER_GOODPUT = 66 / (2 * 1448)
with open(os.path.join(ROOT, "conf", "lab.json")) as _f:
    _LAB = json.load(_f)
# fairgate shapes the subscribers to the link less qos.rate_sub_percent (the gateway's own share
# is lent to them while it is idle): the most goodput they can have, as a fraction of the modem
# rate.
SHAPED_PAYLOAD = (100 - _LAB["qos"].get("rate_sub_percent", 5)) / 100 * PAYLOAD_FRACTION

_WAN0 = next(p for p in _LAB["ports"] if p["name"] == "wan0")
DEFAULT_LINK = (_WAN0.get("rate_down", "50mbit"), _WAN0.get("rate_up", "10mbit"))


# ------------------------------------------------------------------------------------------
# Helpers

def percentile(values, p):
    ordered = sorted(values)
    rank = max(1, min(len(ordered), -(-p * len(ordered) // 100)))
    return ordered[rank - 1]


def ping_start(lab, count):
    return lab.popen("lan1", "ping", "-n", "-i", str(PING_INTERVAL_S), "-c", str(count), "-W", "3", INET)


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


def wire_bps(lab, host, iface, counter, seconds):
    """Bits/s of whole frames counted by an interface of a lab host (rx_bytes or tx_bytes) over
    `seconds`: what a shaper's rate is about, retransmissions and headers included, measured
    outside fairgate. The lab's veths count frames as the modems do (no preamble or FCS)."""
    def read():
        return int(lab.exec(host, "cat", f"/sys/class/net/{iface}/statistics/{counter}").stdout)
    before, start = read(), time.monotonic()
    time.sleep(seconds)
    after, end = read(), time.monotonic()
    return (after - before) * 8 / (end - start)


# Where a LAN host's download and upload arrive: its own eth0, and inet's link to modem A.
DOWNLOAD_WIRE = {host: (host, "eth0", "rx_bytes") for host in PORTS}
UPLOAD_WIRE = ("inet", "ispa", "rx_bytes")
WIRE_WINDOW_S = 6


def capped_run(lab, host, args, wire, offered_bps):
    """One host alone sending UDP at `offered_bps` through a cap: (received goodput, wire
    bits/s in the middle of the run). UDP because a cap is about what fairgate lets through:
    TCP's own efficiency below a cap (printed by the callers) is another matter."""
    client = iperf_start(lab, host, *args, "-u", "-b", str(int(offered_bps)), seconds=OMIT_S + WIRE_WINDOW_S + 2)
    time.sleep(OMIT_S)
    rate = wire_bps(lab, *wire, WIRE_WINDOW_S)
    return received(iperf_report(host, client)), rate


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
    idle = ping_stats(ping_start(lab, 100))
    clients = {"lan2": iperf_start(lab, "lan2", "-P", "8", "--bidir", cc=cc),
               "lan3": iperf_start(lab, "lan3", "-P", "1", "--bidir", cc=cc)}
    try:
        time.sleep(OMIT_S + 1)
        loaded = ping_stats(ping_start(lab, int((LOAD_S - 2) / PING_INTERVAL_S)))
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
        # These scenarios are about one link. Without shaping the modem's buffer delays the WAN
        # probes past their timeout, and failover would move everyone to B: wan0 is held up.
        lab.ctl("wan-set", "link=wan0", "state=up")
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
        lab.ctl("wan-set", "link=wan0", "state=auto", check=False)


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
        lab.ctl("wan-set", "link=wan0", "state=up")  # one link, as in the modem fixture
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
    # Total goodput, asked: 90 % of the modem rate. A full segment carries 1448 of the 1514 bytes
    # the modem counts, so shaping 5 % below the link carries at most 90.9 % of the modem rate in
    # goodput (measured 90 %). Upload shares its link with the download's ACKs (about 0.4 Mbit/s,
    # 8 % of the 5 up). Asserted: 95 % of what the shaped rate can carry, so a shaper that wastes
    # its rate is caught without the test riding on noise.
    assert run["total_down"] >= 0.95 * SHAPED_PAYLOAD, run
    ack_share = run["total_down"] * MODEM_DOWN_BPS * ACK_WIRE_PER_GOODPUT / MODEM_UP_BPS
    assert run["total_up"] >= 0.95 * (SHAPED_PAYLOAD - ack_share), run


def test_shaping_with_bbr(lab, modem):
    # BBR paces at the bandwidth it measures and mostly ignores loss. On the download path
    # fairgate's shaper sits after the modem, and BBR's flows keep sending some 10 % more than
    # fairgate lets through, which fairgate drops. Were those drops not counted against the
    # download rate, the modem would see fairgate's rate plus the drops, more than its own, and
    # keep a standing queue (measured at 5 %: lan1's median ping 61-62 ms and lan2 taking 74-77 %
    # of the download in 2 of 6 runs). Counted (qos.count_download_drops), the senders see less
    # delivered and the modem's queue stays empty but for bursts: the median stays at idle and the
    # users split evenly, asserted. The 99th percentile is printed, not asserted: about 10 s into
    # the flows BBR's ProbeRTT re-measures their RTT with fairgate's queue in it, the flows'
    # windows grow at once and the modem's buffer holds up to 100-200 kB for a second (lan1's p99
    # 17-73 ms); no gateway after the modem can take that burst back. The upload split is
    # printed too (40-53 %): 8 BBR flows in one pipe send in bursts that leave it idle between
    # them. The issue asks for BBR to be reported; the targets are cubic's.
    run = loaded_run(lab, "bbr")
    charged = [link.get("charged_drop_bytes", 0) for port in lab.result("qos")["ports"]
               if port["direction"] == "download" for link in port["links"]]
    print(f"[bbr, {lab.workers} worker(s)] downloads dropped and counted against the links: {charged} bytes")
    assert run["loaded"]["p50"] <= run["idle"]["p50"] + 10, run
    assert 0.40 <= run["share_down"] <= 0.60, run
    assert sum(charged) > 0, "BBR's drops were counted"


def test_subscriber_ceil_holds_and_changes_at_run_time(lab, modem):
    pid = lab.run("exec", "fg", "cat", "/run/fairgate-lab/fairgate.pid").stdout.strip()
    modem.append("capped")   # deleted at the end, also on failure
    lab.ctl("subscriber-add", "name=capped", 'addresses=["10.10.0.12"]', 'down={"rate": "3mbit", "ceil": "6mbit"}')
    measured = {}
    for ceil_mbit in (6, 3):
        if ceil_mbit != 6:
            lab.ctl("subscriber-set", "name=capped", f'down={{"rate": "1500kbit", "ceil": "{ceil_mbit}mbit"}}')
        goodput, wire = capped_run(lab, "lan2", ["-R"], DOWNLOAD_WIRE["lan2"], 2 * ceil_mbit * 1e6)
        sub = next(s for s in lab.result("subscribers") if s["name"] == "capped")
        measured[ceil_mbit] = (wire, sub["down"])
        print(f"\n[{lab.workers} worker(s)] ceil {ceil_mbit} Mbit/s: lan2 alone receives {mbit(wire)} Mbit/s "
              f"of frames, {mbit(goodput)} of goodput; fairgate reports {sub['down']}")
    # The ceil holds within 5 %: the frames lan2 receives, counted by its own interface.
    for ceil_mbit, (wire, down) in measured.items():
        assert down["ceil_bps"] == ceil_mbit * 1e6, down
        assert abs(wire - ceil_mbit * 1e6) <= 0.05 * ceil_mbit * 1e6, (ceil_mbit, wire)
    # Both ceilings took effect without a restart.
    assert lab.run("exec", "fg", "cat", "/run/fairgate-lab/fairgate.pid").stdout.strip() == pid


def test_borrow_off_caps_every_subscriber(borrow_off_lab):
    lab = borrow_off_lab
    for host in PORTS:
        lab.exec(host, "ping", "-c", "2", "-i", "0.2", INET, check=False)
    # With the link otherwise idle, lan2 alone still gets only its 4 Mbit/s guarantee: no borrowing.
    # Everything is measured and printed first, then asserted.
    lan2 = {}
    for direction, args, cap, wire in (("download", ["-R"], 4e6, DOWNLOAD_WIRE["lan2"]),
                                       ("upload", [], 1e6, UPLOAD_WIRE)):
        goodput, rate = capped_run(lab, "lan2", args, wire, 2 * cap)
        lan2[direction] = (rate, cap)
        print(f"\n[{lab.workers} worker(s)] BORROW=0, lan2 alone, {direction}: {mbit(rate)} Mbit/s of frames, "
              f"{mbit(goodput)} of goodput (cap {mbit(cap)} Mbit/s)")
    # lan3 has no plan: an automatic subscriber, capped at its equal share of what is left.
    goodput, lan3 = capped_run(lab, "lan3", ["-R"], DOWNLOAD_WIRE["lan3"], 2 * MODEM_DOWN_BPS)
    sub = next(s for s in lab.result("subscribers") if "10.10.0.13" in s["addresses"])
    print(f"[{lab.workers} worker(s)] BORROW=0, lan3 (automatic) alone, download: {mbit(lan3)} Mbit/s of frames, "
          f"{mbit(goodput)} of goodput; fairgate reports {sub['down']}")
    for direction, (rate, cap) in lan2.items():
        assert abs(rate - cap) <= 0.05 * cap, (direction, rate, cap)
    assert sub["down"]["ceil_bps"] == sub["down"]["rate_bps"], sub
    assert lan3 <= sub["down"]["ceil_bps"] * 1.05, (lan3, sub)


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
