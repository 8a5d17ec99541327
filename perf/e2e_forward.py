#!/usr/bin/env python3
"""End-to-end NAT: the same traffic through the lab twice, once through fairgate's NAT gateway
(conf/lab.json, pipeline "gateway": parse, guard, nat, l3, tx) and once through the Linux kernel
in fairgate's namespace masquerading with nftables on the same veths (`tools/lab up --kernel`),
and the ratios of packets per second and CPU per packet. Both runs have LAB_ISP_ROUTES_LAN=0:
the ISPs and inet have no route to the LAN, so traffic only works if it is translated. Modems
are switched off for both runs.

    sudo perf/e2e_forward.py [--seconds 10] [--workers 1]

Traffic per run: (1) UDP, 64-byte payloads, unlimited rate, from lan1, lan2 and lan3 at once
to the inet namespace: translated and forwarded packets per second at the receivers; (2) one
TCP stream from lan1: throughput. CPU: busy jiffies of the whole machine during the UDP run
(senders, receivers, veths and the NAT alike), per forwarded packet; and fairgate's own CPU time.

The script takes the lab down and up twice, so it refuses to start while a lab is up (someone
may be using it): `tools/lab status` must say the lab is down.
"""
import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
LAB = os.path.join(ROOT, "tools", "lab")
HOSTS = {"lan1": 5201, "lan2": 5202, "lan3": 5203}


# The NAT comparison needs the ISPs without routes to the LAN, whatever the caller's environment.
LAB_ENV = {**os.environ, "LAB_ISP_ROUTES_LAN": "0"}


def lab(*args, timeout=180):
    done = subprocess.run([LAB, *args], capture_output=True, text=True, timeout=timeout, env=LAB_ENV)
    if done.returncode != 0:
        sys.exit(f"e2e: tools/lab {' '.join(args)} failed ({done.returncode}):\n{done.stderr}{done.stdout}")
    return done.stdout


def lab_is_down():
    return subprocess.run([LAB, "status"], capture_output=True, text=True, env=LAB_ENV).returncode == 3


def check_nat(mode):
    """Fails unless the lab that is up translates: fairgate runs a pipeline with a nat stage,
    or the kernel has the masquerade table."""
    if mode == "kernel":
        rules = lab("exec", "fg", "nft", "list", "table", "ip", "fglab")
        if "masquerade" not in rules:
            sys.exit("e2e: kernel mode has no nftables masquerade rule")
        return
    stats = json.loads(lab("ctl", "--json", "stats"))
    stats = stats.get("result", stats)
    if not any(stage["stage"] == "nat" for stage in stats["stages"]):
        sys.exit("e2e: fairgate's pipeline has no nat stage (is conf/lab.json the gateway pipeline?)")


def nat_stage_packets():
    stats = json.loads(lab("ctl", "--json", "stats"))
    stats = stats.get("result", stats)
    return sum(stage["packets"] for stage in stats["stages"] if stage["stage"] == "nat")


def machine_busy_jiffies():
    with open("/proc/stat") as stat:
        fields = [int(x) for x in stat.readline().split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle


def process_cpu_seconds(pid):
    """(user, system) CPU seconds of a process so far."""
    if not pid:
        return (0.0, 0.0)
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) / os.sysconf("SC_CLK_TCK"), int(fields[12]) / os.sysconf("SC_CLK_TCK"))


def fairgate_pid():
    try:
        with open("/run/fairgate-lab/fairgate.pid") as pid:
            return int(pid.read().strip())
    except (OSError, ValueError):
        return 0


def udp_run(seconds):
    clients = {h: subprocess.Popen([LAB, "exec", h, "iperf3", "-c", "192.0.2.10", "-p", str(p), "-u", "-b", "0",
                                    "-l", "64", "-t", str(seconds), "-J"], stdout=subprocess.PIPE, text=True,
                                    env=LAB_ENV)
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


def measure(mode, seconds, workers, config=None):
    lab("down")
    try:
        return run_mode(mode, seconds, workers, config)
    finally:
        lab("down")


def run_mode(mode, seconds, workers, config):
    if mode == "kernel":
        lab("up", "--kernel")
    else:
        lab("up", "--workers", str(workers), *(["--config", config] if config else []))
    lab("modem", "a", "off")
    lab("modem", "b", "off")
    lab("exec", "lan1", "ping", "-c", "2", "192.0.2.10")  # resolve neighbours first
    check_nat(mode)
    pid = fairgate_pid() if mode == "fairgate" else 0
    nat0 = nat_stage_packets() if mode == "fairgate" else 0
    busy0, cpu0, t0 = machine_busy_jiffies(), process_cpu_seconds(pid), time.monotonic()
    packets = udp_run(seconds)
    elapsed = time.monotonic() - t0
    busy = (machine_busy_jiffies() - busy0) / os.sysconf("SC_CLK_TCK")
    cpu1 = process_cpu_seconds(pid)
    forwarder_cpu = (cpu1[0] - cpu0[0], cpu1[1] - cpu0[1]) if pid else None
    nat_packets = nat_stage_packets() - nat0 if mode == "fairgate" else None
    tcp_bps = tcp_run(seconds)
    return {"packets": packets, "pps": packets / elapsed, "cpu_us_per_packet": busy / packets * 1e6,
            "forwarder_cpu_s": forwarder_cpu, "nat_packets": nat_packets, "tcp_gbps": tcp_bps / 1e9}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--config", help="fairgate's lab config (default conf/lab.json), e.g. other port drivers")
    args = parser.parse_args()
    if not lab_is_down():
        sys.exit("e2e: a lab is up (tools/lab status); it may be someone's test run. "
                 "Try again once tools/lab status says the lab is down.")
    fairgate = measure("fairgate", args.seconds, args.workers, args.config)
    kernel = measure("kernel", args.seconds, args.workers)
    print(f"| metric | fairgate NAT ({args.workers} worker) | Linux kernel, nftables masquerade | "
          f"ratio fairgate/kernel |")
    print("|---|---|---|---|")
    print(f"| UDP 64-byte packets translated and forwarded per second | {fairgate['pps']:.0f} | {kernel['pps']:.0f} | "
          f"{fairgate['pps'] / kernel['pps']:.2f} |")
    print(f"| machine CPU per forwarded packet (us) | {fairgate['cpu_us_per_packet']:.2f} | "
          f"{kernel['cpu_us_per_packet']:.2f} | {fairgate['cpu_us_per_packet'] / kernel['cpu_us_per_packet']:.2f} |")
    print(f"| TCP single stream (Gbit/s) | {fairgate['tcp_gbps']:.2f} | {kernel['tcp_gbps']:.2f} | "
          f"{fairgate['tcp_gbps'] / kernel['tcp_gbps']:.2f} |")
    user, system = fairgate["forwarder_cpu_s"]
    print(f"\nfairgate process CPU during the {args.seconds} s UDP run: {user + system:.1f} s "
          f"({(user + system) / fairgate['packets'] * 1e6:.2f} us per forwarded packet), of which user "
          f"{user:.1f} s ({user / fairgate['packets'] * 1e6:.2f} us per packet) and system {system:.1f} s "
          f"(TX kicks and the kernel work they trigger downstream, idle sleeps); "
          f"packets through its nat stage: {fairgate['nat_packets']}")


if __name__ == "__main__":
    main()
