"""Keep patient identifiers and stream credentials out of logs, screens and summaries; keep recordings private.

- :data:`REDACTOR` (a :class:`RedactingFilter`), installed on the root log handlers by the ``sonomap``
  command (:func:`install_log_redaction`), replaces every registered value with ``[REDACTED]`` in
  every log record. Values are registered where they are read: the patient identifiers of each DICOM
  file opened (:func:`register_dicom`, :mod:`edge_runtime.dicom_identifiers`: name and its parts, ID,
  birth date, accession number, ...; file names often carry them too), and the user and password of a
  stream URL (:func:`register_url`). Beside it, :func:`library_file_names` takes the file names out of
  other libraries' log lines (tifffile quotes the file it reads, pydicom names it bare, Python
  warnings routed into logging too), which the redactor cannot know; readers hand libraries paths by
  :func:`library_path`.
- :func:`redact` applies the same replacement, plus URL credentials, to text that leaves the process
  by other ways than logging: one-line errors, the NO SIGNAL screen; :func:`redact_tree` to each string
  of a summary before it is written as JSON.
- :func:`make_private_dir` creates the recordings directory 0700 (and fixes a looser one).
Screen pixels are de-identified by :mod:`edge_runtime.pipeline.deidentify`.
"""

from __future__ import annotations

import logging
import os
import re
import stat
import threading
import unicodedata
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from edge_runtime.dicom_identifiers import MIN_NAME_PART_CHARS, MIN_REDACT_CHARS, dicom_identifiers
from edge_runtime.errors import ConfigError

PRIVATE_DIR_MODE = 0o700
REDACTED = "[REDACTED]"
# scheme://user:password@host -> scheme://[REDACTED]@host (also when the URL was never registered), up
# to the last @ of the URL: a password typed with a / or @ that a URL should have escaped stays out
# too (a parser reads it as the path), at the cost of a path holding an @ losing its host as well
URL_USERINFO = re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.-]*://)\S*@")
# A value is registered in both Unicode forms: a file name written on macOS comes in NFD (u + U+0308
# for ü), DICOM and most other text in NFC, and the two never match as strings.
UNICODE_FORMS = ("NFC", "NFD")

OWN_LOGGER = "sonomap"  # our log lines name kinds, never files; every other logger is a library's
# A library's log line may quote the file it reads (tifffile: <tifffile.TiffFile 'DOE_JANE.ome.tif'>)
# or name it bare (pydicom: "... found in file t/DOE_JANE.dcm"), absolute, relative or without a
# folder, and a file is often named after the patient. Taken out: a quoted text with an extension or
# a folder in it, and every unquoted word that holds a folder separator or ends in an extension.
# Conservative on purpose: "model.onnx" or "image/png" go too; a URL stays (its credentials are
# redacted by redact_url; a file:// URL is a path). "4.10.0", "e.g" and "1/2" stay.
QUOTED_FILE = re.compile(r"""(['"])[^'"\n]*?(?:[/\\]|\.[A-Za-z][A-Za-z0-9]{0,4}\b)[^'"\n]*\1""")
URL_OR_WORD = re.compile(r"(?P<url>\b(?!file:)[a-zA-Z][a-zA-Z0-9+.-]*://\S+)|[^\s:'\"<>()\[\],;=]+")
FOLDER_SEPARATORS = ("/", "\\")
# an extension of 2-5 characters: ".dcm", ".png", ".nrrd"; "e.g" and "4.10" are not file names
FILE_EXTENSION = re.compile(r".\.[A-Za-z][A-Za-z0-9]{1,4}$")
SENTENCE_END = "."  # "... in file X.dcm." ends a sentence: the full stop is no part of the name
FILE_PLACEHOLDER = "[file]"


class RedactingFilter(logging.Filter):
    """Replace registered identifier strings in log messages (installed on handlers)."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._pattern: re.Pattern[str] | None = None
        self._values: set[str] = set()

    def register(self, values: Iterable[str]) -> None:
        """Redact ``values`` from now on: one of at least :data:`MIN_REDACT_CHARS` characters wherever
        it appears (any case), a shorter one (down to :data:`MIN_NAME_PART_CHARS`, a name part such as
        "Li") only as a whole word, between characters that are no letter or digit ("LI_WU.dcm",
        never the "li" of "split"); a short one in another script than ASCII (山田) wherever it appears,
        since such names are written without spaces. Each in its composed and decomposed Unicode
        form (UNICODE_FORMS)."""
        with self._lock:
            forms = {unicodedata.normalize(form, v) for v in values for form in UNICODE_FORMS}
            self._values |= {v for v in forms if len(v) >= MIN_NAME_PART_CHARS}
            if self._values:
                alternatives = sorted(self._values, key=len, reverse=True)
                self._pattern = re.compile("|".join(map(_alternative, alternatives)), re.IGNORECASE)

    def redact(self, text: str) -> str:
        pattern = self._pattern
        return text if pattern is None else pattern.sub(REDACTED, text)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a bad format string: the handler reports it as logging does
            return True
        clean = redact_url(self.redact(message))
        if clean != message:
            record.msg, record.args = clean, None
        return True


def _alternative(value: str) -> str:
    """``value`` as one alternative of the redaction pattern (whole words only when it is short)."""
    escaped = re.escape(value)
    if len(value) >= MIN_REDACT_CHARS or not value.isascii():  # 2 ideographs (山田) are a name, not noise
        return escaped
    return rf"(?<![^\W_]){escaped}(?![^\W_])"  # [^\W_]: a letter or digit; "_" and "." separate


REDACTOR = RedactingFilter()


def register_dicom(ds: Any) -> None:
    """Redact this DICOM dataset's identifiers from every later log line and :func:`redact` text."""
    REDACTOR.register(dicom_identifiers(ds))


def register_url(url: str) -> None:
    """Redact a stream URL's user and password (as written and percent-decoded) from logs and :func:`redact`:
    all between ``://`` and the URL's last ``@``, as :data:`URL_USERINFO` takes it out (a URL parser
    would cut a password holding an unescaped ``/`` short, or refuse one holding a ``[``)."""
    _scheme, sep, rest = url.partition("://")
    userinfo = rest.rpartition("@")[0] if sep else ""
    if userinfo:
        values = [userinfo, *userinfo.split(":", 1)]
        REDACTOR.register(values + [unquote(v) for v in values])


def without_userinfo(url: str) -> str:
    """``url`` without its user and password (all between ``://`` and its last ``@``), for a URL that is
    shown or stored: a parser would leave part of a password typed with an unescaped ``/`` in place."""
    scheme, sep, rest = url.partition("://")
    return f"{scheme}://{rest.rpartition('@')[2]}" if sep and "@" in rest else url


def redact_url(text: str) -> str:
    """``text`` with the user:password part of every URL in it replaced."""
    return URL_USERINFO.sub(lambda m: f"{m.group(1)}{REDACTED}@", text)


def redact(text: str) -> str:
    """``text`` without URL credentials or any registered identifier (for text that is not a log record)."""
    return REDACTOR.redact(redact_url(str(text)))


def redact_tree(obj: Any) -> Any:
    """``obj`` (dicts, lists, strings, numbers) with every string in it, key or value, :func:`redact`-ed.
    Numbers stay as they are: redacting serialised JSON text would cut a patient ID's digits out of a
    measured figure (``0.2045`` -> ``0.[REDACTED]5``) and break the file."""
    if isinstance(obj, str):
        return redact(obj)
    if isinstance(obj, dict):
        return {redact_tree(k) if isinstance(k, str) else k: redact_tree(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [redact_tree(v) for v in obj]
    return obj


def library_file_names(record: logging.LogRecord) -> bool:
    """Handler filter: a library's log line keeps its reason but not the file names it quotes."""
    if record.name == OWN_LOGGER or record.name.startswith(OWN_LOGGER + "."):
        return True
    try:
        message = record.getMessage()
    except (TypeError, ValueError):  # a bad format string: the handler reports it as logging does
        return True
    clean = without_file_names(message)
    if clean != message:
        record.msg, record.args = clean, None
    return True


def without_file_names(text: str) -> str:
    """``text`` with every quoted or bare file name or path in it, and every path handed out by
    :func:`library_path`, replaced by ``[file]``."""
    with _OPENED_LOCK:
        opened = sorted(_OPENED, key=len, reverse=True)  # a path before a shorter one inside it
    for path in opened:
        text = text.replace(path, FILE_PLACEHOLDER)
    return URL_OR_WORD.sub(_file_word, QUOTED_FILE.sub(FILE_PLACEHOLDER, text))


_OPENED, _OPENED_LOCK = set(), threading.Lock()  # every path library_path gave out in this process


def public_text(text: str) -> str:
    """``text`` for a screen or page another person reads (the viewer's banner, systemd's status
    line): no registered identifier, no URL credentials, no file name (a folder may be named after
    the patient, and an exception message quotes the path it failed on)."""
    return redact(without_file_names(str(text)))


def library_path(path: str | Path) -> str:
    """``path`` as absolute text for a library that opens it: a log line naming a bare ``Roe_Richard``
    would keep it, and one naming ``/cases/Roe Richard`` loses it whole, space included."""
    text = str(Path(path).absolute())
    with _OPENED_LOCK:
        _OPENED.add(text)
    return text


def _file_word(match: re.Match[str]) -> str:
    word = match.group(0)
    if match.group("url"):
        return word
    name = word.rstrip(SENTENCE_END)
    in_folder = any(sep in name for sep in FOLDER_SEPARATORS) and any(c.isalpha() for c in name)
    if in_folder or FILE_EXTENSION.search(name):  # a path ("1/2" has no letter: a ratio), or a name
        return FILE_PLACEHOLDER + word[len(name) :]
    return word


def install_log_redaction(logger: logging.Logger | None = None) -> RedactingFilter:
    """Attach the process-wide redactor, and the filter of file names in libraries' log lines
    (:func:`library_file_names`), to every handler of ``logger`` (root by default)."""
    logger = logger or logging.getLogger()
    for handler in logger.handlers:
        # file names first: a path is then replaced whole, before the redactor cuts it at a name inside
        if library_file_names not in handler.filters:
            handler.addFilter(library_file_names)
        if REDACTOR not in handler.filters:
            handler.addFilter(REDACTOR)
    return REDACTOR


def make_private_dir(path: str | Path, label: str = "recordings directory") -> Path:
    """Create ``path`` (and parents) with mode 0700; tighten an existing looser directory.

    Raises ConfigError naming ``label`` (the option that gave it) and the path when it is not a
    directory we own or cannot be made (no permission, a read-only file system)."""
    path = Path(path)
    try:
        path.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
        st = path.stat()
        if not stat.S_ISDIR(st.st_mode):
            raise ConfigError(f"{label} {path}: not a directory")
        if st.st_uid != os.geteuid():
            raise ConfigError(f"{label} {path}: owned by uid {st.st_uid}, not us")
        if stat.S_IMODE(st.st_mode) != PRIVATE_DIR_MODE:
            os.chmod(path, PRIVATE_DIR_MODE)
    except FileExistsError as exc:
        raise ConfigError(f"{label} {path}: exists and is not a directory") from exc
    except OSError as exc:  # permission denied, a read-only file system, no space
        raise ConfigError(f"{label} {path}: {exc.strerror or exc}") from exc
    return path
