"""read_file: every supported format, generated here, and the folder it may not leave."""

from __future__ import annotations

import os
import uuid
import zipfile

import pytest

from agents.tools import files
from tests.tools import documents
from tests.tools.conftest import call


async def test_xlsx_every_sheet_as_a_table_of_values_with_fills(make_ctx, workdir) -> None:
    documents.xlsx(
        workdir / "stock.xlsx",
        {
            "Shelf A": [["Item", "Count", "Price"], ["lantern", 4, 12.5], ["rope", 10, 3], ["total", "=B2+B3", None]],
            "Shelf B": [["Item", "Count"], ["anchor", 2]],
        },
        fills={"Shelf A!A2": "FF00FF00", "Shelf A!A3": "FF00FF00", "Shelf B!B2": "FFFFFF00"},
    )
    out = await call(make_ctx(), "read_file", file="stock.xlsx")
    assert out.startswith("File: stock.xlsx (")
    assert "Workbook with 2 sheet(s): 'Shelf A', 'Shelf B'" in out
    assert "| row | A | B | C |" in out and "| 2 | lantern | 4 | 12.5 |" in out and "| 3 | rope | 10 | 3 |" in out
    assert "| 4 | total | =B2+B3 |  |" in out  # no cached value in a file openpyxl wrote: the formula is shown
    assert "## Sheet 'Shelf B'" in out and "| 2 | anchor | 2 |" in out
    assert "FF00FF00: A2, A3" in out and "FFFFFF00: B2" in out


async def test_pdf_docx_pptx(make_ctx, workdir) -> None:
    (workdir / "minutes.pdf").write_bytes(documents.pdf_bytes(["Minutes of the invented harbour board", "Motion carried 7 to 2"]))
    documents.docx(workdir / "letter.docx", "Harbour letter", ["Dear board,", "The pier needs 40 new planks."], [["Plank", "Cost"], ["oak", "12"]])
    documents.pptx(workdir / "talk.pptx", [("Pier plan", "Phase one: planks"), ("Budget", "480 in total")], notes="Mention the gulls")
    ctx = make_ctx()
    pdf = await call(ctx, "read_file", file="minutes.pdf")
    assert "--- page 2 ---\nMotion carried 7 to 2" in pdf
    docx = await call(ctx, "read_file", file="letter.docx")
    assert "# Harbour letter" in docx and "The pier needs 40 new planks." in docx and "| oak | 12 |" in docx
    pptx = await call(ctx, "read_file", file="talk.pptx")
    assert "## Slide 2\n\nBudget\n\n480 in total" in pptx and "Speaker notes: Mention the gulls" in pptx


async def test_text_formats(make_ctx, workdir) -> None:
    (workdir / "data.csv").write_text("town,people\nAlderbrook,1200\n")
    (workdir / "config.json").write_text('{"ferry": {"departures": [7, 17]}}')
    (workdir / "broken.json").write_text('{"ferry": ')
    (workdir / "script.py").write_text("def f(x):\n    return x * 3\nprint(f(14))\n")
    (workdir / "latin.txt").write_bytes("Café Ñandú".encode("cp1252"))
    ctx = make_ctx()
    assert "Alderbrook,1200" in await call(ctx, "read_file", file="data.csv")
    assert '"departures": [\n   7,\n   17\n  ]' in await call(ctx, "read_file", file="config.json")
    assert "(not valid JSON:" in await call(ctx, "read_file", file="broken.json")
    assert "return x * 3" in await call(ctx, "read_file", file="script.py")
    assert "Café Ñandú" in await call(ctx, "read_file", file="latin.txt")


@pytest.mark.parametrize(
    "name, content, expected",
    [
        ("bad.xlsx", b"PK\x03\x04 definitely not a workbook", "is not a readable Excel workbook"),
        ("bad.xls", b"\xd0\xcf\x11\xe0 garbage", "is not a readable .xls workbook"),
        ("bad.pdf", b"%PDF-1.4\nbroken", "is not a readable PDF"),
        ("bad.docx", b"not a zip", "is not a readable Word document"),
        ("bad.pptx", b"not a zip either", "is not a readable PowerPoint file"),
        ("blob.bin", b"\x00\x01\x02", "has a type read_file cannot read (.bin)"),
        ("archive.zip", b"PK", "has a type read_file cannot read (.zip)"),
        ("binary.txt", b"\x00\x00\x00binary", "looks like binary data"),
        ("empty.csv", b"", "is empty (0 bytes)"),
        ("photo.png", b"\x89PNG", "is an image: use describe_image"),
        ("voice.mp3", b"ID3", "is an audio/video recording: use transcribe_audio"),
    ],
)
async def test_malformed_and_unknown_files_get_one_clear_line(make_ctx, workdir, name, content, expected) -> None:
    (workdir / name).write_bytes(content)
    out = await call(make_ctx(), "read_file", file=name)
    assert out.startswith(f"Error: {name} ") and expected in out and "\n" not in out


async def test_only_the_question_folder_can_be_read(make_ctx, workdir, tmp_path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT")
    (workdir / "link.txt").symlink_to(secret)
    (workdir / "notes.txt").write_text("inside")
    ctx = make_ctx()
    for name in ("../secret.txt", str(secret), "link.txt", "/etc/passwd", "sub/../../secret.txt"):
        out = await call(ctx, "read_file", file=name)
        assert out.startswith("Error: refused:") and "TOP-SECRET-CONTENT" not in out, (name, out)
    missing = await call(ctx, "read_file", file="nope.txt")
    assert missing == "Error: no file named 'nope.txt' in the question's folder; attached files: link.txt, notes.txt"
    assert (await call(ctx, "read_file", file=str(workdir / "notes.txt"))).endswith("inside")


@pytest.mark.parametrize("name", ["metadata.jsonl", "metadata.parquet", "validation-00000-of-00001.parquet", "answers.jsonl", "METADATA.JSONL"])
async def test_benchmark_answer_files_are_never_read(make_ctx, workdir, name) -> None:
    (workdir / name).write_text('{"task_id": "t1", "Final answer": "x"}\n')
    out = await call(make_ctx(), "read_file", file=name)
    assert out.startswith("Error: refused:") and "answer file" in out and "Final answer" not in out


async def test_an_answer_key_under_another_name_is_refused(make_ctx, workdir) -> None:
    rows = [f'{{"task_id": "{uuid.uuid4()}", "Final answer": "{answer}"}}' for answer in ("alpha", "beta")]
    (workdir / "notes.txt").write_text("\n".join(rows))
    out = await call(make_ctx(), "read_file", file="notes.txt")
    assert out.startswith("Error: refused:") and "alpha" not in out


async def test_size_caps(make_ctx, workdir, monkeypatch) -> None:
    big = workdir / "big.txt"
    big.write_bytes(b"")
    os.truncate(big, files.MAX_FILE_BYTES + 1)  # sparse: nothing is written
    out = await call(make_ctx(), "read_file", file="big.txt")
    assert out.startswith("Error: big.txt is too large to read")
    (workdir / "long.txt").write_text("word " * 20_000)
    long = await call(make_ctx(), "read_file", file="long.txt")
    assert "[... truncated:" in long and len(long) < 17_000
    monkeypatch.setattr(files, "MAX_ROWS_PER_SHEET", 5)
    documents.xlsx(workdir / "rows.xlsx", {"S": [[i] for i in range(20)]})
    rows = await call(make_ctx(), "read_file", file="rows.xlsx")
    assert "| 5 | 4 |" in rows and "| 6 |" not in rows and "only the first 5 rows are shown" in rows


def test_a_zip_bomb_named_xlsx_does_not_hang(workdir) -> None:
    # A workbook whose XML is huge but compresses to almost nothing: parsing must fail or finish, not hang.
    path = workdir / "bomb.xlsx"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("xl/workbook.xml", "<" + "a" * 5_000_000 + ">")
    assert os.path.getsize(path) < 100_000
    with pytest.raises(files.UnreadableFile):
        files.read_document(path)
