"""Documents to text a model can read: HTML to markdown that keeps tables, PDF to text.

Tables carry many answers (discographies, medal counts, timetables), and real ones use rowspan/colspan,
which a plain converter turns into shifted columns. So every data table is rebuilt here as a full grid (each
spanned cell repeated where it applies) and written as a markdown table; the rest of the page goes through
markdownify. Tables that hold other tables are page layout, not data, and are unwrapped instead.
"""

from __future__ import annotations

import io
import re
from urllib.parse import urljoin

from bs4 import BeautifulSoup, NavigableString, Tag
from markdownify import MarkdownConverter

# Never content: scripts, styles, forms and site chrome.
_DROP_TAGS = ("script", "style", "noscript", "svg", "iframe", "form", "button", "nav", "footer", "template", "head", "select")
_DROP_SELECTORS = ('[role="navigation"]', '[aria-hidden="true"]', '[style*="display:none"]', '[style*="display: none"]')
# MediaWiki page furniture: edit links, navigation boxes, hidden maintenance notes.
WIKI_DROP_SELECTORS = (
    ".mw-editsection",
    ".navbox",
    ".vertical-navbox",
    ".navbox-styles",
    ".mw-jump-link",
    ".noprint",
    ".mw-empty-elt",
    ".sistersitebox",
    ".portalbox",
    "link",
    "style",
)
_TOKEN = "XRTTABLE{}X"
_TOKEN_RE = re.compile(r"XRTTABLE(\d+)X")
_SPACES = re.compile(r"[ \t\u00a0]+")
_BLANKS = re.compile(r"\n{3,}")
MAX_SPAN = 200  # a hostile colspan="100000" must not allocate a huge grid


def _cell_text(cell: Tag) -> str:
    for br in cell.find_all("br"):
        br.replace_with(" ")
    text = _SPACES.sub(" ", cell.get_text(" ", strip=True))
    return text.replace("|", "\\|")


def _span(cell: Tag, name: str) -> int:
    try:
        return max(1, min(MAX_SPAN, int(str(cell.get(name, "1")).strip() or 1)))
    except ValueError:
        return 1


def _fill_spans(line: list[str], pending: dict[int, tuple[str, int]]) -> None:
    """Append the cells that rowspans from rows above carry into the next columns of `line`."""
    while len(line) in pending:
        col = len(line)
        text, left = pending[col]
        line.append(text)
        if left <= 1:
            del pending[col]
        else:
            pending[col] = (text, left - 1)


def table_to_markdown(table: Tag) -> str:
    """A data table as a markdown table, spans expanded. Empty string when the table has no cells."""
    rows = [tr for tr in table.find_all("tr") if tr.find_parent("table") is table]
    grid: list[list[str]] = []
    header_rows = 0
    pending: dict[int, tuple[str, int]] = {}  # column -> (text, rows still covered) from rowspans above
    for r, tr in enumerate(rows):
        cells = list(tr.find_all(["td", "th"], recursive=False))
        line: list[str] = []
        for cell in cells:
            _fill_spans(line, pending)
            text = _cell_text(cell)
            colspan, rowspan = _span(cell, "colspan"), _span(cell, "rowspan")
            for _ in range(colspan):
                if rowspan > 1:
                    pending[len(line)] = (text, rowspan - 1)
                line.append(text)
        _fill_spans(line, pending)
        if not line:
            continue
        if r == header_rows and cells and all(c.name == "th" for c in cells) and len(grid) == header_rows:
            header_rows += 1
        grid.append(line)
    if not grid:
        return ""
    width = max(len(line) for line in grid)
    grid = [line + [""] * (width - len(line)) for line in grid]
    if header_rows == 0:
        head = [""] * width  # no header row: keep every row as data
        body = grid
    else:
        # Several header rows (a grouped header) become one: "Group / Column".
        head = []
        for c in range(width):
            parts: list[str] = []
            for line in grid[:header_rows]:
                if line[c] and line[c] not in parts:
                    parts.append(line[c])
            head.append(" / ".join(parts))
        body = grid[header_rows:]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * width]
    out += ["| " + " | ".join(line) + " |" for line in body]
    caption = table.find("caption")
    if caption is not None and caption.find_parent("table") is table:
        out.insert(0, f"Table: {_cell_text(caption)}\n")
    return "\n".join(out)


class _Converter(MarkdownConverter):
    keep_links = True

    def convert_img(self, el: Tag, text: str, parent_tags: set[str]) -> str:
        alt = str(el.get("alt") or "").strip()
        return f"[image: {alt}]" if alt else ""

    def convert_a(self, el: Tag, text: str, parent_tags: set[str]) -> str:
        href = str(el.get("href") or "")
        if not self.keep_links or not text.strip() or not href or href.startswith(("#", "javascript:")):
            return text
        return str(super().convert_a(el, text, parent_tags))  # type: ignore[misc]


def html_to_markdown(
    html: str | bytes,
    *,
    base_url: str | None = None,
    drop_selectors: tuple[str, ...] = (),
    charset: str | None = None,
    keep_links: bool = True,
) -> tuple[str, str]:
    """(title, markdown) of an HTML document. Without `keep_links`, links become their plain text."""
    soup = BeautifulSoup(html, "lxml", from_encoding=charset if isinstance(html, bytes) else None)
    title = soup.title.get_text(" ", strip=True) if soup.title else ""
    for tag in soup(_DROP_TAGS):
        tag.decompose()
    for selector in _DROP_SELECTORS + drop_selectors:
        for tag in soup.select(selector):
            tag.decompose()
    for sup in soup.select("sup.reference"):  # citation marks: keep "[3]" as plain text, not as a link
        sup.replace_with(NavigableString(sup.get_text("", strip=True)))
    if base_url:
        for a in soup.find_all("a", href=True):
            href = str(a["href"])
            if not href.startswith(("#", "javascript:", "mailto:", "data:")):
                a["href"] = urljoin(base_url, href)
    root: Tag = soup.body or soup
    main = root.find("main") or root.find("article")
    if isinstance(main, Tag) and len(main.get_text(strip=True)) > 200:
        root = main
    tables: list[str] = []
    for table in root.find_all("table"):
        if table.find("table") is not None:  # layout table: keep its content, drop the grid
            parts = ["tr", "td", "th", "tbody", "thead", "tfoot", "caption"]
            own = [t for t in table.find_all(parts) if t.find_parent("table") is table]
            for t in [table, *own]:
                t.name = "div"
    for table in root.find_all("table"):
        md = table_to_markdown(table)
        placeholder = soup.new_tag("p")
        placeholder.string = _TOKEN.format(len(tables))
        tables.append(md)
        table.replace_with(placeholder)
    converter = _Converter(heading_style="ATX", bullets="-", escape_asterisks=False, escape_underscores=False)
    converter.keep_links = keep_links
    text = converter.convert_soup(root)
    text = _TOKEN_RE.sub(lambda m: "\n\n" + tables[int(m.group(1))] + "\n\n", text)
    text = "\n".join(line.rstrip() for line in text.splitlines())
    return title, _BLANKS.sub("\n\n", text).strip()


def pdf_to_text(data: bytes, *, max_pages: int = 300) -> str:
    """The text of a PDF, page by page. Raises ValueError naming the problem for a broken or locked file."""
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise ValueError("the PDF is encrypted with a password")
        pages = reader.pages
        parts = []
        for number, page in enumerate(pages, start=1):
            if number > max_pages:
                parts.append(f"[... {len(pages) - max_pages} more pages not read ...]")
                break
            parts.append(f"--- page {number} ---\n{(page.extract_text() or '').strip()}")
    except (PdfReadError, KeyError, TypeError, AttributeError, OSError) as exc:
        raise ValueError(f"not a readable PDF ({type(exc).__name__}: {exc})") from None
    text = "\n\n".join(parts)
    if not re.search(r"\w", _TOKEN_RE.sub("", re.sub(r"--- page \d+ ---", "", text))):
        return text + "\n\n[the PDF has no extractable text: it may be scanned images]"
    return text
