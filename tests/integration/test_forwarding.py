"""IPv4 forwarding through fairgate between the LAN hosts and the internet namespace."""
import json
import re

from conftest import wait_for

INET = "192.0.2.10"
LAN_HOSTS = {"lan1": ("10.10.0.11", 5201), "lan2": ("10.10.0.12", 5202), "lan3": ("10.10.0.13", 5203)}


def test_lan_host_pings_gateway(lab):
    out = lab.exec("lan1", "ping", "-c", "3", "-i", "0.2", "-W", "2", "10.10.0.1").stdout
    assert "3 received" in out


def test_lan_host_pings_internet_through_gateway(lab):
    out = lab.exec("lan1", "ping", "-c", "3", "-i", "0.2", "-W", "2", INET).stdout
    assert "3 received" in out
    # The reply crossed ispa and fairgate: two routers, each took one off the TTL.
    assert re.search(r"ttl=62", out), out


def test_internet_cannot_reach_lan_directly(lab):
    # The LAN is private: the internet has no route to it, only NAT brings replies back.
    out = lab.exec("inet", "ping", "-c", "1", "-W", "1", "10.10.0.12", check=False)
    assert out.returncode != 0


def test_iperf3_tcp_from_every_lan_host(lab):
    # All three at once, both directions in turn: uploads through modem A's 10 Mbit/s.
    for reverse in ([], ["-R"]):
        clients = {host: lab.popen(host, "iperf3", "-c", INET, "-p", str(port), "-t", "3", "-J", *reverse)
                   for host, (_, port) in LAN_HOSTS.items()}
        for host, client in clients.items():
            out, err = client.communicate(timeout=60)
            assert client.returncode == 0, f"{host}: {err}{out[-2000:]}"
            report = json.loads(out)
            received = report["end"]["sum_received"]["bytes"]
            assert received > 100_000, f"{host} {reverse}: only {received} bytes"


def test_ttl_exceeded_answered_by_gateway(lab):
    before = lab.drops()["ttl_exceeded"]
    out = lab.exec("lan1", "ping", "-c", "1", "-t", "1", "-W", "2", INET, check=False).stdout
    assert "From 10.10.0.1" in out and "Time to live exceeded" in out, out
    assert lab.drops()["ttl_exceeded"] == before + 1


def test_unresolvable_neighbor_counted(lab):
    # conf/lab.json forwards UDP 9999 to 10.10.0.99, which does not exist: fairgate holds the
    # packets, asks ARP three times, then drops them as neighbor_unresolved.
    before = lab.drops()["neighbor_unresolved"]
    lab.exec("inet", "/usr/bin/python3", "-c",
             "import socket,time\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
             "for i in range(3): s.sendto(b'x',('198.51.100.2',9999)); time.sleep(0.2)")
    neighbors = {row["address"]: row for row in lab.result("neighbors", "port=lan0")}
    assert neighbors["10.10.0.99"]["state"] == "incomplete"
    assert neighbors["10.10.0.99"]["held_packets"] >= 1
    assert wait_for(lambda: lab.drops()["neighbor_unresolved"] >= before + 3, timeout=10)


def test_neighbors_learned(lab):
    lab.exec("lan2", "ping", "-c", "1", "-W", "2", INET)
    rows = lab.result("neighbors")
    by_address = {row["address"]: row for row in rows}
    assert by_address["10.10.0.12"]["state"] == "reachable"
    assert by_address["10.10.0.12"]["port"] == "lan0"
    assert by_address["198.51.100.1"]["state"] == "reachable"
    # A filter by port returns only that port's neighbours.
    assert all(row["port"] == "wan0" for row in lab.result("neighbors", "port=wan0"))
