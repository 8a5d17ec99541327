"""The control socket and fairgatectl: every command answers; bad requests get errors naming
what was wrong, and the connection and the gateway keep working."""
import json
import socket

from conftest import RUN

SOCKET = f"{RUN}/fairgate.sock"
COMMANDS = {"version", "command-list", "ports", "stats", "neighbors", "shutdown"}


def test_version_and_command_list(lab):
    version = lab.result("version")
    assert version["name"] == "fairgate" and version["dpdk"].startswith("DPDK")
    assert version["workers"] == lab.workers
    listed = {row["name"]: row["help"] for row in lab.result("command-list")}
    assert COMMANDS <= set(listed)
    assert all(listed[name] for name in COMMANDS)


def test_ports_report_links_and_addresses(lab):
    ports = {p["name"]: p for p in lab.result("ports")}
    assert set(ports) == {"lan0", "wan0", "wan1"}
    assert ports["lan0"]["address"] == "10.10.0.1/24" and ports["lan0"]["role"] == "lan"
    assert ports["wan0"]["gateway"] == "198.51.100.1" and ports["wan1"]["gateway"] == "203.0.113.1"
    assert all(p["link_up"] for p in ports.values())
    assert all(p["rx_queues"] == lab.workers for p in ports.values())
    lab.exec("lan1", "ping", "-c", "2", "-i", "0.2", "192.0.2.10")
    assert lab.port("lan0")["rx_packets"] > 0 and lab.port("wan0")["tx_packets"] > 0


def test_stats_sum_over_workers(lab):
    stats = lab.result("stats")
    assert len(stats["workers"]) == lab.workers
    assert {s["stage"] for s in stats["stages"]} == {"parse", "guard", "classify", "nat", "p2p", "flow", "l3", "sched", "tx"}
    assert stats["mempool"]["size"] > 0 and stats["mempool"]["in_use"] < stats["mempool"]["size"]
    assert stats["management"]["arp_announcements_sent"] >= 3  # one gratuitous ARP per port


def test_human_tables(lab):
    out = lab.run("ctl", "ports").stdout
    assert "lan0" in out and "wan1" in out and "rx_packets" in out.splitlines()[0]


def test_errors_name_the_problem(lab):
    unknown = lab.ctl("no-such-command", check=False)
    assert not unknown["ok"] and "no-such-command" in unknown["error"]
    bad_port = lab.ctl("neighbors", "port=nope", check=False)
    assert not bad_port["ok"] and bad_port["error"].startswith("args.port")
    extra = lab.ctl("version", "colour=blue", check=False)
    assert not extra["ok"] and extra["error"].startswith("args.colour")


def test_malformed_requests_keep_connection(lab):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        client.connect(SOCKET)
        client.settimeout(5)
        reader = client.makefile("r")
        for bad, expected in ((b"this is not json\n", "request"), (b"[1,2]\n", "request"),
                              (b'{"args": {}}\n', "command"), (b'{"command": 7}\n', "command"),
                              (b'{"command": "ports", "args": 5}\n', "args")):
            client.sendall(bad)
            reply = json.loads(reader.readline())
            assert reply["ok"] is False and reply["error"].startswith(expected), reply
        # Two requests in one write, then one split across writes: all answered in order.
        client.sendall(b'{"command": "version"}\n{"command": "stats"}\n{"command": "ve')
        client.sendall(b'rsion"}\n')
        replies = [json.loads(reader.readline()) for _ in range(3)]
        assert all(r["ok"] for r in replies)
        assert "uptime_s" in replies[1]["result"] and replies[2]["result"]["name"] == "fairgate"
    out = lab.exec("lan1", "ping", "-c", "1", "-W", "2", "192.0.2.10").stdout
    assert "1 received" in out
