"""When no thread can be started for a new OpenIGTLink viewer, the server closes that connection,
counts it and logs one line, and its accept thread lives on: once threads can be had again, the
next viewer is admitted and served. The real server runs in a child process whose address space is
capped just above its size (RLIMIT_AS, what `prlimit --as` sets), so a viewer thread's stack cannot
be mapped and Thread.start() fails for real; then the cap is lifted."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import pytest
from child_process import reaped
from loopback import closed_by_server

pytest.importorskip("pyigtl")
pytestmark = pytest.mark.timeout(120)

SPARE_KIB = 4096  # address space left over: a thread stack (THREAD_STACK_BYTES) does not fit in it
THREAD_STACK_BYTES = 16 * 1024 * 1024  # set in the child, so `ulimit -s` on the machine does not matter
CONNECTIONS = 4
CLIENT_TIMEOUT_S = 5.0
CHILD_TIMEOUT_S = 30.0
ADMIT_WAIT_S = 10.0  # how long the child waits for the viewer connected after the cap is lifted
PAYLOAD = b"sonomap-igtl-no-thread-check"

CHILD = f"""
import json, logging, resource, sys, threading, time
from edge_runtime.igtl.server import IgtlServerLink

class Raw:  # an already packed message, what IgtlServerLink.send joins
    def pack(self):
        return {PAYLOAD!r}

threading.stack_size({THREAD_STACK_BYTES})
logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
link = IgtlServerLink(0)
with open("/proc/self/status") as status:
    size_kib = next(int(line.split()[1]) for line in status if line.startswith("VmSize:"))
soft, hard = resource.getrlimit(resource.RLIMIT_AS)
resource.setrlimit(resource.RLIMIT_AS, ((size_kib + {SPARE_KIB}) * 1024, hard))
print(link.port, flush=True)
sys.stdin.readline()  # the test has made its connections
resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
print("lifted", flush=True)
sys.stdin.readline()  # the test has connected a viewer
deadline = time.monotonic() + {ADMIT_WAIT_S}
while link.counters.get("viewers_connected") < 1 and time.monotonic() < deadline:
    time.sleep(0.02)
link.send([Raw()])
print(json.dumps({{"viewers": link.client_count, "counters": link.counters.snapshot()}}), flush=True)
sys.stdin.readline()  # the test has read the payload
link.close()
"""


def read_exactly(sock: socket.socket, n: int) -> bytes:
    """Up to ``n`` bytes: fewer when the server closes or sends nothing more in CLIENT_TIMEOUT_S."""
    sock.settimeout(CLIENT_TIMEOUT_S)
    data = b""
    try:
        while len(data) < n and (chunk := sock.recv(n - len(data))):
            data += chunk
    except TimeoutError:
        pass  # the caller compares what came with what was sent
    return data


def test_a_viewer_without_a_thread_is_closed_and_the_server_accepts_again():
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )

    def tell() -> None:
        child.stdin.write("\n")
        child.stdin.flush()

    with reaped(child):
        port = int(child.stdout.readline())
        starved = []
        for _ in range(CONNECTIONS):
            with socket.create_connection(("127.0.0.1", port), timeout=CLIENT_TIMEOUT_S) as sock:
                starved.append(closed_by_server(sock, CLIENT_TIMEOUT_S))
        tell()
        assert child.stdout.readline().strip() == "lifted"
        with socket.create_connection(("127.0.0.1", port), timeout=CLIENT_TIMEOUT_S) as viewer:
            tell()
            report = json.loads(child.stdout.readline())
            received = read_exactly(viewer, len(PAYLOAD))
        tell()
        out, err = child.communicate(timeout=CHILD_TIMEOUT_S)
    assert starved == [True] * CONNECTIONS  # each closed: the server had no thread for it
    assert report["viewers"] == 1 and received == PAYLOAD, report  # then it admits and serves again
    counters = report["counters"]
    assert counters.get("viewers_no_thread") == CONNECTIONS and counters.get("viewers_connected") == 1, (
        counters
    )
    assert "Traceback" not in err, err
    warnings = [line for line in err.splitlines() if "no thread for it" in line]
    assert len(warnings) == 1 and warnings[0].startswith("WARNING sonomap.igtl: "), err
