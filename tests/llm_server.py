"""A real HTTP server that speaks enough of the OpenAI API to stand in for vLLM.

It listens on 127.0.0.1 on a free port, in a thread, so the client under test
goes through real sockets, real time-outs and real HTTP status codes. Every
chat request is checked the way vLLM would need it (model, roles, temperature,
the JSON schema in ``response_format``) and recorded; problems are collected in
``violations`` for the test to assert on. Answers are scripted: each request
pops the next ``Reply`` from a queue; once the queue is empty, a responder set with
``answer_with`` answers from the text the request carries (for texts a test cannot know
in advance, such as what Whisper wrote on this machine).
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

CATEGORIES = ("인물", "장소", "회사", "기술", "제품", "장비", "서비스", "기타")


@dataclass
class Reply:
    """One scripted answer. Build it with the class methods."""

    status: int = 200
    content: str | None = None
    delay_s: float = 0.0
    expect_text: str | None = None
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def keywords(cls, items: list[dict[str, Any]], *, expect_text: str | None = None) -> Reply:
        """A well-formed answer with these keyword objects (which may still be wrong)."""
        return cls(
            content=json.dumps({"keywords": items}, ensure_ascii=False), expect_text=expect_text
        )

    @classmethod
    def summary(
        cls,
        summary: str,
        action_items: list[str] | None = None,
        decisions: list[str] | None = None,
        *,
        expect_text: str | None = None,
    ) -> Reply:
        """A well-formed summary answer (the summary schema of keywords/summaries.py)."""
        value = {
            "summary": summary,
            "action_items": action_items or [],
            "decisions": decisions or [],
        }
        return cls(content=json.dumps(value, ensure_ascii=False), expect_text=expect_text)

    @classmethod
    def json(cls, value: Any) -> Reply:
        """Valid JSON content of any shape (e.g. one that breaks the schema)."""
        return cls(content=json.dumps(value, ensure_ascii=False))

    @classmethod
    def text(cls, content: str) -> Reply:
        """Raw message content, e.g. prose instead of JSON."""
        return cls(content=content)

    @classmethod
    def error(cls, status: int = 500, *, retry_after: float | None = None) -> Reply:
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        return cls(status=status, headers=headers)

    @classmethod
    def slow(cls, delay_s: float, then: Reply | None = None) -> Reply:
        """Answer only after ``delay_s`` (longer than the client's time-out)."""
        reply = then or cls.keywords([])
        return cls(reply.status, reply.content, delay_s, reply.expect_text, dict(reply.headers))


class FakeLlmServer:
    def __init__(self, model: str = "Qwen/Qwen2.5-7B-Instruct", api_key: str | None = None):
        self.model = model
        self.api_key = api_key
        self.requests: list[dict[str, Any]] = []
        self.violations: list[str] = []
        self.models_calls = 0
        self._replies: deque[Reply] = deque()
        self._responder: Callable[[str], Reply] | None = None
        self._summary_responder: Callable[[str], Reply] | None = None
        self.texts: list[str] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------
    def start(self) -> FakeLlmServer:
        handler = type("Handler", (_Handler,), {"fake": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        # A short poll interval: shutdown() waits for it, once per test.
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes handlers sleeping in a scripted delay
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeLlmServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._httpd is not None, "server not started"
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    # -- scripting and inspection ----------------------------------------------------
    def script(self, *replies: Reply) -> None:
        with self._lock:
            self._replies.extend(replies)

    @property
    def chat_calls(self) -> int:
        with self._lock:
            return len(self.requests)

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._replies)

    def answer_with(self, responder: Callable[[str], Reply]) -> None:
        """Answer requests the script does not cover with ``responder(text)``, where text
        is what the client asked about (the user message after its ``텍스트:`` line)."""
        with self._lock:
            self._responder = responder

    def answer_summaries_with(self, responder: Callable[[str], Reply]) -> None:
        """Like ``answer_with``, for the requests that ask for the summary schema (their text:
        the transcript's segments, one per line); the others still go to ``answer_with``'s."""
        with self._lock:
            self._summary_responder = responder

    @property
    def summary_texts(self) -> list[str]:
        """The texts of the summary requests received, in order."""
        with self._lock:
            return [
                request_text(body) or "" for body in self.requests if schema_name(body) == "summary"
            ]

    def _next_reply(self, body: Any) -> Reply | None:
        text = request_text(body)
        with self._lock:
            if text is not None:
                self.texts.append(text)
            if self._replies:
                return self._replies.popleft()
            responder = self._responder
            if schema_name(body) == "summary" and self._summary_responder is not None:
                responder = self._summary_responder
        return responder(text or "") if responder is not None else None

    def _record(self, body: Any, problems: list[str]) -> None:
        with self._lock:
            self.requests.append(body if isinstance(body, dict) else {"_raw": body})
            self.violations.extend(problems)

    def check_chat_request(
        self, body: Any, headers: dict[str, str], reply: Reply | None
    ) -> list[str]:
        """What is wrong with a chat request, as vLLM's keyword call needs it."""
        problems: list[str] = []
        if not isinstance(body, dict):
            return ["body is not a JSON object"]
        if self.api_key is not None and headers.get("authorization") != f"Bearer {self.api_key}":
            problems.append(f"bad Authorization header: {headers.get('authorization')!r}")
        if body.get("model") != self.model:
            problems.append(f"model {body.get('model')!r} != {self.model!r}")
        if body.get("stream"):
            problems.append("stream requested")
        temperature = body.get("temperature")
        if isinstance(temperature, bool) or temperature != 0:
            problems.append(f"temperature {temperature!r} != 0")
        messages = body.get("messages")
        if not isinstance(messages, list) or len(messages) < 2:
            problems.append("messages is not a list of system + user messages")
        else:
            roles = [m.get("role") if isinstance(m, dict) else None for m in messages]
            if roles[0] != "system" or roles[-1] != "user" or set(roles) - {"system", "user"}:
                problems.append(f"unexpected roles {roles}")
            for message in messages:
                if not isinstance(message, dict) or not isinstance(message.get("content"), str):
                    problems.append("a message has no text content")
                elif not message["content"].strip():
                    problems.append(f"empty {message.get('role')} message")
            user = messages[-1].get("content") if isinstance(messages[-1], dict) else None
            if (
                reply is not None
                and reply.expect_text
                and (not isinstance(user, str) or reply.expect_text not in user)
            ):
                problems.append("the user message does not contain the text")
        problems.extend(_check_response_format(body.get("response_format")))
        return problems


def request_text(body: Any) -> str | None:
    """The text a request asks about: the user message after its ``텍스트:`` line (keywords,
    Korean summaries) or ``Transcript:`` line (summaries in other languages)."""
    try:
        user = body["messages"][-1]["content"]
    except (KeyError, IndexError, TypeError):
        return None
    if not isinstance(user, str):
        return None
    for marker in ("텍스트:\n", "Transcript:\n"):
        _, found, text = user.partition(marker)
        if found:
            return text
    return user


def schema_name(body: Any) -> str | None:
    """``keywords`` or ``summary``: which schema a chat request asks for."""
    try:
        return body["response_format"]["json_schema"]["name"]
    except (KeyError, TypeError):
        return None


def _check_response_format(response_format: Any) -> list[str]:
    if not isinstance(response_format, dict) or response_format.get("type") != "json_schema":
        return [f"response_format is not a json_schema: {response_format!r}"]
    spec = response_format.get("json_schema")
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
        return ["response_format.json_schema has no name"]
    problems = []
    if spec.get("strict") is not True:
        problems.append("response_format.json_schema.strict is not true")
    if spec["name"] == "summary":
        return [*problems, *_check_summary_schema(spec.get("schema"))]
    try:
        schema = spec["schema"]
        keywords = schema["properties"]["keywords"]
        item = keywords["items"]
        properties = item["properties"]
        enum = properties["category"]["enum"]
    except (KeyError, TypeError):
        return [*problems, "schema lacks keywords[].category.enum"]
    if schema.get("type") != "object" or "keywords" not in schema.get("required", []):
        problems.append("schema root is not an object requiring keywords")
    if keywords.get("type") != "array" or not isinstance(keywords.get("maxItems"), int):
        problems.append("keywords is not an array with maxItems")
    if sorted(enum) != sorted(CATEGORIES) or len(enum) != len(CATEGORIES):
        problems.append(f"category enum {enum!r} is not the 8 categories")
    if properties.get("word", {}).get("type") != "string":
        problems.append("word is not a string")
    if properties.get("importance", {}).get("type") != "number":
        problems.append("importance is not a number")
    if set(item.get("required", [])) != {"word", "category", "importance"}:
        problems.append("items do not require word, category and importance")
    return problems


def _check_summary_schema(schema: Any) -> list[str]:
    """The summary schema: an object requiring a bounded summary string and two bounded
    lists of bounded strings, nothing else."""
    try:
        properties = schema["properties"]
        summary = properties["summary"]
        lists = [properties["action_items"], properties["decisions"]]
    except (KeyError, TypeError):
        return ["schema lacks summary, action_items or decisions"]
    problems = []
    if schema.get("type") != "object" or set(schema.get("required", [])) != {
        "summary",
        "action_items",
        "decisions",
    }:
        problems.append("schema root is not an object requiring the three fields")
    if schema.get("additionalProperties") is not False:
        problems.append("schema allows other fields")
    if summary.get("type") != "string" or not isinstance(summary.get("maxLength"), int):
        problems.append("summary is not a bounded string")
    for items in lists:
        item = items.get("items", {})
        if items.get("type") != "array" or not isinstance(items.get("maxItems"), int):
            problems.append("a list is not an array with maxItems")
        if item.get("type") != "string" or not isinstance(item.get("maxLength"), int):
            problems.append("list items are not bounded strings")
    return problems


class _Handler(BaseHTTPRequestHandler):
    fake: FakeLlmServer
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; with Nagle on, the body waits ~40 ms for an ACK.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep pytest output clean

    def do_GET(self) -> None:
        if self.path.rstrip("/") == "/v1/models":
            with self.fake._lock:
                self.fake.models_calls += 1
            data = [{"id": self.fake.model, "object": "model", "owned_by": "test"}]
            self._send(200, {"object": "list", "data": data})
        else:
            self._send(404, {"object": "error", "message": f"no route {self.path}"})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        if self.path.rstrip("/") != "/v1/chat/completions":
            with self.fake._lock:
                self.fake.violations.append(f"POST to unexpected path {self.path}")
            self._send(404, {"object": "error", "message": f"no route {self.path}"})
            return
        try:
            body = json.loads(raw)
        except ValueError:
            body = raw.decode("utf-8", "replace")
        reply = self.fake._next_reply(body)
        headers = {k.lower(): v for k, v in self.headers.items()}
        problems = self.fake.check_chat_request(body, headers, reply)
        if reply is None:
            problems.append("chat request with no scripted reply left")
            reply = Reply.error(500)
        self.fake._record(body, problems)
        if reply.delay_s and self.fake._stopping.wait(reply.delay_s):
            return
        if reply.status != 200:
            message = {"object": "error", "message": "scripted failure", "code": reply.status}
            self._send(reply.status, message, reply.headers)
            return
        model = body.get("model") if isinstance(body, dict) else None
        self._send(
            200,
            {
                "id": f"chatcmpl-test-{self.fake.chat_calls}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model or self.fake.model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": reply.content},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
            },
            reply.headers,
        )

    def _send(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload, ensure_ascii=False).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (time-out); that is the point of a slow reply
