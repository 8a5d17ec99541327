"""NAT44 through the lab: the ISPs have no route to the LAN, so everything here crosses NAT."""
import json
import os
import time

from conftest import ROOT, wait_for

INET = "192.0.2.10"
WAN = "198.51.100.2"
HOSTS = {"lan1": 5201, "lan2": 5202, "lan3": 5203}


def test_udp_both_ways_from_every_lan_host(lab):
    for reverse in ([], ["-R"]):
        clients = {h: lab.popen(h, "iperf3", "-c", INET, "-p", str(p), "-u", "-b", "2M", "-t", "2", "-J", *reverse)
                   for h, p in HOSTS.items()}
        for host, client in clients.items():
            out, err = client.communicate(timeout=60)
            assert client.returncode == 0, f"{host} {reverse}: {err}{out[-1500:]}"
            summary = json.loads(out)["end"]["sum"]
            assert summary["packets"] > 100 and summary["lost_percent"] < 5, (host, reverse, summary)


def test_time_exceeded_from_beyond_the_gateway(lab):
    # TTL 1 dies at fairgate, 2 at ispa (an ICMP error that NAT must translate back), 3 arrives.
    out1 = lab.exec("lan2", "ping", "-c", "1", "-t", "1", "-W", "2", INET, check=False).stdout
    assert "From 10.10.0.1" in out1 and "Time to live exceeded" in out1, out1
    out2 = lab.exec("lan2", "ping", "-c", "1", "-t", "2", "-W", "2", INET, check=False).stdout
    assert "From 198.51.100.1" in out2 and "Time to live exceeded" in out2, out2
    out3 = lab.exec("lan2", "ping", "-c", "1", "-t", "3", "-W", "2", INET).stdout
    assert "1 received" in out3


def test_same_source_port_from_two_hosts(lab):
    clients = [lab.popen(h, "iperf3", "-c", INET, "-p", str(HOSTS[h]), "-u", "-b", "1M", "-t", "2", "--cport", "40000",
                         "-J") for h in ("lan1", "lan2")]
    for client in clients:
        out, err = client.communicate(timeout=60)
        assert client.returncode == 0, err + out[-1500:]
    # Two sessions inside :40000, with two different outside ports.
    rows = lab.result("nat-sessions", "proto=udp", "port=40000", "page_size=1000")["sessions"]
    outside = {row["inside"]: row["outside"] for row in rows if row["inside"].endswith(":40000")}
    assert {"10.10.0.11:40000", "10.10.0.12:40000"} <= set(outside), rows
    assert outside["10.10.0.11:40000"] != outside["10.10.0.12:40000"]


def test_endpoint_independent_mapping_seen_by_stun(lab):
    out = lab.exec("lan3", "stun", INET, check=False).stdout
    assert "Independent Mapping" in out, out
    # Filtering is address-and-port dependent by default.
    assert "Port Dependent Filter" in out, out


def serve_once(lab, host, port):
    server = lab.popen(host, "iperf3", "-s", "-1", "-p", str(port))
    wait_for(lambda: str(port) in lab.exec(host, "ss", "-ltn").stdout, timeout=5)
    return server


def test_port_forward_reachable_from_internet(lab):
    # conf/lab.json forwards 8080 (TCP and UDP) to lan3:8080.
    server = serve_once(lab, "lan3", 8080)
    try:
        out = lab.exec("inet", "iperf3", "-c", WAN, "-p", "8080", "-t", "1", "-J", timeout=60).stdout
        assert json.loads(out)["end"]["sum_received"]["bytes"] > 0
        rows = lab.result("nat-sessions", "subscriber=10.10.0.13", "proto=tcp", "page_size=1000")["sessions"]
        assert any(r["kind"] == "forward" and r["outside"] == f"{WAN}:8080" for r in rows), rows
    finally:
        server.kill()
        server.wait()


def test_port_forward_hairpin_from_lan(lab):
    server = serve_once(lab, "lan3", 8080)
    try:
        out = lab.exec("lan1", "iperf3", "-c", WAN, "-p", "8080", "-t", "1", "-J", timeout=60).stdout
        assert json.loads(out)["end"]["sum_received"]["bytes"] > 0
        rows = lab.result("nat-sessions", "subscriber=10.10.0.11", "proto=tcp", "page_size=1000")["sessions"]
        assert any(r["kind"] == "hairpin" for r in rows), rows
    finally:
        server.kill()
        server.wait()


def test_port_forward_added_and_removed_at_run_time(lab):
    before = lab.result("portfwd-list")
    added = lab.result("portfwd-add", "protocol=tcp", "external=9100", "internal=10.10.0.12", "internal_port=9100")
    assert len(added) == len(before) + 1
    overlap = lab.ctl("portfwd-add", "protocol=both", "external=9090-9110", "internal=10.10.0.11", check=False)
    assert not overlap["ok"] and "overlaps port forward" in overlap["error"]
    server = serve_once(lab, "lan2", 9100)
    try:
        out = lab.exec("inet", "iperf3", "-c", WAN, "-p", "9100", "-t", "1", "-J", timeout=60).stdout
        assert json.loads(out)["end"]["sum_received"]["bytes"] > 0
    finally:
        server.kill()
        server.wait()
    rule = next(r["rule"] for r in lab.result("portfwd-list") if r["external"] == "9100")
    after = lab.result("portfwd-del", f"rule={rule}")
    assert len(after) == len(before)
    # Gone: a new connection to 9100 is no longer forwarded.
    refused = lab.exec("inet", "iperf3", "-c", WAN, "-p", "9100", "-t", "1", "--connect-timeout", "1000",
                       check=False, timeout=30)
    assert refused.returncode != 0


def test_unsolicited_and_spoofed_traffic_dropped(lab):
    before = lab.drops()
    sender = os.path.join(ROOT, "tests", "integration", "send_frames.py")
    mac = lab.port("lan0")["mac"]
    lab.exec("lan1", "/usr/bin/python3", sender, "eth0", mac, "3", "spoofed_source")
    assert wait_for(lambda: lab.drops()["spoofed_source"] >= before["spoofed_source"] + 3)
    # Unsolicited UDP to the WAN address on an unmapped, unforwarded port: not delivered to the LAN.
    lab.exec("inet", "/usr/bin/python3", "-c",
             "import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
             f"[s.sendto(b'x',('{WAN}',p)) for p in range(20000,20010)]")
    stats = lab.result("nat-stats")
    assert stats["sessions"] >= 0 and stats["capacity"] > 0


def test_fragmented_datagrams_cross_nat(lab):
    # 4000-byte echoes leave lan1 in three fragments; the reply comes back fragmented too.
    before = lab.result("stats")["management"]["fragments_sent"]
    out = lab.exec("lan1", "ping", "-c", "3", "-i", "0.3", "-s", "4000", "-W", "2", INET).stdout
    assert "3 received" in out, out
    assert lab.result("stats")["management"]["fragments_sent"] >= before + 6
