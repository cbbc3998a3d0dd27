"""A local OpenAI-compatible server for tests: POST /v1/chat/completions on 127.0.0.1.

Each request takes the next scripted reply (``stub.script(...)``); the real ``openai`` client
talks to it over real HTTP. Replies: a tool call (arguments as raw text, so invalid JSON can be
sent), a text answer, a refusal, an HTTP error, or a delay longer than the client's timeout.
Every request body is kept in ``stub.requests``.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    tool_arguments: str | None = None
    tool_name: str = "set_constraint_spec"
    content: str | None = None
    refusal: str | None = None
    status: int = 200
    delay: float = 0.0
    raw_body: bytes | None = None  # sent as it is (a broken server)
    content_type: str = "application/json"
    usage: dict[str, int] = field(
        default_factory=lambda: {"prompt_tokens": 120, "completion_tokens": 30, "total_tokens": 150}
    )


def tool_call(arguments: str | dict[str, Any], name: str = "set_constraint_spec") -> Reply:
    raw = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return Reply(tool_arguments=raw, tool_name=name)


def text(content: str) -> Reply:
    return Reply(content=content)


def refusal(message: str = "I can't help with that.") -> Reply:
    return Reply(refusal=message)


def slow(seconds: float, reply: Reply | None = None) -> Reply:
    r = reply or text("too late")
    r.delay = seconds
    return r


def http_error(status: int) -> Reply:
    return Reply(status=status)


def raw(body: bytes, content_type: str = "application/json") -> Reply:
    return Reply(raw_body=body, content_type=content_type)


class Stub:
    def __init__(self) -> None:
        self.replies: deque[Reply] = deque()
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.lock = threading.Lock()
        self.base_url = ""

    def script(self, *replies: Reply) -> None:
        with self.lock:
            self.replies.extend(replies)

    def next_reply(self) -> Reply | None:
        with self.lock:
            return self.replies.popleft() if self.replies else None


def _completion(body: dict[str, Any], reply: Reply) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": reply.content}
    finish = "stop"
    if reply.tool_arguments is not None:
        message["tool_calls"] = [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": reply.tool_name, "arguments": reply.tool_arguments},
            }
        ]
        finish = "tool_calls"
    if reply.refusal is not None:
        message["refusal"] = reply.refusal
    return {
        "id": "chatcmpl-stub",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": body.get("model", ""),
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": reply.usage,
    }


def _handler(stub: Stub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length) or b"{}")
            stub.requests.append(body)
            stub.headers.append({k.lower(): v for k, v in self.headers.items()})
            reply = stub.next_reply()
            if self.path != "/v1/chat/completions" or reply is None:
                self._send(500, {"error": {"message": "no scripted reply", "type": "stub"}})
                return
            if reply.delay:
                time.sleep(reply.delay)
            if reply.status != 200:
                self._send(reply.status, {"error": {"message": "stub error", "type": "stub"}})
                return
            if reply.raw_body is not None:
                self._send(200, reply.raw_body, reply.content_type)
                return
            self._send(200, _completion(body, reply))

        def _send(
            self,
            status: int,
            payload: dict[str, Any] | bytes,
            content_type: str = "application/json",
        ) -> None:
            data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (timeout test)

        def log_message(self, format: str, *args: Any) -> None:
            return

    return Handler


@contextmanager
def running_stub() -> Iterator[Stub]:
    stub = Stub()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(stub))
    server.daemon_threads = True
    server.block_on_close = False
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    stub.base_url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    try:
        yield stub
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
