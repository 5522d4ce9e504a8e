"""The README's Python client for /ws (Live protocol, "Programs on /ws"), run as it is
written: taken out of README.md, saved as a file and run in a process of its own with only
an API token, against the real web server and real workers."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

import pytest
from rest_framework.authtoken.models import Token

from tests.audio_files import write_wav
from tests.celery_workers import running_worker
from tests.conftest import REPO_ROOT
from tests.factories import make_user
from tests.servers import running_web
from transcription.models import Segment, Transcript
from transcription.speech.audio import decode_audio

MARKER = "# ws_client.py"
# No recording under the repository's var/: the web process is not the test's.
WEB_ENV = {"LIVE_KEEP_AUDIO": "false"}


def readme_client() -> str:
    """The python block of README.md that starts with ``# ws_client.py``."""
    blocks = re.findall(
        r"^```python\n(.*?)^```", (REPO_ROOT / "README.md").read_text(), re.S | re.M
    )
    found = [block for block in blocks if block.startswith(MARKER)]
    assert len(found) == 1, f"README.md needs one python block starting with {MARKER!r}"
    return found[0]


def test_the_readme_client_is_there_and_needs_only_websockets():
    source = readme_client()
    compile(source, "ws_client.py", "exec")
    imported = set(re.findall(r"^(?:from|import) (\w+)", source, re.M))
    assert imported <= {"argparse", "asyncio", "json", "os", "ssl", "sys", "wave", "websockets"}
    assert "additional_headers=headers" in source and '"Authorization": f"Token' in source


@pytest.fixture(scope="module")
def workers(django_db_blocker, django_db_setup):
    with (
        django_db_blocker.unblock(),
        running_worker("stt"),
        running_worker("keywords", extra_env={"KEYWORD_BACKEND": "embedded"}),
    ):
        yield


@pytest.mark.slow
def test_the_readme_client_streams_a_recording_with_its_token(
    workers, eval_clip, tmp_path, transactional_db
):
    user = make_user("program")
    token = Token.objects.create(user=user).key
    path, _entry = eval_clip("ko_zeroth_104_003_0253")
    wav = write_wav(tmp_path / "talk.wav", decode_audio(path))
    client = tmp_path / "ws_client.py"
    client.write_text(readme_client())

    with running_web(WEB_ENV) as url:
        # Its own folder, a bare environment: nothing of the project, no cookie, the token.
        env = {"PATH": os.environ["PATH"], "PYTHONIOENCODING": "utf-8", "STT_TOKEN": token}
        # At real-time pace, as it runs by default.
        command = [sys.executable, str(client), str(wav), "--url", f"ws{url[4:]}/ws"]
        result = subprocess.run(
            command, cwd=tmp_path, env=env, capture_output=True, encoding="utf-8", timeout=300
        )
        assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"

        lines = result.stdout.splitlines()
        assert lines[0].startswith("ready "), lines
        session = lines[0].split()[1]
        # Everything came before stopped, the last line it printed.
        assert lines[-1].startswith("stopped after "), lines
        finals = [line.split(" ", 2) for line in lines if line.startswith("final ")]
        said = [parts[2] for parts in finals if len(parts) == 3 and parts[2]]
        stored = list(
            Segment.objects.filter(transcript_id=session)
            .order_by("index")
            .values_list("text", flat=True)
        )
        assert stored, result.stdout
        assert said == stored, result.stdout
        # The keywords of every final with text come before stopped too.
        assert sum(line.startswith("keywords") for line in lines) == len(stored), lines
        transcript = Transcript.objects.get(pk=session)
        assert transcript.owner == user

        # Let the session's last task finish before the database is flushed.
        deadline = time.monotonic() + 30
        while transcript.status == Transcript.Status.RUNNING and time.monotonic() < deadline:
            time.sleep(0.2)
            transcript.refresh_from_db()
        assert transcript.status == Transcript.Status.DONE
