"""/status/ is for staff (issue 12, item 8): it lists worker hosts, GPUs, the LLM's address
and Flower's port, and every signed-in user could read it."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(("who", "status"), [("owner", 403), ("other", 403), ("staff", 200)])
def test_only_staff_see_the_status_page(client, cast, who, status):
    client.force_login(getattr(cast, who))
    response = client.get("/status/")
    assert response.status_code == status
    if status == 403:
        assert b"Workers" not in response.content


def test_anonymous_visitors_are_sent_to_sign_in(client):
    response = client.get("/status/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=/status/")


@pytest.mark.parametrize(("who", "shown"), [("owner", False), ("staff", True)])
def test_the_status_link_is_shown_to_staff_only(client, cast, who, shown):
    client.force_login(getattr(cast, who))
    page = client.get("/history/").content.decode()
    assert ('href="/status/"' in page) is shown
