"""The benchmark's answers are never fetched: not by the attachment fallback, not by any web tool.

FakeHub records every request, so "never asked for" is checked, not assumed. The static check makes sure no
other module grows a second way into the Hub (snapshot_download, load_dataset, HfFileSystem, ...).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from agents.tools.sources import blocked_source
from config.settings import Settings
from evaluation.attachments import AttachmentError, fetch_attachment
from tests.fakes.hf_hub import FakeHub
from tests.fakes.scoring_api import ScoringServer
from tests.fakes.wayback import FakeWayback
from tests.fakes.web import FakeWeb, redirect
from tests.tools.conftest import call, tool_settings

REPO_ROOT = Path(__file__).resolve().parents[2]
TOKEN = "hf_testtokenforthefakehub000000000"
ANSWER_FILE = re.compile(r"(^|/)metadata[^/]*$|\.jsonl$|\.parquet$", re.IGNORECASE)

GAIA_URLS = [
    "https://huggingface.co/datasets/gaia-benchmark/GAIA",
    "https://huggingface.co/datasets/gaia-benchmark/GAIA/resolve/main/2023/validation/metadata.jsonl",
    "https://huggingface.co/datasets/gaia-benchmark/GAIA/blob/main/2023/validation/metadata.parquet",
    "https://huggingface.co/datasets/gaia-benchmark/GAIA/tree/main/2023/validation",
    "https://huggingface.co/api/datasets/gaia-benchmark/GAIA/parquet/2023_all/validation/0.parquet",
    "https://huggingface.co/datasets/gaia-benchmark/GAIA/resolve/refs%2Fconvert%2Fparquet/2023_all/validation/0000.parquet",
    "https://datasets-server.huggingface.co/rows?dataset=gaia-benchmark%2FGAIA&config=2023_all&split=validation",
    "https://datasets-server.huggingface.co/parquet?dataset=gaia-benchmark/GAIA",
    "https://hf.co/datasets/gaia-benchmark/GAIA",
    "https://hf-mirror.com/datasets/gaia-benchmark/GAIA/resolve/main/2023/validation/metadata.jsonl",
    "https://huggingface.co/spaces/gaia-benchmark/leaderboard",
    "https://web.archive.org/web/2024id_/https://huggingface.co/datasets/gaia-benchmark/GAIA",
    # answer sheets and solutions under the benchmark's or the exercise's name
    "https://huggingface.co/datasets/someone/gaia-validation-answers/resolve/main/answers.jsonl",
    "https://huggingface.co/spaces/someone/Final_Assignment_Template/raw/main/answers.json",
    "https://someone-final-assignment.hf.space/answers",
    "https://github.com/someone/agents-course-unit4/blob/main/answers.md",
    "https://raw.githubusercontent.com/someone/gaia-solutions/main/results.jsonl",
    "https://www.kaggle.com/datasets/someone/gaia-benchmark-validation",
    "https://www.modelscope.cn/datasets/someone/GAIA/files",
    "https://discuss.huggingface.co/t/unit-4-all-the-answers/999",
]
ORDINARY_URLS = [
    "https://en.wikipedia.org/wiki/Gaia_hypothesis",
    "https://www.cosmos.esa.int/web/gaia",
    "https://huggingface.co/learn/agents-course/unit4/introduction",
    "https://huggingface.co/datasets/squad",
    "https://github.com/python/cpython/blob/main/README.rst",
    "https://web.archive.org/web/2020/https://example.com/",
    "https://arxiv.org/abs/2311.12983",
]


@pytest.mark.parametrize("url", GAIA_URLS)
def test_benchmark_sources_are_recognised(url: str) -> None:
    assert blocked_source(url) is not None


@pytest.mark.parametrize("url", ORDINARY_URLS)
def test_ordinary_sources_are_not(url: str) -> None:
    assert blocked_source(url) is None


async def test_read_page_refuses_the_dataset_and_its_mirrors_without_a_request(make_ctx) -> None:
    ctx = make_ctx()
    schemeless = [u.split("://", 1)[1] for u in GAIA_URLS]  # models often drop the scheme
    for url in GAIA_URLS + schemeless:
        out = await call(ctx, "read_page", url=url)
        assert out.startswith("Error: refused:"), (url, out)


async def test_a_hub_mirror_on_any_host_is_refused_and_never_contacted(make_ctx) -> None:
    with FakeHub(tokens={TOKEN: "tester"}) as hub:
        hub.add_file("gaia-benchmark/GAIA", "2023/validation/metadata.jsonl", b'{"Final answer": "x"}')
        out = await call(make_ctx(), "read_page", url=f"{hub.url}/datasets/gaia-benchmark/GAIA/resolve/main/2023/validation/metadata.jsonl")
        assert out.startswith("Error: refused:")
        assert hub.requests == []


async def test_redirects_and_archives_cannot_smuggle_the_dataset_in(make_ctx) -> None:
    target = GAIA_URLS[1]
    with FakeWeb({"/innocent": redirect(target), "/wrapped": redirect(f"https://translate.example/?u={target}")}) as site:
        ctx = make_ctx()
        for path in ("/innocent", "/wrapped"):
            out = await call(ctx, "read_page", url=f"{site.url}{path}")
            assert out.startswith("Error: refused:") and "GAIA" in out
    with FakeWayback() as archive:
        archive.add(target, "20240101000000", "<html><body>leak</body></html>")
        out = await call(make_ctx(tool_settings(WAYBACK_API_URL=archive.api_url)), "wayback", url=target, date="2024")
        assert out.startswith("Error: refused:") and archive.requests == []


async def test_no_attachment_download_asks_for_an_answer_file(tmp_path) -> None:
    names = ["task-0001.mp3", "sheet.xlsx", "picture.png", "code.py", "doc.pdf", "metadata.jsonl", "x.parquet", "../metadata.jsonl"]
    with FakeHub(tokens={TOKEN: "tester"}) as hub, ScoringServer(questions=[]) as api:
        for name in names:
            hub.add_file("gaia-benchmark/GAIA", f"2023/validation/{name}", b"content")
        settings = Settings(  # type: ignore[call-arg]
            _env_file=None, SCORING_API_URL=api.url, HF_ENDPOINT=hub.url, HF_TOKEN=TOKEN, ROUNDTABLE_CACHE_DIR=str(tmp_path)
        )
        fetched, refused = 0, 0
        for i, name in enumerate(names):
            try:
                await fetch_attachment(f"task-{i:04d}", name, settings=settings)
                fetched += 1
            except AttachmentError:
                refused += 1
        requested = hub.paths_requested()
    assert fetched == 5 and refused == 3
    assert requested, "the fallback was exercised"
    assert not [p for p in requested if ANSWER_FILE.search(p)], requested
    assert all(p.startswith("/datasets/gaia-benchmark/GAIA/resolve/main/2023/validation/") for p in requested)


def _tracked_python() -> list[Path]:
    out = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "*.py"],
        cwd=REPO_ROOT, capture_output=True, text=True, check=True,
    ).stdout
    return [REPO_ROOT / line for line in out.splitlines() if line and (REPO_ROOT / line).is_file()]


# Every module that touches Hub files, and why that is safe. A new one must be reviewed and listed here.
HUB_FILE_ACCESS = {
    "evaluation/attachments.py": "the one-file fallback, behind the name check tested above",
    "submit.py": "a HEAD request on the same validated file name (cached_path refuses answer files first)",
    "ui/persistence.py": "downloads the operator's own persistence repo into the cache dir (never read by a tool); a "
                         "repo the answer-source patterns match is refused (tests/test_persistence.py)",
}


def test_only_reviewed_modules_touch_hub_files() -> None:
    hub_files = re.compile(
        r"\b(hf_hub_download|snapshot_download|load_dataset|HfFileSystem|hf_hub_url|list_repo_files|list_repo_tree|"
        r"get_hf_file_metadata)\b"
    )
    users = sorted(
        str(p.relative_to(REPO_ROOT))
        for p in _tracked_python()
        if not p.is_relative_to(REPO_ROOT / "tests") and hub_files.search(p.read_text(encoding="utf-8", errors="replace"))
    )
    assert set(users) <= set(HUB_FILE_ACCESS), f"unreviewed Hub file access in {sorted(set(users) - set(HUB_FILE_ACCESS))}"
    assert "evaluation/attachments.py" in users
