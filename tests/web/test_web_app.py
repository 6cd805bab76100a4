"""The served app through its HTTP interface: logins, roles, CSRF, verdicts with undo and audit, seed
saves as versions, search, feeds, security headers, hostile feed text escaped."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from report_fixtures import RISING_SEED
from sqlalchemy import func, select, update
from web_helpers import PASSWORD, csrf_of, login, web_settings

from narrwatch.context import AppContext
from narrwatch.db.models import (
    AuditEvent,
    Cluster,
    ClusterMember,
    Feed,
    Match,
    NarrativeVersion,
    SeedHead,
    SeedRevision,
    Verdict,
)
from narrwatch.steps.match.seeds import check_narratives
from narrwatch.steps.match.seedstore import export_seeds, import_seeds

pytestmark = pytest.mark.db


def pending_match_ids(ctx: AppContext) -> list[int]:
    with ctx.transaction() as session:
        judged = {(v.article_id, v.narrative_id) for v in session.scalars(select(Verdict))}
        return [
            m.id
            for m in session.scalars(select(Match).order_by(Match.id))
            if (m.article_id, m.narrative_id) not in judged
        ]


def test_anonymous_visitors_are_sent_to_the_login(client: Any) -> None:
    response = client.get("/review", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].startswith("/login?next=%2Freview")


def test_wrong_password_then_rate_limit(client: Any) -> None:
    for _ in range(5):
        assert login(client, "ana", "wrong password!").status_code == 401
    # Blocked now, even with the right password.
    assert login(client, "ana").status_code == 429
    assert login(client, "rita").status_code == 303  # another user is not blocked


def test_login_next_never_leaves_the_site(client: Any) -> None:
    page = client.get("/login")
    response = client.post(
        "/login",
        data={
            "username": "ana",
            "password": PASSWORD,
            "csrf_token": csrf_of(page.text),
            "next": "//evil.test/x",
        },
        follow_redirects=False,
    )
    assert response.status_code == 303 and response.headers["location"] == "/"


def test_login_form_without_csrf_is_refused(client: Any) -> None:
    client.get("/login")
    response = client.post("/login", data={"username": "ana", "password": PASSWORD}, follow_redirects=False)
    assert response.status_code == 403


def test_every_response_carries_the_strict_csp(client: Any) -> None:
    login(client, "ana")
    for path in ("/", "/review", "/static/app.js", "/login", "/nope"):
        headers = client.get(path).headers
        csp = headers["content-security-policy"]
        assert "script-src 'self'" in csp and "default-src 'none'" in csp and "unsafe-inline" not in csp
        assert headers["x-content-type-options"] == "nosniff"


def test_hostile_feed_text_is_escaped_on_every_page(client: Any) -> None:
    login(client, "ana")
    for path in ("/", f"/narratives/{RISING_SEED}", "/review", "/feeds", "/clusters/7", "/search?q=NATO"):
        html = client.get(path).text
        assert "<script>document.title" not in html, path
        assert "<img src=" not in html and "<iframe" not in html and "<svg onload" not in html.lower(), path
        assert 'href="javascript:' not in html and 'href="data:' not in html, path
        # every <script> is the app's own file
        for tag in html.split("<script")[1:]:
            assert tag.lstrip().startswith('src="/static/'), path


def test_the_review_queue_says_why_each_match_matched(client: Any, ctx: AppContext) -> None:
    match_id = pending_match_ids(ctx)[0]
    with ctx.transaction() as session:
        session.execute(
            update(Match)
            .where(Match.id == match_id)
            .values(
                stance="reporting",
                stance_cues="reportedly",
                head_kind="stream",
                head_probability=0.42,
                head_cut=0.35,
            )
        )
    assert login(client, "rita").status_code == 303
    page = client.get("/review").text
    item = page[page.index(f'data-match="{match_id}"') :]
    why = item[item.index('<p class="why">') : item.index("</p>")]
    assert "stance reporting (reportedly)" in why
    assert "the stream head p=0.42 (confirms at 0.35)" in why


def test_reader_reads_but_may_not_judge_or_edit(client: Any, ctx: AppContext) -> None:
    assert login(client, "rita").status_code == 303
    page = client.get("/review")
    assert page.status_code == 200
    token = csrf_of(page.text)
    match_id = pending_match_ids(ctx)[0]
    refused = client.post(
        "/review/verdict", data={"csrf_token": token, "verdict": "confirm", "match_id": match_id}
    )
    assert refused.status_code == 403
    seed_page = client.get(f"/seeds/{RISING_SEED}/edit")
    saved = client.post(
        f"/seeds/{RISING_SEED}/edit",
        data={
            "csrf_token": csrf_of(seed_page.text),
            "title": "hijacked",
            "description": "x",
            "examples": "x",
        },
    )
    assert saved.status_code == 403
    assert client.get("/audit").status_code == 403
    with ctx.transaction() as session:
        assert (
            session.scalar(select(func.count()).select_from(Verdict).where(Verdict.match_id == match_id)) == 0
        )
        head = session.get(SeedHead, RISING_SEED)
        assert head is not None and head.revision == 1


def test_post_without_csrf_token_changes_nothing(client: Any, ctx: AppContext) -> None:
    login(client, "ana")
    match_id = pending_match_ids(ctx)[0]
    with ctx.transaction() as session:
        before = session.scalar(select(func.count()).select_from(Verdict))
    for token in (None, "forged-token"):
        data = {"verdict": "confirm", "match_id": match_id} | ({"csrf_token": token} if token else {})
        assert client.post("/review/verdict", data=data).status_code == 403
    with ctx.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Verdict)) == before


def test_verdicts_batch_undo_and_audit(client: Any, ctx: AppContext) -> None:
    login(client, "ana")
    token = csrf_of(client.get("/review").text)
    first, second, third = pending_match_ids(ctx)[:3]
    response = client.post(
        "/review/verdict",
        data={"csrf_token": token, "verdict": "confirm", "match_id": [first, second]},
        headers={"accept": "application/json"},
    )
    assert response.status_code == 200 and response.json()["matches"] == [first, second]
    client.post("/review/verdict", data={"csrf_token": token, "verdict": "reject", "match_id": third})
    with ctx.transaction() as session:
        verdicts = {v.match_id: v.verdict for v in session.scalars(select(Verdict))}
        assert verdicts[first] == verdicts[second] == "confirm" and verdicts[third] == "reject"
    assert third not in pending_match_ids(ctx)
    undo = client.post("/review/undo", data={"csrf_token": token, "event_id": response.json()["undo"][1]})
    assert undo.status_code in (200, 303)
    assert second in pending_match_ids(ctx) and first not in pending_match_ids(ctx)
    audit = client.get("/audit?action=verdict").text
    assert audit.count("verdict.confirm") == 2 and "verdict.reject" in audit and "verdict.undo" in audit
    assert ">ana<" in audit
    with ctx.transaction() as session:
        users = set(
            session.scalars(select(AuditEvent.username).where(AuditEvent.action.startswith("verdict")))
        )
    assert users == {"ana"}


def test_seed_save_is_a_new_revision_and_version(client: Any, ctx: AppContext) -> None:
    login(client, "ana")
    page = client.get(f"/seeds/{RISING_SEED}/edit")
    with ctx.transaction() as session:
        head = session.get(SeedHead, RISING_SEED)
        assert head is not None
        document = dict(head.document)
    form = {
        "csrf_token": csrf_of(page.text),
        "revision": "1",
        "title": document["title"] + " (edited)",
        "description": document["description"],
        "examples": "\n".join(document["examples"]),
        "negatives": "\n".join(document["negatives"]),
        "keywords": "\n".join(document["keywords"] + ["aggressor*"]),
        "languages": "\n".join(document["languages"]),
        "tags": "\n".join(document["tags"]),
        "status": document["status"],
        "suggest": "0.41",
        "confirm": "0.55",
        "action": "save",
    }
    saved = client.post(f"/seeds/{RISING_SEED}/edit", data=form, follow_redirects=False)
    assert saved.status_code == 303, saved.text
    # A second save from the same (now stale) revision is refused, not silently merged.
    stale = client.post(f"/seeds/{RISING_SEED}/edit", data=form | {"title": "other"}, follow_redirects=False)
    assert stale.status_code == 422 and "changed since you opened it" in stale.text
    bad = client.post(f"/seeds/{RISING_SEED}/edit", data=form | {"revision": "2", "suggest": "0.9"})
    assert bad.status_code == 422 and "suggest" in bad.text
    with ctx.transaction() as session:
        head = session.get(SeedHead, RISING_SEED)
        assert head is not None and head.revision == 2 and head.updated_by == "ana"
        assert head.document["thresholds"] == {"suggest": 0.41, "confirm": 0.55}
        newest = session.scalar(
            select(NarrativeVersion)
            .where(NarrativeVersion.narrative_id == RISING_SEED)
            .order_by(NarrativeVersion.version.desc())
        )
        assert newest is not None and newest.title.endswith("(edited)")
        assert (
            session.scalar(
                select(func.count()).select_from(SeedRevision).where(SeedRevision.narrative_id == RISING_SEED)
            )
            == 2
        )
    editor = client.get(f"/seeds/{RISING_SEED}/edit").text
    assert "revision 2" in editor and f"matching v{newest.version}" in editor
    assert "seed.save" in client.get("/audit").text


def test_export_validate_import_round_trip(client: Any, ctx: AppContext, tmp_path: Path) -> None:
    login(client, "ana")
    page = client.get(f"/seeds/{RISING_SEED}/edit")
    with ctx.transaction() as session:
        head = session.get(SeedHead, RISING_SEED)
        assert head is not None
        document = dict(head.document)
    client.post(
        f"/seeds/{RISING_SEED}/edit",
        data={
            "csrf_token": csrf_of(page.text),
            "revision": "1",
            "title": document["title"],
            "description": document["description"] + " Also: 'quotes', colons: and #hashes.",
            "examples": "\n".join(document["examples"] + ["NATO wants a new base in Serbia: say no!"]),
            "negatives": "\n".join(document["negatives"]),
            "keywords": "\n".join(document["keywords"]),
            "languages": "\n".join(document["languages"]),
            "tags": "\n".join(document["tags"]),
            "status": "active",
        },
    )
    folder = ctx.settings.narratives_dir
    before = {p.name: p.read_text() for p in folder.glob("*.yaml")}
    exported = export_seeds(ctx, folder)
    assert exported.written == [str(folder / f"{RISING_SEED}.yaml")]  # the other files are left as written
    assert all(
        before[name] == (folder / name).read_text() for name in before if name != f"{RISING_SEED}.yaml"
    )
    narratives, problems = check_narratives(folder)
    assert problems == [] and narratives is not None
    assert "NATO wants a new base in Serbia: say no!" in narratives.get(RISING_SEED).examples
    with ctx.transaction() as session:
        revisions_before = session.scalar(select(func.count()).select_from(SeedRevision))
        heads_before = {h.narrative_id: dict(h.document) for h in session.scalars(select(SeedHead))}
    report = import_seeds(ctx, folder, _now(), "import")
    assert report.created == [] and report.updated == [] and report.conflicts == []
    with ctx.transaction() as session:
        assert session.scalar(select(func.count()).select_from(SeedRevision)) == revisions_before
        assert {h.narrative_id: dict(h.document) for h in session.scalars(select(SeedHead))} == heads_before
    text = (folder / f"{RISING_SEED}.yaml").read_text()
    export_seeds(ctx, folder)
    assert (folder / f"{RISING_SEED}.yaml").read_text() == text


def _now() -> Any:
    import datetime as dt

    return dt.datetime(2025, 3, 14, tzinfo=dt.UTC)


def test_file_edit_on_disk_is_imported_unless_the_app_edited_too(
    ctx: AppContext, store: dict[str, Any]
) -> None:
    from narrwatch.steps.match.seedstore import load_seeds, refresh_from_files, save_seed

    folder = ctx.settings.narratives_dir
    import_seeds(ctx, folder, _now(), "import")
    path = folder / "eu-exploits-balkans.yaml"
    path.write_text(path.read_text().replace("title: The EU only uses", "title: The EU merely uses"))
    assert load_seeds(ctx, _now()).get("eu-exploits-balkans").title.startswith("The EU merely uses")
    # Now edited in the app and on disk: the app's text is kept and the conflict reported.
    with ctx.transaction() as session:
        head = session.get(SeedHead, "eu-exploits-balkans")
        assert head is not None
        document, revision = dict(head.document), head.revision
    save_seed(ctx, document | {"title": "Edited in the app"}, "ana", _now(), expected_revision=revision)
    path.write_text(path.read_text().replace("The EU merely uses", "The EU simply uses"))
    report = refresh_from_files(ctx, _now())
    assert len(report.conflicts) == 1 and "edited in the app" in report.conflicts[0]
    assert load_seeds(ctx, _now()).get("eu-exploits-balkans").title == "Edited in the app"


def test_search_finds_words_and_ignores_query_syntax(client: Any) -> None:
    login(client, "rita")
    assert "NATO" in client.get("/search?q=nato").text
    for hostile in ('"', "NEAR(", "a OR", "*", "title:x", "'; DROP TABLE articles; --"):
        assert client.get("/search", params={"q": hostile}).status_code == 200


def test_operator_pauses_a_feed_analyst_may_not(client: Any, ctx: AppContext) -> None:
    login(client, "ana")
    token = csrf_of(client.get("/feeds").text)
    assert client.post("/feeds/alpha-main/pause", data={"csrf_token": token}).status_code == 403
    client.cookies.clear()
    login(client, "otto")
    token = csrf_of(client.get("/feeds").text)
    assert (
        client.post("/feeds/alpha-main/pause", data={"csrf_token": token}, follow_redirects=False).status_code
        == 303
    )
    with ctx.transaction() as session:
        feed = session.get(Feed, "alpha-main")
        assert feed is not None and feed.paused
    assert "paused" in client.get("/feeds").text


def test_proxy_header_is_believed_only_from_trusted_proxies(ctx: AppContext, store: dict[str, Any]) -> None:
    from starlette.testclient import TestClient

    from narrwatch.web.app import create_app

    settings = web_settings(trusted_user_header="X-Forwarded-User", trusted_proxies=["10.9.0.0/16"])
    app = create_app(ctx, settings)
    untrusted = TestClient(app, client=("192.0.2.7", 50000))
    assert (
        untrusted.get("/review", headers={"X-Forwarded-User": "ana"}, follow_redirects=False).status_code
        == 303
    )
    trusted = TestClient(app, client=("10.9.1.2", 50000))
    assert trusted.get("/review", headers={"X-Forwarded-User": "ana"}).status_code == 200
    assert (
        trusted.get("/review", headers={"X-Forwarded-User": "nobody"}, follow_redirects=False).status_code
        == 303
    )


def test_disabled_account_loses_its_session(client: Any, ctx: AppContext) -> None:
    from narrwatch.web.accounts import set_disabled

    login(client, "ana")
    assert client.get("/review").status_code == 200
    set_disabled(ctx, "ana", True, _now())
    assert client.get("/review", follow_redirects=False).status_code == 303


def test_promote_a_cluster_to_a_draft_seed(client: Any, ctx: AppContext) -> None:
    from narrwatch import pipeline

    ctx.settings = ctx.settings.model_copy(update={"embedding_backend": "torch"})
    collection = pipeline.embed(ctx, _now())["collection"]
    # The fixture's cluster has no centroid and names a collection without the model fingerprint.
    with ctx.transaction() as session:
        session.execute(update(Cluster).values(collection=collection, centroid=[0.05] * 384))
        session.execute(update(ClusterMember).values(collection=collection))
    login(client, "rita")
    page = client.get("/clusters/7")
    assert "Promote" not in page.text
    assert client.post("/clusters/7/promote", data={"csrf_token": csrf_of(page.text)}).status_code == 403
    client.cookies.clear()
    login(client, "ana")
    page = client.get("/clusters/7")
    response = client.post(
        "/clusters/7/promote", data={"csrf_token": csrf_of(page.text)}, follow_redirects=False
    )
    assert response.status_code == 303, response.text
    seed_id = response.headers["location"].split("/")[2]
    with ctx.transaction() as session:
        head = session.get(SeedHead, seed_id)
        assert head is not None and head.document["status"] == "draft" and head.updated_by == "ana"
        assert head.document["examples"]
    assert f"seed:{seed_id}" in client.get("/audit?action=seed.promote").text


def test_today_marks_new_and_continuing_flags_new_first(client: Any, ctx: AppContext) -> None:
    from report_fixtures import DAY

    from narrwatch.db.models import RisingFlag

    login(client, "rita")
    with ctx.transaction() as session:
        flags = list(
            session.scalars(select(RisingFlag).where(RisingFlag.day == DAY, RisingFlag.dimension == "all"))
        )
        assert len(flags) >= 2
        flags[0].is_new, flags[0].run_day = False, 3
        flags[1].is_new, flags[1].run_day = True, 1
    page = client.get(f"/day/{DAY}").text
    assert "continuing · day 3" in page and '<span class="badge new">new</span>' in page
    assert page.index('<span class="badge new">new</span>') < page.index("continuing · day 3")


def test_more_like_this_uses_the_vector_sql_keeps(client: Any, ctx: AppContext) -> None:
    """ "More like this" searches with the passage's vector as SQL keeps it: its own point may be gone
    from the store (a reconcile away from coming back) and the page still lists neighbours."""
    from narrwatch.db.models import Article, Passage
    from narrwatch.embeddings.collections import collection_for
    from narrwatch.steps.embed.embed import embed_pending

    embed_pending(ctx, _now())
    with ctx.transaction() as session:
        passage, title = session.execute(
            select(Passage, Article.title)
            .join(Article, Article.id == Passage.article_id)
            .where(Article.title == "Ministers warn NATO is encircling Serbia")
        ).one()
        assert passage.vector is not None
        passage_id, point_id = passage.id, passage.point_id
    ctx.vector_store.delete(collection_for(ctx.encoder), [point_id])
    login(client, "rita")
    page = client.get("/search", params={"like": passage_id})
    assert page.status_code == 200 and "has no vector" not in page.text
    listed = [part.split("</div>", 1)[0] for part in page.text.split('<div class="article-title">')[1:]]
    assert len(listed) >= 3 and not any(title in item for item in listed)
    assert "NATO" in listed[0] or "alliance" in listed[0].lower(), (
        "the nearest neighbour is on the same story"
    )
