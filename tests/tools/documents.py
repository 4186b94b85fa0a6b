"""Test documents generated on the fly (no binary fixtures in the repository): xlsx, xls-free, pdf, docx,
pptx, png, wav and mp3, each with invented content."""

from __future__ import annotations

import io
import math
import struct
import wave
from pathlib import Path


def xlsx(path: Path, sheets: dict[str, list[list[object]]], *, fills: dict[str, str] | None = None) -> Path:
    import openpyxl
    from openpyxl.styles import PatternFill

    book = openpyxl.Workbook()
    book.remove(book.active)
    for name, rows in sheets.items():
        sheet = book.create_sheet(name)
        for row in rows:
            sheet.append(row)
    for coordinate, color in (fills or {}).items():
        sheet_name, cell = coordinate.split("!")
        book[sheet_name][cell].fill = PatternFill(start_color=color, end_color=color, fill_type="solid")
    book.save(path)
    return path


def pdf_bytes(pages: list[str]) -> bytes:
    """A minimal valid PDF, one line of Helvetica text per page (written by hand: pypdf cannot typeset)."""
    objects: list[bytes] = []
    kids = " ".join(f"{3 + 2 * i} 0 R" for i in range(len(pages)))
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {len(pages)} >>".encode())
    font_id = 3 + 2 * len(pages)
    for i, text in enumerate(pages):
        content_id = 4 + 2 * i
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {content_id} 0 R "
            f"/Resources << /Font << /F1 {font_id} 0 R >> >> >>".encode()
        )
        safe = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
        stream = f"BT /F1 12 Tf 72 720 Td ({safe}) Tj ET".encode()
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(f"{number} 0 obj\n".encode() + body + b"\nendobj\n")
    xref = out.tell()
    out.write(f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode())
    for offset in offsets:
        out.write(f"{offset:010d} 00000 n \n".encode())
    out.write(f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode())
    return out.getvalue()


def docx(path: Path, heading: str, paragraphs: list[str], table: list[list[str]] | None = None) -> Path:
    import docx as python_docx

    document = python_docx.Document()
    document.add_heading(heading, level=1)
    for text in paragraphs:
        document.add_paragraph(text)
    if table:
        grid = document.add_table(rows=len(table), cols=len(table[0]))
        for r, row in enumerate(table):
            for c, value in enumerate(row):
                grid.cell(r, c).text = value
    document.save(path)
    return path


def pptx(path: Path, slides: list[tuple[str, str]], notes: str = "") -> Path:
    from pptx import Presentation

    deck = Presentation()
    for title, body in slides:
        slide = deck.slides.add_slide(deck.slide_layouts[1])
        slide.shapes.title.text = title
        slide.placeholders[1].text = body
    if notes:
        deck.slides[0].notes_slide.notes_text_frame.text = notes
    deck.save(path)
    return path


def png(path: Path, size: tuple[int, int] = (64, 32), color: tuple[int, int, int] = (200, 30, 30)) -> Path:
    from PIL import Image, ImageDraw

    image = Image.new("RGB", size, "white")
    ImageDraw.Draw(image).rectangle([4, 4, size[0] // 2, size[1] - 4], fill=color)
    image.save(path, format="PNG")
    return path


def wav(path: Path, seconds: float = 0.3, rate: int = 8000) -> Path:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        frames = b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i / rate))) for i in range(int(seconds * rate)))
        out.writeframes(frames)
    return path


def mp3(path: Path, frames: int = 8) -> Path:
    """A few MPEG-1 Layer III frames (128 kbit/s, 44.1 kHz, silent payload): structurally an mp3 file."""
    header = bytes([0xFF, 0xFB, 0x90, 0x64])
    frame = header + bytes(417 - len(header))
    path.write_bytes(b"ID3\x03\x00\x00\x00\x00\x00\x00" + frame * frames)
    return path
