"""A local replica of OpenAI's `POST /v1/audio/transcriptions` (multipart upload, JSON answer).

Point OPENAI_BASE_URL at `fake.base_url`. Each upload is recorded (model, file name, bytes, auth header) so a
test can prove the real file went out; `text` is what every transcription returns; `fault` replaces the
answer (an OpenAI-shaped error, a delay). Error bodies use OpenAI's `{"error": {"message", "type", ...}}`.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.parser import BytesParser
from email.policy import HTTP

from tests.fakes.web import FakeWeb, Reply, Request


@dataclass
class Upload:
    model: str
    file_name: str
    content: bytes
    authorization: str
    response_format: str


class FakeOpenAIAudio(FakeWeb):
    def __init__(self, text: str = "", *, key: str = "sk-test-audio-key-000000") -> None:
        super().__init__()
        self.text = text
        self.key = key
        self.uploads: list[Upload] = []
        self.fault: Reply | None = None

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def handle(self, request: Request) -> Reply:
        if request.path != "/v1/audio/transcriptions" or request.method != "POST":
            return Reply(404, {"error": {"message": f"Invalid URL ({request.method} {request.path})", "type": "invalid_request_error"}})
        if request.headers.get("authorization") != f"Bearer {self.key}":
            return Reply(
                401,
                {"error": {"message": "Incorrect API key provided.", "type": "invalid_request_error", "param": None, "code": "invalid_api_key"}},
            )
        fields = _multipart(request)
        upload = Upload(
            model=fields.get("model", (None, b""))[1].decode(),
            file_name=fields.get("file", ("", b""))[0] or "",
            content=fields.get("file", ("", b""))[1],
            authorization=request.headers.get("authorization", ""),
            response_format=fields.get("response_format", (None, b"json"))[1].decode(),
        )
        self.uploads.append(upload)
        if self.fault is not None:
            return self.fault
        if not upload.content:
            return Reply(400, {"error": {"message": "The audio file is empty.", "type": "invalid_request_error", "param": "file", "code": None}})
        return Reply(200, {"text": self.text, "usage": {"type": "duration", "seconds": 3}})


def _multipart(request: Request) -> dict[str, tuple[str | None, bytes]]:
    """Form fields of a multipart/form-data body: name -> (filename, content)."""
    head = f"Content-Type: {request.headers.get('content-type', '')}\r\n\r\n".encode()
    message = BytesParser(policy=HTTP).parsebytes(head + request.body)
    fields: dict[str, tuple[str | None, bytes]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        filename = part.get_param("filename", header="content-disposition")
        fields[str(name)] = (str(filename) if filename else None, part.get_payload(decode=True) or b"")
    return fields
