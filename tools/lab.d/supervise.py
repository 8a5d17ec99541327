#!/usr/bin/env python3
"""supervise.py PIDFILE EXITFILE CMD [ARGS...]

Runs CMD, writes its pid to PIDFILE and, once it has ended, its exit status to EXITFILE
(first line: a shell-style status, 128+N when killed by signal N; second line: in words).
`tools/lab up` starts fairgate through it because `tools/lab down` runs in a different process
and could not otherwise learn whether fairgate shut down cleanly.
"""
import os
import signal
import subprocess
import sys


def write_atomic(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def main():
    if len(sys.argv) < 4:
        print(__doc__, file=sys.stderr)
        return 2
    pidfile, exitfile, cmd = sys.argv[1], sys.argv[2], sys.argv[3:]
    # A job started with `&` by a non-interactive shell has SIGINT and SIGQUIT ignored, and an
    # ignored signal stays ignored across exec. Give the child the default dispositions so that
    # fairgate behaves as it would when started by hand.
    for s in (signal.SIGINT, signal.SIGQUIT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, signal.SIG_DFL)
    try:
        child = subprocess.Popen(cmd)
    except OSError as e:
        write_atomic(exitfile, f"127\ncould not start {cmd[0]}: {e}\n")
        return 127
    write_atomic(pidfile, f"{child.pid}\n")
    # Signals are for fairgate; this process has to stay to record how it ended.
    for s in (signal.SIGINT, signal.SIGQUIT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, signal.SIG_IGN)
    rc = child.wait()
    if rc < 0:
        try:
            name = signal.Signals(-rc).name
        except ValueError:
            name = f"signal {-rc}"
        write_atomic(exitfile, f"{128 - rc}\nkilled by {name}\n")
    else:
        write_atomic(exitfile, f"{rc}\nexited with status {rc}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
