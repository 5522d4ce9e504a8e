from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
# The shared evaluation recordings live beside the checkout (../shared/eval); EVAL_DIR overrides.
EVAL_DIR = Path(os.environ.get("EVAL_DIR") or REPO_ROOT.parent / "shared" / "eval")


def load_manifest() -> list[dict]:
    path = EVAL_DIR / "manifest.jsonl"
    if not path.exists():
        raise RuntimeError(f"evaluation set not found at {EVAL_DIR}; set EVAL_DIR")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="session")
def eval_manifest() -> list[dict]:
    return load_manifest()


@pytest.fixture(scope="session")
def eval_clip(eval_manifest):
    """Look up an evaluation clip by id: returns (absolute path, manifest entry)."""
    by_id = {entry["id"]: entry for entry in eval_manifest}

    def lookup(clip_id: str) -> tuple[Path, dict]:
        entry = by_id[clip_id]
        return EVAL_DIR / entry["file"], entry

    return lookup


@pytest.fixture
def cast(db):
    """The fixed cast for permission tests: an owner, another user and a staff member."""
    from tests.factories import make_user

    class Cast:
        owner = make_user("owner")
        other = make_user("other")
        staff = make_user("staff", staff=True)

    return Cast
