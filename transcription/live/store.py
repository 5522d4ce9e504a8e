"""A live session's short-lived state in Redis, behind one pooled client.

- the numbered event log: every event a live client sees carries a ``seq`` taken from one
  counter per session, whoever produced it (the consumer, or a worker after the client
  left), and is kept for a while, so a client that reconnects with ``resume.last_seq``
  gets exactly what it missed;
- utterance audio handed from the consumer to a worker;
- where a stream stopped (``StreamState``), for resuming;
- which connection holds the session (one at a time);
- which interim-text request a worker should still answer (``Request``);
- the decision on an early final (``Decision``), taken once;
- how many live sessions a user holds.

The transcript itself is in PostgreSQL; nothing here must outlive the session.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

import redis
from django.conf import settings
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

LOG_TTL_S = 3600
MAX_EVENTS = 5000
# Interim text is replaced within a second; replaying it after a reconnect is noise.
NOT_LOGGED = {"partial", "status"}
# Short-lived audio handed from the consumer to a worker.
AUDIO_TTL_S = 3600
EARLY_TTL_S = 300
# A session refreshes its entry in its user's set while it lives; one not refreshed for
# this long belongs to a server that died without running disconnect().
SESSION_STALE_S = 120
# A command on a connection that a Redis restart cut is tried again on a new one, for
# about 1.5 s in all: a restart costs the session nothing when it is that quick.
RETRY = Retry(ExponentialBackoff(cap=0.5, base=0.05), 5)

_pools: dict[str, redis.ConnectionPool] = {}
_pools_lock = threading.Lock()


def client() -> redis.Redis:
    """The process's client for ``REDIS_URL``: one connection pool per URL and process
    (redis-py resets a pool that crosses a fork)."""
    url = settings.REDIS_URL
    pool = _pools.get(url)
    if pool is None:
        with _pools_lock:
            pool = _pools.get(url)
            if pool is None:
                pool = redis.ConnectionPool.from_url(
                    url,
                    socket_timeout=5,
                    socket_connect_timeout=5,
                    retry=RETRY,
                    retry_on_error=[redis.ConnectionError],
                )
                _pools[url] = pool
    return redis.Redis(connection_pool=pool)


def _key(session: str, part: str) -> str:
    return f"live:{session}:{part}"


# --- the event log ------------------------------------------------------------------------


def record(session: str, event: dict[str, Any]) -> dict[str, Any]:
    """Number ``event`` and keep it for replay; returns the event with its ``seq``."""
    r = client()
    seq_key, log_key = _key(session, "seq"), _key(session, "events")
    event = {**event, "seq": int(r.incr(seq_key))}
    pipe = r.pipeline()
    if event.get("type") not in NOT_LOGGED:
        pipe.rpush(log_key, json.dumps(event, ensure_ascii=False))
        pipe.ltrim(log_key, -MAX_EVENTS, -1)
    pipe.expire(seq_key, LOG_TTL_S)
    pipe.expire(log_key, LOG_TTL_S)
    pipe.execute()
    return event


# Raises the counter to ARGV[1] unless it is there already.
_AT_LEAST = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if current < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2]) end
return 1
"""


def seq_at_least(session: str, seq: int) -> None:
    """Number the session's next events after ``seq``: a Redis that lost the counter would
    start it again at 1, and a client drops events numbered before those it has."""
    client().eval(_AT_LEAST, 1, _key(session, "seq"), int(seq), LOG_TTL_S)


def replay(session: str, after_seq: int) -> list[dict[str, Any]]:
    events = [json.loads(raw) for raw in client().lrange(_key(session, "events"), 0, -1)]
    return [event for event in events if event.get("seq", 0) > after_seq]


# --- audio for the workers ----------------------------------------------------------------


def put_audio(key: str, data: bytes) -> None:
    client().set(key, data, ex=AUDIO_TTL_S)


def take_audio(key: str) -> bytes | None:
    return client().get(key)


def drop_audio(key: str) -> None:
    client().delete(key)


# --- where a stream stopped ---------------------------------------------------------------


@dataclass(frozen=True)
class StreamState:
    """Where a live stream stopped: its timeline position and next utterance index."""

    position_s: float = 0.0
    next_utterance: int = 0


def save_state(session: str, state: StreamState) -> None:
    data = {"position_s": state.position_s, "next_utterance": state.next_utterance}
    client().set(_key(session, "state"), json.dumps(data), ex=LOG_TTL_S)


def load_state(session: str) -> StreamState:
    return saved_state(session) or StreamState()


def saved_state(session: str) -> StreamState | None:
    """The state a stream saved when it ended; None when Redis has none (it expired, the
    web process died before saving it, or Redis lost its data)."""
    raw = client().get(_key(session, "state"))
    if not raw:
        return None
    data = json.loads(raw)
    return StreamState(float(data.get("position_s", 0.0)), int(data.get("next_utterance", 0)))


# --- the connection holding a session -----------------------------------------------------
# One at a time: a resume from another connection (a reconnect before the server noticed
# the old socket died, a second tab) asks the holder to hand over, so that two consumers
# never write the same recording or timeline.


def session_owner(session: str) -> str | None:
    value = client().get(_key(session, "owner"))
    return value.decode() if value else None


def claim_session(session: str, channel: str) -> None:
    client().set(_key(session, "owner"), channel, ex=LOG_TTL_S)


async def wait_for_handover(session: str, holder: str, timeout_s: float) -> bool:
    """Wait until ``holder`` no longer holds the session; False after ``timeout_s``. Polls
    on the event loop (a thread held for seconds would starve every other connection's
    audio after a restart, when all clients resume at once)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if await asyncio.to_thread(session_owner, session) != holder:
            return True
        await asyncio.sleep(0.05)
    return False


# Renews the hold (1), or takes it back when it is gone (2: a Redis that lost its data):
# a session streaming without a holder would be swept, and a resume would not hand over.
_KEEP = """
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
if holder then return 1 end
return 2
"""


class Hold(StrEnum):
    HELD = "held"
    OTHER = "other"  # another connection holds the session
    LOST = "lost"  # the hold was gone: Redis lost its data (or an hour passed unrenewed)


def hold_session(session: str, channel: str) -> Hold:
    """Renew ``channel``'s hold on the session (while it streams), saying whether it was
    still there."""
    result = int(client().eval(_KEEP, 1, _key(session, "owner"), channel, LOG_TTL_S))
    return (Hold.OTHER, Hold.HELD, Hold.LOST)[result]


def keep_session(session: str, channel: str) -> bool:
    """Renew ``channel``'s hold on the session; False when another connection holds it."""
    return hold_session(session, channel) != Hold.OTHER


def has_state(session: str) -> bool:
    """Whether a stream of the session ended lately (its state is kept for a while)."""
    return bool(client().exists(_key(session, "state")))


_RELEASE = """
local holder = redis.call('GET', KEYS[1])
if not holder then return 1 end
if holder == ARGV[1] then redis.call('DEL', KEYS[1]) return 1 end
return 0
"""


def release_session(session: str, channel: str) -> bool:
    """Let go of the session; False when another connection holds it (nothing changes)."""
    return bool(client().eval(_RELEASE, 1, _key(session, "owner"), channel))


# --- which interim-text request is still wanted -------------------------------------------


@dataclass(frozen=True)
class Request:
    """The newest request of a session that a worker should still answer; older ones are
    stale and skipped. ``partial``: interim text ``n`` of an utterance; ``early``: an early
    final (its text is interim text if the pause was not the end); ``final``: the final of
    the utterance, which makes every request of it stale."""

    kind: Literal["partial", "early", "final"]
    utterance: int
    n: int = 0


def mark_request(session: str, request: Request) -> None:
    pipe = client().pipeline()
    key = _key(session, "request")
    pipe.hset(key, mapping={"kind": request.kind, "utterance": request.utterance, "n": request.n})
    pipe.expire(key, LOG_TTL_S)
    pipe.execute()


def latest_request(session: str) -> Request | None:
    data = client().hgetall(_key(session, "request"))
    if not data:
        return None
    return Request(data[b"kind"].decode(), int(data[b"utterance"]), int(data[b"n"]))  # type: ignore[arg-type]


# Makes the request "final of utterance N" unless the one there is of a later utterance:
# partials of the next utterance may already be on their way (another queue) when a
# worker reaches final N.
_SUPERSEDE = """
local current = tonumber(redis.call('HGET', KEYS[1], 'utterance'))
if current and current > tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'kind', 'final', 'utterance', ARGV[1], 'n', 0)
redis.call('EXPIRE', KEYS[1], ARGV[2])
return 1
"""


def supersede_partials(session: str, index: int) -> bool:
    """Make requests of utterance ``index`` (and earlier) stale, leaving a newer
    utterance's alone; True when the request was set."""
    return bool(client().eval(_SUPERSEDE, 1, _key(session, "request"), index, LOG_TTL_S))


# --- early finals -------------------------------------------------------------------------
# A worker starts on an utterance at a pause, before the silence rule has ended it;
# whoever comes first, the consumer (the pause turned into the end: FINAL, or speech
# resumed: VOID) or the worker tired of waiting (ABANDONED), settles it, once.


class Decision(StrEnum):
    FINAL = "final"
    VOID = "void"
    ABANDONED = "abandoned"


def early_key(session: str, index: int, end: float) -> str:
    return _key(session, f"early:{index}:{round(end * 1000)}")


def settle_early(key: str, decision: Decision) -> Decision:
    """Record ``decision`` unless one is already there; returns the one that stands."""
    r = client()
    if r.set(key, decision.value, nx=True, ex=EARLY_TTL_S):
        pipe = r.pipeline()
        pipe.rpush(key + ":wake", decision.value)
        pipe.expire(key + ":wake", EARLY_TTL_S)
        pipe.execute()
        return decision
    return early_decision(key) or decision


def early_decision(key: str) -> Decision | None:
    """The decision on an early final if there is one yet, without waiting."""
    value = client().get(key)
    return Decision(value.decode()) if value else None


def await_early(key: str, timeout_s: float) -> Decision:
    """The decision on an early final, waiting up to ``timeout_s`` for it; after that the
    worker gives up (ABANDONED) unless a decision slipped in meanwhile."""
    r = client()
    remaining = timeout_s
    while remaining > 0:
        decision = early_decision(key)
        if decision:
            return decision
        started = time.monotonic()
        r.blpop([key + ":wake"], timeout=min(remaining, 1.0))
        remaining -= time.monotonic() - started
    return settle_early(key, Decision.ABANDONED)


# --- live sessions per user ---------------------------------------------------------------


def limit_key(user_id: int) -> str:
    """The set a user's connections count in."""
    return f"live:sessions:user:{user_id}"


def register(key: str, channel: str, limit: int) -> bool:
    """Count ``channel`` in ``key`` unless that makes more than ``limit``; False if refused."""
    r = client()
    now = time.time()
    pipe = r.pipeline()
    pipe.zremrangebyscore(key, 0, now - SESSION_STALE_S)
    pipe.zadd(key, {channel: now})
    pipe.zcard(key)
    pipe.expire(key, 24 * 3600)
    count = pipe.execute()[2]
    if count > limit:
        r.zrem(key, channel)
        return False
    return True


def refresh(key: str, channel: str) -> None:
    client().zadd(key, {channel: time.time()}, xx=True)


def unregister(key: str, channel: str) -> None:
    client().zrem(key, channel)
