"""When no thread can be started for a new connection, the server closes it, counts it and logs one
line, not a traceback per connection. The real server runs in a child process whose address space
is capped just above its size (RLIMIT_AS, what `prlimit --as` sets), so a new thread's stack cannot
be mapped and Thread.start() fails for real; then the cap is lifted and the server serves again."""

from __future__ import annotations

import subprocess
import sys

from child_process import reaped
from loopback import answer_or_close

SPARE_KIB = 4096  # address space left over: a thread stack (THREAD_STACK_BYTES) does not fit in it
THREAD_STACK_BYTES = 16 * 1024 * 1024  # set in the child, so `ulimit -s` on the machine does not matter
CONNECTIONS = 12
CHILD_TIMEOUT_S = 30.0
CLIENT_TIMEOUT_S = 5.0
DROP_EVENTS = ("http_no_thread", "http_no_memory")  # no thread started; or one started, then no memory

CHILD = f"""
import logging, resource, sys, threading
from edge_runtime.live_stats import EVENTS
from edge_runtime.service.http_server import make_http_observer

threading.stack_size({THREAD_STACK_BYTES})
logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
obs = make_http_observer("127.0.0.1", 0, None)
with open("/proc/self/status") as status:
    size_kib = next(int(line.split()[1]) for line in status if line.startswith("VmSize:"))
soft, hard = resource.getrlimit(resource.RLIMIT_AS)
resource.setrlimit(resource.RLIMIT_AS, ((size_kib + {SPARE_KIB}) * 1024, hard))
print(obs.port, flush=True)
sys.stdin.readline()  # the test has made its connections
resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
print("lifted", flush=True)
sys.stdin.readline()  # the test has checked the server serves again
print(sum(EVENTS.snapshot().get(event, 0) for event in {DROP_EVENTS!r}), flush=True)
obs.close()
"""


def test_a_connection_without_a_thread_is_closed_with_one_line_logged():
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    with reaped(child):
        port = int(child.stdout.readline())
        starved = [answer_or_close(port, CLIENT_TIMEOUT_S) for _ in range(CONNECTIONS)]
        child.stdin.write("\n")
        child.stdin.flush()
        assert child.stdout.readline().strip() == "lifted"
        served = answer_or_close(port, CLIENT_TIMEOUT_S)
        child.stdin.write("\n")
        child.stdin.flush()
        out, err = child.communicate(timeout=CHILD_TIMEOUT_S)
    assert starved == [b""] * CONNECTIONS  # each closed unanswered: the server had no thread for it
    assert served.startswith(b"HTTP/1.1 503 ")  # then it serves again (no frame rendered: 503)
    assert int(out.strip()) == CONNECTIONS  # each of them counted
    assert "Traceback" not in err, err
    warnings = [line for line in err.splitlines() if "for want of a thread or memory" in line]
    assert len(warnings) == 1 and warnings[0].startswith("WARNING sonomap.http: "), err
