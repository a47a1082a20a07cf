# SPDX-License-Identifier: Apache-2.0
"""Read zstd:chunked layers as containers/storage defines them, and edit frames.

A zstd:chunked blob is a series of zstd frames that decompress to the layer's
tar stream, followed by skippable frames with the zstd-compressed table of
contents (TOC, JSON) and a 64-byte footer. The layer descriptor's annotation
io.github.containers.zstd-chunked.manifest-position is
"OFFSET:LENGTH:UNCOMPRESSED_LENGTH:1", the TOC's compressed byte range, and
...manifest-checksum is the SHA-256 of those compressed bytes.

The tamper test also changes one byte of a chunk's frame so that the frame
still decodes. That means fixing the frame's content checksum, which is the
low 32 bits of XXH64 with seed 0 (RFC 8878 section 3.1.1). xxh64()
implements that hash from its published specification.
"""

import hashlib
import json
import struct
import subprocess

POSITION_KEY = "io.github.containers.zstd-chunked.manifest-position"
CHECKSUM_KEY = "io.github.containers.zstd-chunked.manifest-checksum"
FOOTER_MAGIC = b"GNUlInUx"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
SKIPPABLE_MAGIC = b"\x50\x2a\x4d\x18"

_MASK = (1 << 64) - 1
_P1 = 0x9E3779B185EBCA87
_P2 = 0xC2B2AE3D27D4EB4F
_P3 = 0x165667B19E3779F9
_P4 = 0x85EBCA77C2B2AE63
_P5 = 0x27D4EB2F165667C5


def parse_position(annotation):
    """Return (offset, length, uncompressed_length) of a position annotation."""
    offset, length, uncompressed, kind = annotation.split(":")
    if kind != "1":
        raise ValueError(f"manifest type {kind!r} in {annotation!r}, expected 1")
    return int(offset), int(length), int(uncompressed)


def zstd_decompress(data, check=True):
    command = ["zstd", "-q", "-d", "-c"] + ([] if check else ["--no-check"])
    result = subprocess.run(command, input=data, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, timeout=300)
    if result.returncode != 0:
        raise ValueError(f"zstd -d failed: {result.stderr.decode(errors='replace')}")
    return result.stdout


def read_toc(blob, descriptor):
    """Return the parsed TOC of a zstd:chunked blob (bytes) and its descriptor."""
    offset, length, uncompressed = parse_position(
        descriptor["annotations"][POSITION_KEY])
    compressed = blob[offset:offset + length]
    checksum = "sha256:" + hashlib.sha256(compressed).hexdigest()
    if checksum != descriptor["annotations"][CHECKSUM_KEY]:
        raise ValueError(f"TOC checksum {checksum} does not match the "
                         f"annotation {descriptor['annotations'][CHECKSUM_KEY]}")
    text = zstd_decompress(compressed)
    if len(text) != uncompressed:
        raise ValueError(f"TOC is {len(text)} bytes, the annotation says "
                         f"{uncompressed}")
    return json.loads(text)


def read_footer(blob):
    """Return the footer's seven little-endian u64 fields and check its magic."""
    if blob[-8:] != FOOTER_MAGIC:
        raise ValueError(f"footer magic is {blob[-8:]!r}, expected {FOOTER_MAGIC!r}")
    return struct.unpack("<7Q", blob[-64:-8])


def file_chunks(toc, name):
    """Return the chunks of regular file name as dicts with blob ranges.

    Each dict has offset (blob offset of the chunk's frame), end (blob
    offset where the frame ends), chunk_offset and chunk_size (the range of
    the file it holds) and digest (SHA-256 of the uncompressed chunk).
    """
    entries = [entry for entry in toc["entries"]
               if entry.get("name") == name and entry["type"] in ("reg", "chunk")]
    if not entries or entries[0]["type"] != "reg":
        raise KeyError(f"no regular file {name!r} in the TOC")
    head = entries[0]
    chunks = []
    for index, entry in enumerate(entries):
        size = entry.get("chunkSize", head.get("size", 0))
        digest = entry.get("chunkDigest") or head.get("digest")
        chunks.append({"offset": entry["offset"],
                       "chunk_offset": entry.get("chunkOffset", 0),
                       "chunk_size": size, "digest": digest})
    for index, chunk in enumerate(chunks):
        if index + 1 < len(chunks):
            chunk["end"] = chunks[index + 1]["offset"]
        else:
            chunk["end"] = head["endOffset"]
    return chunks


def _rotl(value, bits):
    return ((value << bits) | (value >> (64 - bits))) & _MASK


def _round(accumulator, lane):
    accumulator = (accumulator + lane * _P2) & _MASK
    return (_rotl(accumulator, 31) * _P1) & _MASK


def _merge(accumulator, value):
    accumulator ^= _round(0, value)
    return (accumulator * _P1 + _P4) & _MASK


def xxh64(data, seed=0):
    """Return the 64-bit XXH64 hash of data."""
    length = len(data)
    index = 0
    if length >= 32:
        v1 = (seed + _P1 + _P2) & _MASK
        v2 = (seed + _P2) & _MASK
        v3 = seed
        v4 = (seed - _P1) & _MASK
        while index + 32 <= length:
            a, b, c, d = struct.unpack_from("<4Q", data, index)
            v1, v2, v3, v4 = _round(v1, a), _round(v2, b), _round(v3, c), _round(v4, d)
            index += 32
        hash_value = (_rotl(v1, 1) + _rotl(v2, 7) + _rotl(v3, 12)
                      + _rotl(v4, 18)) & _MASK
        for value in (v1, v2, v3, v4):
            hash_value = _merge(hash_value, value)
    else:
        hash_value = (seed + _P5) & _MASK

    hash_value = (hash_value + length) & _MASK
    while index + 8 <= length:
        (lane,) = struct.unpack_from("<Q", data, index)
        hash_value ^= _round(0, lane)
        hash_value = (_rotl(hash_value, 27) * _P1 + _P4) & _MASK
        index += 8
    if index + 4 <= length:
        (lane,) = struct.unpack_from("<I", data, index)
        hash_value ^= (lane * _P1) & _MASK
        hash_value = (_rotl(hash_value, 23) * _P2 + _P3) & _MASK
        index += 4
    while index < length:
        hash_value ^= (data[index] * _P5) & _MASK
        hash_value = (_rotl(hash_value, 11) * _P1) & _MASK
        index += 1

    hash_value ^= hash_value >> 33
    hash_value = (hash_value * _P2) & _MASK
    hash_value ^= hash_value >> 29
    hash_value = (hash_value * _P3) & _MASK
    hash_value ^= hash_value >> 32
    return hash_value


def frame_layout(frame):
    """Return (blocks, has_checksum, end) for one zstd frame (RFC 8878 3.1.1).

    blocks is a list of (block_type, content_offset, content_size) with
    offsets into frame; block_type 0 is raw, 1 RLE, 2 compressed. end is
    the offset just after the last block, where the 4-byte checksum starts
    when has_checksum is true.
    """
    if frame[:4] != ZSTD_MAGIC:
        raise ValueError(f"not a zstd frame: starts with {frame[:4].hex()}")
    descriptor = frame[4]
    content_size_flag = descriptor >> 6
    single_segment = (descriptor >> 5) & 1
    has_checksum = bool((descriptor >> 2) & 1)
    dictionary_size = (0, 1, 2, 4)[descriptor & 3]
    if content_size_flag == 0:
        content_size_bytes = 1 if single_segment else 0
    else:
        content_size_bytes = (0, 2, 4, 8)[content_size_flag]
    position = 5 + (0 if single_segment else 1) + dictionary_size + content_size_bytes

    blocks = []
    while True:
        header = int.from_bytes(frame[position:position + 3], "little")
        last, block_type, size = header & 1, (header >> 1) & 3, header >> 3
        position += 3
        stored = 1 if block_type == 1 else size
        blocks.append((block_type, position, size))
        position += stored
        if last:
            break
    return blocks, has_checksum, position


def corrupt_frame_content(frame):
    """Flip one byte of a raw block and fix the checksum; return the new frame.

    The result still decodes without error, to different bytes, so only a
    SHA-256 check of the output can tell that it is wrong.
    """
    blocks, has_checksum, end = frame_layout(frame)
    raw = [(offset, size) for kind, offset, size in blocks if kind == 0 and size > 0]
    if not raw:
        raise ValueError("the frame has no raw block to change: its data "
                         "compressed, so use incompressible test data")
    offset, size = raw[0]
    changed = bytearray(frame)
    changed[offset + size // 2] ^= 0xFF
    if has_checksum:
        content = zstd_decompress(bytes(changed[:end]) + b"\0\0\0\0", check=False)
        changed[end:end + 4] = struct.pack("<I", xxh64(content) & 0xFFFFFFFF)
    return bytes(changed)
