"""Reads the AMI transcripts recorded from a real Asterisk 22 (../shared/reference/asterisk-22/raw).

Block grammar (raw/README.md): '>>> +T' (client), '<<< +T' (Asterisk) or '*** +T note', then the
message's lines, then an empty line. The first '<<<' after a connect note is the banner.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

RAW = Path(__file__).resolve().parents[2] / "shared" / "reference" / "asterisk-22" / "raw"
_HEAD = re.compile(r"^(>>>|<<<|\*\*\*) \+(\d+\.\d{3})(?: (.*))?$")


@dataclass(frozen=True)
class Block:
    direction: str  # '>>>', '<<<' or '***'
    t: float
    lines: tuple[str, ...]  # the message lines, or (note,) for '***'

    def headers(self) -> list[tuple[str, str]]:
        out = []
        for line in self.lines:
            key, _, value = line.partition(":")
            out.append((key, value[1:] if value.startswith(" ") else value))
        return out

    def as_dict(self) -> dict[str, str | list[str]]:
        d: dict[str, str | list[str]] = {}
        for k, v in self.headers():
            if k in d:
                prev = d[k]
                d[k] = [*prev, v] if isinstance(prev, list) else [prev, v]
            else:
                d[k] = v
        return d


def read(name: str) -> list[Block]:
    text = (RAW / name).read_text(encoding="utf-8")
    blocks = []
    expect_banner = False
    for chunk in text[:-2].split("\n\n"):
        lines = chunk.split("\n")
        m = _HEAD.match(lines[0])
        assert m, f"{name}: bad block header {lines[0]!r}"
        direction = m.group(1)
        if direction == "***":
            note = m.group(3) or ""
            expect_banner = note.startswith("connect ")
            blocks.append(Block(direction, float(m.group(2)), (note,)))
            continue
        if direction == "<<<" and expect_banner:
            expect_banner = False
            continue  # the banner line is not a message
        blocks.append(Block(direction, float(m.group(2)), tuple(lines[1:])))
    return blocks


def connections(name: str) -> list[list[Block]]:
    """The messages of each TCP connection in the file (files 01 and 10 hold several)."""
    conns: list[list[Block]] = []
    for block in read(name):
        if block.direction == "***":
            if block.lines[0].startswith("connect "):
                conns.append([])
        else:
            conns[-1].append(block)
    return conns


def from_asterisk(name: str) -> list[dict[str, str | list[str]]]:
    """Every message Asterisk sent, as header mappings, in order."""
    return [b.as_dict() for b in read(name) if b.direction == "<<<"]
