"""tools/sched-graph: fairgate's scheduling hierarchy as Graphviz dot.

--config asks fairgate itself for the tree (its numbers are the hierarchy unit tests' business);
the dot output is read back with a small parser (node ids, labels, edges) so its structure can be checked without
Graphviz installed.
"""
import copy
import json
import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TOOL = os.path.join(ROOT, "tools", "sched-graph")
IMPORT = os.path.join(ROOT, "tools", "fairnat-import")
DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
FAIRGATE = os.path.join(ROOT, "build", "fairgate")
FAIRGATECTL = os.path.join(ROOT, "build", "fairgatectl")
with open(os.path.join(ROOT, "conf", "lab.json")) as lab_file:
    LAB = json.load(lab_file)

CLASSES = [{"name": "interactive", "queues": 1, "priority": 0}, {"name": "normal", "queues": 1, "priority": 1},
           {"name": "bulk", "queues": 1, "priority": 2}, {"name": "p2p", "queues": 4, "priority": 3}]

QUOTED = r'"((?:[^"\\]|\\.)*)"'
NODE_RE = re.compile(rf"^  {QUOTED} \[label={QUOTED}(.*)\];$")
EDGE_RE = re.compile(rf"^  {QUOTED} -> {QUOTED};$")


def unescape(text):
    return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), text)


def parse_dot(text):
    """{node id: label}, [(parent, child)] of sched-graph's output; fails on any other line."""
    lines = text.splitlines()
    assert lines[0] == "digraph fairgate_scheduler {" and lines[-1] == "}"
    nodes, edges = {}, []
    for line in lines[1:-1]:
        if line in ("  rankdir=LR;", '  node [fontname="Helvetica", fontsize=10];'):
            continue
        node, edge = NODE_RE.match(line), EDGE_RE.match(line)
        assert node or edge, f"not a node or edge: {line!r}"
        if node:
            node_id = unescape(node.group(1))
            assert node_id not in nodes, f"node {node_id} twice"
            nodes[node_id] = unescape(node.group(2))
        else:
            edges.append((unescape(edge.group(1)), unescape(edge.group(2))))
    return nodes, edges


def graph(*args, env=None):
    return subprocess.run([TOOL, *args], capture_output=True, text=True, timeout=30, env=env)


def shaped_config():
    """conf/lab.json with rates and framing on both WANs, qos and two subscribers."""
    config = copy.deepcopy(LAB)
    config["ports"][1].update({"rate_down": "10mbit", "rate_up": "2mbit", "overhead": "pppoe"})
    config["ports"][2].update({"rate_down": "20mbit", "rate_up": 1000, "overhead": 8, "mpu": 64})  # 1000 kbit/s
    config["qos"] = {"download": True, "upload": True, "rate_sub_percent": 5, "rate_local_percent": 5,
                     "borrow": True, "user_ceil_down": "20mbit"}
    config["subscribers"] = [
        {"name": "user7", "addresses": ["10.10.0.7/32"], "down": {"ceil": "4mbit"}},
        {"name": "user9", "addresses": ["10.10.0.9", "10.10.0.32/28"], "up": {"rate": "300kbit"}},
    ]
    return config


def test_config_tree_is_fairgates_own(tmp_path):
    """--config draws exactly what `fairgate --qos-tree` computes (the numbers themselves are
    checked by the unit tests of src/qos/hierarchy.cpp)."""
    path = tmp_path / "config.json"
    path.write_text(json.dumps(shaped_config()))
    printed = subprocess.run([FAIRGATE, "--config", str(path), "--qos-tree"], capture_output=True, text=True,
                             timeout=60)
    assert printed.returncode == 0, printed.stderr
    tree_path = tmp_path / "tree.json"
    tree_path.write_text(printed.stdout)
    from_config, from_tree = graph("--config", str(path)), graph("--tree", str(tree_path))
    assert from_config.returncode == 0, from_config.stderr
    assert from_config.stdout == from_tree.stdout
    nodes, _ = parse_dot(from_config.stdout)
    # Downloads are shaped per WAN, each in a subport with that link's rate and framing.
    assert nodes["download:lan0/internet via wan0"].startswith("internet via wan0\nrate 9 Mbit/s\nframing pppoe")
    assert nodes["download:lan0/internet via wan1"] == "internet via wan1\nrate 18 Mbit/s\nframing custom (+8 B, mpu 64 B)"
    assert nodes["download:lan0/internet via wan0/user7"] == "user7\nrate 4 Mbit/s\nceil 4 Mbit/s"
    assert nodes["download:lan0/internet via wan1/user7"] == "user7\nrate 4 Mbit/s\nceil 4 Mbit/s"


@pytest.mark.parametrize("change, field", [
    (lambda c: c["ports"][2].pop("rate_down"), "ports[2].rate_down: required when qos.download is on"),
    (lambda c: c["ports"][1].pop("rate_up"), "ports[1].rate_up: required when qos.upload is on"),
    (lambda c: c["qos"].update(user_ceil_down="lots"), 'qos.user_ceil_down: "lots" is not a rate'),
])
def test_configs_it_cannot_draw(tmp_path, change, field):
    config = shaped_config()
    change(config)
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    result = graph("--config", str(path))
    assert result.returncode == 2
    assert result.stderr.startswith(f"sched-graph: {field}"), result.stderr


# --- the dot output ---------------------------------------------------------------------------

@pytest.fixture
def imported_config(tmp_path):
    """The README example through fairnat-import, on conf/lab.json with one WAN."""
    base = copy.deepcopy(LAB)
    base["ports"] = base["ports"][:2]
    base.pop("wan", None)  # one WAN: nothing to fail over to
    base_path = tmp_path / "base.json"
    base_path.write_text(json.dumps(base))
    result = subprocess.run([IMPORT, os.path.join(DATA, "readme-example.conf"), "--base", str(base_path)],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    path = tmp_path / "fairgate.json"
    path.write_text(result.stdout)
    return path


def test_config_graph_structure(imported_config):
    result = graph("--config", str(imported_config))
    assert result.returncode == 0, result.stderr
    nodes, edges = parse_dot(result.stdout)
    # 2 ports (lan0 download, wan0 upload), 2 subports each, 5 pipes under each "internet" (the
    # README's four users and "unknown"), 4 classes per pipe.
    assert len(nodes) == 2 + 4 + 10 + 40
    assert len(edges) == len(nodes) - 2
    children = {}
    for parent, child in edges:
        assert parent in nodes and child in nodes
        children.setdefault(parent, []).append(child)
    assert sorted(child for _, child in edges) == sorted(set(nodes) - {"download:lan0", "upload:wan0"})
    assert children["download:lan0"] == ["download:lan0/internet", "download:lan0/local"]
    assert len(children["download:lan0/internet"]) == 5
    assert [nodes[c] for c in children["upload:wan0/internet/user7"]] == [
        "interactive\nprio 0, 1 queue", "normal\nprio 1, 1 queue", "bulk\nprio 2, 3 queues", "p2p\nprio 3, 1 queue"]
    assert nodes["download:lan0/internet/unknown"] == "unknown\nrate 3.6 Mbit/s\nceil 8 Mbit/s"
    # The LAN egress runs at RATE_LAN=100mbit and shapes to the WAN link's framing; RATE_DOWN=16mbit
    # less 7 % and 3 % is what four users share; USER_CEIL_DOWN=8mbit.
    framing = "framing custom (+8 B, mpu 64 B)"
    assert nodes["download:lan0"] == "lan0\ndownload\nrate 100 Mbit/s"
    assert nodes["download:lan0/internet"] == f"internet\nrate 14.4 Mbit/s\n{framing}"
    assert nodes["download:lan0/local"] == f"local\nrate 480 kbit/s\n{framing}"
    assert nodes["download:lan0/internet/user7"] == "user7\nrate 3.6 Mbit/s\nceil 8 Mbit/s"
    # RATE_UP=2000 (kbit), USER_CEIL_UP=1500kbit; HTB_OVERHEAD=8 and HTB_MPU=64 on wan0.
    assert nodes["upload:wan0"] == "wan0\nupload\nrate 2 Mbit/s"
    assert nodes["upload:wan0/internet"] == f"internet\nrate 1.8 Mbit/s\n{framing}"
    assert nodes["upload:wan0/internet/user3"] == "user3\nrate 450 kbit/s\nceil 1.5 Mbit/s"


def test_output_is_deterministic(imported_config, tmp_path):
    first = graph("--config", str(imported_config)).stdout
    assert graph("--config", str(imported_config)).stdout == first
    out = tmp_path / "graph.dot"
    result = graph("--config", str(imported_config), "-o", str(out))
    assert result.returncode == 0 and result.stdout == ""
    assert out.read_text() == first


def test_tree_rendering():
    result = graph("--tree", os.path.join(DATA, "qos-tree.json"))
    assert result.returncode == 0, result.stderr
    # Names are quoted (and their quotes escaped), so any name is a valid node id.
    assert result.stdout == r'''digraph fairgate_scheduler {
  rankdir=LR;
  node [fontname="Helvetica", fontsize=10];
  "upload:wan0" [label="wan0\nupload\nrate 10 Mbit/s", shape="box", style="bold"];
  "upload:wan0/internet" [label="internet\nrate 9 Mbit/s", shape="box"];
  "upload:wan0" -> "upload:wan0/internet";
  "upload:wan0/internet/flat \"B\"" [label="flat \"B\"\nrate 1.23 Mbit/s\nceil 9 Mbit/s", shape="ellipse", tooltip="10.10.0.7, 10.10.0.9"];
  "upload:wan0/internet" -> "upload:wan0/internet/flat \"B\"";
  "upload:wan0/internet/flat \"B\"/interactive" [label="interactive\nprio 0, 1 queue", shape="note"];
  "upload:wan0/internet/flat \"B\"" -> "upload:wan0/internet/flat \"B\"/interactive";
  "upload:wan0/internet/flat \"B\"/p2p" [label="p2p\nprio 3, 4 queues", shape="note"];
  "upload:wan0/internet/flat \"B\"" -> "upload:wan0/internet/flat \"B\"/p2p";
  "upload:wan0/local" [label="local\nrate 500 kbit/s", shape="box"];
  "upload:wan0" -> "upload:wan0/local";
}
'''
    nodes, edges = parse_dot(result.stdout)
    assert nodes['upload:wan0/internet/flat "B"'] == 'flat "B"\nrate 1.23 Mbit/s\nceil 9 Mbit/s'


def test_tree_that_is_not_one(tmp_path):
    path = tmp_path / "tree.json"
    path.write_text(json.dumps({"ports": [{"name": "wan0"}]}))
    result = graph("--tree", str(path))
    assert result.returncode == 2
    assert "not a fairgate config or scheduling tree" in result.stderr


def test_nothing_shaped_gives_an_empty_graph_and_a_note(tmp_path):
    config = copy.deepcopy(LAB)
    config.pop("qos")
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    result = graph("--config", str(path))
    assert result.returncode == 0
    assert parse_dot(result.stdout) == ({}, [])
    assert "nothing is shaped" in result.stderr


@pytest.mark.parametrize("bps, text", [
    (0, "0 bit/s"),
    (999, "999 bit/s"),
    (1000, "1 kbit/s"),
    (1234, "1.23 kbit/s"),
    (480_000, "480 kbit/s"),
    (999_999, "1 Mbit/s"),
    (1_200_000, "1.2 Mbit/s"),
    (14_400_000, "14.4 Mbit/s"),
    (50_000_000, "50 Mbit/s"),
    (2_500_000_000, "2.5 Gbit/s"),
])
def test_human_rates(sched_graph, bps, text):
    assert sched_graph.human_rate(bps) == text


# --- a running fairgate -----------------------------------------------------------------------

def fake_fairgatectl(tmp_path, reply, status):
    """A stand-in for build/fairgatectl that records its arguments and answers `reply`."""
    script = tmp_path / "fairgatectl"
    script.write_text(f"#!{sys.executable}\n"
                      "import sys\n"
                      f"open({str(tmp_path / 'args')!r}, 'w').write(' '.join(sys.argv[1:]))\n"
                      f"sys.stdout.write({reply!r})\n"
                      f"sys.exit({status})\n")
    script.chmod(0o755)
    return {**os.environ, "FAIRGATECTL_BIN": str(script)}


def test_socket_asks_fairgatectl_for_the_qos_tree(tmp_path):
    with open(os.path.join(DATA, "qos-tree.json")) as tree_file:
        tree = json.load(tree_file)
    env = fake_fairgatectl(tmp_path, json.dumps({"ok": True, "result": tree}) + "\n", 0)
    result = graph("--socket", "/run/test/fairgate.sock", env=env)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "args").read_text() == "--socket /run/test/fairgate.sock --json qos-tree"
    assert result.stdout == graph("--tree", os.path.join(DATA, "qos-tree.json")).stdout


def test_socket_failure_exits_1_with_fairgates_message(tmp_path):
    env = fake_fairgatectl(tmp_path, json.dumps({"ok": False, "error": "no command 'qos-tree'"}) + "\n", 1)
    result = graph("--socket", "/run/test/fairgate.sock", env=env)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == "sched-graph: fairgatectl qos-tree failed (exit status 1): no command 'qos-tree'\n"


@pytest.mark.skipif(not os.access(FAIRGATECTL, os.X_OK), reason="build/fairgatectl is not built")
def test_socket_nobody_serves(tmp_path):
    env = {key: value for key, value in os.environ.items() if key != "FAIRGATECTL_BIN"}
    result = graph("--socket", str(tmp_path / "nobody.sock"), env=env)
    assert result.returncode == 1
    assert "cannot connect to" in result.stderr and "nobody.sock" in result.stderr
