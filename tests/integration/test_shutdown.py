"""Stopping fairgate returns every mbuf to its pool, with traffic in flight and packets
waiting for ARP. Runs last for each worker count and brings the lab's fairgate back."""
import os
import time

from conftest import RUN, wait_for


def test_shutdown_returns_every_mbuf(lab):
    # Traffic in flight and packets held for a neighbour that will never answer.
    iperf = lab.popen("lan3", "iperf3", "-c", "192.0.2.10", "-p", "5203", "-t", "5", "-u", "-b", "50M")
    pinger = lab.popen("inet", "/usr/bin/python3", "-c",
                       "import socket,time\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
                       "for i in range(40): s.sendto(b'x',('198.51.100.2',9999)); time.sleep(0.05)")
    time.sleep(1.5)
    in_use = lab.result("stats")["mempool"]["in_use"]
    assert in_use >= 0
    reply = lab.ctl("shutdown")
    assert reply["result"]["stopping"] is True
    exit_file = os.path.join(RUN, "fairgate.exit")
    assert wait_for(lambda: os.path.exists(exit_file), timeout=20), "fairgate did not exit"
    with open(exit_file) as status:
        assert status.read().splitlines()[0].strip() == "0"
    log = lab.fairgate_log()
    assert "missing: 0" in log, log[-2000:]
    for process in (iperf, pinger):
        process.kill()
        process.wait()
    lab.up()  # the next tests of this worker count get a running gateway again
