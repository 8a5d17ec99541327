"""Malformed frames are dropped and counted by reason, and forwarding keeps working."""
import os

from conftest import ROOT, wait_for

SENDER = os.path.join(ROOT, "tests", "integration", "send_frames.py")
KINDS = ["ipv4_bad_checksum", "ipv4_bad_version", "ipv4_bad_ihl", "ipv4_bad_total_length", "ipv4_truncated",
         "ipv4_bad_source", "ipv6_unsupported", "vlan_unknown", "vlan_stacked", "ethertype_unsupported",
         "arp_malformed", "l2_not_for_us", "ttl_exceeded"]
COUNT = 3


def test_malformed_frames_counted_by_reason(lab):
    lan0_mac = lab.port("lan0")["mac"]
    before = lab.drops()
    dropped_before = lab.port("lan0")["rx_dropped"]
    lab.exec("lan1", "/usr/bin/python3", SENDER, "eth0", lan0_mac, str(COUNT), *KINDS, timeout=120)

    def all_counted():
        after = lab.drops()
        return all(after[kind] >= before[kind] + COUNT for kind in KINDS) and after
    after = wait_for(all_counted, timeout=10)
    assert after, {kind: lab.drops()[kind] - before[kind] for kind in KINDS}
    # arp_malformed is counted by the management thread; the rest by the workers, per port too.
    assert lab.port("lan0")["rx_dropped"] >= dropped_before + COUNT * (len(KINDS) - 2)

    out = lab.exec("lan1", "ping", "-c", "3", "-i", "0.2", "-W", "2", "192.0.2.10").stdout
    assert "3 received" in out
