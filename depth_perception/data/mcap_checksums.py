"""Fill in the CRC-32 checksums of an MCAP file that its writer left at 0 ("not computed").

rosbags writes MCAP chunks with `uncompressed_crc` 0 and a data section CRC of 0, so a reader cannot tell a
damaged bag from a good one: 5000 corrupted payload bytes played through with no complaint. This fills the
chunk CRCs (uncompressed chunks: CRC-32 of the chunk's records), then the DataEnd record's data section CRC
(everything before it) and the Footer's summary CRC, as the MCAP specification defines them. rosbags and the
`mcap` package check all three on read once they are non-zero. The file is patched in place, before kitti2bag
moves the finished bag into place.
"""
from __future__ import annotations

import mmap
import struct
import zlib
from pathlib import Path

MAGIC = b"\x89MCAP0\r\n"
OP_FOOTER, OP_CHUNK, OP_DATA_END = 0x02, 0x06, 0x0F
_RECORD = struct.Struct("<BQ")  # opcode, content length


def _crc(buf: memoryview | bytes, start: int, end: int, value: int = 0, step: int = 1 << 24) -> int:
    for k in range(start, end, step):
        value = zlib.crc32(buf[k:min(end, k + step)], value)
    return value


def fill_mcap_checksums(path: str | Path) -> int:
    """Patch the file's zero CRCs; returns the number of chunks given a CRC. ValueError if it is not MCAP."""
    path = Path(path)
    with open(path, "r+b") as f, mmap.mmap(f.fileno(), 0) as mm:
        view = memoryview(mm)
        try:
            return _fill(mm, view, path)
        finally:
            view.release()


def _fill(mm: mmap.mmap, view: memoryview, path: Path) -> int:
    if mm[:8] != MAGIC:
        raise ValueError(f"{path} is not an MCAP file")
    pos, chunks = 8, 0
    while pos + _RECORD.size <= len(mm):
        op, length = _RECORD.unpack_from(mm, pos)
        body = pos + _RECORD.size
        if body + length > len(mm):
            raise ValueError(f"{path}: record at byte {pos} runs past the end of the file")
        if op == OP_CHUNK:
            crc_at = body + 24  # message_start_time, message_end_time, uncompressed_size
            (name_len,) = struct.unpack_from("<I", mm, crc_at + 4)
            compression = bytes(mm[crc_at + 8:crc_at + 8 + name_len])
            records_at = crc_at + 8 + name_len
            (records_len,) = struct.unpack_from("<Q", mm, records_at)
            if compression == b"" and struct.unpack_from("<I", mm, crc_at)[0] == 0:
                crc = _crc(view, records_at + 8, records_at + 8 + records_len)
                struct.pack_into("<I", mm, crc_at, crc)
                chunks += 1
        elif op == OP_DATA_END:
            if struct.unpack_from("<I", mm, body)[0] == 0:
                struct.pack_into("<I", mm, body, _crc(view, 0, pos))
        elif op == OP_FOOTER:
            summary_start, _ = struct.unpack_from("<QQ", mm, body)
            if summary_start and struct.unpack_from("<I", mm, body + 16)[0] == 0:
                struct.pack_into("<I", mm, body + 16, _crc(view, summary_start, body + 16))
            break
        pos = body + length
    return chunks


__all__ = ["fill_mcap_checksums"]
