"""Log in with Hugging Face: a Chainlit `OAuthProvider` for the variables a Space injects with `hf_oauth: true`.

Chainlit ships no Hugging Face provider. Its generic one sends the client secret in the form body, while
HF's docs specify HTTP Basic auth for the token request, so this provider does the exchange itself.

The username comes from HF's `/oauth/userinfo`, fetched with the access token just issued, so it is the
verified identity, never something the browser typed. The access token itself is dropped as soon as the
user info is read: the scoring API needs only the username, and a token nobody keeps cannot end up in
the JWT cookie (Chainlit signs but does not encrypt it), the page, a data layer or a log line.
"""

from __future__ import annotations

import base64
import os
import secrets
from collections.abc import Mapping
from typing import Any

import httpx
from chainlit.oauth_providers import OAuthProvider, providers
from chainlit.user import User
from fastapi import HTTPException
from loguru import logger

PROVIDER_ID = "huggingface"
OAUTH_VARS = ("OAUTH_CLIENT_ID", "OAUTH_CLIENT_SECRET", "OPENID_PROVIDER_URL")
HTTP_TIMEOUT_S = 15.0


def oauth_configured(env: Mapping[str, str] | None = None) -> bool:
    env = os.environ if env is None else env
    return all(env.get(v) for v in OAUTH_VARS)


class HuggingFaceOAuthProvider(OAuthProvider):
    id = PROVIDER_ID
    env = list(OAUTH_VARS)

    def __init__(self) -> None:
        base = os.environ.get("OPENID_PROVIDER_URL", "https://huggingface.co").rstrip("/")
        self.client_id = os.environ.get("OAUTH_CLIENT_ID", "")
        self.client_secret = os.environ.get("OAUTH_CLIENT_SECRET", "")
        self.authorize_url = f"{base}/oauth/authorize"
        self.token_url = f"{base}/oauth/token"
        self.userinfo_url = f"{base}/oauth/userinfo"
        self.authorize_params = {
            "scope": os.environ.get("OAUTH_SCOPES") or "openid profile",
            "response_type": "code",
        }
        if prompt := self.get_prompt():
            self.authorize_params["prompt"] = prompt

    async def get_raw_token_response(self, code: str, url: str) -> dict[str, Any]:
        basic = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
        async with httpx.AsyncClient(timeout=HTTP_TIMEOUT_S) as client:
            response = await client.post(
                self.token_url,
                headers={"Authorization": f"Basic {basic}", "Accept": "application/json"},
                data={"grant_type": "authorization_code", "code": code, "redirect_uri": url},
            )
        if response.status_code != 200:
            # The body may echo the code; say only what failed.
            raise HTTPException(status_code=400, detail=f"Hugging Face refused the login (token endpoint HTTP {response.status_code})")
        try:
            data = response.json()
        except ValueError:
            raise HTTPException(status_code=400, detail="Hugging Face's token endpoint did not answer JSON") from None
        if not isinstance(data, dict):
            raise HTTPException(status_code=400, detail="Hugging Face's token endpoint answered an unexpected shape")
        return data

    async def get_token(self, code: str, url: str) -> str:
        token = (await self.get_raw_token_response(code, url)).get("access_token")
        if not isinstance(token, str) or not token:
            raise HTTPException(status_code=400, detail="Hugging Face's token response has no access_token")
        return token

    async def get_user_info(self, token: str) -> tuple[dict[str, Any], User]:
        async with httpx.AsyncClient(timeout=HTTP_TIMEOUT_S) as client:
            response = await client.get(self.userinfo_url, headers={"Authorization": f"Bearer {token}"})
        if response.status_code != 200:
            raise HTTPException(status_code=400, detail=f"Hugging Face's userinfo endpoint answered HTTP {response.status_code}")
        try:
            info = response.json()
        except ValueError:
            raise HTTPException(status_code=400, detail="Hugging Face's userinfo endpoint did not answer JSON") from None
        username = info.get("preferred_username") if isinstance(info, dict) else None
        if not isinstance(username, str) or not username.strip():
            raise HTTPException(status_code=400, detail="Hugging Face's user info has no preferred_username")
        user = User(
            identifier=username.strip(),
            display_name=info.get("name") or username,
            metadata={"provider": PROVIDER_ID, "image": info.get("picture")},
        )
        return info, user


def install() -> bool:
    """Register the provider when the Space's OAuth variables are set. Returns whether login is on."""
    if not oauth_configured():
        return False
    if not any(p.id == PROVIDER_ID for p in providers):
        providers.append(HuggingFaceOAuthProvider())
    if not os.environ.get("CHAINLIT_URL") and (host := os.environ.get("SPACE_HOST")):
        # Behind the Space's proxy the request URL is http://<internal>; HF only redirects back to the
        # Space's own https host.
        os.environ["CHAINLIT_URL"] = f"https://{host}"
    if not os.environ.get("CHAINLIT_AUTH_SECRET"):
        # Chainlit refuses to start without it. A per-process secret keeps the app usable; logins then
        # last only until a restart, so say how to make them stick.
        os.environ["CHAINLIT_AUTH_SECRET"] = secrets.token_urlsafe(48)
        logger.warning(
            "CHAINLIT_AUTH_SECRET is not set: using a random one, so every login ends when the app restarts. "
            "Set it as a Space secret (generate one with `chainlit create-secret`)."
        )
    return True


async def accept_login(
    provider_id: str, token: str, raw_user_data: dict[str, Any], default_user: User, id_token: str | None = None
) -> User | None:
    """Chainlit's oauth_callback: accept Hugging Face identities only; the token is not kept."""
    if provider_id != PROVIDER_ID:
        return None
    return User(identifier=default_user.identifier, display_name=default_user.display_name, metadata=dict(default_user.metadata))


def hf_username(user: Any) -> str | None:
    """The verified Hugging Face username of a logged-in Chainlit user, or None."""
    if user is None:
        return None
    metadata = getattr(user, "metadata", None) or {}
    if metadata.get("provider") != PROVIDER_ID:
        return None
    return str(user.identifier)
