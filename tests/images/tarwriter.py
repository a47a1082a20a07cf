# SPDX-License-Identifier: Apache-2.0
"""Write tar streams header by header, including forms tarfile cannot make.

Python's tarfile normalises what it writes. It uses one long-name encoding
per archive, always fills the ustar size field, uses base-256 only for
numbers too large for octal, and writes no GNU sparse entries. The test
images need exactly those forms, so this module builds every 512-byte block
by hand (POSIX.1-2001 pax and ustar, GNU tar's "oldgnu" extensions).

Names and link targets may be str or bytes; bytes are written unchanged, so
non-UTF-8 names survive.
"""

import dataclasses

BLOCK = 512

# Offsets and widths of the ustar header fields (POSIX.1-1988 ustar).
_FIELDS = {
    "name": (0, 100),
    "mode": (100, 8),
    "uid": (108, 8),
    "gid": (116, 8),
    "size": (124, 12),
    "mtime": (136, 12),
    "chksum": (148, 8),
    "typeflag": (156, 1),
    "linkname": (157, 100),
    "magic": (257, 6),
    "version": (263, 2),
    "uname": (265, 32),
    "gname": (297, 32),
    "devmajor": (329, 8),
    "devminor": (337, 8),
    "prefix": (345, 155),
}

REG, HARD, SYM, CHR, BLK, DIR, FIFO = b"0", b"1", b"2", b"3", b"4", b"5", b"6"
PAX_HEADER, GNU_LONGNAME, GNU_LONGLINK, GNU_SPARSE = b"x", b"L", b"K", b"S"


def to_bytes(value):
    """Return value as bytes: str is UTF-8 encoded, bytes pass through."""
    if isinstance(value, bytes):
        return value
    return value.encode("utf-8")


def octal_field(value, width):
    """Encode a non-negative number as zero-padded octal plus a NUL."""
    digits = width - 1
    text = format(value, "o")
    if len(text) > digits:
        raise ValueError(f"value {value} does not fit {digits} octal digits")
    return text.rjust(digits, "0").encode("ascii") + b"\0"


def base256_field(value, width):
    """Encode a number in GNU base-256: high bit set, big-endian two's complement."""
    encoded = bytearray(value.to_bytes(width, "big", signed=True))
    if value >= 0 and encoded[0] & 0x80:
        raise ValueError(f"value {value} does not fit {width} bytes of base-256")
    encoded[0] |= 0x80
    return bytes(encoded)


def pax_record(key, value):
    """Return one PAX extended-header record "LEN KEY=VALUE\\n".

    LEN counts the whole record including its own digits, so it is found by
    iterating until the length stops changing.
    """
    body = b" " + to_bytes(key) + b"=" + to_bytes(value) + b"\n"
    length = len(body) + 1
    while len(str(length)) + len(body) != length:
        length = len(str(length)) + len(body)
    return str(length).encode("ascii") + body


def padded(data):
    """Return data followed by NULs up to a multiple of the block size."""
    remainder = len(data) % BLOCK
    if remainder == 0:
        return data
    return data + b"\0" * (BLOCK - remainder)


@dataclasses.dataclass
class Header:
    """The raw field values of one 512-byte header block.

    Numeric fields hold either an int (written as octal) or bytes (written
    as they are, for base-256 values or deliberately odd encodings).
    """

    name: bytes = b""
    mode: object = 0o644
    uid: object = 0
    gid: object = 0
    size: object = 0
    mtime: object = 0
    typeflag: bytes = REG
    linkname: bytes = b""
    magic: bytes = b"ustar\0"
    version: bytes = b"00"
    uname: bytes = b""
    gname: bytes = b""
    devmajor: object = 0
    devminor: object = 0
    prefix: bytes = b""
    extra: dict = dataclasses.field(default_factory=dict)

    def encode(self):
        """Return the 512-byte block with a correct checksum."""
        block = bytearray(BLOCK)
        for field, (offset, width) in _FIELDS.items():
            if field == "chksum":
                continue
            value = getattr(self, field)
            if isinstance(value, int):
                value = octal_field(value, width)
            if len(value) > width:
                raise ValueError(f"header field {field} is {len(value)} bytes, "
                                 f"the maximum is {width}")
            block[offset:offset + len(value)] = value

        # GNU "oldgnu" fields beyond the ustar layout, by absolute offset.
        for offset, value in self.extra.items():
            block[offset:offset + len(value)] = value

        block[148:156] = b" " * 8
        checksum = sum(block)
        block[148:156] = format(checksum, "06o").encode("ascii") + b"\0 "
        return bytes(block)


class TarBuilder:
    """Accumulate tar entries and return the archive with bytes().

    Each entry method writes the headers that its options ask for, then the
    data padded to a block. Options shared by the entry methods:

    mode, uid, gid, mtime: header values (mtime defaults to the builder's
        default_mtime; it may be negative or a
        "SECONDS.FRACTION" string; either form goes to a PAX mtime record,
        because the ustar field holds only non-negative whole seconds).
    long_name: how a name longer than 100 bytes is stored: "pax" (a PAX
        path record), "gnu" (a GNU ././@LongLink 'L' block) or "prefix"
        (split over the ustar prefix and name fields).
    long_link: "pax" or "gnu" ('K' block) for link targets over 100 bytes.
    pax: extra PAX records, a dict of key to str or bytes value, written in
        the order given.
    xattrs: extended attributes, written as SCHILY.xattr.NAME PAX records
        with binary-safe values.
    size_encoding: "octal" (default), "base256" (GNU), or "pax" (ustar size
        field 0 and a PAX size record).
    """

    def __init__(self, default_mtime=0):
        self.default_mtime = default_mtime
        self._chunks = []
        self._pax_serial = 0

    def bytes(self, end_blocks=2):
        """Return the archive followed by end_blocks zero blocks."""
        return b"".join(self._chunks) + b"\0" * (BLOCK * end_blocks)

    def raw(self, data):
        """Append bytes verbatim (they must be whole blocks to stay valid tar)."""
        self._chunks.append(data)

    def reg(self, name, data=b"", mode=0o644, **options):
        return self.entry(REG, name, data=to_bytes(data), mode=mode, **options)

    def dir(self, name, mode=0o755, **options):
        return self.entry(DIR, name, mode=mode, **options)

    def sym(self, name, target, mode=0o777, **options):
        return self.entry(SYM, name, linkname=target, mode=mode, **options)

    def hard(self, name, target, mode=0o644, **options):
        return self.entry(HARD, name, linkname=target, mode=mode, **options)

    def chr(self, name, major, minor, mode=0o666, **options):
        return self.entry(CHR, name, mode=mode, devmajor=major,
                          devminor=minor, **options)

    def blk(self, name, major, minor, mode=0o660, **options):
        return self.entry(BLK, name, mode=mode, devmajor=major,
                          devminor=minor, **options)

    def fifo(self, name, mode=0o644, **options):
        return self.entry(FIFO, name, mode=mode, **options)

    def entry(self, typeflag, name, *, data=b"", mode=0o644, uid=0, gid=0,
              mtime=None, linkname=b"", devmajor=0, devminor=0, long_name="pax",
              long_link="pax", pax=None, xattrs=None, size_encoding="octal",
              size=None):
        """Append one entry; size overrides len(data) for the size fields."""
        if mtime is None:
            mtime = self.default_mtime
        name = to_bytes(name)
        linkname = to_bytes(linkname)
        records = []
        header = Header(typeflag=typeflag, mode=mode, uid=uid, gid=gid,
                        devmajor=devmajor, devminor=devminor)

        self._set_name(header, name, long_name, records)
        self._set_link(header, linkname, long_link, records)
        self._set_mtime(header, mtime, records)

        data_size = len(data) if size is None else size
        self._set_size(header, data_size, size_encoding, records)

        for key, value in (xattrs or {}).items():
            records.append(pax_record("SCHILY.xattr." + key, value))
        for key, value in (pax or {}).items():
            records.append(pax_record(key, value))

        if records:
            self._append_pax(name, b"".join(records))
        self._chunks.append(header.encode())
        self._chunks.append(padded(data))

    def gnu_sparse(self, name, real_size, segments, mode=0o644, mtime=None):
        """Append an old-GNU type 'S' sparse entry.

        segments is a list of (offset, bytes) data regions. At most 4 fit the
        header without extension blocks. Every other byte of the
        real_size-byte file is a hole.
        """
        if len(segments) > 4:
            raise ValueError("at most 4 sparse segments fit in the header")
        stored = b"".join(data for _, data in segments)
        mtime = self.default_mtime if mtime is None else mtime
        extra = {}
        for index, (offset, data) in enumerate(segments):
            base = 386 + index * 24
            extra[base] = octal_field(offset, 12)
            extra[base + 12] = octal_field(len(data), 12)
        extra[483] = octal_field(real_size, 12)

        header = Header(name=to_bytes(name), mode=mode, size=len(stored),
                        mtime=mtime, typeflag=GNU_SPARSE,
                        magic=b"ustar ", version=b" \0", extra=extra)
        self._chunks.append(header.encode())
        self._chunks.append(padded(stored))

    def pax_sparse(self, name, real_size, segments, mode=0o644, mtime=None):
        """Append a GNU PAX 1.0 sparse entry, as `tar --posix --sparse` writes.

        The ustar name is GNUSparseFile.0/BASENAME, the real name is in the
        GNU.sparse.name record, and the data starts with the decimal sparse
        map (count, then offset and size per region) padded to a block.
        """
        name = to_bytes(name)
        sparse_map = [str(len(segments))]
        for offset, data in segments:
            sparse_map += [str(offset), str(len(data))]
        map_bytes = padded(("\n".join(sparse_map) + "\n").encode("ascii"))
        mtime = self.default_mtime if mtime is None else mtime
        payload = map_bytes + b"".join(data for _, data in segments)

        basename = name.rsplit(b"/", 1)[-1]
        records = b"".join([
            pax_record("GNU.sparse.major", "1"),
            pax_record("GNU.sparse.minor", "0"),
            pax_record("GNU.sparse.name", name),
            pax_record("GNU.sparse.realsize", str(real_size)),
        ])
        self._append_pax(name, records)
        header = Header(name=b"GNUSparseFile.0/" + basename, mode=mode,
                        size=len(payload), mtime=mtime)
        self._chunks.append(header.encode())
        self._chunks.append(padded(payload))

    def _set_name(self, header, name, long_name, records):
        if len(name) <= 100:
            header.name = name
            return
        if long_name == "pax":
            header.name = name[:100]
            records.append(pax_record("path", name))
        elif long_name == "gnu":
            self._append_gnu_long(GNU_LONGNAME, name)
            header.name = name[:100]
        elif long_name == "prefix":
            header.prefix, header.name = split_prefix(name)
        else:
            raise ValueError(f"unknown long_name encoding {long_name!r}")

    def _set_link(self, header, linkname, long_link, records):
        if len(linkname) <= 100:
            header.linkname = linkname
            return
        header.linkname = linkname[:100]
        if long_link == "pax":
            records.append(pax_record("linkpath", linkname))
        elif long_link == "gnu":
            self._append_gnu_long(GNU_LONGLINK, linkname)
        else:
            raise ValueError(f"unknown long_link encoding {long_link!r}")

    @staticmethod
    def _set_mtime(header, mtime, records):
        if isinstance(mtime, int) and mtime >= 0:
            header.mtime = mtime
            return
        header.mtime = 0
        records.append(pax_record("mtime", str(mtime)))

    @staticmethod
    def _set_size(header, size, encoding, records):
        if encoding == "octal":
            header.size = size
        elif encoding == "base256":
            header.size = base256_field(size, 12)
        elif encoding == "pax":
            header.size = 0
            records.append(pax_record("size", str(size)))
        else:
            raise ValueError(f"unknown size encoding {encoding!r}")

    def _append_pax(self, name, records):
        self._pax_serial += 1
        basename = name.rsplit(b"/", 1)[-1][:80]
        pax_name = b"PaxHeaders.%d/" % self._pax_serial + basename
        header = Header(name=pax_name, size=len(records), typeflag=PAX_HEADER)
        self._chunks.append(header.encode())
        self._chunks.append(padded(records))

    def _append_gnu_long(self, typeflag, value):
        data = value + b"\0"
        header = Header(name=b"././@LongLink", size=len(data),
                        typeflag=typeflag, magic=b"ustar ", version=b" \0")
        self._chunks.append(header.encode())
        self._chunks.append(padded(data))


def split_prefix(name):
    """Split name into ustar (prefix, name) at a slash, or raise ValueError."""
    for index in range(len(name) - 1, -1, -1):
        if name[index:index + 1] != b"/":
            continue
        prefix, rest = name[:index], name[index + 1:]
        if len(prefix) <= 155 and 0 < len(rest) <= 100:
            return prefix, rest
    raise ValueError(f"name of {len(name)} bytes has no ustar prefix split")
