"""The API's import (JSON rows or a CSV body, a dry run) and exports (backlog, history): the
same parsing and service as the pages, all or nothing, members and scopes checked."""

import csv
import io
import json

import pytest

from rooms import services as table_services
from stories import selectors

pytestmark = pytest.mark.django_db(databases="__all__")


def url(t, path: str) -> str:
    return f"/api/v1/teams/{t.slug}/{path}"


def titles(t) -> list[str]:
    return [s.title for s in selectors.story_list(team=t.team)]


def body(response) -> str:
    return b"".join(response.streaming_content).decode()


CSV_BODY = "Key,Title,Link,Estimate\nALP-1,Renamed,https://example.com/1,8\n,New one,,\n"


def test_a_dry_run_reports_every_row_and_writes_nothing(alpha):
    response = alpha.rw.post(
        url(alpha, "stories/import/?dry_run=true"),
        {"stories": [{"title": "X", "external_key": "ALP-2"}, {"title": ""}, {"title": "Y"}]},
        format="json",
    )
    assert response.status_code == 200
    data = response.json()
    assert data["dry_run"] is True
    assert [(r["line"], r["action"]) for r in data["rows"]] == [
        (1, "update"),
        (2, "skip"),
        (3, "create"),
    ]
    assert data["rows"][1]["errors"] == ["The title is missing."]
    assert (data["created"], data["updated"], data["invalid"]) == (1, 1, 1)
    assert titles(alpha) == ["Alpha story 1", "Alpha story 2"]


def test_rows_with_errors_refuse_the_whole_import(alpha):
    response = alpha.rw.post(
        url(alpha, "stories/import/"),
        {"stories": [{"title": "Fine"}, {"title": "Bad link", "url": "nope"}]},
        format="json",
    )
    assert response.status_code == 422
    problem = response.json()
    assert problem["code"] == "invalid_rows"
    assert [r["line"] for r in problem["rows"]] == [2]
    assert "http(s)" in problem["rows"][0]["errors"][0]
    assert titles(alpha) == ["Alpha story 1", "Alpha story 2"]


def test_a_csv_body_imports_in_one_go(alpha):
    response = alpha.rw.post(
        url(alpha, "stories/import/"), CSV_BODY.encode("utf-8-sig"), content_type="text/csv"
    )
    assert response.status_code == 200, response.json()
    data = response.json()
    assert [(r["line"], r["action"]) for r in data["rows"]] == [(2, "updated"), (3, "created")]
    assert all(r["story_id"] for r in data["rows"])
    assert titles(alpha) == ["Renamed", "Alpha story 2", "New one"]
    renamed = selectors.story_list(team=alpha.team).first()
    assert (renamed.url, renamed.estimate) == ("https://example.com/1", "8")


def test_a_csv_body_that_is_not_utf8_or_has_no_title_column_is_refused(alpha):
    latin = alpha.rw.post(
        url(alpha, "stories/import/"), "title\nÜber\n".encode("latin-1"), content_type="text/csv"
    )
    assert latin.status_code == 422
    assert latin.json()["code"] == "bad_encoding"
    headless = alpha.rw.post(url(alpha, "stories/import/"), b"a,b\n1,2\n", content_type="text/csv")
    assert headless.json()["code"] == "no_title_column"
    big = alpha.rw.post(
        url(alpha, "stories/import/"), b"title\n" + b"x" * (1024 * 1024), content_type="text/csv"
    )
    assert big.json()["code"] == "too_large"


def test_importing_needs_the_write_scope_and_a_member(alpha, beta, anonymous):
    rows = {"stories": [{"title": "Sneaky"}]}
    assert alpha.ro.post(url(alpha, "stories/import/"), rows, format="json").status_code == 403
    assert beta.rw.post(url(alpha, "stories/import/"), rows, format="json").status_code == 404
    assert anonymous.post(url(alpha, "stories/import/"), rows, format="json").status_code == 401
    observer = alpha.as_observer.post(url(alpha, "stories/import/"), rows, format="json")
    assert observer.status_code == 403
    assert "Sneaky" not in titles(alpha)


def test_the_backlog_export_round_trips_through_the_import(alpha, beta):
    alpha.rw.post(url(alpha, "stories/import/"), CSV_BODY, content_type="text/csv")
    exported = alpha.ro.get(url(alpha, "stories/export/?as=csv"))
    assert exported.status_code == 200
    assert exported["Content-Type"].startswith("text/csv")
    text = body(exported)
    assert "Beta story" not in text
    document = json.loads(body(alpha.ro.get(url(alpha, "stories/export/"))))
    assert [s["title"] for s in document["stories"]] == titles(alpha)

    # Beta takes Alpha's export: its own two stories, then Alpha's in order.
    beta.rw.post(url(beta, "stories/import/"), text.encode(), content_type="text/csv")
    backlog = [
        (s.external_key, s.title, s.url, s.estimate) for s in selectors.story_list(team=alpha.team)
    ]
    copied = [
        (s.external_key, s.title, s.url, s.estimate) for s in selectors.story_list(team=beta.team)
    ]
    assert copied[2:] == backlog
    # The JSON export again: the keyed stories are there already; a keyless one is new again.
    again = beta.rw.post(
        url(beta, "stories/import/"), {"stories": document["stories"]}, format="json"
    )
    assert [r["action"] for r in again.json()["rows"]] == ["unchanged", "unchanged", "created"]


def test_exports_are_for_members_only(alpha, beta, anonymous):
    for path in ("stories/export/", "rounds/export/?as=csv"):
        assert beta.ro.get(url(alpha, path)).status_code == 404
        assert anonymous.get(url(alpha, path)).status_code == 401
    refused = alpha.ro.get(url(alpha, "stories/export/?as=xml"), HTTP_ACCEPT="text/csv")
    assert refused.status_code == 400
    assert refused.json()["errors"] == {"as": ["Use json or csv."]}


def test_the_history_export_lists_votes_and_searches(alpha):
    lead, voter = alpha.lead, alpha.voter
    for story, values in zip(alpha.stories, (("3", "5"), ("8", "8")), strict=True):
        table_services.round_start(membership=lead, story_id=story.pk)
        table_services.vote_cast(membership=lead, value=values[0])
        table_services.vote_cast(membership=voter, value=values[1])
        table_services.round_reveal(membership=lead)
    document = json.loads(body(alpha.ro.get(url(alpha, "rounds/export/?q=alp-2"))))
    [only] = document["rounds"]
    assert only["story_key"] == "ALP-2"
    assert only["stats"]["consensus"] is True
    assert sorted(v["value"] for v in only["votes"]) == ["8", "8"]
    rows = list(
        csv.DictReader(io.StringIO(body(alpha.ro.get(url(alpha, "rounds/export/?as=csv")))[1:]))
    )
    assert sorted((r["story_key"], r["voter"], r["vote"]) for r in rows) == [
        ("ALP-1", "alpha-lead", "3"),
        ("ALP-1", "alpha-voter", "5"),
        ("ALP-2", "alpha-lead", "8"),
        ("ALP-2", "alpha-voter", "8"),
    ]
