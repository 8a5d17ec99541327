"""Sends malformed frames from a lab host to fairgate, for the drop-counter scenarios.

usage: send_frames.py IFACE DST_MAC COUNT KIND...
Each KIND is sent COUNT times; the kinds are named after the drop counter they must raise.
"""
import sys

from scapy.all import ARP, Dot1Q, Ether, ICMP, IP, IPv6, Raw, UDP, conf, sendp

conf.verb = 0
SRC_IP, DST_IP = "10.10.0.11", "192.0.2.10"


def frames(dst_mac, src_mac):
    eth = Ether(dst=dst_mac, src=src_mac)
    good_ip = IP(src=SRC_IP, dst=DST_IP) / UDP(sport=4000, dport=7) / Raw(b"x" * 16)
    return {
        "ipv4_bad_checksum": eth / IP(src=SRC_IP, dst=DST_IP, chksum=0x1234) / UDP() / Raw(b"x" * 16),
        "ipv4_bad_version": eth / IP(version=5, src=SRC_IP, dst=DST_IP) / UDP() / Raw(b"x" * 16),
        "ipv4_bad_ihl": eth / IP(ihl=4, src=SRC_IP, dst=DST_IP) / UDP() / Raw(b"x" * 16),
        "ipv4_bad_total_length": eth / IP(len=12, src=SRC_IP, dst=DST_IP) / UDP() / Raw(b"x" * 16),
        "ipv4_truncated": eth / IP(len=1000, src=SRC_IP, dst=DST_IP) / UDP() / Raw(b"x" * 16),
        "ipv4_bad_source": eth / IP(src="224.0.0.5", dst=DST_IP) / UDP() / Raw(b"x" * 16),
        "ipv6_unsupported": eth / IPv6(src="fe80::1", dst="fe80::2") / UDP() / Raw(b"x" * 16),
        "vlan_unknown": eth / Dot1Q(vlan=42) / good_ip,
        "vlan_stacked": eth / Dot1Q(vlan=1) / Dot1Q(vlan=2) / good_ip,
        "ethertype_unsupported": Ether(dst=dst_mac, src=src_mac, type=0x88CC) / Raw(b"\x02\x07" + b"\x00" * 40),
        # An ARP message claiming 8-byte hardware addresses.
        "arp_malformed": eth / ARP(hwlen=8, psrc=SRC_IP, pdst="10.10.0.1") / Raw(b"\x00" * 8),
        "l2_not_for_us": Ether(dst="02:00:00:00:77:77", src=src_mac) / good_ip,
        "ttl_exceeded": eth / IP(src=SRC_IP, dst=DST_IP, ttl=1) / ICMP() / Raw(b"x" * 16),
        # A LAN host claiming an address outside the LAN.
        "spoofed_source": eth / IP(src="203.0.113.77", dst=DST_IP) / UDP(sport=4000, dport=7) / Raw(b"x" * 16),
    }


def main():
    iface, dst_mac, count, kinds = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]
    from scapy.arch import get_if_hwaddr
    table = frames(dst_mac, get_if_hwaddr(iface))
    for kind in kinds:
        if kind not in table:
            sys.exit(f"unknown frame kind {kind}; known: {', '.join(table)}")
        sendp(table[kind], iface=iface, count=count)


if __name__ == "__main__":
    main()
