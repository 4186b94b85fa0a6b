"""What the page gets beyond Chainlit 2.12's stock behaviour: a guard on the message length, and uploads of
any type without the browser's "*/*" warnings.

**Message length.** Chainlit's socket.io server keeps engine.io's default `max_http_buffer_size` (1,000,000):
a bigger message makes engine.io drop the connection ("packet is too large"), the page reconnects and the
question is silently lost. So the page loads `composer.js` (`custom_js` in `.chainlit/config.toml`), which
refuses to send, or paste into the message box, more than `ROUNDTABLE_MAX_QUESTION_CHARS` characters and
says why; `chat.answer` refuses the same length with the same sentence, for a client without the script;
and the socket limit is raised to `SOCKET_MAX_CHARS` so such a message reaches `chat.answer` instead of
killing the connection.

**Uploads.** The frontend hands `accept` to react-dropzone, which warns `Skipped "*/*" because it is not a
valid MIME type` on every render of the composer, and only an empty `accept` means "any file" to it. But
Chainlit's server rejects every upload when `accept` is empty. So the config says `accept = {}` and the
server's check treats an empty `accept` as "any type" (size and count limits still apply).
"""

from __future__ import annotations

import json
from typing import Any

from fastapi.responses import Response

from config.settings import get_settings

COMPOSER_JS_PATH = "/roundtable/composer.js"
# Characters of one socket.io packet. A message's JSON escapes can make it up to 6x its text (\u0000), and
# the largest accepted text is 500,000 characters; uvicorn's own websocket frame limit is 16 MiB.
SOCKET_MAX_CHARS = 4_000_000


def too_long_text(length: int, limit: int) -> str:
    """The sentence the page and the server both show."""
    return (
        f"This message is {length:,} characters long; the limit is {limit:,}. "
        "Shorten it, or attach long text as a file (the paperclip)."
    )


_COMPOSER_JS = r"""
// Roundtable: refuse messages longer than the server takes (ui/frontend.py), with a message saying why.
(() => {
  const LIMIT = __LIMIT__;
  const fmt = (n) => n.toLocaleString("en-US");
  // code points, as the server counts them (a string's length counts UTF-16 units)
  const count = (s) => s.length - (s.match(/[\uD800-\uDBFF][\uDC00-\uDFFF]/g) || []).length;
  const tooLong = (n) => `This message is ${fmt(n)} characters long; the limit is ${fmt(LIMIT)}. ` +
    "Shorten it, or attach long text as a file (the paperclip).";
  let hideTimer = null;
  function say(text) {
    let box = document.getElementById("roundtable-composer-error");
    if (!box) {
      box = document.createElement("div");
      box.id = "roundtable-composer-error";
      box.setAttribute("role", "alert");
      box.style.cssText = "position:fixed;left:50%;top:4.5rem;transform:translateX(-50%);z-index:1000;" +
        "max-width:42rem;padding:.6rem 1rem;border-radius:.6rem;background:#b42318;color:#fff;" +
        "font:14px/1.4 system-ui,sans-serif;box-shadow:0 2px 10px rgba(0,0,0,.3)";
      document.body.appendChild(box);
    }
    box.textContent = text;
    box.hidden = false;
    clearTimeout(hideTimer);
    hideTimer = setTimeout(() => { box.hidden = true; }, 15000);
  }
  const input = () => document.getElementById("chat-input");
  function refuse(event, text) {
    event.preventDefault();
    event.stopImmediatePropagation();
    say(text);
  }
  // Capture phase on the document: runs before React's own handlers, which then never see the event.
  document.addEventListener("paste", (event) => {
    const box = input();
    if (!box || event.target !== box) return;
    const pasted = (event.clipboardData && event.clipboardData.getData("text")) || "";
    const kept = box.value.slice(0, box.selectionStart) + box.value.slice(box.selectionEnd);
    const after = count(kept) + count(pasted);
    if (after > LIMIT) refuse(event, `Not pasted: ${tooLong(after)}`);
  }, true);
  document.addEventListener("keydown", (event) => {
    const box = input();
    if (!box || event.target !== box || event.key !== "Enter" || event.shiftKey || event.isComposing) return;
    const n = count(box.value);
    if (n > LIMIT) refuse(event, `Not sent: ${tooLong(n)}`);
  }, true);
  document.addEventListener("click", (event) => {
    const box = input();
    const button = event.target instanceof Element ? event.target.closest("#chat-submit") : null;
    if (!box || !button) return;
    const n = count(box.value);
    if (n > LIMIT) refuse(event, `Not sent: ${tooLong(n)}`);
  }, true);
})();
"""


def composer_js(limit: int) -> str:
    return _COMPOSER_JS.replace("__LIMIT__", json.dumps(int(limit)))


async def composer_script() -> Response:
    js = composer_js(get_settings().max_question_chars)
    return Response(js, media_type="text/javascript", headers={"Cache-Control": "no-cache"})


def _accept_any_when_empty() -> None:
    import chainlit.server as server

    stock = server.validate_file_mime_type
    if getattr(stock, "_roundtable", False):
        return

    def validate_file_mime_type(file: Any, spec: Any) -> None:
        upload = server.config.features.spontaneous_file_upload
        if spec is None and upload is not None and upload.accept is not None and len(upload.accept) == 0:
            return  # accept = {}: any type (see the module docstring)
        stock(file, spec)

    validate_file_mime_type._roundtable = True  # type: ignore[attr-defined]
    server.validate_file_mime_type = validate_file_mime_type


def install() -> None:
    from chainlit.server import app, sio

    sio.eio.max_http_buffer_size = max(sio.eio.max_http_buffer_size, SOCKET_MAX_CHARS)
    _accept_any_when_empty()
    if not any(getattr(r, "path", None) == COMPOSER_JS_PATH for r in app.router.routes):
        app.add_api_route(COMPOSER_JS_PATH, composer_script, methods=["GET"], include_in_schema=False)
        app.router.routes.insert(0, app.router.routes.pop())  # ahead of Chainlit's "/{full_path:path}"
