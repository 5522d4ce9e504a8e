"""Settings of the test run: the platform's own, with a fast password hasher.

pytest selects this module (pyproject.toml), and the processes the tests start (Celery
workers, daphne) inherit it through DJANGO_SETTINGS_MODULE, so they check the hashes the
tests wrote. The end-to-end test of ./start_system.sh runs the real settings.
"""

from __future__ import annotations

from sttproject.settings import *  # noqa: F403

# Tests create users by the hundred, and PBKDF2's million iterations cost about 0.6 s a user
# on a small machine: most of what a database test spent in its set-up.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
