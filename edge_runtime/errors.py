"""One exception type for errors a user can fix (bad file, key, frame, config).

The CLI prints these as a single line and exits non-zero; anything else is a bug
and keeps its traceback.
"""


class SonomapError(Exception):
    """A user-facing error. The message must name the culprit (file, key or frame)."""


class ConfigError(SonomapError):
    """A config or manifest key is missing, unknown or has a bad value."""


class InputError(SonomapError):
    """An input file, device, stream or frame cannot be read or is malformed."""


class InferenceStalled(SonomapError):
    """The AI gave no answer for ``inference.stall_restart_s``: the process ends so systemd restarts it.
    Not the user's fault, so it has its own exit status."""

    exit_code = 3
