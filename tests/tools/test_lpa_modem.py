"""tools/lpa-modem: the LPA modem emulator, against the contract in ../shared/docs/lpa.md.

Everything goes over loopback (127.0.0.1): an emulator advertises to a UDP socket the test holds,
listens for solicitations on a port of its own (--listen-port 0), and is driven through its
control socket. Timing assertions leave generous slack: these machines are shared and noisy.
"""
import json
import math
import os
import signal
import socket
import struct
import subprocess
import time

import pytest

from conftest import TOOLS, load_tool

TOOL = os.path.join(TOOLS, "lpa-modem")
lpa = load_tool("lpa-modem")

# The 40-byte example of lpa.md: modem 42, sequence 7, one outgoing link, up, 2 Mbit/s now,
# 128 kbit/s..8 Mbit/s.
EXAMPLE = bytes.fromhex("10 01 00 28  00 00 00 2A  00 00 00 07"
                        "00 01 00 18"
                        "01 01 00 00"
                        "00 00 00 01  00 00 00 02"
                        "00 1E 84 80  00 01 F4 00  00 7A 12 00")
IP_RECVTTL = 12  # Linux's <netinet/in.h>; the socket module does not name it


def tool(*args, **kwargs):
    return subprocess.run([TOOL, *args], capture_output=True, text=True, timeout=30, **kwargs)


@pytest.fixture
def receiver():
    """The router's side: a UDP socket on loopback the emulators advertise to."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    try:
        yield sock
    finally:
        sock.close()


def receive(sock, seconds):
    """Every datagram arriving within `seconds`, decoded."""
    messages, end = [], time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            datagram, _ = sock.recvfrom(65535)
        except socket.timeout:
            break
        messages.append(lpa.decode(datagram))
    return messages


def receive_one(sock, timeout=3):
    sock.settimeout(timeout)
    datagram, _ = sock.recvfrom(65535)
    return datagram


def rate_block(message):
    (block,) = [block for block in message["blocks"] if block["type"] == 1]
    return block


class Emulator:
    def __init__(self, process, control, log):
        self.process, self.control, self.log = process, control, log

    def request(self, request):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
            client.settimeout(10)
            client.connect(self.control)
            client.sendall((json.dumps(request) + "\n").encode())
            return json.loads(client.makefile().readline())

    def answers(self):
        try:
            return self.status()["pid"] == self.process.pid
        except OSError:
            return False

    def status(self):
        reply = self.request({"command": "status"})
        assert reply["ok"], reply
        return reply["result"]

    def listen_port(self):
        return int(self.status()["listen"].rsplit(":", 1)[1])


@pytest.fixture
def emulator(tmp_path, receiver):
    """Starts emulators advertising to `receiver` (run's options may be added or overridden) and
    stops every one of them, whatever the test did."""
    started = []

    def start(*options, modem_id=42, period="1"):
        index = len(started)
        control = str(tmp_path / f"modem{index}.sock")
        log = str(tmp_path / f"modem{index}.log")
        stderr = open(tmp_path / f"modem{index}.err", "w")
        args = [TOOL, "run", "--modem-id", str(modem_id), "--interface-id", "3", "--down", "20mbit",
                "--up", "5mbit", "--to", "127.0.0.1", "--port", str(receiver.getsockname()[1]),
                "--listen-port", "0", "--period", period, "--control", control, "--log", log, *options]
        process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=stderr)
        stderr.close()
        started.append(process)
        modem = Emulator(process, control, log)
        deadline = time.monotonic() + 10
        while not modem.answers():
            assert process.poll() is None, (tmp_path / f"modem{index}.err").read_text()
            assert time.monotonic() < deadline, "the emulator did not answer on its control socket in 10 s"
            time.sleep(0.02)
        return modem

    try:
        yield start
    finally:
        for process in started:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(5)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


# --- the wire format ------------------------------------------------------------------------

def test_the_lpa_md_example_byte_for_byte():
    link = lpa.LinkInstance(1, "outgoing", True, 2_000_000, 128_000, 8_000_000)
    assert lpa.encode_advertisement(42, 7, [link]) == EXAMPLE


def test_send_puts_the_example_on_the_wire(receiver):
    result = tool("send", "--to", "127.0.0.1", "--port", str(receiver.getsockname()[1]), "--modem-id", "42",
                  "--sequence", "7", "--interface-id", "1", "--up", "2mbit", "--up-min", "128kbit", "--up-max", "8000")
    assert result.returncode == 0, result.stderr
    assert receive_one(receiver) == EXAMPLE
    assert json.loads(result.stdout) == {"to": f"127.0.0.1:{receiver.getsockname()[1]}", "length": 40,
                                         "hex": EXAMPLE.hex()}


def test_decode_reads_the_example():
    result = tool("decode", "--hex", "-", input=EXAMPLE.hex(" "))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "version": 1, "type": 1, "message": "advertisement", "total_length": 40, "modem_id": 42, "sequence": 7,
        "blocks": [{"type": 1, "length": 24, "links": 1, "rate_size": 1, "modem_flags": 0, "some": False,
                    "link_instances": [{"interface_id": 1, "flags": 2, "direction": "outgoing", "up": True,
                                        "current_bps": 2_000_000, "min_bps": 128_000, "max_bps": 8_000_000}]}]}


def test_decode_reads_raw_files(tmp_path):
    path = tmp_path / "example.bin"
    path.write_bytes(EXAMPLE)
    result = tool("decode", str(path))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["blocks"][0]["link_instances"][0]["current_bps"] == 2_000_000


def test_addresses_both_flag_and_some_flag_round_trip():
    links = [lpa.LinkInstance(9, "both", False, 10**6, ipv4="198.51.100.1", ipv6="2001:db8::1")]
    block = rate_block(lpa.decode(lpa.encode_advertisement(1, 2, links, some=True)))
    assert block["some"] and block["modem_flags"] == 0x0001
    assert block["link_instances"] == [{"interface_id": 9, "flags": 0x1C, "direction": "both", "up": False,
                                        "current_bps": 10**6, "min_bps": 0, "max_bps": 0,
                                        "ipv4": "198.51.100.1", "ipv6": "2001:db8::1"}]


def test_rate_size_is_64_bit_only_when_a_rate_needs_it():
    small = lpa.LinkInstance(1, "incoming", True, 2**32 - 1)
    big = lpa.LinkInstance(1, "outgoing", True, 2**32)
    assert rate_block(lpa.decode(lpa.encode_advertisement(1, 1, [small])))["rate_size"] == 1
    wide = lpa.decode(lpa.encode_advertisement(1, 1, [small, big]))
    assert rate_block(wide)["rate_size"] == 2
    assert [link["current_bps"] for link in rate_block(wide)["link_instances"]] == [2**32 - 1, 2**32]
    assert rate_block(lpa.decode(lpa.encode_advertisement(1, 1, [small], rate_size=2)))["rate_size"] == 2
    with pytest.raises(lpa.BadValue, match="rate size 1"):
        lpa.encode_advertisement(1, 1, [big], rate_size=1)


def test_solicitation_is_a_bare_header():
    assert lpa.encode_solicitation(42) == bytes.fromhex("10 02 00 0C 00 00 00 2A 00 00 00 00")


@pytest.mark.parametrize("text, bps", [
    ("20mbit", 20_000_000), ("512kbit", 512_000), ("2000", 2_000_000),  # a plain number is kbit/s
    ("1.5Mbit", 1_500_000), (".5gbit", 500_000_000), ("100kbps", 800_000), ("8bit", 8),
    ("0", 0), ("5gbit", 5_000_000_000), (2000, 2_000_000),
])
def test_rate_forms(text, bps):
    assert lpa.parse_rate(text) == bps


@pytest.mark.parametrize("text, reason", [
    ("20parsec", 'unknown unit "parsec"'), ("fast", "is not a rate"), ("-5", "is not a rate"),
    ("2 mbit", "is not a rate"), ("", "is not a rate"), ("20000000000gbit", "out of range"), (True, "is not a rate"),
])
def test_rates_refused(text, reason):
    with pytest.raises(lpa.BadValue, match=reason):
        lpa.parse_rate(text)


# --- malformed datagrams --------------------------------------------------------------------

def send_malformed(receiver, kind, *fields):
    result = tool("send", "--to", "127.0.0.1", "--port", str(receiver.getsockname()[1]), "--modem-id", "42",
                  "--down", "20mbit", "--up", "5mbit", "--malform", kind, *fields)
    assert result.returncode == 0, result.stderr
    return receive_one(receiver)


def good_datagram():
    """What send gives without --malform for the same fields (down 20mbit, up 5mbit)."""
    links = [lpa.LinkInstance(1, "incoming", True, 20_000_000), lpa.LinkInstance(1, "outgoing", True, 5_000_000)]
    return lpa.encode_advertisement(42, 1, links)


@pytest.mark.parametrize("kind, defect", [
    ("truncated-header", "truncated-header"), ("bad-version", "bad-version"), ("bad-type", "bad-type"),
    ("total-length", "total-length"), ("long-block", "long-block"), ("link-count", "link-count"),
    ("rate-size-0", "rate-size"), ("address-past-end", "address-past-end"),
])
def test_every_malformation_is_the_one_it_names(receiver, kind, defect):
    datagram = send_malformed(receiver, kind)
    with pytest.raises(lpa.Malformed) as error:
        lpa.decode(datagram)
    assert error.value.kind == defect
    good = good_datagram()
    total_length, = struct.unpack_from("!H", datagram, 2)
    # By hand: the named field is wrong, the lengths are true unless they are the defect.
    if kind == "truncated-header":
        assert datagram == good[:8]
        return
    block_length = struct.unpack_from("!H", datagram, 14)[0]
    if kind == "bad-version":
        assert datagram[0] >> 4 == 2 and datagram[1:] == good[1:]
    elif kind == "bad-type":
        assert datagram[1] not in (1, 2) and datagram[:1] + datagram[2:] == good[:1] + good[2:]
    elif kind == "total-length":
        assert total_length == len(datagram) + 4 and datagram[4:] == good[4:]
    elif kind == "long-block":
        assert total_length == len(datagram) and 12 + 4 + block_length == len(datagram) + 8
    elif kind == "link-count":
        assert datagram[16] == 3 and datagram[:16] + datagram[17:] == good[:16] + good[17:]
    elif kind == "rate-size-0":
        assert datagram[17] == 0 and datagram[:17] + datagram[18:] == good[:17] + good[18:]
    elif kind == "address-past-end":
        assert total_length == len(datagram) == len(good) and 12 + 4 + block_length == len(datagram)
        last_flags, = struct.unpack_from("!I", datagram, len(datagram) - 16)
        assert last_flags & 0x08  # an IPv4 address promised, and the instance ends with its rates


def test_address_past_end_drops_the_last_address_given(receiver):
    datagram = send_malformed(receiver, "address-past-end", "--link-ipv4", "198.51.100.1",
                              "--link-ipv6", "2001:db8::1")
    with pytest.raises(lpa.Malformed, match=r"flags 0x0e promise 20 address bytes, 4 remain") as error:
        lpa.decode(datagram)
    assert error.value.kind == "address-past-end"


def test_decode_names_the_defect_and_exits_1():
    result = tool("decode", "--hex", "-", input=EXAMPLE[:-1].hex())
    assert result.returncode == 1
    assert json.loads(result.stdout) == {"malformed": "total-length", "length": 39,
                                         "error": "Total Length 40 in a datagram of 39 bytes"}


def test_unknown_blocks_are_skipped_by_the_decoder(receiver):
    result = tool("send", "--to", "127.0.0.1", "--port", str(receiver.getsockname()[1]), "--modem-id", "7",
                  "--both", "1gbit", "--block", "4660:c0ffee", "--some", "--link", "down", "--sequence", "99")
    assert result.returncode == 0, result.stderr
    message = lpa.decode(receive_one(receiver))
    assert message["sequence"] == 99
    assert message["blocks"][0] == {"type": 4660, "length": 3, "hex": "c0ffee"}
    assert rate_block(message)["some"]
    assert rate_block(message)["link_instances"] == [
        {"interface_id": 1, "flags": 0x10, "direction": "both", "up": False, "current_bps": 10**9, "min_bps": 0,
         "max_bps": 0}]


@pytest.mark.parametrize("args, message", [
    (["--modem-id", "1"], "nothing to advertise"),
    (["--modem-id", "1", "--up", "20parsec"], 'argument --up: "20parsec" is not a rate: unknown unit "parsec"'),
    (["--modem-id", "1", "--up", "5gbit", "--rate-size", "1"], "does not fit rate size 1"),
    (["--modem-id", "1", "--up", "1", "--block", "1:00"], "type 1 is the Rate Block"),
    (["--modem-id", "4294967296", "--up", "1"], "argument --modem-id"),
    (["--modem-id", "1", "--up", "1", "--to", "ff02::2"], "argument --to"),
])
def test_send_refuses_bad_fields(args, message):
    result = tool("send", *args)
    assert result.returncode == 2
    assert message in result.stderr


# --- the running emulator -------------------------------------------------------------------

def test_full_advertisements_every_period(receiver, emulator):
    emulator(period="0.5")
    messages = receive(receiver, 2.5)
    # 0 s, 0.5 s ... 2.5 s: six, give or take a slow start or a late wakeup.
    assert 4 <= len(messages) <= 7
    for message in messages:
        assert message["message"] == "advertisement" and message["modem_id"] == 42
        block = rate_block(message)
        assert not block["some"] and block["rate_size"] == 1
        assert block["link_instances"] == [
            {"interface_id": 3, "flags": 0x03, "direction": "incoming", "up": True, "current_bps": 20_000_000,
             "min_bps": 0, "max_bps": 0},
            {"interface_id": 3, "flags": 0x02, "direction": "outgoing", "up": True, "current_bps": 5_000_000,
             "min_bps": 0, "max_bps": 0}]


def test_advertisements_leave_with_ttl_1(receiver, emulator):
    receiver.setsockopt(socket.IPPROTO_IP, IP_RECVTTL, 1)
    emulator()
    receiver.settimeout(3)
    _, ancillary, _, _ = receiver.recvmsg(65535, socket.CMSG_SPACE(4))
    ttls = [struct.unpack("i", data)[0] for level, kind, data in ancillary
            if level == socket.IPPROTO_IP and kind == socket.IP_TTL]
    assert ttls == [1]


def test_min_and_max_per_direction_or_shared(receiver, emulator):
    emulator("--min", "1mbit", "--max", "100mbit", "--up-max", "10mbit")
    down, up = rate_block(lpa.decode(receive_one(receiver)))["link_instances"]
    assert (down["min_bps"], down["max_bps"]) == (1_000_000, 100_000_000)
    assert (up["min_bps"], up["max_bps"]) == (1_000_000, 10_000_000)


def test_a_rate_above_32_bits_makes_every_rate_64_bit(receiver, emulator):
    emulator("--down", "5gbit")
    block = rate_block(lpa.decode(receive_one(receiver)))
    assert block["rate_size"] == 2
    assert [link["current_bps"] for link in block["link_instances"]] == [5_000_000_000, 5_000_000]


def test_rate_size_1_refuses_a_64_bit_rate():
    result = tool("run", "--modem-id", "1", "--interface-id", "1", "--down", "5gbit", "--up", "1mbit",
                  "--rate-size", "1", "--to", "127.0.0.1")
    assert result.returncode == 2
    assert "--rate-size 1: a rate above 4294967295 bit/s does not fit rate size 1" in result.stderr


def test_a_rate_change_sends_an_event_with_the_changed_link_only(receiver, emulator):
    modem = emulator(period="30")
    receive_one(receiver)  # the full advertisement at start
    result = tool("set", "--control", modem.control, "--down", "30mbit")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["changed"] == ["down"]
    block = rate_block(lpa.decode(receive_one(receiver, timeout=1)))
    assert block["some"] and block["modem_flags"] == 1
    assert block["link_instances"] == [{"interface_id": 3, "flags": 0x03, "direction": "incoming", "up": True,
                                        "current_bps": 30_000_000, "min_bps": 0, "max_bps": 0}]


def test_link_down_sends_both_instances_with_u_clear_and_the_last_rates(receiver, emulator):
    modem = emulator(period="30")
    receive_one(receiver)
    assert tool("set", "--control", modem.control, "--link", "down").returncode == 0
    block = rate_block(lpa.decode(receive_one(receiver, timeout=1)))
    assert block["some"]
    assert [(link["direction"], link["up"], link["current_bps"]) for link in block["link_instances"]] == [
        ("incoming", False, 20_000_000), ("outgoing", False, 5_000_000)]
    assert modem.status()["link"] == "down"


def test_setting_what_is_already_advertised_sends_nothing(receiver, emulator):
    modem = emulator(period="30")
    receive_one(receiver)
    result = tool("set", "--control", modem.control, "--down", "20000kbit", "--link", "up")
    assert json.loads(result.stdout)["changed"] == []
    assert receive(receiver, 0.5) == []


def test_changes_within_100_ms_are_coalesced(receiver, emulator):
    modem = emulator(period="30")
    receive_one(receiver)
    # Five changes over one connection, faster than a subprocess per change could make them.
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        client.settimeout(10)
        client.connect(modem.control)
        replies = client.makefile()
        began = time.monotonic()
        for rate in (21, 22, 23, 24, 25):
            client.sendall((json.dumps({"command": "set", "args": {"down": f"{rate}mbit"}}) + "\n").encode())
            assert json.loads(replies.readline())["ok"]
        took = time.monotonic() - began
    events = receive(receiver, 0.6)
    # One at once, the rest coalesced 100 ms later; a machine too slow to make the five changes
    # within 100 ms earns one more event per 100 ms they took.
    assert 2 <= len(events) <= 1 + math.ceil(took / 0.1)
    assert all(rate_block(event)["some"] for event in events)
    assert rate_block(events[0])["link_instances"][0]["current_bps"] == 21_000_000
    assert rate_block(events[-1])["link_instances"][0]["current_bps"] == 25_000_000
    assert modem.status()["sent"]["event"] == len(events)
    with open(modem.log) as log:
        times = [entry["time"] for entry in map(json.loads, log) if entry["kind"] == "event"]
    assert all(later - earlier >= 0.099 for earlier, later in zip(times, times[1:]))


def test_sequence_counts_every_advertisement_and_wraps(receiver, emulator):
    modem = emulator("--sequence-start", "4294967295", period="0.2")
    sequences = [message["sequence"] for message in receive(receiver, 0.5)]
    assert tool("set", "--control", modem.control, "--up", "6mbit").returncode == 0
    sequences += [message["sequence"] for message in receive(receiver, 0.5)]
    assert sequences[:2] == [4294967295, 0]
    assert sequences == [(4294967295 + n) % 2**32 for n in range(len(sequences))]
    assert modem.status()["sequence"]["last"] == sequences[-1]


@pytest.mark.parametrize("modem_id", [42, 0])
def test_a_solicitation_is_answered_with_a_full_advertisement_to_the_solicitor(emulator, modem_id):
    modem = emulator(period="30")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as router:
        router.bind(("127.0.0.1", 0))
        router.sendto(lpa.encode_solicitation(modem_id), ("127.0.0.1", modem.listen_port()))
        message = lpa.decode(receive_one(router))
    block = rate_block(message)
    assert message["modem_id"] == 42 and not block["some"]
    assert [link["direction"] for link in block["link_instances"]] == ["incoming", "outgoing"]
    status = modem.status()
    assert status["sent"]["reply"] == 1 and status["received"] == {"solicitations": 1, "ignored": 0}


def test_other_modems_solicitations_and_other_datagrams_are_ignored(emulator):
    modem = emulator(period="30")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as router:
        router.bind(("127.0.0.1", 0))
        for datagram in (lpa.encode_solicitation(43), EXAMPLE, b"\x10\x02"):
            router.sendto(datagram, ("127.0.0.1", modem.listen_port()))
        assert receive(router, 0.5) == []
    status = modem.status()
    assert status["sent"]["reply"] == 0 and status["received"] == {"solicitations": 0, "ignored": 3}


def test_silent_stops_every_advertisement_and_off_resumes_at_once(receiver, emulator):
    modem = emulator(period="0.2")
    receive_one(receiver)
    assert tool("set", "--control", modem.control, "--silent", "on").returncode == 0
    receive(receiver, 0.1)  # one may have left while the request travelled
    assert tool("set", "--control", modem.control, "--down", "1mbit").returncode == 0
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as router:
        router.bind(("127.0.0.1", 0))
        router.sendto(lpa.encode_solicitation(42), ("127.0.0.1", modem.listen_port()))
        assert receive(router, 0.3) == []
    assert receive(receiver, 1.0) == []  # five periods
    assert modem.status()["silent"] is True
    began = time.monotonic()
    assert tool("set", "--control", modem.control, "--silent", "off").returncode == 0
    message = lpa.decode(receive_one(receiver))
    assert time.monotonic() - began < 1
    assert not rate_block(message)["some"]
    assert rate_block(message)["link_instances"][0]["current_bps"] == 1_000_000


def test_the_log_records_every_datagram_sent(receiver, emulator):
    modem = emulator(period="30")
    sent = [receive_one(receiver)]
    assert tool("set", "--control", modem.control, "--up", "1mbit").returncode == 0
    sent.append(receive_one(receiver))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as router:
        router.bind(("127.0.0.1", 0))
        router.sendto(lpa.encode_solicitation(42), ("127.0.0.1", modem.listen_port()))
        sent.append(receive_one(router))
        router_address = "127.0.0.1:%d" % router.getsockname()[1]
    # The emulator writes a datagram's log line after sending it: the reply's may lag behind.
    deadline = time.monotonic() + 5
    while True:
        with open(modem.log) as log:
            entries = [json.loads(line) for line in log if line.endswith("\n")]
        if len(entries) >= 3 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert [entry["kind"] for entry in entries] == ["full", "event", "reply"]
    assert [bytes.fromhex(entry["hex"]) for entry in entries] == sent
    assert [entry["message"] for entry in entries] == [lpa.decode(datagram) for datagram in sent]
    receiver_address = f"127.0.0.1:{receiver.getsockname()[1]}"
    assert [entry["to"] for entry in entries] == [receiver_address, receiver_address, router_address]


def test_source_address_and_port(receiver, emulator):
    modem = emulator("--source", "127.0.0.1", period="30")
    receiver.settimeout(3)
    _, source = receiver.recvfrom(65535)
    assert source == ("127.0.0.1", modem.listen_port())


def test_status_reports_the_state(emulator):
    modem = emulator("--rate-size", "2", "--link", "down", period="30")
    result = tool("status", "--control", modem.control)
    assert result.returncode == 0, result.stderr
    status = json.loads(result.stdout)
    assert status["pid"] == modem.process.pid
    assert {key: status[key] for key in ("modem_id", "interface_id", "link", "silent", "rate_size", "period")} == {
        "modem_id": 42, "interface_id": 3, "link": "down", "silent": False, "rate_size": 2, "period": 30}
    assert status["down"] == {"current_bps": 20_000_000, "min_bps": 0, "max_bps": 0}
    assert status["sequence"] == {"last": 1, "next": 2}
    assert status["sent"] == {"full": 1, "event": 0, "reply": 0}


@pytest.mark.parametrize("options, error", [
    (["--down", "20parsec"], 'down: "20parsec" is not a rate: unknown unit "parsec"'),
    (["--up-max", "fast"], 'up_max: "fast" is not a rate'),
    ([], "nothing to set"),
])
def test_set_errors_name_the_field(emulator, options, error):
    modem = emulator(period="30")
    result = tool("set", "--control", modem.control, *options)
    assert result.returncode == 2
    assert result.stderr.startswith(f"lpa-modem: {error}")
    assert modem.status()["down"]["current_bps"] == 20_000_000


@pytest.mark.parametrize("request_, error", [
    ({"command": "set", "args": {"down": "1mbit", "speed": 3}}, "speed: unknown field"),
    ({"command": "set", "args": {"link": "sideways"}}, 'link: "sideways" is not "up" or "down"'),
    ({"command": "set", "args": {"silent": "yes"}}, 'silent: "yes" is not true or false'),
    ({"command": "set", "args": {"down": 2000, "up": "20parsec"}}, "up: "),
    ({"command": "reboot"}, 'command: unknown command "reboot"'),
    (["status"], "a request is an object"),
])
def test_control_requests_refused(emulator, request_, error):
    modem = emulator(period="30")
    reply = modem.request(request_)
    assert reply["ok"] is False and reply["error"].startswith(error)
    assert modem.status()["down"]["current_bps"] == 20_000_000  # nothing half-applied


def test_rate_size_1_refuses_a_64_bit_rate_at_run_time(emulator):
    modem = emulator("--rate-size", "1", period="30")
    reply = modem.request({"command": "set", "args": {"down": "5gbit"}})
    assert reply == {"ok": False, "error": "down: a rate above 4294967295 bit/s does not fit rate size 1 "
                                           "(32-bit rates), the size this modem was started with"}


def test_a_plain_number_is_kbit_over_the_socket_too(emulator):
    modem = emulator(period="30")
    reply = modem.request({"command": "set", "args": {"down": 3000, "down_min": "0", "max": "1gbit"}})
    assert reply["ok"] and reply["result"]["down"] == {"current_bps": 3_000_000, "min_bps": 0,
                                                       "max_bps": 1_000_000_000}


def test_not_json_is_answered_and_the_connection_serves_on(emulator):
    modem = emulator(period="30")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        client.settimeout(10)
        client.connect(modem.control)
        replies = client.makefile()
        client.sendall(b"{oops\n" + json.dumps({"command": "status"}).encode() + b"\n")
        assert json.loads(replies.readline())["error"].startswith("not a JSON request")
        assert json.loads(replies.readline())["ok"]


def test_no_emulator_on_the_socket(tmp_path):
    result = tool("status", "--control", str(tmp_path / "none.sock"))
    assert result.returncode == 1
    assert "no emulator answers on" in result.stderr


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_ends_it_cleanly_and_removes_the_control_socket(emulator, signum):
    modem = emulator(period="30")
    modem.process.send_signal(signum)
    assert modem.process.wait(5) == 0
    assert not os.path.exists(modem.control)


def test_a_stale_control_socket_is_replaced_and_a_live_one_refused(tmp_path, emulator):
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(tmp_path / "modem0.sock"))
    stale.close()  # the file stays, as a killed emulator leaves it
    modem = emulator(period="30")
    assert modem.status()["modem_id"] == 42
    result = tool("run", "--modem-id", "1", "--interface-id", "1", "--down", "1mbit", "--up", "1mbit",
                  "--to", "127.0.0.1", "--listen-port", "0", "--control", modem.control)
    assert result.returncode == 1
    assert "another emulator answers on" in result.stderr
    assert modem.status()["modem_id"] == 42


@pytest.mark.parametrize("args, message", [
    (["--modem-id", "1", "--interface-id", "1", "--up", "1mbit"], "--down"),
    (["--modem-id", "1", "--interface-id", "1", "--down", "1", "--up", "1", "--to", "router"], "argument --to"),
    (["--modem-id", "1", "--interface-id", "1", "--down", "1", "--up", "1", "--period", "0"], "argument --period"),
    (["--modem-id", "1", "--interface-id", "1", "--down", "1", "--up", "1", "--port", "0"], "argument --port"),
])
def test_run_refuses_bad_options(args, message):
    result = tool("run", *args)
    assert result.returncode == 2
    assert message in result.stderr
