"""tools/classify-pcap: fairgate's P2P recognition over captures no one here wrote.

The captures and nDPI's per-flow labels live next to the project, in ../shared/pcaps; the tests
skip, saying so, when that directory is absent. The recall targets count the flows nDPI
recognised from their payload (confidence "DPI"); the false-positive target counts every flow of
the captures of ordinary traffic (nonp2p/).
"""
import json
import os
import subprocess

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TOOL = os.path.join(ROOT, "tools", "classify-pcap")
BINARY = os.environ.get("CLASSIFY_PCAP_BIN") or os.path.join(ROOT, "build", "classify-pcap")
PCAPS = os.path.normpath(os.path.join(ROOT, "..", "shared", "pcaps"))
TRUTH = os.path.join(PCAPS, "ground_truth_flows.tsv")

needs_captures = pytest.mark.skipif(not os.path.isfile(TRUTH),
                                    reason=f"no captures and ground truth at {PCAPS} (../shared/pcaps)")


def classify(*args, check=True):
    if not os.access(BINARY, os.X_OK):
        pytest.fail(f"{BINARY} is not built (ninja -C build classify-pcap)")
    env = dict(os.environ, CLASSIFY_PCAP_BIN=BINARY)
    result = subprocess.run([TOOL, *args], capture_output=True, text=True, env=env, timeout=600)
    if check:
        assert result.returncode == 0, result.stderr
    return result


@pytest.fixture(scope="module")
def report():
    return json.loads(classify("--truth", TRUTH, "--flows", "none", "--json", PCAPS).stdout)


@needs_captures
@pytest.mark.parametrize("protocol", ["bittorrent", "edonkey", "gnutella"])
def test_recall_of_payload_labelled_flows(report, protocol):
    recall = report["truth"]["recall"][protocol]
    assert recall["flows"] > 0
    assert recall["recall"] >= 0.95, f"{protocol}: {recall['recognised']} of {recall['flows']} flows recognised"


@needs_captures
def test_false_positives_on_ordinary_traffic(report):
    fp = report["truth"]["false_positives"]
    # Every flow of every nonp2p capture counts, and there are a few hundred of them.
    assert fp["flows"] >= 200
    assert fp["rate"] < 0.005, "labelled P2P: " + json.dumps(fp["list"], indent=1)


@needs_captures
def test_every_capture_is_read(report):
    assert report["files"], "no capture found"
    for f in report["files"]:
        assert "error" not in f, f
        assert f["packets"] > 0, f
    assert report["inspector"]["scan_errors"] == 0
    assert report["inspector"]["packets_per_direction"] == 8


@needs_captures
def test_per_flow_verdicts_name_the_deciding_signature():
    out = json.loads(classify("--flows", "p2p", "--json", os.path.join(PCAPS, "p2p", "bittorrent.pcap")).stdout)
    assert out["totals"]["flows"] == 24
    assert len(out["flows"]) == out["totals"]["p2p"] == 24
    assert {f["verdict"] for f in out["flows"]} == {"bittorrent"}
    assert {f["decided_by"] for f in out["flows"]} <= {"bt-handshake", "peer cache"}
    text = classify("--truth", TRUTH, os.path.join(PCAPS, "p2p", "edonkey.pcap")).stdout
    assert "edk-" in text and "[nDPI 36/eDonkey, DPI]" in text
    assert "Confusion over the flows labelled from their payload" in text


@needs_captures
def test_switching_protocols_and_udp_off():
    pcap = os.path.join(PCAPS, "p2p", "targusdataspeed_false_positives.pcap")  # two DHT flows over UDP
    assert json.loads(classify("--json", pcap).stdout)["totals"]["p2p"] == 2
    assert json.loads(classify("--json", "--no-udp", pcap).stdout)["totals"]["p2p"] == 0
    assert json.loads(classify("--json", "--protocols", "edk gnu", pcap).stdout)["totals"]["p2p"] == 0


def test_bad_options_and_files_are_reported(tmp_path):
    bad = classify("--packets", "0", "x.pcap", check=False)
    assert bad.returncode == 2 and "--packets" in bad.stderr
    bad = classify("--protocols", "napster", "x.pcap", check=False)
    assert bad.returncode == 2 and 'unknown P2P protocol "napster"' in bad.stderr
    signatures = tmp_path / "sigs.json"
    signatures.write_text('{"signatures": [{"name": "x", "protocol": "bittorrent", "transport": "tcp", '
                          '"pattern": "(", "comment": "c"}]}')
    bad = classify("--signatures", str(signatures), "x.pcap", check=False)
    assert bad.returncode == 2
    assert 'signatures[0].pattern: bittorrent signature "x" does not compile' in bad.stderr
    garbage = tmp_path / "garbage.pcap"
    garbage.write_bytes(b"\xd4\xc3\xb2\xa1" + os.urandom(200))
    result = classify("--json", str(garbage), check=False)
    # A header then nothing readable: libpcap says so; the tool reports it and carries on.
    assert result.returncode in (0, 1)
    assert json.loads(result.stdout)["files"][0]["path"] == str(garbage)
