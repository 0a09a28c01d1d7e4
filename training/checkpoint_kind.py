"""What a file given as a training checkpoint really is, told from its first bytes (never by unpickling).

A sonomap checkpoint is what ``torch.save`` writes: a zip archive holding ``<name>/data.pkl``, or
(older torch) a pickle, whose first byte is the PROTO opcode ``0x80``. Anything else is named in
the error with what to give instead, so an exported model given by mistake does not get the
advice meant for an old pickle checkpoint (``sonomap upgrade-checkpoint``):

- an ONNX model: a protobuf ``ModelProto``, whose first field is ``ir_version`` (field 1, varint)
  followed by the model's other top-level fields;
- a TorchScript model: a torch zip archive that also holds ``constants.pkl`` or ``code/``;
- a TensorRT engine (no documented signature: told by its ``.engine``/``.plan``/``.trt`` name
  once the content is neither of the above), the manifest beside a checkpoint, an empty file,
  text, a zip archive of something else, or bytes of no known kind.

Only a few KiB of the file (and a zip archive's index) are read, so a large file costs nothing.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from edge_runtime.manifest import ENGINE_SUFFIXES  # the runtime's engine names

HEAD_BYTES = 4096
ZIP_MAGIC = b"PK\x03\x04"
PICKLE_PROTO = 0x80  # pickle protocol >= 2 starts with PROTO; torch's legacy format uses protocol 2
MANIFEST_SUFFIX = ".yaml"
# best.pt, not last.pt: evaluate and export need the manifest that only best.pt has beside it
GIVE = "give the best.pt (with its best.pt.yaml) that sonomap train wrote"
GIVE_SOURCE = "give the best.pt it was exported from"
GIVE_ENGINE = "give the best.pt its ONNX model was exported from"
# ONNX ModelProto's top-level fields: number -> protobuf wire type (0 varint, 2 length-delimited)
ONNX_FIELDS = {1: 0, 2: 2, 3: 2, 4: 2, 5: 0, 6: 2, 7: 2, 8: 2, 14: 2, 20: 2, 25: 2}
ONNX_GRAPH_FIELD = 7
MAX_IR_VERSION = 64  # onnx is at 11; a larger first varint is not an ir_version


def not_a_checkpoint(path: Path) -> str | None:
    """``None`` when ``path`` may be a torch checkpoint (zip archive or pickle); otherwise what it is
    and what to give instead, for the one-line error ``PATH: ...``."""
    with open(path, "rb") as f:
        head = f.read(HEAD_BYTES)
        size = f.seek(0, 2)
    if head.startswith(ZIP_MAGIC):
        return _zip_kind(path)
    if head[:1] == bytes([PICKLE_PROTO]):
        return None
    if not head:
        return f"is an empty file (0 bytes), not a training checkpoint: {GIVE}"
    if _onnx_model(head, size):
        return (
            f"is an ONNX model, not a training checkpoint: {GIVE_SOURCE} (one without: "
            "python -m training.recover MODEL.onnx OUT/best.pt rebuilds it, for --init-from)"
        )
    if path.suffix.lower() in ENGINE_SUFFIXES:
        return f"is a TensorRT engine (named so, and no torch file), not a training checkpoint: {GIVE_ENGINE}"
    if path.suffix.lower() == MANIFEST_SUFFIX:
        described = path.with_suffix("")
        if described.is_file() and not_a_checkpoint(described) is None:
            return f"is the manifest of a checkpoint, not the checkpoint: give {described}"
        return f"is a manifest or config (YAML), not a training checkpoint: {GIVE}"
    if _text(head):
        return f"is a text file, not a training checkpoint: {GIVE}"
    return f"is not a torch checkpoint (neither a torch zip archive nor a pickle; it starts {head[:8].hex(' ')}): {GIVE}"


def _zip_kind(path: Path) -> str | None:
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        return f"is a damaged zip archive ({exc}), not a readable training checkpoint: {GIVE}"
    inner = [name.split("/")[1:] for name in names if "/" in name]  # below the archive's top folder
    if any(part == ["constants.pkl"] or part[:1] == ["code"] for part in inner):
        return f"is a TorchScript model, not a training checkpoint: {GIVE_SOURCE}"
    if ["data.pkl"] in inner:
        return None
    return f"is a zip archive without a torch checkpoint in it, not a training checkpoint: {GIVE}"


def _varint(data: bytes, pos: int) -> tuple[int, int] | None:
    """(value, next position) of the protobuf varint at ``pos``; None when cut off or too long."""
    value = 0
    for shift in range(0, 64, 7):
        if pos >= len(data):
            return None
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
    return None


def _onnx_model(head: bytes, size: int) -> bool:
    """True when ``head`` parses as the start of an ONNX ModelProto: ir_version first, then only
    ModelProto fields of the right wire type and lengths that fit the file, up to the graph (or
    the end of what was read)."""
    pos, fields = 0, 0
    while pos < len(head):
        tag = _varint(head, pos)
        if tag is None:
            break
        number, wire = tag[0] >> 3, tag[0] & 7
        if ONNX_FIELDS.get(number) != wire or (fields == 0 and number != 1):
            return False
        value = _varint(head, tag[1])
        if value is None:
            break
        if number == 1 and not 1 <= value[0] <= MAX_IR_VERSION:
            return False
        fields += 1
        if wire == 0:
            pos = value[1]
            continue
        end = value[1] + value[0]
        if end > size:
            return False
        if number == ONNX_GRAPH_FIELD:
            return True
        pos = end
    return fields >= 2


def _text(head: bytes) -> bool:
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 3:  # not just a character cut off at the end of what was read
            return False
        text = head[: exc.start].decode("utf-8")
    return all(c.isprintable() or c in "\t\r\n" for c in text)
