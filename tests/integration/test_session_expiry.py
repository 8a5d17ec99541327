"""NAT sessions expire: with short timeouts the table drains to zero once traffic stops."""
import json
import os
import tempfile

from conftest import ROOT, wait_for


def test_session_table_drains_after_timeouts(lab):
    with open(os.path.join(ROOT, "conf", "lab.json")) as base:
        config = json.load(base)
    config["nat"]["timeouts"] = {"tcp_established_s": 6, "tcp_transitory_s": 3, "udp_s": 3, "icmp_s": 3}
    with tempfile.NamedTemporaryFile("w", suffix=".json", prefix="fairgate-expiry-", delete=False) as short:
        json.dump(config, short)
    try:
        lab.run("up", "--config", short.name, "--workers", str(lab.workers), timeout=180)
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
        os.unlink(short.name)
        lab.up()  # back to conf/lab.json for the tests that follow
