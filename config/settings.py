"""Runtime settings read from the environment and `.env`.

Every secret is a `SecretStr`: its repr is masked, so a settings object can be logged or shown in the UI
without leaking a key. Values left unset (None) mean "use what the team YAML says".
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# "auto" or a provider name from the registry (models/providers/); checked when the settings are read.
ProviderChoice = str
DEFAULT_GEMINI_BASE_URL = "https://generativelanguage.googleapis.com/v1beta/openai/"
# "auto" or a backend name from the sandbox registry (sandbox/__init__.py); checked when the settings are read.
SandboxChoice = str
SearchChoice = Literal["auto", "ddgs", "serper", "tavily", "brave"]

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SCORING_API = "https://agents-course-unit4-scoring.hf.space"


def _env(*names: str) -> AliasChoices:
    return AliasChoices(*names)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
        # `OPENAI_API_KEY=` (as in .env.example, or `docker run --env-file`) means unset, not an empty key.
        env_ignore_empty=True,
    )

    # --- model credentials -------------------------------------------------------------------------------
    openai_api_key: SecretStr | None = Field(None, validation_alias=_env("OPENAI_API_KEY"))
    anthropic_api_key: SecretStr | None = Field(None, validation_alias=_env("ANTHROPIC_API_KEY"))
    hf_token: SecretStr | None = Field(None, validation_alias=_env("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"))
    openai_base_url: str | None = Field(None, validation_alias=_env("OPENAI_BASE_URL"))
    anthropic_base_url: str | None = Field(None, validation_alias=_env("ANTHROPIC_BASE_URL"))
    gemini_api_key: SecretStr | None = Field(None, validation_alias=_env("GEMINI_API_KEY", "GOOGLE_API_KEY"))
    gemini_base_url: str = Field(DEFAULT_GEMINI_BASE_URL, validation_alias=_env("GEMINI_BASE_URL"))

    # --- model choice ------------------------------------------------------------------------------------
    llm_provider: ProviderChoice = Field("auto", validation_alias=_env("LLM_PROVIDER"))
    llm_model: str | None = Field(None, validation_alias=_env("LLM_MODEL"))
    hf_router_url: str = Field("https://router.huggingface.co/v1", validation_alias=_env("HF_ROUTER_URL"))
    local_model: str = Field("Qwen/Qwen2.5-1.5B-Instruct", validation_alias=_env("LOCAL_MODEL"))
    llm_max_retries: int = Field(5, ge=0, le=20, validation_alias=_env("LLM_MAX_RETRIES"))
    llm_retry_base_delay: float = Field(1.0, ge=0, validation_alias=_env("LLM_RETRY_BASE_DELAY"))
    llm_retry_max_delay: float = Field(60.0, ge=0, validation_alias=_env("LLM_RETRY_MAX_DELAY"))
    llm_request_timeout: float = Field(120.0, gt=0, validation_alias=_env("LLM_REQUEST_TIMEOUT"))

    @field_validator("llm_provider")
    @classmethod
    def _known_provider(cls, value: str) -> str:
        from models.spec import check_provider  # the registry imports this module: look it up when validating

        return check_provider(value)

    # --- team and run limits -----------------------------------------------------------------------------
    team: Path = Field(REPO_ROOT / "teams" / "debate.yaml", validation_alias=_env("ROUNDTABLE_TEAM"))
    question_timeout: float | None = Field(None, gt=0, validation_alias=_env("ROUNDTABLE_QUESTION_TIMEOUT"))
    max_turns: int | None = Field(None, gt=0, validation_alias=_env("ROUNDTABLE_MAX_TURNS"))
    cache_dir: Path = Field(Path.home() / ".cache" / "roundtable", validation_alias=_env("ROUNDTABLE_CACHE_DIR"))
    # Model calls at once per provider, for a batch or a Ray sweep (`openai=8,anthropic=4`; `*=N` for the rest):
    # rate limits are per key, so on Ray the cap is shared by the whole cluster (models/gate.py).
    provider_caps: str = Field("", validation_alias=_env("ROUNDTABLE_PROVIDER_CAPS"))

    @field_validator("provider_caps")
    @classmethod
    def _caps_parse(cls, value: str) -> str:
        from models.gate import parse_caps

        parse_caps(value)  # a CapsError (a ValueError) names the part that does not parse
        return value

    # --- sandbox -----------------------------------------------------------------------------------------
    sandbox_backend: SandboxChoice | None = Field(None, validation_alias=_env("SANDBOX_BACKEND"))

    @field_validator("sandbox_backend")
    @classmethod
    def _known_sandbox_backend(cls, value: str | None) -> str | None:
        # the sandbox package reads these settings: look its registry up when validating
        from sandbox import check_backend

        return None if value is None else check_backend(value)

    sandbox_allow_subprocess: bool | None = Field(None, validation_alias=_env("SANDBOX_ALLOW_SUBPROCESS"))
    sandbox_image: str = Field("roundtable-sandbox:latest", validation_alias=_env("SANDBOX_IMAGE"))
    # The interpreter the bwrap and subprocess backends run (default: the app's own Python).
    sandbox_python: str | None = Field(None, validation_alias=_env("SANDBOX_PYTHON"))
    # The wasm backend's Pyodide runtime and wheels (`python -m sandbox install-wasm`); default cache_dir/wasm.
    sandbox_wasm_dir: Path | None = Field(None, validation_alias=_env("SANDBOX_WASM_DIR"))

    hf_endpoint: str = Field("https://huggingface.co", validation_alias=_env("HF_ENDPOINT"))

    # --- researcher tools (README "Tools"); the *_URL settings exist so tests and mirrors can redirect them ---
    # wall clock per tool call; a tool with its own limit (calculator, run_python: the sandbox's) keeps it
    tool_timeout: float = Field(120.0, gt=0, le=3600, validation_alias=_env("TOOL_TIMEOUT"))
    web_timeout: float = Field(20.0, gt=0, le=300, validation_alias=_env("WEB_TIMEOUT"))
    web_max_bytes: int = Field(10_000_000, ge=10_000, le=200_000_000, validation_alias=_env("WEB_MAX_BYTES"))
    web_search_provider: SearchChoice = Field("auto", validation_alias=_env("WEB_SEARCH_PROVIDER"))
    web_search_results: int = Field(8, ge=1, le=20, validation_alias=_env("WEB_SEARCH_RESULTS"))
    serper_api_key: SecretStr | None = Field(None, validation_alias=_env("SERPER_API_KEY"))
    tavily_api_key: SecretStr | None = Field(None, validation_alias=_env("TAVILY_API_KEY"))
    brave_api_key: SecretStr | None = Field(None, validation_alias=_env("BRAVE_API_KEY"))
    serper_url: str = Field("https://google.serper.dev/search", validation_alias=_env("SERPER_URL"))
    tavily_url: str = Field("https://api.tavily.com/search", validation_alias=_env("TAVILY_URL"))
    brave_url: str = Field("https://api.search.brave.com/res/v1/web/search", validation_alias=_env("BRAVE_URL"))
    ddgs_backend: str = Field("auto", validation_alias=_env("DDGS_BACKEND"))
    ddgs_url: str | None = Field(None, validation_alias=_env("DDGS_URL"))  # DuckDuckGo HTML endpoint override
    wikipedia_api_url: str = Field("https://{lang}.wikipedia.org/w/api.php", validation_alias=_env("WIKIPEDIA_API_URL"))
    wayback_api_url: str = Field("https://archive.org/wayback/available", validation_alias=_env("WAYBACK_API_URL"))
    youtube_base_url: str = Field("https://www.youtube.com", validation_alias=_env("YOUTUBE_BASE_URL"))
    transcribe_model: str = Field("gpt-4o-transcribe", validation_alias=_env("TRANSCRIBE_MODEL"))
    whisper_model: str = Field("small", validation_alias=_env("WHISPER_MODEL"))  # faster-whisper, the [audio] extra
    # chess_position (agents/tools/chess_board.py): the UCI engine, its thinking time, the reading's comparison rounds
    stockfish_path: str | None = Field(None, validation_alias=_env("STOCKFISH_PATH"))
    chess_engine_seconds: float = Field(2.0, gt=0, le=60, validation_alias=_env("CHESS_ENGINE_SECONDS"))
    chess_compare_rounds: int = Field(2, ge=0, le=5, validation_alias=_env("CHESS_COMPARE_ROUNDS"))
    # watch_video (agents/tools/video.py; README "watch_video"): caps, frame sampling, the Gemini path, yt-dlp's way out
    video_max_seconds: float = Field(1800.0, gt=0, validation_alias=_env("VIDEO_MAX_SECONDS"))
    video_max_bytes: int = Field(300_000_000, ge=10_000, validation_alias=_env("VIDEO_MAX_BYTES"))
    video_max_frames: int = Field(32, ge=1, le=256, validation_alias=_env("VIDEO_MAX_FRAMES"))
    video_frames_per_call: int = Field(8, ge=1, le=64, validation_alias=_env("VIDEO_FRAMES_PER_CALL"))
    video_frame_step: float = Field(1.0, gt=0, validation_alias=_env("VIDEO_FRAME_STEP"))
    video_scene_threshold: float = Field(0.3, gt=0, lt=1, validation_alias=_env("VIDEO_SCENE_THRESHOLD"))
    video_frame_width: int = Field(768, ge=64, le=2048, validation_alias=_env("VIDEO_FRAME_WIDTH"))
    video_timeout: float = Field(600.0, gt=0, validation_alias=_env("VIDEO_TIMEOUT"))
    video_gemini_model: str = Field("gemini-3.5-flash", validation_alias=_env("VIDEO_GEMINI_MODEL"))
    video_gemini_max_bytes: int = Field(70_000_000, ge=1, validation_alias=_env("VIDEO_GEMINI_MAX_BYTES"))
    ytdlp_cookies_file: Path | None = Field(None, validation_alias=_env("YTDLP_COOKIES_FILE"))
    ytdlp_proxy: SecretStr | None = Field(None, validation_alias=_env("YTDLP_PROXY"))

    # --- evaluation --------------------------------------------------------------------------------------
    scoring_api_url: str = Field(DEFAULT_SCORING_API, validation_alias=_env("SCORING_API_URL"))
    space_id: str | None = Field(None, validation_alias=_env("SPACE_ID"))  # owner/name; gives the agent_code URL

    # --- the public app's limits (README "Limits"); 0 = no limit ---------------------------------------------
    questions_per_hour: int = Field(20, ge=0, validation_alias=_env("ROUNDTABLE_QUESTIONS_PER_HOUR"))
    concurrent_runs: int = Field(2, ge=0, validation_alias=_env("ROUNDTABLE_CONCURRENT_RUNS"))
    user_daily_usd: float = Field(1.0, ge=0, validation_alias=_env("ROUNDTABLE_USER_DAILY_USD"))
    daily_usd: float = Field(10.0, ge=0, validation_alias=_env("ROUNDTABLE_DAILY_USD"))
    # Hugging Face usernames free of the per-user limits (the Space's owner running the evaluation);
    # the app-wide daily budget still applies to them.
    limit_exempt_users: str = Field("", validation_alias=_env("ROUNDTABLE_LIMIT_EXEMPT_USERS"))
    # Longer text belongs in an attached file; the browser refuses it before sending (README "Limits").
    max_question_chars: int = Field(100_000, ge=1_000, le=500_000, validation_alias=_env("ROUNDTABLE_MAX_QUESTION_CHARS"))

    # --- history and persistence (README "History"; ui/history.py, ui/persistence.py) ---------------------
    # Store conversations: "auto" = on for a local run, off on a Space (SPACE_ID set: the public app stores nothing
    # unless its owner turns it on, and then only with Hugging Face login).
    history: Literal["auto", "on", "off"] = Field("auto", validation_alias=_env("ROUNDTABLE_HISTORY"))
    # PostgreSQL for the history (postgresql://user:password@host:port/db); unset = SQLite in the cache dir.
    database_url: SecretStr | None = Field(None, validation_alias=_env("DATABASE_URL"))
    # Where run dirs and the SQLite history survive a restart; unset = /data/roundtable on a Space whose /data is writable.
    persist_dir: Path | None = Field(None, validation_alias=_env("ROUNDTABLE_PERSIST_DIR"))
    # Else a private dataset repo (owner/name) the app pushes them to with HF_TOKEN, every persist_minutes.
    persist_repo: str | None = Field(None, validation_alias=_env("ROUNDTABLE_PERSIST_REPO"))
    persist_minutes: float = Field(5.0, gt=0, le=1440, validation_alias=_env("ROUNDTABLE_PERSIST_MINUTES"))
    # More run dirs the UI may replay and compare (`:`-separated), besides its own, runs/ in the repo and in the cwd.
    run_dirs: str | None = Field(None, validation_alias=_env("ROUNDTABLE_RUN_DIRS"))
    # A bearer token /metrics requires; unset: open on a local run, off on a Space (SPACE_ID set).
    metrics_token: SecretStr | None = Field(None, validation_alias=_env("ROUNDTABLE_METRICS_TOKEN"))

    # --- logging -----------------------------------------------------------------------------------------
    log_level: str = Field("INFO", validation_alias=_env("LOG_LEVEL"))
    log_format: Literal["text", "json"] = Field("text", validation_alias=_env("LOG_FORMAT"))

    def secret_values(self) -> list[str]:
        """The raw secrets this process knows, so log sinks can mask them wherever they appear."""
        keys = (self.openai_api_key, self.anthropic_api_key, self.gemini_api_key, self.hf_token,
                self.serper_api_key, self.tavily_api_key, self.brave_api_key, self.ytdlp_proxy, self.database_url,
                self.metrics_token)
        values = [s.get_secret_value() for s in keys if s]
        return [v for v in values if len(v) >= 6]


def _env_file() -> str | None:
    # ROUNDTABLE_ENV_FILE="" disables .env loading (tests use it so a developer's keys never leak in).
    value = os.environ.get("ROUNDTABLE_ENV_FILE", ".env")
    return value or None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings(_env_file=_env_file())
