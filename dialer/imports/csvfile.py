"""Reading an export file: its encoding, its header, its rows with their line numbers.

The file is streamed (memory does not grow with its size). Encodings: a BOM decides (UTF-8,
UTF-16); without one, UTF-16 is recognised by its zero bytes, and the first stretch of non-ASCII
bytes is read as UTF-8: the file is UTF-8 if it is (a few bad rows aside), else CP932 (Shift_JIS
with the Windows extensions). A byte sequence that is not valid in the file's encoding spoils only the row it
is in: that row is reported (line and column) and the others are read.

A quote that is never closed (or closed in the wrong place) would make the CSV reader take the
lines after it as one long cell, to the end of the file. A row that spans several lines and then
cannot be read, or comes out with another number of columns than the header, is therefore taken
back: its first line is reported, and the lines after it are read again, each as a row of its own.
A quoted cell with line breaks that reads right is a row like any other.
"""

from __future__ import annotations

import codecs
import csv
import io
import os
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple

from dialer.errors import ImportFileError
from dialer.imports.mapping import Mapping
from dialer.imports.values import clean

REPLACEMENT = "\ufffd"
# A copy or a transfer stopped part-way leaves a last line without its line break, and that line
# would be stored as it stands: a field cut to '' overwrote a good value (QA). Refused, with why.
CUT_SHORT = (
    "ファイルがこの行の途中で終わっています(最後の行に改行がありません)。"
    "ファイルが途中で切れている可能性があるため取り込みませんでした。元のファイルを確認してください"
)
_SNIFF = 1 << 20


class Row(NamedTuple):  # a tuple: an import makes millions of them
    line: int  # first physical line of the row (1-based, counting every line of the file)
    last_line: int
    fields: list[str]


@dataclass(frozen=True)
class BadRow:
    line: int
    last_line: int
    reason: str


def detect_encoding(f: BinaryIO) -> str:
    """'utf-8-sig', 'utf-16', 'utf-16-le', 'utf-16-be' or 'cp932', from the file's first bytes.
    Leaves f at its start."""
    head = f.read(4)
    f.seek(0)
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    try:
        sample = f.read(4096)
        if utf16 := _utf16_without_bom(sample):
            return utf16
        f.seek(0)
        while chunk := f.read(_SNIFF):
            if not chunk.isascii():
                return "utf-8-sig" if _mostly_utf8(chunk) else "cp932"
        return "utf-8-sig"  # all ASCII: any of them reads it alike
    finally:
        f.seek(0)


def _label(encoding: str) -> str:
    """The encoding as a mapping names it."""
    return {
        "utf-8-sig": "utf-8",
        "utf-16-le": "utf-16 (little-endian)",
        "utf-16-be": "utf-16 (big-endian)",
    }.get(encoding, encoding)


def _utf16_without_bom(sample: bytes) -> str | None:
    """A CSV in UTF-16 has zero bytes in half its positions (every ASCII character: the delimiters,
    digits, line ends), whatever its Japanese text; CP932 and UTF-8 text has none."""
    even, odd = sample[0::2].count(0), sample[1::2].count(0)
    if len(sample) < 8 or even + odd < len(sample) // 16:
        return None
    if odd > 4 * even:
        return "utf-16-le"
    if even > 4 * odd:
        return "utf-16-be"
    return None


def _mostly_utf8(chunk: bytes) -> bool:
    """Whether the first non-ASCII stretch is UTF-8 with at most a few bad rows. CP932 text read as
    UTF-8 is almost all invalid; a UTF-8 file with one row in another encoding is not CP932."""
    text = codecs.getincrementaldecoder("utf-8")("replace").decode(chunk)  # (a cut character waits)
    bad = text.count(REPLACEMENT)
    good = sum(1 for ch in text if ch > "\x7f") - bad
    return bad == 0 or good >= 3 * bad  # CP932 read as UTF-8: about one good character in six bad


class CsvFile:
    """Open with `with CsvFile(path, mapping) as f:`; then f.encoding, f.header, iterate f.rows()."""

    def __init__(self, path: Path, mapping: Mapping) -> None:
        self.path = path
        self.mapping = mapping
        self.encoding = ""
        self.header: list[str] = []
        self.blank_lines = 0
        self._binary: BinaryIO | None = None
        self._text: io.TextIOWrapper | None = None
        self._csv: Any = None  # csv.reader (its type is private)
        self._taken: list[str] = []  # the physical lines of the row being read
        self._back: deque[str] = deque()  # lines to read again, before the rest of the file
        self._at_end = False
        self._line = 1  # the number of the next line to read

    def __enter__(self) -> CsvFile:
        try:
            self._binary = open(self.path, "rb")  # closed in __exit__
        except OSError as exc:
            raise ImportFileError(f"Cannot open {self.path}: {exc.strerror}.", "cannot_open") from None
        enc = self.mapping.encoding
        self.encoding = detect_encoding(self._binary) if enc == "auto" else enc
        if enc == "utf-16" and (found := detect_encoding(self._binary)) != "utf-16":
            if found.startswith("utf-16-"):
                self.encoding = found  # declared UTF-16 without a BOM: its byte order, from its zero bytes
            elif (
                os.fstat(self._binary.fileno()).st_size >= 8
            ):  # (shorter: too short to tell, read as declared)
                self._binary.close()  # no BOM and no zero bytes: not UTF-16 at all
                raise _not_readable_as(self.path, "utf-16", found)
        self._text = io.TextIOWrapper(self._binary, encoding=self.encoding, errors="replace", newline="")
        self._csv = self._reader()
        try:
            self._read_header()
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        if self._text is not None:
            self._text.close()  # closes the binary file too
        elif self._binary is not None:
            self._binary.close()

    def _reader(self) -> Any:
        self._at_end = False
        return csv.reader(self._lines(), delimiter=self.mapping.delimiter, strict=True)

    def _lines(self) -> Iterator[str]:
        """The file's lines, each kept in `_taken` until its row is done; lines given back first."""
        assert self._text is not None
        back, taken = self._back, self._taken
        for line in self._text:
            while back:  # lines given back come before this one in the file
                b = back.popleft()
                taken.append(b)
                yield b
            taken.append(line)
            yield line
        while back:
            b = back.popleft()
            taken.append(b)
            yield b
        self._at_end = True

    def _read_header(self) -> None:
        assert self._csv is not None
        try:
            for _ in range(self.mapping.skip_lines):
                next(self._csv)
            if self.mapping.header:
                self.header = [clean(h)[0].lstrip("\ufeff") for h in next(self._csv)]
            self._line += len(self._taken)
            self._taken.clear()
        except StopIteration:
            raise ImportFileError(f"{self.path} is empty (no header line).", "empty") from None
        except (csv.Error, UnicodeError) as exc:
            raise ImportFileError(
                f"{self.path}: the header line cannot be read: {exc}.", "header_unreadable"
            ) from None
        if any(REPLACEMENT in h or "\x00" in h for h in self.header):
            assert self._binary is not None
            raise _not_readable_as(self.path, self.encoding, detect_encoding(self._binary))

    def position(self) -> int:
        """Bytes of the file read so far (a little ahead of the rows returned: it reads in chunks)."""
        assert self._binary is not None
        return self._binary.tell()

    def index_of(self, ref: str | int) -> int | None:
        """0-based column index of a mapping reference; None if the header lacks it."""
        if isinstance(ref, int):
            return ref - 1 if not self.header or ref <= len(self.header) else None
        try:
            return self.header.index(clean(ref)[0])
        except ValueError:
            return None

    def rows(self) -> Iterator[Row | BadRow]:
        width = len(self.header)
        taken = self._taken
        while True:
            try:
                fields = next(self._csv)
            except StopIteration:
                return
            except csv.Error as exc:  # the reader goes on after the bad row
                if len(taken) > 1:
                    yield self._read_again(
                        f"{_csv_reason(str(exc))}。この行から{len(taken)}行を1件と読みました"
                    )
                    continue
                yield BadRow(self._line, self._line, _csv_reason(str(exc)))
                self._line += len(taken)
                taken.clear()
                continue
            n = len(taken)
            if (
                n > 1 and width and (len(fields) < width or any(fields[width:]))
            ):  # (empty extra cells: as on one line)
                yield self._read_again(
                    f'引用符(")の対応が崩れています: この行から{n}行が1件({len(fields)}列、見出しは{width}列)になります'
                )
                continue
            first = self._line
            self._line += n
            cut = not taken[-1].endswith(("\n", "\r"))  # only the file's last line can end so
            taken.clear()
            if not fields or (not fields[0].strip() and not "".join(fields).strip()):
                self.blank_lines += 1  # an empty line, or one of nothing but delimiters
                continue
            if cut and first > 1 and self.mapping.last_line_break:  # other lines end in one: cut short?
                yield BadRow(first, first + n - 1, CUT_SHORT)
                continue
            yield Row(first, first + n - 1, fields)

    def _read_again(self, why: str) -> BadRow:
        """The row read from several lines is not a row: its first line is reported, the others are
        read again (each a row of its own, unless a quote in it spans lines again)."""
        bad = BadRow(self._line, self._line, f"{why}。この行を読まずに、次の行から読み直しました")
        self._back.extend(self._taken[1:])
        self._taken.clear()
        self._line += 1
        if self._at_end:
            self._csv = self._reader()
        return bad


def _not_readable_as(path: Path, encoding: str, looks: str) -> ImportFileError:
    """The file is not in the encoding its mapping declares; what it looks like, to set instead."""
    like = f" (the file looks like {_label(looks)})" if looks.removesuffix("-sig") != encoding else ""
    return ImportFileError(
        f"{path}: the header line is not valid {_label(encoding)}{like}. "
        'Set [file] encoding in the mapping (cp932, utf-8 or utf-16), or "auto".',
        "header_encoding",
        encoding=_label(encoding),
    )


def _csv_reason(message: str) -> str:
    if "end of data" in message or "EOF" in message:
        return '引用符(")が閉じていません(ファイルの終わりまで閉じられていません)'
    if "field larger" in message:
        return "項目が長すぎます"
    if "expected after" in message:
        return '引用符(")で囲んだ項目の後に区切り文字がありません'
    return f"CSVとして読めません: {message}"
