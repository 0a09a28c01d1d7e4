"""One exception type for errors a user can fix (bad file, key, frame, config).

The CLI prints these as a single line and exits non-zero (:data:`EXIT_USER_ERROR`), and an OSError
as :func:`os_error_text`; anything else is a bug and keeps its traceback.
"""

EXIT_USER_ERROR = 2  # the exit status of an error the user can fix
SIGNAL_EXIT_BASE = 128  # a command ended by a signal exits 128 + its number, as a shell reports it


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


def os_error_text(exc: OSError) -> str:
    """``PATH: REASON`` for an OSError (``Is a directory``, ``Permission denied``, ...); the bare
    message when it names no file (a socket, a pipe)."""
    if exc.filename is None:
        return str(exc)
    return f"{exc.filename}: {exc.strerror or exc}"


class StopSignal(KeyboardInterrupt):
    """A stop signal unwinding a command as Ctrl-C does: SIGTERM in the commands that turn it into an
    interrupt (training, evaluate, export), or a second SIGTERM/SIGINT while a session is stopping. The CLI
    exits 128 + ``signum`` (143 for SIGTERM), as for the signal itself, not Ctrl-C's 130."""

    def __init__(self, signum: int, why: str):
        super().__init__(why)
        self.signum = int(signum)
