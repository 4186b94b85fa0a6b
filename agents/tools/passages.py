"""Only the passages of a long document that matter for a query.

A page of 200,000 characters does not fit a model's context, and truncating it keeps only the top, which is
rarely where the answer is. With a query, the document is cut into blocks (paragraphs, list runs, tables in
row chunks that repeat their header), blocks are scored by the query's words (rarer words weigh more, an
exact phrase weighs most), and the best ones are returned in document order under their section heading.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass

_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_HEADING = re.compile(r"^(#{1,6})\s+(.*)$")
_STOP = frozenset(
    "a an and are as at be by for from has have how in is it its of on or that the this to was were what when "
    "where which who whom why with did does do many much according".split()
)
TABLE_CHUNK_ROWS = 25


@dataclass
class Block:
    text: str
    heading: str
    index: int


def _terms(text: str) -> list[str]:
    return [w for w in (m.group(0).lower() for m in _WORD.finditer(text)) if w not in _STOP and (len(w) > 1 or w.isdigit())]


def split_blocks(markdown: str) -> list[Block]:
    blocks: list[Block] = []
    heading = ""
    for raw in re.split(r"\n\s*\n", markdown):
        chunk = raw.strip("\n")
        if not chunk.strip():
            continue
        first = chunk.lstrip().splitlines()[0]
        if m := _HEADING.match(first):
            heading = m.group(2).strip()
            if len(chunk.strip().splitlines()) == 1:
                continue  # a heading alone is context for the blocks under it, not a passage
        lines = chunk.splitlines()
        table_lines = [ln for ln in lines if ln.lstrip().startswith("|")]
        if len(table_lines) > TABLE_CHUNK_ROWS + 2 and len(table_lines) >= len(lines) - 2:
            # A long table: cut it in row chunks, each with the header, so every chunk reads on its own.
            start = next(i for i, ln in enumerate(lines) if ln.lstrip().startswith("|"))
            intro, head, rows = lines[:start], lines[start : start + 2], lines[start + 2 :]
            for i in range(0, len(rows), TABLE_CHUNK_ROWS):
                part = (intro if i == 0 else []) + head + rows[i : i + TABLE_CHUNK_ROWS]
                blocks.append(Block("\n".join(part), heading, len(blocks)))
        else:
            blocks.append(Block(chunk, heading, len(blocks)))
    return blocks


def select_passages(markdown: str, query: str, *, max_chars: int = 8_000) -> tuple[str, int, int] | None:
    """(text of the best passages, passages shown, passages in the document), or None when nothing matches."""
    blocks = split_blocks(markdown)
    terms = list(dict.fromkeys(_terms(query)))
    if not blocks or not terms:
        return None
    counts = [Counter(_terms(b.text + " " + b.heading)) for b in blocks]
    n = len(blocks)
    idf = {t: math.log(1 + n / (1 + sum(1 for c in counts if t in c))) for t in terms}
    phrase = " ".join(query.lower().split())
    scores: list[tuple[float, int]] = []
    for i, (block, count) in enumerate(zip(blocks, counts, strict=True)):
        matched = [t for t in terms if t in count]
        if not matched:
            continue
        score = sum(idf[t] * (1 + math.log(count[t])) for t in matched)
        score *= (len(matched) / len(terms)) ** 0.5  # covering more of the query beats repeating one word
        if len(phrase) > 3 and phrase in " ".join(block.text.lower().split()):
            score *= 2
        scores.append((score, i))
    if not scores:
        return None
    scores.sort(key=lambda s: (-s[0], s[1]))
    chosen: list[int] = []
    used = 0
    for _score, i in scores:
        size = len(blocks[i].text) + len(blocks[i].heading) + 20
        if used + size > max_chars and chosen:
            continue
        chosen.append(i)
        used += size
        if used >= max_chars:
            break
    out: list[str] = []
    last_heading: str | None = None
    for i in sorted(chosen):
        block = blocks[i]
        if block.heading and block.heading != last_heading and not _HEADING.match(block.text.lstrip()):
            out.append(f"[section: {block.heading}]")
        last_heading = block.heading
        out.append(block.text[:max_chars])
    return "\n\n".join(out), len(chosen), n
