"""Lab fixtures: every scenario runs against fairgate with 1 worker and with 2 workers.

The lab is brought up once per worker count and always taken down again, also when a test
fails or the run is interrupted, so no namespace, veth or process is left behind.
"""
import json
import os
import subprocess
import time

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
LAB = os.path.join(ROOT, "tools", "lab")
RUN = "/run/fairgate-lab"


class Lab:
    def __init__(self, workers):
        self.workers = workers

    def run(self, *args, check=True, timeout=120, input=None):
        result = subprocess.run([LAB, *args], capture_output=True, text=True, timeout=timeout, input=input)
        if check and result.returncode != 0:
            raise AssertionError(f"tools/lab {' '.join(args)} failed ({result.returncode}):\n"
                                 f"{result.stdout}\n{result.stderr}")
        return result

    def up(self):
        self.run("up", "--workers", str(self.workers), timeout=180)

    def down(self):
        self.run("down", check=False, timeout=120)

    def exec(self, host, *cmd, check=True, timeout=60):
        return self.run("exec", host, *cmd, check=check, timeout=timeout)

    def popen(self, host, *cmd):
        return subprocess.Popen([LAB, "exec", host, *cmd], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def ctl(self, command, *args, check=True):
        """Runs a control command and returns the whole reply object."""
        result = self.run("ctl", command, *args, "--json", check=False)
        reply = json.loads(result.stdout) if result.stdout.strip() else {"ok": False, "error": result.stderr}
        if check and not reply.get("ok"):
            raise AssertionError(f"{command} {args}: {reply}")
        return reply

    def result(self, command, *args):
        return self.ctl(command, *args)["result"]

    def drops(self):
        return self.result("stats")["drops"]

    def port(self, name):
        return next(p for p in self.result("ports") if p["name"] == name)

    def fairgate_log(self):
        with open(os.path.join(RUN, "fairgate.log")) as log:
            return log.read()


def wait_for(predicate, timeout=10.0, interval=0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return predicate()


@pytest.fixture(scope="session", params=[1, 2], ids=["1worker", "2workers"])
def lab(request):
    instance = Lab(request.param)
    instance.down()
    try:
        instance.up()
        yield instance
    finally:
        instance.down()
