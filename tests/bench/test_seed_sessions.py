"""The benchmark's seeded sessions sign their users in, as a login would: the socket's and the
pages' authentication load each user from them."""

from http import HTTPStatus

import pytest
from django.conf import settings
from django.test import Client

from bench.seed import seed

pytestmark = pytest.mark.django_db(databases="__all__")


def test_a_seeded_session_signs_its_user_in():
    seeded = seed(teams=1, members=2, prefix="seedcheck", password="pw-for-tests")
    member = seeded["teams"][0]["members"][0]
    client = Client()
    client.cookies[settings.SESSION_COOKIE_NAME] = member["session"]
    response = client.get("/teams/")
    assert response.status_code == HTTPStatus.OK
    assert response.wsgi_request.user.pk == member["user_id"]
