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

**Speakers.** Chainlit draws an avatar only for top-level messages and titles every step "Used <name>", its
wording for a tool call. The page's script (`page.js`, the composer guard and `_SPEAKERS_JS`) marks each
agent turn (a step of type `llm`, named "critic — turn 4" by ui/render.py) with its agent, colour and avatar;
the stylesheet (`style.css`, `custom_css`) then draws the avatar, colours the turn's edge and title, and
hides "Used"/"Using" on turns. Known agents have an SVG in `public/avatars/`; any other name gets a disc in
the colour its name hashes to (`ui.render.speaker_colour`, the same hash as the script's). The stylesheet also
draws the verdict badges (links to `#rt-approved` / `#rt-rejected`, see ui/render.py), gives the action
buttons a button's look, and keeps the chat inside a phone's width.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any

from fastapi.responses import Response

from config.settings import get_settings
from ui.render import APPROVED_ANCHOR, REJECTED_ANCHOR, SPEAKER_COLOURS, speaker_colour

COMPOSER_JS_PATH = "/roundtable/composer.js"
PAGE_JS_PATH = "/roundtable/page.js"  # custom_js: the composer guard and the speakers
STYLE_PATH = "/roundtable/style.css"  # custom_css
AVATAR_PATH = "/roundtable/avatars/{name}.svg"
AVATARS_DIR = Path(__file__).resolve().parents[1] / "public" / "avatars"
_AVATAR_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
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


_SPEAKERS_JS = r"""
// Roundtable: each agent's turn gets its agent's colour and avatar (ui/frontend.py, the stylesheet draws them).
(() => {
  const KNOWN = __COLOURS__;
  // FNV-1a over the name's code points, as ui.render.name_hue computes it
  const hue = (name) => {
    let h = 0x811c9dc5;
    for (const ch of name) h = Math.imul(h ^ ch.codePointAt(0), 0x01000193) >>> 0;
    return h % 360;
  };
  const colour = (name) => KNOWN[name] || `hsl(${hue(name)}, 60%, 42%)`;
  window.roundtableSpeakerColour = colour;
  function decorate() {
    for (const step of document.querySelectorAll('.step[data-step-type="run"]')) {
      const title = step.querySelectorAll('[id^="step-"]')[1];  // a run is no tool call either
      if (title && !title.dataset.rtTitle) title.dataset.rtTitle = "run";
    }
    for (const step of document.querySelectorAll('.step[data-step-type="llm"]')) {
      // the first id is the step's own (step-<uuid>), the second its title (step-<name>)
      const title = step.querySelectorAll('[id^="step-"]')[1];
      if (!title) continue;
      const agent = title.id.slice(5).split(/[\s(]/)[0];
      if (!agent) continue;
      if (step.dataset.rtSpeaker === agent && title.dataset.rtSpeaker === agent) continue;
      step.dataset.rtSpeaker = agent;
      title.dataset.rtSpeaker = agent;
      step.style.setProperty("--rt-speaker", colour(agent));
      step.style.setProperty("--rt-avatar", `url("/roundtable/avatars/${encodeURIComponent(agent)}.svg")`);
    }
  }
  let queued = false;
  const schedule = () => {
    if (queued) return;
    queued = true;
    requestAnimationFrame(() => { queued = false; decorate(); });
  };
  const start = () => {
    new MutationObserver(schedule).observe(document.body, {subtree: true, childList: true, attributes: true,
                                                           attributeFilter: ["id"]});
    decorate();
  };
  if (document.body) start(); else document.addEventListener("DOMContentLoaded", start);
})();
"""


def speakers_js() -> str:
    return _SPEAKERS_JS.replace("__COLOURS__", json.dumps(SPEAKER_COLOURS))


async def page_script() -> Response:
    js = composer_js(get_settings().max_question_chars) + speakers_js()
    return Response(js, media_type="text/javascript", headers={"Cache-Control": "no-cache"})


STYLE_CSS = """
/* Roundtable (ui/frontend.py): speakers, verdict badges, action buttons, phones. */
.step[data-rt-speaker] {
  border-left: 3px solid var(--rt-speaker);
  padding-left: .6rem;
  margin-top: .25rem;
}
/* "Used"/"Using" is Chainlit's wording for a tool call; a turn is titled by its agent, role and number */
.step[data-rt-speaker] [data-rt-speaker] > span:first-child, [data-rt-title] > span:first-child { display: none; }
.step[data-rt-speaker] [data-rt-speaker] {
  color: var(--rt-speaker) !important;
  font-weight: 600;
  gap: .4rem;
}
.step[data-rt-speaker] [data-rt-speaker]::before {
  content: "";
  display: inline-block;
  flex: none;
  width: 1.4rem;
  height: 1.4rem;
  border-radius: 50%;
  background: var(--rt-avatar) center / cover no-repeat, var(--rt-speaker);
}
/* the verdicts: ui/render.py writes them as links to these anchors */
a[href="__APPROVED__"], a[href="__REJECTED__"] {
  display: inline-block;
  padding: .05rem .6rem;
  border-radius: 999px;
  font-weight: 600;
  font-size: .92em;
  line-height: 1.6;
  text-decoration: none !important;
  pointer-events: none;
  white-space: normal;
  overflow-wrap: anywhere;
}
a[href="__APPROVED__"] { background: #dcfce7; color: #166534 !important; border: 1px solid #86efac; }
a[href="__REJECTED__"] { background: #fee2e2; color: #991b1b !important; border: 1px solid #fca5a5; }
/* action buttons (Chainlit draws them as faint "ghost" text): a button's border, fill and weight */
.step button[id]:not([id^="step-"]) {
  border: 1px solid hsl(var(--primary));
  background: hsl(var(--primary) / .08);
  color: hsl(var(--primary)) !important;
  font-weight: 600;
  padding: .35rem .9rem;
  border-radius: .5rem;
}
.step button[id]:not([id^="step-"]):hover { background: hsl(var(--primary) / .18); }
/* phones: nothing wider than the screen; long code and tables scroll inside their own box */
@media (max-width: 640px) {
  .step pre, .step table { max-width: 100%; overflow-x: auto; }
  .step .prose { overflow-wrap: anywhere; }
  .step[data-rt-speaker] { padding-left: .4rem; }
  .step .ai-message { gap: .5rem; }
  .step td { overflow-wrap: break-word; }  /* Chainlit's `anywhere` breaks "29.7 s" between characters */
}
.step pre code { white-space: pre-wrap; overflow-wrap: anywhere; }
/* a task id in a table stays on one line (a table scrolls inside its box on a phone) */
td code { white-space: nowrap; }
""".replace("__APPROVED__", APPROVED_ANCHOR).replace("__REJECTED__", REJECTED_ANCHOR)


async def stylesheet() -> Response:
    return Response(STYLE_CSS, media_type="text/css", headers={"Cache-Control": "no-cache"})


def avatar_svg(name: str) -> str:
    """The avatar of an agent: its SVG in public/avatars/, else a disc in its name's colour with its initial."""
    known = AVATARS_DIR / f"{name}.svg"
    if _AVATAR_NAME.match(name) and known.is_file():
        return known.read_text(encoding="utf-8")
    initial = html.escape((name[:1] or "?").upper())
    return ('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24" width="24" height="24">'
            f'<title>{html.escape(name)}</title><circle cx="12" cy="12" r="12" fill="{speaker_colour(name)}"/>'
            '<text x="12" y="16.5" text-anchor="middle" font-family="system-ui,sans-serif" font-size="13" '
            f'font-weight="700" fill="#fff">{initial}</text></svg>')


async def avatar(name: str) -> Response:
    return Response(avatar_svg(name[:64]), media_type="image/svg+xml", headers={"Cache-Control": "max-age=3600"})


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
    for path, endpoint in ((COMPOSER_JS_PATH, composer_script), (PAGE_JS_PATH, page_script),
                           (STYLE_PATH, stylesheet), (AVATAR_PATH, avatar)):
        if not any(getattr(r, "path", None) == path for r in app.router.routes):
            app.add_api_route(path, endpoint, methods=["GET"], include_in_schema=False)
            app.router.routes.insert(0, app.router.routes.pop())  # ahead of Chainlit's "/{full_path:path}"
