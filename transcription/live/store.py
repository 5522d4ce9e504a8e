"""The numbered event log of a live session, in Redis.

Every event a live client sees carries a ``seq`` taken from one Redis counter per
session, whoever produced it (the consumer, or a worker after the client left),
and is appended to the session's log, so a client that reconnects with
``resume.last_seq`` gets exactly what it missed. The log is short-lived; the
transcript itself is in PostgreSQL.
"""

from __future__ import annotations

import json
import time
from typing import Any

import redis
from django.conf import settings

LOG_TTL_S = 3600
MAX_EVENTS = 5000
# Interim text is replaced within a second; replaying it after a reconnect is noise.
NOT_LOGGED = {"partial", "status"}


def _client() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=5, socket_connect_timeout=5)


def _keys(session: str) -> tuple[str, str]:
    return f"live:{session}:seq", f"live:{session}:events"


def record(
    session: str, event: dict[str, Any], client: redis.Redis | None = None
) -> dict[str, Any]:
    """Number ``event`` and keep it for replay; returns the event with its ``seq``."""
    client = client or _client()
    seq_key, log_key = _keys(session)
    seq = int(client.incr(seq_key))
    event = {**event, "seq": seq}
    pipe = client.pipeline()
    if event.get("type") not in NOT_LOGGED:
        pipe.rpush(log_key, json.dumps(event, ensure_ascii=False))
        pipe.ltrim(log_key, -MAX_EVENTS, -1)
    pipe.expire(seq_key, LOG_TTL_S)
    pipe.expire(log_key, LOG_TTL_S)
    pipe.execute()
    return event


def replay(session: str, after_seq: int, client: redis.Redis | None = None) -> list[dict[str, Any]]:
    client = client or _client()
    _seq_key, log_key = _keys(session)
    events = [json.loads(raw) for raw in client.lrange(log_key, 0, -1)]
    return [event for event in events if event.get("seq", 0) > after_seq]


def last_seq(session: str, client: redis.Redis | None = None) -> int:
    client = client or _client()
    value = client.get(_keys(session)[0])
    return int(value) if value else 0


# Short-lived audio handed from the consumer to a worker.
AUDIO_TTL_S = 3600


def put_audio(key: str, data: bytes, client: redis.Redis | None = None) -> None:
    (client or _client()).set(key, data, ex=AUDIO_TTL_S)


def take_audio(key: str, client: redis.Redis | None = None) -> bytes | None:
    return (client or _client()).get(key)


def drop_audio(key: str, client: redis.Redis | None = None) -> None:
    (client or _client()).delete(key)


def save_state(session: str, state: dict[str, Any], client: redis.Redis | None = None) -> None:
    """Where a live stream stopped (timeline position, next utterance index), for resuming."""
    (client or _client()).set(f"live:{session}:state", json.dumps(state), ex=LOG_TTL_S)


def load_state(session: str, client: redis.Redis | None = None) -> dict[str, Any]:
    raw = (client or _client()).get(f"live:{session}:state")
    return json.loads(raw) if raw else {}


# The connection streaming a session: one at a time. A resume from another connection (a
# reconnect before the server noticed the old socket died, a second tab) asks the holder to
# hand over, so that two consumers never write the same recording or timeline.
def _owner_key(session: str) -> str:
    return f"live:{session}:owner"


def session_owner(session: str, client: redis.Redis | None = None) -> str | None:
    value = (client or _client()).get(_owner_key(session))
    return value.decode() if value else None


def claim_session(session: str, channel: str, client: redis.Redis | None = None) -> None:
    (client or _client()).set(_owner_key(session), channel, ex=LOG_TTL_S)


_RELEASE = """
local holder = redis.call('GET', KEYS[1])
if not holder then return 1 end
if holder == ARGV[1] then redis.call('DEL', KEYS[1]) return 1 end
return 0
"""


def release_session(session: str, channel: str, client: redis.Redis | None = None) -> bool:
    """Let go of the session; False when another connection holds it (nothing changes)."""
    return bool((client or _client()).eval(_RELEASE, 1, _owner_key(session), channel))


def mark_latest_partial(session: str, token: str, client: redis.Redis | None = None) -> None:
    """The partial request a worker should still answer; older ones are stale and skipped."""
    (client or _client()).set(f"live:{session}:partial", token, ex=LOG_TTL_S)


# Sets the token to "final:N" unless the one there is for a later utterance: partials of the
# next utterance may already be on their way (another queue) when a worker reaches final N.
_SUPERSEDE = """
local current = redis.call('GET', KEYS[1])
if current then
  local n = tonumber(string.match(current, '^(%d+):') or string.match(current, ':(%d+)$'))
  if n and n > tonumber(ARGV[1]) then return 0 end
end
redis.call('SET', KEYS[1], 'final:' .. ARGV[1], 'EX', ARGV[2])
return 1
"""


def supersede_partials(session: str, index: int, client: redis.Redis | None = None) -> bool:
    """Make partial requests of utterance ``index`` (and earlier) stale, leaving a newer
    utterance's alone; True when the token was set."""
    key = f"live:{session}:partial"
    return bool((client or _client()).eval(_SUPERSEDE, 1, key, index, LOG_TTL_S))


def latest_partial(session: str, client: redis.Redis | None = None) -> str | None:
    value = (client or _client()).get(f"live:{session}:partial")
    return value.decode() if value else None


# Early finals: a worker starts on an utterance at a pause, before the silence rule has
# ended it; whoever comes first, the consumer (the pause turned into the end: "final", or
# speech resumed: "void") or the worker tired of waiting ("abandoned"), settles it, once.
EARLY_TTL_S = 300
FINAL, VOID, ABANDONED = "final", "void", "abandoned"


def early_key(session: str, index: int, end: float) -> str:
    return f"live:{session}:early:{index}:{round(end * 1000)}"


def settle_early(key: str, decision: str, client: redis.Redis | None = None) -> str:
    """Record ``decision`` unless one is already there; returns the one that stands."""
    client = client or _client()
    if client.set(key, decision, nx=True, ex=EARLY_TTL_S):
        client.rpush(key + ":wake", decision)
        client.expire(key + ":wake", EARLY_TTL_S)
        return decision
    value = client.get(key)
    return value.decode() if value else decision


def early_decision(key: str, client: redis.Redis | None = None) -> str | None:
    """The decision on an early final if there is one yet, without waiting."""
    value = (client or _client()).get(key)
    return value.decode() if value else None


def await_early(key: str, timeout_s: float, client: redis.Redis | None = None) -> str:
    """The decision on an early final, waiting up to ``timeout_s`` for it; after that the
    worker gives up (``abandoned``) unless a decision slipped in meanwhile."""
    client = client or _client()
    remaining = timeout_s
    while remaining > 0:
        decision = early_decision(key, client)
        if decision:
            return decision
        started = time.monotonic()
        client.blpop([key + ":wake"], timeout=min(remaining, 1.0))
        remaining -= time.monotonic() - started
    return settle_early(key, ABANDONED, client)
