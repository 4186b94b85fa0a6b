"""Chess fixtures the tests make: a board image drawn from a known FEN, and a scripted vision model that
reads it the way chess_position asks (rows as displayed, then MATCH or a corrected reading).

The scripted reader knows the true position (it is the FEN the image was drawn from) and can be told to
misread squares in its first reading. When asked to compare, it really looks at the drawing the tool sent
(the second image): it samples each square for a white disc, a black disc or nothing, and compares that with
the true position; a drawing that does not show the position makes it send the true reading back.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import chess
from autogen_core import Image as AGImage
from autogen_core.models import UserMessage

from agents.tools.chess_board import DARK, LIGHT, MARGIN, SQUARE, Bottom, Reading, render_reading
from tests.fakes.function_model import Call, Reply

Occupancy = dict[tuple[int, int], str]  # (row, column) as displayed -> "white", "black" or "empty"


def reading_of(fen: str, bottom: Bottom = "white") -> Reading:
    """The rows of the board drawn from `fen`, as displayed with `bottom` at the bottom."""
    board = chess.Board(fen)
    ranks = []
    for rank in range(7, -1, -1):
        squares = [board.piece_at(chess.square(file, rank)) for file in range(8)]
        ranks.append("".join(piece.symbol() if piece else "." for piece in squares))
    rows = ranks if bottom == "white" else [rank[::-1] for rank in reversed(ranks)]
    return Reading(bottom, tuple(rows))


def board_png(path: Path, fen: str, bottom: Bottom = "white") -> Path:
    """A PNG of the position `fen`, seen from `bottom`'s side."""
    render_reading(reading_of(fen, bottom)).image.save(path, format="PNG")
    return path


def with_squares(reading: Reading, changes: dict[str, str]) -> Reading:
    """`reading` with the squares named in `changes` ("e4": "N", "c4": ".") set as given."""
    rows = [list(row) for row in reading.rows]
    for name, letter in changes.items():
        square = chess.parse_square(name)
        file, rank = chess.square_file(square), chess.square_rank(square)
        r, c = (7 - rank, file) if reading.bottom == "white" else (rank, 7 - file)
        rows[r][c] = letter
    return Reading(reading.bottom, tuple("".join(row) for row in rows))


def occupancy(image: AGImage) -> Occupancy:
    """What a drawing by `render_reading` shows on each square: a white disc, a black disc, or nothing."""
    picture = image.image.convert("RGB")
    seen: Occupancy = {}
    for r in range(8):
        for c in range(8):
            x, y = MARGIN + c * SQUARE + SQUARE // 4, MARGIN + r * SQUARE + SQUARE // 2  # inside a disc, left of its letter
            pixel = picture.getpixel((x, y))
            assert isinstance(pixel, tuple)
            rgb = tuple(pixel[:3])
            if rgb in (LIGHT, DARK):
                seen[(r, c)] = "empty"
            else:
                seen[(r, c)] = "white" if sum(rgb) > 384 else "black"
    return seen


def occupancy_of(reading: Reading) -> Occupancy:
    return {
        (r, c): "empty" if letter == "." else ("white" if letter.isupper() else "black")
        for r, row in enumerate(reading.rows) for c, letter in enumerate(row)
    }


def _images(call: Call) -> list[AGImage]:
    user = next(m for m in call.messages if isinstance(m, UserMessage))
    return [part for part in user.content if isinstance(part, AGImage)] if isinstance(user.content, list) else []


def is_board_call(call: Call) -> bool:
    return "board_reader" in call.system


@dataclass
class BoardReader:
    """A scripted vision model for chess_position. `first` is what it reads first (the truth when None);
    `insist` makes it answer MATCH whatever the drawing shows (a model that sees no difference)."""

    truth: Reading
    first: Reading | None = None
    insist: bool = False
    prompts: list[str] = field(default_factory=list)
    drawings: list[Occupancy] = field(default_factory=list)
    originals: list[AGImage] = field(default_factory=list)

    def __call__(self, call: Call) -> Reply:
        assert is_board_call(call), "chess_position's vision call has the board reader's system prompt"
        images = _images(call)
        user = next(m for m in call.messages if isinstance(m, UserMessage))
        prompt = next(part for part in user.content if isinstance(part, str)) if isinstance(user.content, list) else ""
        self.prompts.append(prompt)
        self.originals.append(images[0])
        if len(images) == 1:  # the first reading
            return (self.first or self.truth).listing()
        drawn = occupancy(images[1])
        self.drawings.append(drawn)
        if self.insist or drawn == occupancy_of(self.truth):
            return "MATCH"
        wrong = sorted({f"row {r + 1} column {c + 1}" for (r, c), v in drawn.items() if occupancy_of(self.truth)[(r, c)] != v})
        return f"{self.truth.listing()}\nCHANGED: {', '.join(wrong)}"


def reader_steps(reader: Callable[[Call], Reply], count: int) -> list[Callable[[Call], Reply]]:
    """`count` scripted steps that all go to `reader` (for an agent whose client is the team's vision model)."""
    return [reader] * count
