"""A worklist longer than a page is read a page at a time: every waiting stay reachable, none twice, filters kept."""

from __future__ import annotations

import re

import pytest

from conftest import make_record
from ur_service import web

# Pended for want of every vital sign and laboratory result: nothing in the record decides a level.
WAITING = 23


@pytest.fixture()
def waiting(app, client, monkeypatch):
    monkeypatch.setattr(web, "WORKLIST_PAGE", 10)
    for n in range(WAITING):
        record = make_record(id=f"stay-{n:03d}", observations=[])
        urgency = "expedited" if n % 3 == 0 else "standard"
        res = client.post(f"/v1/reviews?urgency={urgency}", json=record,
                          headers={"Authorization": f"Bearer {app.config['TEST_KEYS']['reviewer']}"})
        assert res.status_code == 200 and res.get_json()["outcome"] == "pend"
    web_client = app.test_client()
    web_client.set_cookie("ur_key", app.config["TEST_KEYS"]["reviewer"])
    return web_client


def _page(web_client, url: str) -> tuple[list[str], str | None, str]:
    html = web_client.get(url).get_data(as_text=True)
    stays = re.findall(r'<td data-label="Stay"><a href="[^"]+">([^<]+)</a>', html)
    following = re.search(r'<a rel="next" href="([^"]+)"', html)
    return stays, following.group(1).replace("&amp;", "&") if following else None, html


def test_every_waiting_stay_is_reached_page_by_page_in_due_order(waiting):
    seen, url, pages = [], "/ui/worklist", 0
    while url:
        stays, url, html = _page(waiting, url)
        pages += 1
        assert len(stays) == (10 if url else WAITING - 20)
        seen += stays
        if pages > 1:
            assert 'rel="prev"' in html
    assert pages == 3
    assert len(seen) == len(set(seen)) == WAITING
    expedited = [f"stay-{n:03d}" for n in range(WAITING) if n % 3 == 0]
    assert seen[:len(expedited)] == expedited  # due in 72 h, before the standard 7 days


def test_the_filters_are_kept_from_page_to_page(waiting):
    seen, url = [], "/ui/worklist?urgency=standard&supported=none"
    while url:
        stays, url, _ = _page(waiting, url)
        if url:
            assert "urgency=standard" in url and "supported=none" in url
        seen += stays
    assert sorted(seen) == [f"stay-{n:03d}" for n in range(WAITING) if n % 3]


def test_a_page_past_the_end_says_nothing_waits_there_and_links_back(waiting):
    stays, following, html = _page(waiting, "/ui/worklist?page=9")
    assert stays == [] and following is None
    assert "on this page" in html and 'rel="prev"' in html
    assert _page(waiting, "/ui/worklist?page=abc")[0][:1] == ["stay-000"]  # a page that is not a number: the first
