"""chess_position: a board image read by the (scripted) vision model into a FEN, checked by python-chess,
compared with a drawing of the reading, and analysed by the real Stockfish on this host.

Board images are drawn by the tests from known FENs (tests/fakes/chess.py); the scripted reader looks at the
drawing the tool sends back and corrects its reading when the drawing does not show the true position.
Tests that run the engine need Stockfish (`apt-get install stockfish`): they skip without it, and fail under
ROUNDTABLE_REQUIRE_SYSTEM=1.
"""

from __future__ import annotations

import os
import shutil
import struct
import sys
import time
import zlib
from pathlib import Path

import chess
import pytest

from agents.tools import chess_board, chess_engine  # chess_board registers chess_position
from agents.tools.errors import ToolError
from config.settings import Settings
from teams import Run
from teams import events as ev
from teams.runner import Question
from tests.conftest import skip_or_fail
from tests.fakes.chess import BoardReader, board_png, is_board_call, reading_of, with_squares
from tests.fakes.function_model import Call, FunctionModel, ScriptedModels, tool
from tests.tools.conftest import call, tool_settings
from tests.tools.media_fixtures import researcher_team

# Black to move; Rb1 is the only mate (the white knight on c4 cannot reach the first rank).
MATE_IN_ONE = "1r4k1/5ppp/8/8/2N5/8/5PPP/6K1 b - - 0 1"
QUESTION = "It is black's turn in the attached position. Which move wins at once?"


@pytest.fixture
def stockfish() -> str:
    for candidate in chess_engine.STOCKFISH_CANDIDATES:
        if (found := shutil.which(candidate)) is not None:
            return found
    skip_or_fail("stockfish is not installed (apt-get install stockfish)")
    raise AssertionError("unreachable")


def _vision(reader: BoardReader) -> FunctionModel:
    return FunctionModel(reader, agent="image_reader", vision=True)


def _rows(out: str) -> dict[str, str]:
    return {line.split(":", 1)[0]: line.split(":", 1)[1].strip() for line in out.splitlines() if ": " in line}


async def test_a_misread_square_is_caught_by_comparing_a_drawing_and_the_mate_is_found(make_ctx, workdir, stockfish) -> None:
    board_png(workdir / "puzzle.png", MATE_IN_ONE)
    truth = reading_of(MATE_IN_ONE)
    reader = BoardReader(truth, first=with_squares(truth, {"c4": "."}))  # first misses the white knight
    out = await call(make_ctx(vision_client=_vision(reader)), "chess_position", image="puzzle.png", question=QUESTION)
    fields = _rows(out)
    assert fields["FEN"] == MATE_IN_ONE, out
    assert fields["Side to move"] == "Black (from the question (\"black's turn\"))"
    assert fields["Comparison with a drawing of the reading"] == "round 1: corrected c4: . -> N; round 2: matched"
    assert "NOT confirmed" not in out
    # round 1's drawing showed the square empty, round 2's showed the knight: the drawings depict each reading
    assert reader.drawings[0][(4, 2)] == "empty" and reader.drawings[1][(4, 2)] == "white"
    assert len(reader.prompts) == 3 and "ROW 8:" in reader.prompts[0]
    # the image the model read is the attachment itself
    assert reader.originals[0].image.size == (8 * chess_board.SQUARE + 2 * chess_board.MARGIN,) * 2
    # the engine's answer, checked against python-chess: the reported move mates
    assert fields["Best move for Black"] == "Rb1# (UCI b8b1)"
    assert fields["Forced mate"] == "Black mates in 1"
    assert fields["Principal variation"].startswith("1...Rb1#")
    board = chess.Board(fields["FEN"])
    board.push_uci("b8b1")
    assert board.is_checkmate()
    assert fields["Engine"].startswith("Stockfish") and "host binary" in fields["Engine"]


async def test_the_comparison_rounds_are_bounded_and_an_unconfirmed_reading_says_so(make_ctx, workdir, stockfish, monkeypatch) -> None:
    board_png(workdir / "puzzle.png", MATE_IN_ONE)
    truth = reading_of(MATE_IN_ONE)
    reader = BoardReader(truth, first=with_squares(truth, {"c4": "."}))
    settings = tool_settings(CHESS_COMPARE_ROUNDS=1)
    out = await call(make_ctx(settings, vision_client=_vision(reader)), "chess_position", image="puzzle.png", question=QUESTION)
    assert len(reader.prompts) == 2  # one reading, one comparison: the correction is not compared again
    assert "round 1: corrected c4: . -> N -- NOT confirmed" in out
    assert _rows(out)["FEN"] == MATE_IN_ONE and "Best move for Black: Rb1#" in out


async def test_a_reading_sent_back_unchanged_counts_as_a_match(make_ctx, workdir, stockfish) -> None:
    board_png(workdir / "puzzle.png", MATE_IN_ONE)
    listing = reading_of(MATE_IN_ONE).listing()
    replies = iter([listing, f"The squares agree.\n{listing}"])
    model = FunctionModel(lambda c: next(replies), agent="image_reader", vision=True)
    out = await call(make_ctx(vision_client=model), "chess_position", image="puzzle.png", question=QUESTION)
    assert "Comparison with a drawing of the reading: round 1: matched (the same reading sent back)\n" in out
    assert len(model.calls) == 2


async def test_a_board_shown_from_blacks_side_is_turned_round(make_ctx, workdir, stockfish) -> None:
    board_png(workdir / "flipped.png", MATE_IN_ONE, bottom="black")
    reader = BoardReader(reading_of(MATE_IN_ONE, bottom="black"))  # rows as displayed, h1 in the top-left corner
    out = await call(make_ctx(vision_client=_vision(reader)), "chess_position", image="flipped.png",
                     question="Black to move. Find the winning move.")
    fields = _rows(out)
    assert fields["FEN"] == MATE_IN_ONE, out
    assert "Black was at the bottom of the image" in out
    assert fields["Comparison with a drawing of the reading"] == "round 1: matched"
    assert fields["Best move for Black"] == "Rb1# (UCI b8b1)"


@pytest.mark.parametrize(("question", "side", "note"), [
    ("Black to move: what wins?", chess.BLACK, "'Black to move'"),
    ("Name the best move for black in this ending.", chess.BLACK, "'move for black'"),
    ("White mates in two. What is the first move?", chess.WHITE, "'White mates'"),
    ("What is the best move here?", chess.WHITE, "White assumed"),
])
def test_the_side_to_move_comes_from_the_question(question: str, side: chess.Color, note: str) -> None:
    turn, why = chess_board.side_from_question(question)
    assert turn == side and note in why


async def test_without_a_side_in_the_question_white_moves_and_the_result_says_it_was_assumed(make_ctx, workdir, stockfish) -> None:
    fen = MATE_IN_ONE.replace(" b ", " w ")
    board_png(workdir / "board.png", fen)
    out = await call(make_ctx(vision_client=_vision(BoardReader(reading_of(fen)))), "chess_position",
                     image="board.png", question="What is the best move?")
    assert _rows(out)["FEN"] == fen
    assert "Side to move: White (the question does not say who moves: White assumed" in out
    assert "Best move for White:" in out


async def test_an_illegal_reading_is_shown_its_rule_and_corrected(make_ctx, workdir, stockfish) -> None:
    board_png(workdir / "puzzle.png", MATE_IN_ONE)
    truth = reading_of(MATE_IN_ONE)
    reader = BoardReader(truth, first=with_squares(truth, {"a8": "P"}))
    out = await call(make_ctx(vision_client=_vision(reader)), "chess_position", image="puzzle.png", question=QUESTION)
    assert "NOT a legal chess position: a pawn stands on the first or the eighth rank" in reader.prompts[1]
    assert _rows(out)["FEN"] == MATE_IN_ONE
    assert "round 1: corrected a8: P -> ." in out


@pytest.mark.parametrize(("changes", "question", "rule"), [
    ({"g1": "."}, QUESTION, "White has no king"),
    ({"h2": "k"}, QUESTION, "a side has more than one king"),
    ({"b8": ".", "b1": "r"}, QUESTION, "White is in check but it is not White's move: a piece is misread, or the side to move is wrong"),
    ({"a2": "Q", "b2": "Q", "c2": "Q", "d2": "Q", "e2": "Q", "a3": "P", "b3": "P", "c3": "P", "d3": "P"}, QUESTION,
     "White has 7 pawns and 4 extra pieces: more than 8 pawns could promote to"),
])
async def test_a_position_that_stays_illegal_is_an_error_naming_the_rule(make_ctx, workdir, stockfish, changes, question, rule) -> None:
    board_png(workdir / "puzzle.png", MATE_IN_ONE)
    wrong = with_squares(reading_of(MATE_IN_ONE), changes)
    reader = BoardReader(wrong, insist=True)  # a model that sees no difference
    out = await call(make_ctx(vision_client=_vision(reader)), "chess_position", image="puzzle.png", question=question)
    assert out.startswith("Error: the board as read is not a legal position: ") and rule in out, out
    assert f"FEN {chess_board.board_for(wrong, chess.BLACK).fen()}" in out
    assert "round 1: the model saw no difference, but the position is illegal" in out
    assert "\n" not in out


MARKDOWN_REPLY = """Here is the board:

**BOTTOM:** White
```
**ROW 1 (top):** . r . . . . k .
ROW 2: 5ppp
ROW 3: . . . . . . . .
ROW 4: 8
ROW 5: - - N - - - - -   (the knight)
ROW 6: ........
ROW 7: . . . . . P P P
ROW 8: | . | . | . | . | . | . | K | . |
```"""


@pytest.mark.parametrize(("reply", "fen_placement"), [
    (MARKDOWN_REPLY, "1r4k1/5ppp/8/8/2N5/8/5PPP/6K1"),
    ("I read it as FEN 1r4k1/5ppp/8/8/2N5/8/5PPP/6K1 b - - 0 1.", "1r4k1/5ppp/8/8/2N5/8/5PPP/6K1"),
    ("BOTTOM: black\n" + "\n".join(f"ROW {i}: {' '.join(row)}" for i, row in enumerate(reading_of(MATE_IN_ONE, "black").rows, 1)),
     "1r4k1/5ppp/8/8/2N5/8/5PPP/6K1"),
])
def test_readings_are_taken_in_the_forms_models_write_them(reply: str, fen_placement: str) -> None:
    assert chess_board.parse_reading(reply).placement == fen_placement


@pytest.mark.parametrize(("reply", "match"), [
    ("MATCH", True), ("**Match.**", True), ("MATCH: every square agrees", True),
    ("Match? No: e4 differs", False), ("NOT a MATCH", False), ("MATCH\nROW 1: . . . . . . . .", False),
])
def test_only_a_plain_match_confirms_a_reading(reply: str, match: bool) -> None:
    assert chess_board._is_match(reply) is match


async def test_a_reply_that_is_no_reading_is_asked_again_then_refused(make_ctx, workdir, stockfish) -> None:
    board_png(workdir / "puzzle.png", MATE_IN_ONE)
    replies = iter(["It looks like a chess endgame.", "ROW 1: r . . k\nROW 2: p p p"])
    model = FunctionModel(lambda c: next(replies), agent="image_reader", vision=True)
    out = await call(make_ctx(vision_client=model), "chess_position", image="puzzle.png", question=QUESTION)
    assert out.startswith("Error: the vision model's reading of the board could not be used: ROW 1 has 4 squares, not 8")
    assert "the reply has no ROW 1..ROW 8 lines" in str(model.calls[1].messages[-1].content[0])


async def test_without_stockfish_the_error_says_what_to_install_before_any_model_call(make_ctx, workdir, monkeypatch) -> None:
    monkeypatch.setattr(chess_engine, "STOCKFISH_CANDIDATES", ("/nonexistent/stockfish",))
    board_png(workdir / "puzzle.png", MATE_IN_ONE)
    reader = BoardReader(reading_of(MATE_IN_ONE))
    out = await call(make_ctx(vision_client=_vision(reader)), "chess_position", image="puzzle.png", question=QUESTION)
    assert out == (
        "Error: Stockfish is not installed on this host: install it with `apt-get install stockfish` (Debian/Ubuntu; "
        "the binary is /usr/games/stockfish) or set STOCKFISH_PATH to a UCI engine binary"
    )
    assert reader.prompts == []  # no tokens spent on a board the tool cannot analyse


async def test_stockfish_path_names_the_engine_and_a_wrong_one_is_named_in_the_error(make_ctx, workdir, stockfish) -> None:
    board_png(workdir / "puzzle.png", MATE_IN_ONE)
    reader = BoardReader(reading_of(MATE_IN_ONE))
    wrong = tool_settings(STOCKFISH_PATH="/nonexistent/engine")
    out = await call(make_ctx(wrong, vision_client=_vision(reader)), "chess_position", image="puzzle.png", question=QUESTION)
    assert out.startswith("Error: no chess engine at STOCKFISH_PATH='/nonexistent/engine'")
    assert reader.prompts == []
    right = tool_settings(STOCKFISH_PATH=stockfish)
    out = await call(make_ctx(right, vision_client=_vision(reader)), "chess_position", image="puzzle.png", question=QUESTION)
    assert "Best move for Black: Rb1#" in out


def _png_header_only(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00")) + chunk(b"IEND", b"")


async def test_files_that_are_not_board_images_are_refused_before_any_model_call(make_ctx, workdir) -> None:
    (workdir / "fake.png").write_bytes(b"this is not a png")
    (workdir / "notes.txt").write_text("1r4k1/5ppp/8/8/2N5/8/5PPP/6K1 b - - 0 1")
    (workdir / "bomb.png").write_bytes(_png_header_only(30_000, 30_000))  # 900 megapixels claimed
    (workdir / "huge.png").write_bytes(b"")
    os.truncate(workdir / "huge.png", 30_000_001)
    reader = BoardReader(reading_of(MATE_IN_ONE))
    ctx = make_ctx(vision_client=_vision(reader))

    async def error(name: str) -> str:
        return await call(ctx, "chess_position", image=name, question=QUESTION)

    assert (await error("fake.png")).startswith("Error: fake.png is not a readable image")
    assert (await error("notes.txt")).startswith("Error: notes.txt is not an image file")
    assert (await error("bomb.png")).startswith("Error: bomb.png is not a readable image (DecompressionBombError")
    assert (await error("huge.png")) == "Error: huge.png is too large (30,000,001 bytes; limit 30,000,000)"
    assert (await error("../outside.png")).startswith("Error: refused:")
    assert reader.prompts == []
    blind = await call(make_ctx(vision_client=None), "chess_position", image="fake.png", question=QUESTION)
    assert blind.startswith("Error: no model of this team can see images")


# --- the engine's limits ---------------------------------------------------------------------------------

async def test_the_engine_runs_under_a_memory_limit(stockfish) -> None:
    board = chess.Board(MATE_IN_ONE)
    with pytest.raises(ToolError, match=r"stopped unexpectedly .*its limits are 64 MB of memory"):
        await chess_engine.analyse(board, binary=stockfish, seconds=0.5, memory_mb=64)
    fine = await chess_engine.analyse(board, binary=stockfish, seconds=0.5)
    assert fine.best_san == "Rb1#" and fine.mate == 1 and "512 MB" in fine.isolation


FAKE_ENGINE = """\
#!{python}
import socket, sys
for line in sys.stdin:
    command = line.split()[0] if line.split() else ""
    if command == "uci":
        if {port} == 0:
            while True:
                pass  # never answers: the engine that hangs
        try:
            socket.create_connection(("127.0.0.1", {port}), timeout=2).close()
            reached = "reached"
        except OSError:
            reached = "unreachable"
        print("id name network-" + reached, "uciok", sep="\\n", flush=True)
    elif command == "isready":
        print("readyok", flush=True)
    elif command == "go":
        print("info depth 1 score cp 10 pv e2e4", "bestmove e2e4", sep="\\n", flush=True)
    elif command == "quit":
        break
"""


def _fake_engine(path: Path, port: int) -> str:
    path.write_text(FAKE_ENGINE.format(python=sys.executable, port=port))
    path.chmod(0o755)
    return str(path)


async def test_an_engine_that_hangs_is_stopped_at_its_time_limit(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(chess_engine, "GRACE_S", 2.0)
    started = time.monotonic()
    with pytest.raises(ToolError, match=r"did not answer within 2.5 s and was stopped"):
        await chess_engine.analyse(chess.Board(), binary=_fake_engine(tmp_path / "hang", 0), seconds=0.5)
    assert time.monotonic() - started < 10


async def test_the_engine_has_no_network_where_the_host_allows_it(tmp_path) -> None:
    import socket

    server = socket.create_server(("127.0.0.1", 0))
    try:
        port = server.getsockname()[1]
        result = await chess_engine.analyse(chess.Board(), binary=_fake_engine(tmp_path / "net", port), seconds=0.5)
    finally:
        server.close()
    if "no network (own network namespace)" in result.isolation:
        assert result.engine == "network-unreachable"
    else:  # a host that refuses namespaces (a Space): the result says so
        assert "network not isolated" in result.isolation and result.engine == "network-reached"
    if os.geteuid() == 0 and shutil.which("unshare"):
        assert result.engine == "network-unreachable", result.isolation  # root here: the namespace must work


# --- a scripted debate answers a mate-in-one board -----------------------------------------------------------

async def test_a_scripted_debate_answers_a_mate_in_one_board(tmp_path, stockfish) -> None:
    image = board_png(tmp_path / "position.png", MATE_IN_ONE)
    truth = reading_of(MATE_IN_ONE)
    reader = BoardReader(truth, first=with_squares(truth, {"g7": "."}))  # a pawn missed, caught in round 1

    def researcher_reports(c: Call) -> str:
        result = c.last_tool_results[0]
        best = _rows(result)["Best move for Black"].split()[0]
        return f"chess_position read the board and Stockfish says {best}.\nNEXT: planner"

    def planner_proposes(c: Call) -> str:
        said = next(line for line in c.transcript.splitlines() if "Stockfish says" in line)
        return f"The engine's move mates.\nFINAL ANSWER: {said.rsplit(' ', 1)[1].rstrip('.')}"

    def critic_approves(c: Call) -> str:
        assert "FINAL ANSWER: Rb1#" in c.transcript
        return "APPROVED\nFINAL ANSWER: Rb1#"

    models = ScriptedModels({
        # The planner's client is the team's vision model (the first with vision), so the board reader's three
        # calls (a reading, two comparisons) are steps of the planner's script, between its two turns.
        "planner": ["Researcher, read the attached board with chess_position.\nNEXT: researcher",
                    reader, reader, reader, planner_proposes],
        "researcher": [tool("chess_position", image="position.png", question=QUESTION), researcher_reports],
        "critic": [critic_approves],
    }, vision=True)
    team = researcher_team("chess-trio", "chess_position")
    r = Run(Question(QUESTION, attachments=[image]), team, settings=Settings(_env_file=None), client_factory=models.factory)
    events = [e async for e in r.events()]
    models.assert_complete()
    assert r.result is not None and r.result.answer == "Rb1#" and r.result.approved, r.result
    assert [e.agent for e in events if isinstance(e, ev.TurnStarted)] == ["planner", "researcher", "planner", "critic"]
    output = next(e.output for e in events if isinstance(e, ev.ToolResult) and e.name == "chess_position")
    assert f"FEN: {MATE_IN_ONE}" in output and "round 1: corrected g7: . -> p; round 2: matched" in output
    assert all(is_board_call(c) for c in models.calls_for("planner")[1:4])
    board = chess.Board(MATE_IN_ONE)
    board.push_san(r.result.answer)
    assert board.is_checkmate()
    assert QUESTION in models.calls_for("researcher")[0].question
