"""A real BitTorrent transfer between two lab hosts: an HTTP tracker and a seeder on one, a leecher on the other.

Not a test module (pytest collects only test_*.py): tests import BitTorrentSwarm and check what fairgate
saw of the flows it makes. `lab` is anything with the two methods of conftest.Lab:
    exec(host, *cmd, check=True, timeout=60) -> subprocess.CompletedProcess
    popen(host, *cmd) -> subprocess.Popen, whose pid must be the command's own (tools/lab and
        `ip netns exec` both exec it), so that killing the Popen kills the program.
Network namespaces share the file system, so the harness writes every file itself, directly.

    with BitTorrentSwarm(lab, "inet", "lan1", "192.0.2.10", size_mib=16) as swarm:
        seconds = swarm.transfer(timeout=120)
        # the leecher's connection to swarm.seeder_ip:swarm.seeder_port is still open here

Clients, and why: the seeder is aria2c, the leecher transmission-cli. aria2 always opens its outgoing
peer connections with the MSE/PE (obfuscation) handshake and falls back to the plain one only when
that fails, so an aria2 leecher never starts a flow with "\\x13BitTorrent protocol". Transmission with
encryption "tolerated" opens with the plain handshake, and with "required" with MSE and RC4.
aria2 suits the seeder: it unchokes a peer as soon as it is interested. The leecher opens the peer
connection, so it works from behind NAT too.

What a test sees on the wire, and timing:
- transmission says Interested only at its first rechoke, 10 s after connecting, and ramps its requests
  up once a second: a transfer takes about 12 s more than its size needs (16 MiB over a veth: 17-18 s).
- opentracker hands every announcing peer its own address too. aria2 opens one (MSE) connection to
  itself, inside the seeder's host; transmission tries its own address once, which from behind NAT is
  a SYN to the NAT's outside address at leecher_port.
- transmission keeps a UDP socket on leecher_port even with DHT and uTP off; it sends nothing from it.
"""
import hashlib
import json
import os
import shlex
import shutil
import signal
import sys
import tempfile
import time

PIECE_LENGTH = 256 * 1024

# Run inside the seeder's host until the tracker reports one complete peer (the seeder). The leecher
# must not announce before that: the tracker would answer with no peers, and transmission would not
# ask again before the tracker's min interval (15 minutes).
SCRAPE_UNTIL_SEEDED = r"""
import re, sys, time, urllib.request
url, deadline = sys.argv[1], time.monotonic() + float(sys.argv[2])
while time.monotonic() < deadline:
    try:
        if re.search(rb"8:completei[1-9]", urllib.request.urlopen(url, timeout=2).read()):
            sys.exit(0)
    except OSError:
        pass  # not listening yet
    time.sleep(0.2)
sys.exit(1)
"""


def bencode(value):
    if isinstance(value, int):
        return b"i%de" % value
    if isinstance(value, str):
        value = value.encode()
    if isinstance(value, bytes):
        return b"%d:%s" % (len(value), value)
    if isinstance(value, dict):  # keys sorted, as the format requires
        return b"d" + b"".join(bencode(k) + bencode(v) for k, v in sorted(value.items())) + b"e"
    raise TypeError(type(value))


class BitTorrentSwarm:
    """Tracker and seeder on `seeder`, leecher on `leecher`; everything lives in a fresh directory under
    `workdir` and is killed and removed when the `with` block ends, however it ends.

    encrypted=False: the leecher opens with the plain BitTorrent handshake and the payload is plaintext.
    encrypted=True: both sides require MSE/PE with RC4, so nothing of BitTorrent is visible on the wire.
    """

    def __init__(self, lab, seeder, leecher, seeder_ip, workdir=None, size_mib=16, encrypted=False,
                 seeder_port=6881, leecher_port=6882, tracker_port=6969):
        self.lab, self.seeder, self.leecher, self.seeder_ip = lab, seeder, leecher, seeder_ip
        self.parent, self.size, self.encrypted = workdir, size_mib << 20, encrypted
        self.seeder_port, self.leecher_port, self.tracker_port = seeder_port, leecher_port, tracker_port
        self.name = "fairgate-bt-payload.bin"
        self.dir = None
        self.procs = {}

    def __enter__(self):
        try:
            self._prepare()
            self._start_seeder()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc):
        self.close()

    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    @property
    def announce_url(self):
        return f"http://{self.seeder_ip}:{self.tracker_port}/announce"

    def _prepare(self):
        self.dir = tempfile.mkdtemp(prefix="fairgate-bt-", dir=self.parent)
        # opentracker refuses to run as root and drops to `nobody`, which must still read the whitelist.
        os.chmod(self.dir, 0o755)
        for sub in ("seed", "leech", "transmission"):
            os.mkdir(self.path(sub))

        # Random payload, hashed as it is written: SHA-1 per piece for the torrent, SHA-256 to verify.
        whole, pieces = hashlib.sha256(), []
        with open(self.path("seed", self.name), "wb") as out:
            for offset in range(0, self.size, PIECE_LENGTH):
                piece = os.urandom(min(PIECE_LENGTH, self.size - offset))
                out.write(piece)
                whole.update(piece)
                pieces.append(hashlib.sha1(piece).digest())
        self.sha256 = whole.hexdigest()
        info = {"name": self.name, "length": self.size, "piece length": PIECE_LENGTH, "pieces": b"".join(pieces)}
        self.info_hash = hashlib.sha1(bencode(info)).digest()
        with open(self.path("swarm.torrent"), "wb") as out:
            out.write(bencode({"announce": self.announce_url, "info": info}))
        # Debian builds opentracker with a whitelist and no whitelist means no torrent is allowed.
        with open(self.path("whitelist"), "w") as out:
            out.write(self.info_hash.hex() + "\n")

        # transmission-cli has no options for these; it reads them from settings.json in its config dir.
        with open(self.path("transmission", "settings.json"), "w") as out:
            json.dump({
                "dht-enabled": False, "lpd-enabled": False, "pex-enabled": False,
                "utp-enabled": False,  # else it may also try µTP over UDP, a second kind of flow
                "port-forwarding-enabled": False, "blocklist-enabled": False,
                "peer-port": self.leecher_port, "peer-port-random-on-start": False,
                "encryption": 2 if self.encrypted else 0,  # 2 required, 0 tolerated = plain handshake first
                # the .part suffix goes when the last piece is verified: the file's name marks completion
                "rename-partial-files": True, "incomplete-dir-enabled": False,
                "message-level": 2,
            }, out)

    def _spawn(self, role, host, *cmd):
        # The output goes to a log file, not to popen's pipes: nobody reads those while the transfer
        # runs, and a full pipe would stop the program. `exec` keeps the Popen's pid the program's.
        log = shlex.quote(self.path(role + ".log"))
        self.procs[role] = self.lab.popen(host, "sh", "-c", f'exec "$@" >{log} 2>&1', role, *cmd)

    def log(self, role, chars=3000):
        try:
            with open(self.path(role + ".log"), errors="replace") as f:
                return f.read()[-chars:]
        except OSError:
            return ""

    def _fail(self, message):
        logs = "".join(f"\n--- {role}.log ---\n{self.log(role)}" for role in self.procs)
        raise AssertionError(f"bittorrent: {message}{logs}")

    def _start_seeder(self):
        # -p without -P: an HTTP tracker only, no UDP one. The whitelist path must be absolute:
        # opentracker chdirs to / before it reads it.
        self._spawn("tracker", self.seeder, "opentracker", "-i", self.seeder_ip, "-p", str(self.tracker_port),
                    "-w", self.path("whitelist"))
        crypto = (["--bt-require-crypto=true", "--bt-min-crypto-level=arc4"] if self.encrypted else
                  ["--bt-require-crypto=false", "--bt-min-crypto-level=plain"])
        self._spawn("seeder", self.seeder, "aria2c", "--no-conf", "--dir", self.path("seed"),
                    # aria2 seeds a file it did not download itself only after checking it
                    "--check-integrity=true", "--seed-ratio=0.0",  # 0.0: seed until killed
                    f"--listen-port={self.seeder_port}",
                    # opentracker hands out the announce's source address, which is why the announce URL
                    # names seeder_ip, not 127.0.0.1; the ip= that this adds is for trackers that use it
                    f"--bt-external-ip={self.seeder_ip}",
                    # the default waits 60 s for a tracker that is not there; fail fast instead
                    "--bt-tracker-connect-timeout=5", "--bt-tracker-timeout=10",
                    "--enable-dht=false", "--enable-dht6=false", "--bt-enable-lpd=false",
                    "--enable-peer-exchange=false", "--disable-ipv6=true", *crypto,
                    # if the harness itself is killed, aria2 does not outlive it (`ip netns exec` keeps
                    # the pid namespace, so the pid is the same inside)
                    f"--stop-with-process={os.getpid()}",
                    "--file-allocation=none", "--summary-interval=0", "--console-log-level=notice",
                    self.path("swarm.torrent"))
        scrape = self.announce_url.replace("/announce", "/scrape") + "?info_hash=" + "".join(
            f"%{b:02x}" for b in self.info_hash)
        seeded = self.lab.exec(self.seeder, sys.executable, "-c", SCRAPE_UNTIL_SEEDED, scrape, "30",
                               check=False, timeout=40)
        if seeded.returncode != 0:
            self._fail(f"the seeder did not announce itself to {self.announce_url} within 30 s")

    def transfer(self, timeout=120):
        """Starts the leecher, waits until it has the whole file and returns the seconds that took.
        The peer connection stays up until the swarm is closed."""
        assert "leecher" not in self.procs, "one transfer per swarm"
        start = time.monotonic()
        self._spawn("leecher", self.leecher, "transmission-cli", "-g", self.path("transmission"),
                    "-w", self.path("leech"), "-p", str(self.leecher_port), "-M",
                    "-er" if self.encrypted else "-et", self.path("swarm.torrent"))
        done = self.path("leech", self.name)
        while not os.path.exists(done):
            for role, proc in self.procs.items():
                if proc.poll() is not None:
                    self._fail(f"{role} exited with {proc.returncode} during the transfer")
            if time.monotonic() - start > timeout:
                self._fail(f"the leecher did not finish {self.size >> 20} MiB in {timeout} s")
            time.sleep(0.1)
        seconds = time.monotonic() - start
        got = hashlib.sha256()
        with open(done, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                got.update(block)
        if got.hexdigest() != self.sha256:
            self._fail(f"the leecher's file has SHA-256 {got.hexdigest()}, the seeder's {self.sha256}")
        return seconds

    def close(self):
        for proc in reversed(list(self.procs.values())):
            if proc.poll() is None:
                proc.kill()
            proc.communicate()  # reaps it and closes popen's pipes
        self.procs.clear()
        if self.dir:
            self._kill_strays()
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def _kill_strays(self):
        # A popen that forks rather than execs leaves the program running after the Popen is killed.
        # Every program started here names the unique work directory on its command line.
        mark = self.dir.encode()
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    if mark in f.read():
                        os.kill(int(pid), signal.SIGKILL)
            except OSError:
                pass
