"""Who a submission is made as: the Hugging Face user behind a verified token, never a typed-in name.

The scoring API trusts whatever username it is sent, so the name is taken from `whoami` on the user's own
token (HF_TOKEN, `.env`, or the `hf auth login` cache) or from the UI's HF OAuth login. The token itself only
ever goes to `settings.hf_endpoint` (passed explicitly, never read from HF_ENDPOINT at import time); it is
never sent to the scoring API, printed, or written to a run dir.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass

from config.settings import Settings


@dataclass
class Identity:
    username: str
    source: str  # "token" | "oauth"


class IdentityError(Exception):
    """No verified identity; the message says what to set or do."""


class AgentCodeError(ValueError):
    """The agent_code URL is missing or not a Space URL."""


NO_TOKEN = (
    "no Hugging Face token found: set HF_TOKEN (in the environment or .env), run `hf auth login`, "
    "or add --login to log in interactively"
)


def find_token(settings: Settings) -> str | None:
    """The token from settings (HF_TOKEN or .env), else huggingface_hub's own lookup (env, cached login)."""
    if settings.hf_token is not None and settings.hf_token.get_secret_value().strip():
        return settings.hf_token.get_secret_value().strip()
    from huggingface_hub import get_token

    try:
        return get_token()
    except Exception:  # an OIDC exchange or token refresh that failed: treat as "no usable token"
        return None


def can_prompt() -> bool:
    """An interactive login needs a terminal, and must never start (and block polling) in CI."""
    return sys.stdin is not None and sys.stdin.isatty() and not os.environ.get("CI")


_APIS: dict[str, object] = {}  # endpoint -> HfApi, so whoami's per-instance cache survives calls


def identity_from_token(token: str | None, *, endpoint: str) -> Identity:
    """Ask `{endpoint}/api/whoami-v2` who owns `token`."""
    if not token:
        raise IdentityError(NO_TOKEN)
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    api = _APIS.get(endpoint)
    if not isinstance(api, HfApi):
        api = _APIS[endpoint] = HfApi(endpoint=endpoint)
    try:
        # cache=True: whoami-v2 is strictly rate-limited, and the UI asks once per session.
        info = api.whoami(token=token, cache=True)
    except HfHubHTTPError as exc:
        status = exc.response.status_code if exc.response is not None else None
        if status == 401:
            raise IdentityError(
                f"{endpoint} refused the Hugging Face token (HTTP 401, invalid or expired): "
                "create a new token at https://huggingface.co/settings/tokens or run `hf auth login --force`"
            ) from None
        first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise IdentityError(f"cannot check the Hugging Face identity at {endpoint}: {first_line}") from None
    except Exception as exc:  # connection errors, timeouts
        raise IdentityError(f"cannot reach {endpoint} to check the Hugging Face identity: {type(exc).__name__}: {exc}") from None
    if not isinstance(info, dict) or not info.get("name"):
        raise IdentityError(f"{endpoint}/api/whoami-v2 returned no user name")
    if info.get("type", "user") != "user":
        raise IdentityError(f"the token belongs to the {info.get('type')} {info['name']!r}, not to a user; use a user token")
    return Identity(username=str(info["name"]), source="token")


def check_username(identity: Identity, requested: str | None) -> Identity:
    """`--username` may only restate the authenticated name (case aside); the Hub's spelling is kept."""
    if requested is None or not requested.strip():
        return identity
    if requested.strip().lower() != identity.username.lower():
        raise IdentityError(
            f"--username {requested.strip()!r} does not match the authenticated Hugging Face user "
            f"{identity.username!r}; submissions are made only as the owner of the token"
        )
    return identity


def resolve_identity(settings: Settings, *, login: bool = False, username: str | None = None) -> Identity:
    """The CLI's identity: the token's user, after an interactive login when asked for and possible."""
    token = find_token(settings)
    if token is None and login:
        if not can_prompt():
            raise IdentityError(
                "--login needs an interactive terminal (and CI unset); set HF_TOKEN instead"
            )
        from huggingface_hub import login as hf_login

        try:
            hf_login()
        except Exception as exc:
            raise IdentityError(f"the Hugging Face login did not complete: {exc}") from None
        token = find_token(settings)
    return check_username(identity_from_token(token, endpoint=settings.hf_endpoint), username)


_SPACE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,95}/[A-Za-z0-9][A-Za-z0-9_.\-]{0,95}$")
_SPACE_URL = re.compile(
    r"^https://huggingface\.co/spaces/(?P<id>[^/\s]+/[^/\s]+?)(?:/tree/(?P<rev>[A-Za-z0-9_.\-]+))?/?$"
)


def agent_code_url(space_id: str | None, override: str | None = None) -> str:
    """`https://huggingface.co/spaces/<owner>/<name>/tree/main`, from `--agent-code` (a URL or an id) or SPACE_ID."""
    if override is not None and override.strip():
        value = override.strip()
        m = _SPACE_URL.match(value)
        if m and _SPACE_ID.match(m.group("id")):
            return f"https://huggingface.co/spaces/{m.group('id')}/tree/{m.group('rev') or 'main'}"
        if _SPACE_ID.match(value):
            return f"https://huggingface.co/spaces/{value}/tree/main"
        raise AgentCodeError(
            f"--agent-code {value!r} is not a Space: give https://huggingface.co/spaces/<owner>/<name>/tree/main "
            "or <owner>/<name> (the Space must be public)"
        )
    if space_id is not None and space_id.strip():
        if not _SPACE_ID.match(space_id.strip()):
            raise AgentCodeError(f"SPACE_ID {space_id.strip()!r} is not <owner>/<name>")
        return f"https://huggingface.co/spaces/{space_id.strip()}/tree/main"
    raise AgentCodeError(
        "no agent_code: set SPACE_ID=<owner>/<name> (your public Space with this code) or pass --agent-code"
    )


from evaluation.submission import submit_answers  # noqa: E402, I001  (re-export: CONTRACTS.md lists it with Identity)

__all__ = [
    "AgentCodeError",
    "Identity",
    "IdentityError",
    "agent_code_url",
    "check_username",
    "find_token",
    "identity_from_token",
    "resolve_identity",
    "submit_answers",
]
