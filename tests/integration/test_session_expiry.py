"""NAT sessions expire: with short timeouts the table drains to zero once traffic stops."""
import json
import os
import tempfile

from conftest import ROOT, wait_for


def lab_config(**nat):
    with open(os.path.join(ROOT, "conf", "lab.json")) as base:
        config = json.load(base)
    config["nat"].update(nat)
    with tempfile.NamedTemporaryFile("w", suffix=".json", prefix="fairgate-nat-", delete=False) as file:
        json.dump(config, file)
    return file.name


def test_flood_of_new_sessions_hits_the_quota(lab):
    path = lab_config(sessions_per_subscriber=40)
    try:
        lab.run("up", "--config", path, "--workers", str(lab.workers), timeout=180)
        # 200 new UDP flows from one host: 40 get a session, the rest are refused and counted.
        lab.exec("lan1", "/usr/bin/python3", "-c",
                 "import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
                 "[s.sendto(b'x',('192.0.2.10',p)) for p in range(30000,30200)]")
        stats = wait_for(lambda: (lambda s: s if s["quota_hits"] >= 160 else None)(lab.result("nat-stats")))
        assert stats, lab.result("nat-stats")
        assert stats["drops"]["nat_quota"] >= 160
        assert lab.result("nat-sessions", "subscriber=10.10.0.11")["total"] == 40
        # Other subscribers are not affected by lan1's flood.
        assert "1 received" in lab.exec("lan2", "ping", "-c", "1", "-W", "2", "192.0.2.10").stdout
    finally:
        os.unlink(path)


def test_session_table_drains_after_timeouts(lab):
    path = lab_config(timeouts={"tcp_established_s": 6, "tcp_transitory_s": 3, "udp_s": 3, "icmp_s": 3})
    try:
        lab.run("up", "--config", path, "--workers", str(lab.workers), timeout=180)
        lab.exec("lan1", "ping", "-c", "2", "-i", "0.2", "192.0.2.10")
        lab.exec("lan2", "iperf3", "-c", "192.0.2.10", "-p", "5202", "-t", "1", "-u", "-b", "1M")
        lab.exec("lan3", "iperf3", "-c", "192.0.2.10", "-p", "5203", "-t", "1")
        busy = lab.result("nat-stats")
        assert busy["sessions"] >= 4, busy
        drained = wait_for(lambda: lab.result("nat-stats")["sessions"] == 0, timeout=30, interval=1)
        stats = lab.result("nat-stats")
        assert drained, stats
        assert stats["expired"] >= busy["sessions"]
        assert lab.result("nat-sessions")["total"] == 0
    finally:
        os.unlink(path)
        lab.up()  # back to conf/lab.json for the tests that follow
