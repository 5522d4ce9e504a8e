"""Programs on /ws: the API token on the handshake, one-time tickets for browser programs
(sttproject/wsauth.py; the ticket endpoint is in test_ws_ticket_api.py). The real server end
to end is in test_ws_auth_server.py (slow).

The attacks these guard against: a long-lived token put in a URL (kept by proxies, logs and
history) being accepted; a bad token passing on the strength of a cookie sent with it (from
a foreign page, too); a ticket used twice, or after it expired; one user's token resuming
another's live session.
"""

from __future__ import annotations

import asyncio
import json

import pytest
from channels.testing import WebsocketCommunicator

from sttproject.asgi import application
from tests.conftest import session_cookie_header
from tests.live.ws import ORIGIN, receive_until, start
from tests.web.test_ws_ticket_api import Person
from transcription.models import Transcript
from transcription.web import tickets

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("media", "no_leftover_sessions"),
]

HOST = (b"host", b"localhost")
FOREIGN = (b"origin", b"http://evil.example")


@pytest.fixture
def alice(transactional_db) -> Person:
    return Person("alice")


@pytest.fixture
def bob(transactional_db) -> Person:
    return Person("bob")


@pytest.fixture
def no_leftover_sessions(settings):
    import redis

    client = redis.Redis.from_url(settings.REDIS_URL)
    for key in client.scan_iter(match="live:sessions:*"):
        client.delete(key)


async def opened(path: str = "/ws", headers=()) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(application, path, headers=[HOST, *headers])
    connected, _ = await communicator.connect(timeout=10)
    assert connected
    return communicator


async def refusal(path: str = "/ws", headers=()) -> dict:
    """The error event of a refused handshake; the socket is then closed with 4401."""
    communicator = await opened(path, headers)
    event = json.loads(await communicator.receive_from(timeout=10))
    assert await communicator.receive_output(timeout=5) == {
        "type": "websocket.close",
        "code": 4401,
    }
    await communicator.disconnect()
    assert event["type"] == "error" and event["code"] == "unauthorized", event
    return event


async def session_owner(path: str = "/ws", headers=()) -> str:
    """Open a socket, start a session; the username of the transcript it made."""
    communicator = await opened(path, headers)
    ready = await start(communicator)
    await communicator.disconnect()
    transcript = await Transcript.objects.select_related("owner").aget(pk=ready["session"])
    return transcript.owner.username


def ticket_for(person: Person, **kwargs) -> str:
    return tickets.issue(person.user, **kwargs)


# --- the API token on the handshake ---------------------------------------------------------


@pytest.mark.parametrize("scheme", ["Token", "Bearer", "bearer"])
async def test_a_program_opens_the_socket_with_its_token(alice, scheme):
    assert await session_owner(headers=[alice.header(scheme)]) == "alice"


async def test_the_token_says_who_it_is_whatever_cookie_comes_with_it(alice, bob):
    cookie = await asyncio.to_thread(session_cookie_header, bob.user)
    assert await session_owner(headers=[*ORIGIN, cookie, alice.header()]) == "alice"


async def test_a_bad_token_is_refused_even_with_a_good_cookie(alice):
    cookie = await asyncio.to_thread(session_cookie_header, alice.user)
    event = await refusal(headers=[(b"authorization", b"Token not-a-token")])
    assert event["message"] == "invalid token"
    await refusal(headers=[*ORIGIN, cookie, (b"authorization", b"Bearer not-a-token")])


async def test_an_inactive_users_token_is_refused(alice):
    alice.user.is_active = False
    await alice.user.asave(update_fields=["is_active"])
    await refusal(headers=[alice.header()])


async def test_no_credentials_are_refused():
    event = await refusal()
    assert event["message"] == "sign in first"  # the consumer's own answer


async def test_a_token_header_without_a_key_is_a_bad_token(alice):
    cookie = await asyncio.to_thread(session_cookie_header, alice.user)
    for header in (b"Token", b"Bearer  "):
        event = await refusal(headers=[*ORIGIN, cookie, (b"authorization", header)])
        assert event["message"] == "invalid token"


async def test_basic_auth_is_no_token_and_leaves_the_cookie_to_the_origin_check(alice):
    # A browser sends Basic credentials of a password-protected proxy by itself: ambient,
    # like the cookie, so they neither authenticate nor let a foreign page in.
    cookie = await asyncio.to_thread(session_cookie_header, alice.user)
    basic = (b"authorization", b"Basic YWxpY2U6c2VjcmV0")
    assert await session_owner(headers=[*ORIGIN, cookie, basic]) == "alice"
    communicator = WebsocketCommunicator(application, "/ws", headers=[HOST, FOREIGN, cookie, basic])
    connected, _ = await communicator.connect(timeout=10)
    await communicator.disconnect()
    assert not connected


async def test_a_token_is_let_in_from_any_origin(alice):
    # Not ambient authority: a page that sends it already holds it (sttproject/wsauth.py).
    assert await session_owner(headers=[FOREIGN, alice.header()]) == "alice"


async def test_a_foreign_page_gets_nothing_from_a_bad_token_and_the_cookie(alice):
    cookie = await asyncio.to_thread(session_cookie_header, alice.user)
    await refusal(headers=[FOREIGN, cookie, (b"authorization", b"Token guessed")])


async def test_the_api_token_is_never_accepted_in_the_url(alice):
    cookie = await asyncio.to_thread(session_cookie_header, alice.user)
    for query in ("token", "access_token", "api_key", "key", "Token"):
        event = await refusal(f"/ws?{query}={alice.token}")
        assert "never accepted in the URL" in event["message"]
    # Not even beside a good cookie: the mistake shows the first time it is made.
    await refusal(f"/ws?token={alice.token}", headers=[*ORIGIN, cookie])
    await refusal(f"/ws/transcripts/00000000-0000-0000-0000-000000000000/?token={alice.token}")
    # Nor as a ticket.
    event = await refusal(f"/ws?ticket={alice.token}")
    assert "invalid ticket" in event["message"]


async def test_one_users_token_cannot_resume_anothers_session(alice, bob):
    communicator = await opened(headers=[alice.header()])
    ready = await start(communicator)
    await communicator.disconnect()
    resume = {"type": "start", "resume": {"session": ready["session"], "last_seq": ready["seq"]}}

    intruder = await opened(headers=[bob.header()])
    await intruder.send_json_to(resume)
    event = json.loads(await intruder.receive_from(timeout=10))
    assert event["type"] == "error" and event["code"] == "unknown_session", event
    await intruder.disconnect()

    owner = await opened(headers=[alice.header()])
    await owner.send_json_to(resume)
    events = await receive_until(owner, lambda e: e["type"] in ("ready", "error"), timeout=15)
    assert events[-1]["type"] == "ready" and events[-1]["resumed"] is True, events
    await owner.disconnect()


async def test_a_token_watches_its_own_transcripts_only(alice, bob):
    from tests.factories import make_transcript

    transcript = await asyncio.to_thread(make_transcript, alice.user)
    path = f"/ws/transcripts/{transcript.pk}/"
    mine = WebsocketCommunicator(application, path, headers=[HOST, alice.header("Bearer")])
    assert (await mine.connect(timeout=10))[0]
    await mine.disconnect()
    theirs = WebsocketCommunicator(application, path, headers=[HOST, bob.header()])
    assert await theirs.connect(timeout=10) == (False, 4404)


# --- tickets ----------------------------------------------------------------------------------


async def test_a_ticket_opens_one_socket_once(alice):
    ticket = await asyncio.to_thread(ticket_for, alice)
    assert await session_owner(f"/ws?ticket={ticket}") == "alice"
    event = await refusal(f"/ws?ticket={ticket}")
    assert event["message"] == "invalid ticket: unknown, expired or already used"


async def test_a_ticket_is_its_users_identity(alice, bob):
    first, second = [await asyncio.to_thread(ticket_for, p) for p in (alice, bob)]
    # A cookie of someone else beside it changes nothing.
    cookie = await asyncio.to_thread(session_cookie_header, bob.user)
    assert await session_owner(f"/ws?ticket={first}", headers=[*ORIGIN, cookie]) == "alice"
    assert await session_owner(f"/ws?ticket={second}") == "bob"


async def test_an_expired_ticket_is_refused(alice):
    ticket = await asyncio.to_thread(ticket_for, alice, ttl_s=1)
    await asyncio.sleep(1.5)
    await refusal(f"/ws?ticket={ticket}")


async def test_a_ticket_works_from_another_origin_and_on_the_progress_socket(alice):
    from tests.factories import make_transcript

    ticket = await asyncio.to_thread(ticket_for, alice)
    assert await session_owner(f"/ws?ticket={ticket}", headers=[FOREIGN]) == "alice"
    transcript = await asyncio.to_thread(make_transcript, alice.user)
    ticket = await asyncio.to_thread(ticket_for, alice)
    path = f"/ws/transcripts/{transcript.pk}/?ticket={ticket}"
    communicator = WebsocketCommunicator(application, path, headers=[HOST])
    assert (await communicator.connect(timeout=10))[0]
    await communicator.disconnect()


async def test_two_tickets_in_one_url_are_refused(alice):
    one, two = [await asyncio.to_thread(ticket_for, alice) for _ in range(2)]
    await refusal(f"/ws?ticket={one}&ticket={two}")
