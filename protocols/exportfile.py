"""Export files: signed objects, byte-exact, so a file moves between nodes.

Format: the 16-byte magic ``PERCOLAB-EXPORT1`` then, per object, a 4-byte big-endian length
and the object's signed bytes. Nothing else: ids are recomputed on import, signatures
re-verified by the ingest pipeline.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable

from protocols.limits import MAX_OBJECT_BYTES

MAGIC = b"PERCOLAB-EXPORT1"
_LEN = struct.Struct(">I")


class ExportFileError(ValueError):
    """The file is not a Percolab export, or it is truncated or corrupt."""


def encode_export(objects: Iterable[bytes]) -> bytes:
    parts = [MAGIC]
    for raw in objects:
        parts.append(_LEN.pack(len(raw)))
        parts.append(raw)
    return b"".join(parts)


def decode_export(data: bytes) -> list[bytes]:
    if not data.startswith(MAGIC):
        raise ExportFileError("not a Percolab export file (bad magic)")
    out: list[bytes] = []
    pos = len(MAGIC)
    while pos < len(data):
        if pos + _LEN.size > len(data):
            raise ExportFileError(f"truncated length at byte {pos}")
        (size,) = _LEN.unpack_from(data, pos)
        pos += _LEN.size
        if size > MAX_OBJECT_BYTES:
            raise ExportFileError(
                f"object #{len(out)} claims {size} bytes; the limit is {MAX_OBJECT_BYTES}"
            )
        if pos + size > len(data):
            raise ExportFileError(f"object #{len(out)} is truncated at byte {len(data)}")
        out.append(data[pos : pos + size])
        pos += size
    return out
