#!/usr/bin/env python3
"""End-to-end forwarding: the same traffic through the lab twice, once through fairgate and
once through the Linux kernel routing in fairgate's namespace on the same veths, and the
ratios of packets per second and CPU per packet. Modems are switched off for both runs.

    sudo perf/e2e_forward.py [--seconds 10] [--workers 1]

Traffic per run: (1) UDP, 64-byte payloads, unlimited rate, from lan1, lan2 and lan3 at once
to the inet namespace: forwarded packets per second at the receivers; (2) one TCP stream from
lan1: throughput. CPU: busy jiffies of the whole machine during the run (senders, receivers,
veths and the forwarder alike), per forwarded packet; and fairgate's own CPU time.
"""
import argparse
import json
import os
import subprocess
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
LAB = os.path.join(ROOT, "tools", "lab")
HOSTS = {"lan1": 5201, "lan2": 5202, "lan3": 5203}


def lab(*args, timeout=180):
    return subprocess.run([LAB, *args], check=True, capture_output=True, text=True, timeout=timeout).stdout


def machine_busy_jiffies():
    with open("/proc/stat") as stat:
        fields = [int(x) for x in stat.readline().split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle


def process_cpu_seconds(pid):
    if not pid:
        return 0.0
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def fairgate_pid():
    try:
        with open("/run/fairgate-lab/fairgate.pid") as pid:
            return int(pid.read().strip())
    except (OSError, ValueError):
        return 0


def udp_run(seconds):
    clients = {h: subprocess.Popen([LAB, "exec", h, "iperf3", "-c", "192.0.2.10", "-p", str(p), "-u", "-b", "0",
                                    "-l", "64", "-t", str(seconds), "-J"], stdout=subprocess.PIPE, text=True)
               for h, p in HOSTS.items()}
    received = 0
    for client in clients.values():
        report = json.loads(client.communicate(timeout=seconds + 60)[0])
        summary = report["end"]["sum"]
        received += summary["packets"] - summary["lost_packets"]
    return received


def tcp_run(seconds):
    out = lab("exec", "lan1", "iperf3", "-c", "192.0.2.10", "-p", "5201", "-t", str(seconds), "-J",
              timeout=seconds + 60)
    return json.loads(out)["end"]["sum_received"]["bits_per_second"]


def measure(mode, seconds, workers):
    lab("down")
    lab("up", "--kernel") if mode == "kernel" else lab("up", "--workers", str(workers))
    lab("modem", "a", "off")
    lab("modem", "b", "off")
    lab("exec", "lan1", "ping", "-c", "2", "192.0.2.10")  # resolve neighbours first
    pid = fairgate_pid() if mode == "fairgate" else 0
    busy0, cpu0, t0 = machine_busy_jiffies(), process_cpu_seconds(pid), time.monotonic()
    packets = udp_run(seconds)
    elapsed = time.monotonic() - t0
    busy = (machine_busy_jiffies() - busy0) / os.sysconf("SC_CLK_TCK")
    forwarder_cpu = process_cpu_seconds(pid) - cpu0 if pid else None
    tcp_bps = tcp_run(seconds)
    lab("down")
    return {"pps": packets / elapsed, "cpu_us_per_packet": busy / packets * 1e6,
            "forwarder_cpu_s": forwarder_cpu, "tcp_gbps": tcp_bps / 1e9}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    fairgate = measure("fairgate", args.seconds, args.workers)
    kernel = measure("kernel", args.seconds, args.workers)
    print(f"| metric | fairgate ({args.workers} worker) | Linux kernel | ratio fairgate/kernel |")
    print("|---|---|---|---|")
    print(f"| UDP 64-byte packets forwarded per second | {fairgate['pps']:.0f} | {kernel['pps']:.0f} | "
          f"{fairgate['pps'] / kernel['pps']:.2f} |")
    print(f"| machine CPU per forwarded packet (us) | {fairgate['cpu_us_per_packet']:.2f} | "
          f"{kernel['cpu_us_per_packet']:.2f} | {fairgate['cpu_us_per_packet'] / kernel['cpu_us_per_packet']:.2f} |")
    print(f"| TCP single stream (Gbit/s) | {fairgate['tcp_gbps']:.2f} | {kernel['tcp_gbps']:.2f} | "
          f"{fairgate['tcp_gbps'] / kernel['tcp_gbps']:.2f} |")
    print(f"\nfairgate process CPU during the UDP run: {fairgate['forwarder_cpu_s']:.1f} s of {args.seconds} s")


if __name__ == "__main__":
    main()
