"""CI rules for skips: on CI, a test may not skip because a system tool is missing.

Off CI (a laptop, a non-root container) a test that needs Xvfb, systemd-analyze or Chromium skips
with a reason. On CI (``CI`` set to true, as ``.ci/run`` and hosted CI services do) the Makefile's
``sysdeps`` has installed those tools, so such a skip means the machine is broken: the conftest
hooks turn it into a failure.
"""

from __future__ import annotations

import os

# Tools `make sysdeps` installs (and selenium, from the dev extra): a skip naming one fails on CI.
REQUIRED_ON_CI = (
    "Xvfb",
    "systemd-analyze",
    "systemd-sysusers",
    "chromium",
    "chromedriver",
    "selenium",
    "openssl",
    "xdotool",
    "orthanc-dicomweb",  # before Orthanc: the first name found in a reason is the one reported
    "Orthanc",
    "dciodvfy",
    "highdicom",
    "dicomweb-client",
    "taskset",
)
MISSING_WORDS = ("not installed", "needs ", "not found")
TRUE_VALUES = ("1", "true", "yes")


def on_ci(environ=None) -> bool:
    return (environ if environ is not None else os.environ).get("CI", "").strip().lower() in TRUE_VALUES


def skip_reason(longrepr) -> str:
    """The reason text of a skip report (pytest keeps it as (file, line, reason))."""
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2])
    return str(longrepr or "")


def missing_required_tool(reason: str) -> str | None:
    """The required tool a skip reason says is missing, or None."""
    lowered = reason.lower()
    if not any(word in lowered for word in MISSING_WORDS):
        return None
    return next((tool for tool in REQUIRED_ON_CI if tool.lower() in lowered), None)


def fail_if_required(report) -> None:
    """On CI, turn a skip caused by a missing required tool into a failure (in place)."""
    if not (report.skipped and on_ci()):
        return
    reason = skip_reason(report.longrepr)
    tool = missing_required_tool(reason)
    if tool is not None:
        report.outcome = "failed"
        report.longrepr = (
            f"CI=true but {tool} is missing ({reason}); `make test` installs it (dev extra, "
            "or `make sysdeps` on a root Debian machine), so this is not a valid CI runner"
        )
