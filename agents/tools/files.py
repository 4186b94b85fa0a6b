"""`read_file(file)`: an attached file as text: txt, md, csv, json, py (as text), xlsx/xls (every sheet as a
markdown table of cell values, with row numbers and column letters), pdf, docx, pptx.

Files are opened only inside the question's folder (`agents.tools.workdir`). Spreadsheets show the values
Excel computed (and the formula where no value was saved), plus which cells are filled with a colour,
because some questions are about highlighted cells. Parsing runs in a thread: a large workbook must not
freeze the event loop that streams the debate.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import json
import zipfile
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from agents.tools.errors import ToolError
from agents.tools.markup import html_to_markdown, pdf_to_text
from agents.tools.registry import SafeTool, ToolContext, register
from agents.tools.sources import ANSWER_KEY_MESSAGE, looks_like_answer_key
from agents.tools.workdir import FileRefused, resolve_attachment
from common.text import one_line

MAX_FILE_BYTES = 50_000_000
MAX_ROWS_PER_SHEET = 2_000
MAX_FILL_CELLS = 300
TEXT_SUFFIXES = {
    ".txt", ".md", ".markdown", ".csv", ".tsv", ".json", ".jsonld", ".py", ".xml", ".yaml", ".yml", ".log",
    ".ini", ".cfg", ".toml", ".js", ".ts", ".java", ".c", ".h", ".cpp", ".cs", ".go", ".rs", ".rb", ".r",
    ".sql", ".sh", ".tex", ".bib", ".srt", ".vtt", ".rtf", ".pdb",
}
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp", ".tif", ".tiff"}
AUDIO_SUFFIXES = {".mp3", ".wav", ".m4a", ".flac", ".ogg", ".oga", ".opus", ".webm", ".mp4", ".mpeg", ".mpga", ".aac"}
READS = "txt, md, csv, json, py and other text, xlsx/xls, pdf, docx, pptx, html"


class UnreadableFile(ToolError):
    """One line for the agent."""


def _decode(data: bytes) -> str:
    for encoding in ("utf-8-sig", "utf-16" if data[:2] in (b"\xff\xfe", b"\xfe\xff") else "", "cp1252"):
        if encoding:
            try:
                return data.decode(encoding)
            except UnicodeDecodeError:
                continue
    return data.decode("utf-8", errors="replace")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        text = value.isoformat()
        return text[:-9] if text.endswith("T00:00:00") else text
    return " ".join(str(value).split()).replace("|", "\\|")


def _grid_table(rows: list[list[str]], first_row: int = 1) -> str:
    """Rows as a markdown table headed by column letters, each row with its sheet row number."""
    from openpyxl.utils import get_column_letter

    width = max((len(r) for r in rows), default=0)
    if width == 0:
        return "(empty)"
    head = ["row", *(get_column_letter(i + 1) for i in range(width))]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for number, row in enumerate(rows, start=first_row):
        lines.append("| " + " | ".join([str(number), *row, *[""] * (width - len(row))]) + " |")
    return "\n".join(lines)


def _trim(rows: list[list[str]]) -> list[list[str]]:
    """Drop trailing empty rows and columns (sheets often report a used range far beyond the data)."""
    while rows and not any(rows[-1]):
        rows.pop()
    width = max((max((i + 1 for i, v in enumerate(r) if v), default=0) for r in rows), default=0)
    return [r[:width] for r in rows]


def read_xlsx(data: bytes) -> str:
    import openpyxl
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        values = openpyxl.load_workbook(io.BytesIO(data), data_only=True)
        formulas = openpyxl.load_workbook(io.BytesIO(data), data_only=False)
    except (zipfile.BadZipFile, InvalidFileException, KeyError, OSError, ValueError, TypeError) as exc:
        raise UnreadableFile(f"is not a readable Excel workbook ({type(exc).__name__}: {one_line(str(exc), 120)})") from None
    parts = [f"Workbook with {len(values.worksheets)} sheet(s): " + ", ".join(repr(ws.title) for ws in values.worksheets)]
    for ws in values.worksheets:
        fws = formulas[ws.title]
        rows: list[list[str]] = []
        fills: dict[str, list[str]] = defaultdict(list)
        fill_count = 0
        cut = False
        for r, row in enumerate(ws.iter_rows(), start=1):
            if r > MAX_ROWS_PER_SHEET:
                cut = True
                break
            line = []
            for cell in row:
                value = cell.value
                if value is None:
                    raw = fws.cell(row=cell.row, column=cell.column).value
                    if isinstance(raw, str) and raw.startswith("="):
                        value = raw  # no computed value was saved with the file: show the formula
                line.append(_cell(value))
                color = _fill_color(cell)
                if color and fill_count < MAX_FILL_CELLS:
                    fills[color].append(cell.coordinate)
                    fill_count += 1
            rows.append(line)
        rows = _trim(rows)
        size = f"{ws.max_row} rows x {ws.max_column} columns"
        parts.append(f"## Sheet {ws.title!r} ({size})\n\n" + _grid_table(rows))
        if cut:
            parts.append(f"[... only the first {MAX_ROWS_PER_SHEET} rows are shown; use run_python for the rest ...]")
        if fills:
            listing = "; ".join(f"{color}: {', '.join(cells)}" for color, cells in fills.items())
            parts.append(f"Filled cells (fill colour as ARGB hex: cells): {listing}")
    return "\n\n".join(parts)


def _fill_color(cell: Any) -> str | None:
    fill = getattr(cell, "fill", None)
    if fill is None or getattr(fill, "fill_type", None) in (None, "none"):
        return None
    color = getattr(fill, "fgColor", None)
    if color is None:
        return None
    if getattr(color, "type", None) == "rgb" and isinstance(color.rgb, str) and color.rgb not in ("00000000",):
        return color.rgb
    if getattr(color, "type", None) == "theme":
        return f"theme{color.theme}" + (f"{color.tint:+.2f}" if color.tint else "")
    if getattr(color, "type", None) == "indexed" and color.indexed not in (64,):
        return f"indexed{color.indexed}"
    return None


def read_xls(data: bytes) -> str:
    import xlrd

    try:
        book = xlrd.open_workbook(file_contents=data)
    except (xlrd.XLRDError, ValueError, IndexError, AssertionError, OSError) as exc:
        raise UnreadableFile(f"is not a readable .xls workbook ({type(exc).__name__}: {one_line(str(exc), 120)})") from None
    parts = [f"Workbook with {book.nsheets} sheet(s): " + ", ".join(repr(s.name) for s in book.sheets())]
    for sheet in book.sheets():
        rows = []
        for r in range(min(sheet.nrows, MAX_ROWS_PER_SHEET)):
            line = []
            for c in range(sheet.ncols):
                cell = sheet.cell(r, c)
                value: Any = cell.value
                if cell.ctype == xlrd.XL_CELL_DATE:
                    try:
                        value = xlrd.xldate.xldate_as_datetime(cell.value, book.datemode)
                    except (ValueError, OverflowError):
                        pass
                elif cell.ctype == xlrd.XL_CELL_BOOLEAN:
                    value = bool(cell.value)
                elif cell.ctype in (xlrd.XL_CELL_EMPTY, xlrd.XL_CELL_BLANK):
                    value = None
                line.append(_cell(value))
            rows.append(line)
        parts.append(f"## Sheet {sheet.name!r} ({sheet.nrows} rows x {sheet.ncols} columns)\n\n" + _grid_table(_trim(rows)))
        if sheet.nrows > MAX_ROWS_PER_SHEET:
            parts.append(f"[... only the first {MAX_ROWS_PER_SHEET} rows are shown; use run_python for the rest ...]")
    return "\n\n".join(parts)


def _markdown_rows(rows: Iterable[list[str]]) -> str:
    rows = [[" ".join(c.split()).replace("|", "\\|") for c in r] for r in rows]
    width = max((len(r) for r in rows), default=0)
    if width == 0:
        return ""
    rows = [r + [""] * (width - len(r)) for r in rows]
    lines = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * width]
    lines += ["| " + " | ".join(r) + " |" for r in rows[1:]]
    return "\n".join(lines)


def read_docx(data: bytes) -> str:
    import docx
    from docx.opc.exceptions import PackageNotFoundError
    from docx.table import Table

    try:
        document = docx.Document(io.BytesIO(data))
    except (PackageNotFoundError, zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise UnreadableFile(f"is not a readable Word document ({type(exc).__name__}: {one_line(str(exc), 120)})") from None
    parts = []
    for block in document.iter_inner_content():
        if isinstance(block, Table):
            parts.append(_markdown_rows([cell.text for cell in row.cells] for row in block.rows))
            continue
        text = block.text.strip()
        if not text:
            continue
        style = (block.style.name if block.style is not None else "") or ""
        if style.startswith("Heading") and style[7:].strip().isdigit():
            text = "#" * min(6, int(style[7:].strip())) + " " + text
        elif style == "Title":
            text = "# " + text
        elif "List" in style:
            text = "- " + text
        parts.append(text)
    return "\n\n".join(p for p in parts if p)


def _shape_text(shape: Any) -> list[str]:
    out: list[str] = []
    if getattr(shape, "shape_type", None) is not None and hasattr(shape, "shapes"):  # a group
        for inner in shape.shapes:
            out += _shape_text(inner)
        return out
    if getattr(shape, "has_table", False):
        out.append(_markdown_rows([cell.text for cell in row.cells] for row in shape.table.rows))
    elif getattr(shape, "has_text_frame", False) and shape.text_frame.text.strip():
        out.append(shape.text_frame.text.strip())
    return out


def read_pptx(data: bytes) -> str:
    from pptx import Presentation
    from pptx.exc import PackageNotFoundError

    try:
        deck = Presentation(io.BytesIO(data))
    except (PackageNotFoundError, zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise UnreadableFile(f"is not a readable PowerPoint file ({type(exc).__name__}: {one_line(str(exc), 120)})") from None
    parts = [f"Presentation with {len(deck.slides)} slide(s)"]
    for number, slide in enumerate(deck.slides, start=1):
        texts: list[str] = []
        for shape in slide.shapes:
            texts += _shape_text(shape)
        section = f"## Slide {number}\n\n" + ("\n\n".join(texts) if texts else "(no text)")
        if slide.has_notes_slide and slide.notes_slide.notes_text_frame is not None:
            notes = slide.notes_slide.notes_text_frame.text.strip()
            if notes:
                section += f"\n\nSpeaker notes: {notes}"
        parts.append(section)
    return "\n\n".join(parts)


def read_text(data: bytes, suffix: str) -> str:
    text = _decode(data)
    if "\x00" in text[:4096]:
        raise UnreadableFile("looks like binary data, not text")
    if suffix in (".json", ".jsonld"):
        try:
            return json.dumps(json.loads(text), indent=1, ensure_ascii=False)
        except ValueError as exc:
            return f"(not valid JSON: {exc}; shown as text)\n{text}"
    return text


def read_document(path: Path) -> str:
    """The readable text of the file at `path`. Raises UnreadableFile (one line)."""
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise UnreadableFile(f"is too large to read ({size:,} bytes; the limit is {MAX_FILE_BYTES:,}); use run_python")
    suffix = path.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        raise UnreadableFile("is an image: use describe_image(file, question) to look at it")
    if suffix in AUDIO_SUFFIXES:
        raise UnreadableFile("is an audio/video recording: use transcribe_audio(file) to hear it")
    data = path.read_bytes()
    if size == 0:
        raise UnreadableFile("is empty (0 bytes)")
    if suffix in (".xlsx", ".xlsm"):
        return read_xlsx(data)
    if suffix == ".xls":
        return read_xls(data)
    if suffix == ".pdf":
        try:
            return pdf_to_text(data)
        except ValueError as exc:
            raise UnreadableFile(f"is {exc}") from None
    if suffix == ".docx":
        return read_docx(data)
    if suffix == ".pptx":
        return read_pptx(data)
    if suffix in (".html", ".htm"):
        title, text = html_to_markdown(data)
        return (f"Title: {title}\n\n" if title else "") + text
    if suffix in TEXT_SUFFIXES or not suffix:
        return read_text(data, suffix)
    raise UnreadableFile(f"has a type read_file cannot read ({suffix}); it reads {READS}; the coder can try run_python")


READ_FILE_DESCRIPTION = (
    "Read a file attached to the question, by its file name: txt, md, csv, json, py (as text), xlsx/xls (every "
    "sheet as a table of cell values with row numbers and column letters), pdf, docx, pptx. Images go to "
    "describe_image, audio to transcribe_audio."
)


@register("read_file", "Read an attached file by name: text, csv, json, py, xlsx/xls, pdf, docx, pptx")
def make_read_file(ctx: ToolContext) -> SafeTool:
    async def read_file(file: str) -> str:
        try:
            path = resolve_attachment(ctx, file)
            text = await asyncio.to_thread(read_document, path)
        except FileRefused as exc:
            raise ToolError(f"{exc}") from None
        except UnreadableFile as exc:
            raise ToolError(f"{Path(file).name} {exc}") from None
        if looks_like_answer_key(text):
            raise ToolError(ANSWER_KEY_MESSAGE.format(what=path.name)) from None
        return f"File: {path.name} ({path.stat().st_size:,} bytes)\n\n{text}"

    return SafeTool(read_file, name="read_file", description=READ_FILE_DESCRIPTION, max_chars=16_000)
