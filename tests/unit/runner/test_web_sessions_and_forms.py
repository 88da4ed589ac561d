"""The pages' doors: sign in once with a token, a session cookie only the pages get, a CSRF
token on every form, the service's own access rules, and the JSON forms of what pages show."""

from __future__ import annotations

import httpx
import pytest

from jobs.output_checks import CheckResult
from jobs.states import JobState

S = JobState


def _cookie(response: httpx.Response, name: str) -> str:
    found = [c for c in response.headers.get_list("set-cookie") if c.startswith(name + "=")]
    assert found, response.headers
    return found[0]


def test_nobody_signed_in_is_sent_to_sign_in_and_back(web):
    nobody = web.visitor()
    answer = nobody.get("/ui/queue")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/ui/sign-in?next=/ui/queue"
    page = nobody.http.get("/ui/sign-in?next=/ui/queue")
    assert 'name="next" value="/ui/queue"' in page.text
    # Only a page of ours is a place to go back to: no open redirect.
    for target in ("https://evil.example/", "//evil.example/ui/", "/v1/jobs", "/ui//x"):
        page = nobody.http.get("/ui/sign-in", params={"next": target})
        assert 'name="next" value=""' in page.text, target


def test_a_token_becomes_a_session_cookie_for_the_pages_only(web):
    visitor = web.visitor()
    answer = visitor.sign_in(web.world.tokens["olga"])
    assert answer.status_code == 303
    cookie = _cookie(answer, "c2d_session")
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    assert "Path=/ui" in cookie
    assert "Secure" not in cookie  # plain HTTP on localhost: see runner.control.web.sessions
    assert web.world.tokens["olga"] not in cookie
    assert visitor.get("/ui/queue").status_code == 200
    # The JSON API never takes the cookie: it wants the bearer token.
    assert visitor.http.get("/v1/jobs").status_code == 401


def test_behind_https_the_cookie_is_secure(web):
    visitor = web.visitor()
    page = visitor.http.get("/ui/sign-in", headers={"X-Forwarded-Proto": "https"})
    assert "Secure" in _cookie(page, "c2d_signin")
    csrf = page.text.split('name="csrf" value="')[1].split('"')[0]
    # A client keeps a Secure cookie for HTTPS only; here the proxy's side is plain HTTP.
    signin = _cookie(page, "c2d_signin").split(";")[0]
    answer = httpx.post(
        web.url + "/ui/sign-in",
        data={"csrf": csrf, "token": web.world.tokens["olga"]},
        headers={
            "X-Forwarded-Proto": "https",
            "Origin": "https://" + web.url.removeprefix("http://"),
            "Cookie": signin,
        },
    )
    assert answer.status_code == 303, answer.text
    assert "Secure" in _cookie(answer, "c2d_session")


def test_a_wrong_token_or_a_forged_sign_in_opens_no_session(web):
    visitor = web.visitor()
    answer = visitor.sign_in("c2d_not-a-token")
    assert answer.status_code == 401
    assert "not one c2d knows" in answer.text
    assert "c2d_session" not in answer.headers.get("set-cookie", "")
    # Login CSRF: a sign-in form that did not come from our page (no matching cookie).
    forged = httpx.post(
        web.url + "/ui/sign-in", data={"csrf": "0" * 64, "token": web.world.tokens["olga"]}
    )
    assert forged.status_code == 403
    assert "c2d_session" not in forged.headers.get("set-cookie", "")


def test_signing_out_ends_the_session_for_every_copy_of_the_cookie(web):
    visitor = web.visitor("olga")
    stolen = dict(visitor.http.cookies)
    assert visitor.post("/ui/sign-out").status_code == 303
    thief = httpx.Client(base_url=web.url, cookies=stolen)
    assert thief.get("/ui/queue", follow_redirects=False).status_code == 303
    thief.close()


def test_a_form_without_its_csrf_token_changes_nothing(web):
    job = web.world.submit()
    owner = web.visitor("olga")
    size = web.world.control.ledger.size()
    for csrf, headers in [
        ("", {}),
        ("f" * 64, {}),
        # The right token, sent from another site's page:
        (None, {"Origin": "https://evil.example"}),
        (None, {"Sec-Fetch-Site": "cross-site"}),
    ]:
        answer = owner.post(f"/ui/jobs/{job.id}/approve", {"note": "x"}, csrf=csrf, headers=headers)
        assert answer.status_code == 403, (csrf, headers)
        assert "<h1>Not allowed</h1>" in answer.text
    assert web.service.load_job(job.id).state is S.PENDING
    assert web.world.control.ledger.size() == size


def test_approve_reject_and_trust_are_the_services_with_their_ledger_entries(web):
    owner = web.visitor("olga")
    first, second = web.world.submit(), web.world.submit(params={"n": 2})
    owner.get(f"/ui/jobs/{first.id}/review")
    answer = owner.post(f"/ui/jobs/{first.id}/approve", {"note": "reads rows.csv only"})
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/ui/jobs/{first.id}/review?done=approved"
    assert "Approved." in owner.get(answer.headers["location"]).text
    approved = web.service.load_job(first.id)
    assert approved.state is S.APPROVED
    assert (approved.approval.approver, approved.approval.note) == ("olga", "reads rows.csv only")
    assert web.entries(first.id)[-1] == ("job.approved", "olga")
    assert owner.post(f"/ui/jobs/{second.id}/reject", {"reason": "n=2 leaks"}).status_code == 303
    assert web.service.load_job(second.id).reason == "n=2 leaks"
    assert web.entries(second.id)[-1] == ("job.rejected", "olga")
    assert owner.post(f"/ui/jobs/{first.id}/trust", {"any_params": "yes"}).status_code == 303
    [trust] = web.world.control.ledger.entries_for("dataset:ds")[-1:]
    assert (trust.type, trust.body["params_digest"]) == ("dataset.trusted", "any")


def test_the_services_refusals_are_error_pages(web):
    job = web.world.submit()
    owner = web.visitor("olga")
    answer = owner.post(f"/ui/jobs/{job.id}/reject", {"reason": "  "})
    assert answer.status_code == 422
    assert "say why the job is rejected" in answer.text
    answer = owner.post(f"/ui/jobs/{job.id}/approve", {"note": "ok\x1b[2J"})
    assert answer.status_code == 422
    assert "U+001B" in answer.text
    assert web.service.load_job(job.id).state is S.PENDING


def test_a_researcher_gets_403_on_the_review_page_and_cannot_decide(web):
    job = web.world.submit()
    researcher = web.visitor("rita")
    answer = researcher.get(f"/ui/jobs/{job.id}/review")
    assert answer.status_code == 403
    assert "only the owner of dataset" in answer.text
    assert job.code_digest not in answer.text
    answer = researcher.post(f"/ui/jobs/{job.id}/approve", {"note": ""})
    assert answer.status_code == 403
    assert web.service.load_job(job.id).state is S.PENDING
    # Her queue is empty; her own job is on her jobs page.
    assert "Queue (0 to review, 0 to release)" in researcher.get("/ui/queue").text
    assert job.id in researcher.get("/ui/jobs").text


def test_an_owner_of_another_dataset_does_not_see_the_job_at_all(web):
    job = web.world.submit()
    web.service.add_user("otto", "owner")
    _, token = web.service.add_user("oscar", "owner")
    web.world.tokens["oscar"] = token
    other = web.visitor("oscar")
    for path in (f"/ui/jobs/{job.id}/review", f"/ui/jobs/{job.id}", f"/ui/jobs/{job.id}/outputs"):
        assert other.get(path).status_code == 404, path
    assert job.id not in other.get("/ui/queue").text


def test_outputs_wait_for_the_owner_who_releases_or_refuses(web):
    done = web.succeeded({"model.bin": b"\x80\x04weights", "scores.csv": b"a,b\n1,2\n"})
    owner, researcher = web.visitor("olga"), web.visitor("rita")
    queue = owner.get("/ui/queue").text
    assert "Queue (0 to review, 1 to release)" in queue
    assert f"/ui/jobs/{done.id}/outputs" in queue
    # Before release the researcher reads neither the outputs page nor a file.
    assert researcher.get(f"/ui/jobs/{done.id}/outputs").status_code == 409
    assert researcher.get(f"/ui/jobs/{done.id}/files/model.bin").status_code == 409
    page = researcher.get(f"/ui/jobs/{done.id}").text
    assert "scores.csv" not in page
    assert "accuracy" not in page
    # The outputs and the log are on the data host: the page asks it for them and says so,
    # and its script fetches the files' part again until they are here.
    review = owner.get(f"/ui/jobs/{done.id}/outputs").text
    assert "accuracy" in review
    assert "Fetching the outputs from the data host" in review
    assert f'data-live="/ui/jobs/{done.id}/outputs/files"' in review
    assert web.asks.asked == [(done.id, "review"), (done.id, "log")]
    files = owner.get(f"/ui/jobs/{done.id}/outputs/files")
    assert files.headers["x-c2d-live"] == "done"
    assert "<html" not in files.text
    assert "Python pickle" in files.text
    assert "<td>1</td><td>2</td>" in files.text
    assert "trained" in files.text  # the log's end
    review = owner.get(f"/ui/jobs/{done.id}/outputs").text
    assert "Fetching" not in review
    assert "data-live" not in review
    assert web.world.control.review.has(done.outcome.outputs[0].sha256)
    assert not web.world.control.artifacts.has(done.outcome.outputs[0].sha256)
    # Released, the outputs come from the host as soon as it answers; until then a download
    # is a 503 that says to try again.
    web.asks.held = True
    assert owner.post(f"/ui/jobs/{done.id}/release").status_code == 303
    assert web.entries(done.id)[-1] == ("job.released", "olga")
    waiting = researcher.get(f"/ui/jobs/{done.id}/files/model.bin")
    assert waiting.status_code == 503
    assert waiting.headers["retry-after"] == "2"
    assert "still on the data host" in waiting.text
    assert (done.id, "outputs") in web.asks.asked
    web.asks.answer()
    download = researcher.get(f"/ui/jobs/{done.id}/files/model.bin")
    assert download.status_code == 200
    assert download.content == b"\x80\x04weights"
    assert download.headers["content-disposition"] == 'attachment; filename="model.bin"'
    assert "sandbox" in download.headers["content-security-policy"]
    receipt = researcher.get(f"/ui/jobs/{done.id}/receipt.json")
    assert receipt.json()["entries"]

    refused = web.succeeded({"model.bin": b"m"})
    answer = owner.post(f"/ui/jobs/{refused.id}/refuse", {"reason": "memorises rows"})
    assert answer.status_code == 303
    assert web.entries(refused.id)[-1] == ("job.refused", "olga")
    page = researcher.get(f"/ui/jobs/{refused.id}").text
    assert "refused to release the outputs: memorises rows" in page
    assert researcher.get(f"/ui/jobs/{refused.id}/files/model.bin").status_code == 409
    # Refused before anyone looked: the outputs stay on the host, and nobody asks for them.
    asked = len(web.asks.asked)
    files = owner.get(f"/ui/jobs/{refused.id}/outputs/files")
    assert files.headers["x-c2d-live"] == "done"
    assert "on the data host (not shown)" in files.text
    assert [a for a in web.asks.asked[asked:] if a[1] != "log"] == []


def test_the_job_list_and_status_say_when_to_stop_updating(web):
    job = web.world.submit()
    researcher = web.visitor("rita")
    rows = researcher.get("/ui/jobs/rows")
    assert rows.headers["x-c2d-live"] == "more"
    assert job.id in rows.text
    assert "<html" not in rows.text
    web.service.cancel(web.world.users["rita"], job.id, "")
    assert researcher.get("/ui/jobs/rows").headers["x-c2d-live"] == "done"
    status = researcher.get(f"/ui/jobs/{job.id}/status")
    assert status.headers["x-c2d-live"] == "done"
    assert "cancelled" in status.text


def test_pages_forbid_framing_and_foreign_scripts_and_the_api_is_untouched(web):
    owner = web.visitor("olga")
    page = owner.get("/ui/queue")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["cache-control"] == "no-store"
    assert "http" not in page.text.split("<main")[0].replace('lang="en"', "")  # no CDN
    for asset in ("/ui/static/c2d.css", "/ui/static/live.js", "/ui/highlight.css"):
        assert owner.http.get(asset).status_code == 200, asset
    api = owner.http.get("/v1/health")
    assert "content-security-policy" not in api.headers
    assert owner.http.get("/", follow_redirects=False).headers["location"] == "/ui/"


def test_ledger_page_verifies_now_and_names_a_bad_entry(web):
    job = web.world.submit()
    owner = web.visitor("rita")
    page = owner.get(f"/ui/ledger?job={job.id}").text
    assert "job.submitted" in page
    result = owner.post("/ui/ledger/verify")
    assert result.status_code == 200
    assert "ok: " in result.text.split('id="verify-result"')[1]
    # Rewrite one stored entry behind the ledger's back: "verify now" must see it.
    import sqlite3

    conn = sqlite3.connect(web.world.control.settings.db_path)
    conn.execute(
        "UPDATE ledger_entries SET canonical = replace(canonical, 'job.submitted', 'job.submittee')"
        " WHERE subject = ?",
        (job.id,),
    )
    conn.commit()
    conn.close()
    result = owner.post("/ui/ledger/verify").text.split('id="verify-result"')[1]
    assert "does not verify" in result


@pytest.mark.parametrize("who", ["olga", "rita"])
def test_the_json_forms_of_the_queue_previews_and_verification(web, who):
    done = web.succeeded({"scores.csv": b"a,b\n1,2\n"})
    pending = web.world.submit()
    headers = {"Authorization": f"Bearer {web.world.tokens[who]}"}
    queue = httpx.get(web.url + "/v1/queue", headers=headers).json()
    previews = httpx.get(web.url + f"/v1/jobs/{done.id}/previews", headers=headers)
    verified = httpx.get(web.url + "/v1/ledger/verify", headers=headers).json()
    assert verified["ok"] is True
    assert verified["source"] == "server"
    if who == "olga":
        assert [e["job"]["id"] for e in queue] == [done.id, pending.id]
        assert previews.json()[0]["rows"] == [["a", "b"], ["1", "2"]]
    else:
        assert queue == []
        assert previews.status_code == 409


def test_the_job_list_shows_the_newest_jobs_only_and_says_so(web, monkeypatch):
    from runner.control.web import researcher as pages

    monkeypatch.setattr(pages, "LIST_MAX", 2)
    jobs = [web.world.submit(params={"n": n}) for n in range(3)]
    html = web.visitor("rita").get("/ui/jobs").text
    assert "the 2 newest of 3" in html
    assert jobs[0].id not in html
    assert html.index(jobs[2].id) < html.index(jobs[1].id)


def test_previews_before_release_never_come_from_the_released_artifacts(web, monkeypatch):
    from runner.control.api import results

    monkeypatch.setattr(results, "PREVIEW_WAIT_S", 0.3)
    done = web.succeeded({"scores.csv": b"a,b\n1,2\n"})
    # The same bytes in the store of released artifacts (another job released them, say):
    # until release only the copy the host uploads for review counts.
    web.world.control.artifacts.put_bytes(b"a,b\n1,2\n")
    web.asks.held = True
    headers = {"Authorization": f"Bearer {web.world.tokens['olga']}"}
    answer = httpx.get(web.url + f"/v1/jobs/{done.id}/previews", headers=headers)
    assert answer.status_code == 503, answer.text
    assert answer.headers["retry-after"] == "2"
    assert answer.json()["error"]["kind"] == "unavailable"
    assert "still on its data host" in answer.json()["error"]["message"]
    assert web.asks.asked == [(done.id, "review")]
    owner = web.visitor("olga")
    page = owner.get(f"/ui/jobs/{done.id}/outputs").text
    assert "Fetching the outputs from the data host" in page
    assert "<td>1</td><td>2</td>" not in page
    # Asked again only every so often, however often the page and clients come back.
    assert owner.get(f"/ui/jobs/{done.id}/outputs/files").headers["x-c2d-live"] == "more"
    assert web.asks.asked.count((done.id, "review")) == 1
    web.asks.answer()
    answer = httpx.get(web.url + f"/v1/jobs/{done.id}/previews", headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.json()[0]["rows"] == [["a", "b"], ["1", "2"]]
    files = owner.get(f"/ui/jobs/{done.id}/outputs/files")
    assert files.headers["x-c2d-live"] == "done"
    assert "<td>1</td><td>2</td>" in files.text


def test_the_outputs_page_shows_failed_checks_and_release_needs_the_box(web):
    hostile = CheckResult(
        check="metric_names", passed=False, detail="row-like: <script>alert(1)</script>"
    )
    done = web.succeeded({"model.bin": b"m"}, checks=[hostile])
    owner, researcher = web.visitor("olga"), web.visitor("rita")
    assert "row-like" not in researcher.get(f"/ui/jobs/{done.id}").text
    page = owner.get(f"/ui/jobs/{done.id}/outputs").text
    assert "1 of 1 failed" in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script>alert(1)" not in page
    assert 'name="despite_checks" value="yes" required' in page
    refused = owner.post(f"/ui/jobs/{done.id}/release")
    assert refused.status_code == 409
    assert "--despite-checks" in refused.text
    assert web.entries(done.id)[-1][0] == "job.finished"
    assert owner.post(f"/ui/jobs/{done.id}/release", {"despite_checks": "yes"}).status_code == 303
    assert web.entries(done.id)[-1] == ("job.released", "olga")
