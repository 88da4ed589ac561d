"""The data owner's review queue and a researcher's jobs, in a real Chromium.

Against the shared running stack (`c2d server` and the local data host's agent running real
containers), Playwright drives Debian's Chromium as two people: the owner signs in with her
token, opens her queue, reads the job's dry run and code diff, approves it; the job runs; she
reads its outputs, which the page fetches from the data host, and releases them; the
researcher, whose job list follows the states live, downloads the model from the page and it
loads, and the receipt she downloads verifies offline. Then the doors: the researcher gets a
403 page on the owner's review page, and a form posted without its CSRF token, or from another
site, changes nothing. The queue and the review page are saved as screenshots under
build/screenshots (the README shows two of them).
"""

from __future__ import annotations

import hashlib
import re
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import skops.io

from tests.kit.installation import REPO

if TYPE_CHECKING:
    from tests.kit.installation import Installation

pytestmark = [pytest.mark.docker, pytest.mark.redis, pytest.mark.slow, pytest.mark.browser]

SHOTS = REPO / "build" / "screenshots"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
NOTE = "reads patients.csv, writes the model and its metrics only"
HOST_MS = 60_000  # how long a page may wait for the data host to upload what it asked for


def wait_until(what: str, probe: Callable[[], Any], stack: Installation, timeout: float = 180):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}\n{stack.logs()}")


class Person:
    """One person's browser context (their own cookies), on a desktop-sized page."""

    def __init__(self, browser: Any, url: str) -> None:
        self.context = browser.new_context(viewport=DESKTOP, accept_downloads=True)
        self.page = self.context.new_page()
        self.url = url
        self.problems: list[str] = []
        # Any script error or blocked resource (a CSP violation) on our pages is a bug.
        self.page.on("pageerror", lambda exc: self.problems.append(f"page error: {exc}"))
        self.page.on(
            "console",
            lambda msg: (
                self.problems.append(f"console: {msg.text} at {msg.location}")
                if msg.type == "error"
                else None
            ),
        )
        self.page.on("dialog", lambda dialog: self.problems.append(f"dialog: {dialog.message}"))

    def sign_in(self, token: str, start: str) -> None:
        """Open ``start``, land on the sign-in page, sign in with the keyboard only."""
        self.page.goto(self.url + start)
        assert "/ui/sign-in" in self.page.url
        field = self.page.get_by_label("Token")
        field.focus()
        self.page.keyboard.type(token)
        self.page.keyboard.press("Enter")
        self.page.wait_for_url(self.url + start)

    def csrf(self) -> str:
        return str(self.page.locator('input[name="csrf"]').first.get_attribute("value"))

    def fits(self) -> bool:
        """Whether the page needs no sideways scrolling at its width."""
        return bool(self.page.evaluate("document.documentElement.scrollWidth <= innerWidth"))


def test_owner_reviews_approves_and_releases_in_a_browser_and_researcher_downloads(
    c2d_stack: Installation,
    chromium: Any,
    patients_dir: Path,
    example_job: Callable[[str], Path],
    tmp_path: Path,
) -> None:
    from playwright.sync_api import expect

    stack = c2d_stack
    owner, owner_token = stack.add_user("owner", "olga")
    researcher, researcher_token = stack.add_user("researcher", "rita")
    dataset = f"patients-{uuid.uuid4().hex[:6]}"
    # Registered on the local data host, which hashes and signs the folder.
    added = stack.dataset_add(
        owner_token, dataset, patients_dir, "--review-outputs", "--schema", "stats",
        "--public", "patients.csv:sex",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    job_dir = example_job("diabetes-classifier")
    job_id = stack.json(
        "submit", str(job_dir), "--dataset", dataset, "--param", "n_estimators=25",
        token=researcher_token,
    )["id"]  # fmt: skip
    other_id = stack.json(
        "submit", str(job_dir), "--dataset", dataset, "--param", "max_depth=3",
        token=researcher_token,
    )["id"]  # fmt: skip
    wait_until(
        "the dry run of the first job",
        lambda: stack.json("review", job_id, token=owner_token)["dryrun"],
        stack,
    )
    SHOTS.mkdir(parents=True, exist_ok=True)
    alice, bob = Person(chromium, stack.url), Person(chromium, stack.url)
    page = alice.page

    # The owner signs in and opens her queue: both jobs, oldest first, the dry run's verdict.
    alice.sign_in(owner_token, "/ui/queue")
    expect(page).to_have_title(re.compile(r"^Queue \(2 to review, 0 to release\)"))
    rows = page.locator("#pending-h ~ div table tbody tr")
    expect(rows).to_have_count(2)
    first = rows.nth(0)
    expect(first).to_contain_text(job_id)
    expect(first).to_contain_text(researcher)
    expect(first).to_contain_text(dataset)
    expect(first).to_contain_text("ok")
    expect(rows.nth(1)).to_contain_text(other_id)
    page.screenshot(path=SHOTS / "queue.png")

    # The review page: dry run first, then what would run, the code as a highlighted diff.
    first.get_by_role("link", name="diabetes-classifier").click()
    page.wait_for_url(f"**/ui/jobs/{job_id}/review")
    headings = page.locator("h2").all_inner_texts()
    assert headings[:3] == ["Dry run on mock data", "What would run", "The code"], headings
    expect(page.locator("#dryrun-h + dl")).to_contain_text("exited with code 0")
    expect(page.get_by_role("navigation", name="Files in the diff")).to_contain_text("train.py")
    train = page.locator("h3.diffname", has_text="train.py")
    expect(train).to_have_count(1)
    code = page.locator("pre.hl", has_text="RandomForestClassifier")
    expect(code).to_have_count(1)
    assert code.locator("span").count() > 10  # Pygments' highlighting
    expect(page.locator("#spec-h + dl")).to_contain_text('"n_estimators": 25')
    page.screenshot(path=SHOTS / "review.png")
    page.evaluate("document.querySelector('h3.diffname').scrollIntoView()")
    page.screenshot(path=SHOTS / "review-code.png")
    page.set_viewport_size(PHONE)
    assert alice.fits(), "the review page scrolls sideways on a phone"
    page.screenshot(path=SHOTS / "review-phone.png")
    page.set_viewport_size(DESKTOP)

    # The page made a key in this browser (WebCrypto, kept in IndexedDB) and registered it
    # as one of hers: the `user.key` entry and her list of keys name it.
    signing = page.locator("#signing")
    expect(signing).to_have_attribute("data-key", re.compile(r"^ed25519:[0-9a-f]{32}$"))
    browser_key = signing.get_attribute("data-key")
    expect(signing).to_contain_text(f"signed in this browser with your key {browser_key}")
    keys = stack.json("key", "list", "--user", owner, token=stack.admin_token)
    assert [k["fingerprint"] for k in keys if k["revoked"] is None] == [browser_key]

    # Approve with a note, two lines: the service's approval, signed by the browser's key
    # over the same statement `c2d approve` signs.
    page.get_by_label("Note for the ledger (optional)").fill(NOTE)
    page.get_by_role("button", name="Approve this code").click()
    expect(page.get_by_role("status")).to_contain_text("Approved.")
    approved = [e for e in stack.entries(job_id) if e["type"] == "job.approved"]
    assert [(e["actor"], e["body"]["note"]) for e in approved] == [(owner, NOTE)]
    assert approved[0]["body"]["signed"]["key"] == browser_key
    assert approved[0]["body"]["signed"]["statement"]["note"] == NOTE
    # The key is kept: opening another page to sign registers no second key.
    page.reload()
    expect(page.locator("#signing")).to_have_attribute("data-key", browser_key)
    # Trusting this code for whatever params: the script signs null params, as the box says.
    page.get_by_label("whatever params they pass (otherwise only these params)").check()
    page.get_by_role("button", name="Trust this code digest").click()
    expect(page.get_by_role("status")).to_contain_text("Trusted.")
    trust = [e for e in stack.entries(f"dataset:{dataset}") if e["type"] == "dataset.trusted"][-1]
    assert trust["body"]["params_digest"] == "any"
    assert trust["body"]["signed"]["statement"]["params_digest"] is None
    assert trust["body"]["signed"]["key"] == browser_key

    # The researcher's list follows the job live (no reload) while the worker runs it.
    bob.sign_in(researcher_token, "/ui/jobs")
    bob.page.evaluate("window.c2dNotReloaded = true")
    mine = bob.page.locator("#job-rows tr", has_text=job_id)
    expect(mine).to_contain_text("succeeded", timeout=180_000)
    assert bob.page.evaluate("window.c2dNotReloaded === true")
    # Before release the run's result is the owner's: no metrics on the researcher's page.
    bob.page.goto(f"{stack.url}/ui/jobs/{job_id}")
    expect(bob.page.locator("#job-status")).to_contain_text("stays with the dataset's owner")
    assert "accuracy" not in bob.page.content()

    # The owner reviews the outputs and releases them.
    page.goto(stack.url + "/ui/queue")
    expect(page).to_have_title(re.compile(r"^Queue \(1 to review, 1 to release\)"))
    page.locator("#outputs-h ~ div").get_by_role("link", name="diabetes-classifier").click()
    page.wait_for_url(f"**/ui/jobs/{job_id}/outputs")
    expect(page.locator("#metrics-h ~ div table")).to_contain_text("accuracy")
    # The outputs and the log are still on the data host: the page asked it for them, and its
    # files' part fills in by itself (no reload) once the host uploaded them for review.
    page.evaluate("window.c2dNotReloaded = true")
    files = page.locator("#files-h ~ div table").first
    expect(files.locator("tr", has_text="model.skops")).to_contain_text(
        "zip archive", timeout=HOST_MS
    )
    expect(files.locator("tr", has_text="metrics.json")).to_contain_text("JSON", timeout=HOST_MS)
    expect(page.locator("pre.log").first).to_contain_text("accuracy")
    expect(page.locator("#log-h + pre")).to_contain_text("held-out accuracy", timeout=HOST_MS)
    expect(page.locator(".fetching")).to_have_count(0)
    assert page.evaluate("window.c2dNotReloaded === true")
    # What the owner previewed came to the control plane as copies for review. (Whether the
    # same bytes are among released artifacts depends on the shared stack's earlier jobs: the
    # stores are content-addressed and this example job is deterministic.)
    digests = [o["sha256"] for o in stack.api_job(job_id)["outcome"]["outputs"]]
    assert all(stack.ctx.review.has(d) for d in digests)
    page.get_by_role("button", name="Release the outputs").click()
    expect(page.get_by_role("status")).to_contain_text("Released.")
    released = [e for e in stack.entries(job_id) if e["type"] == "job.released"]
    assert [e["actor"] for e in released] == [owner]
    assert released[0]["body"]["signed"]["key"] == browser_key
    # On release the host uploads the outputs (as for `c2d release`).
    wait_until(
        "the released outputs on the control plane",
        lambda: all(stack.ctx.artifacts.has(d) for d in digests),
        stack,
        timeout=HOST_MS / 1000,
    )

    # The researcher downloads the model from the job page; it loads and matches the outcome.
    bob.page.goto(f"{stack.url}/ui/jobs/{job_id}")
    expect(bob.page.locator("#job-state")).to_have_text("released")
    with bob.page.expect_download() as download:
        bob.page.get_by_role("link", name="model.skops").click()
    model_path = tmp_path / "model.skops"
    download.value.save_as(model_path)
    outcome = stack.api_job(job_id)["outcome"]
    digest = next(o["sha256"] for o in outcome["outputs"] if o["name"] == "model.skops")
    assert "sha256:" + hashlib.sha256(model_path.read_bytes()).hexdigest() == digest
    model = skops.io.load(model_path, trusted=skops.io.get_untrusted_types(file=model_path))
    assert type(model).__name__ == "RandomForestClassifier"
    with bob.page.expect_download() as receipt:
        bob.page.get_by_role("link", name="Download the receipt").click()
    receipt_path = tmp_path / "receipt.json"
    receipt.value.save_as(receipt_path)
    key = str(stack.home / "ledger.key.pub")
    verified = stack.json("receipt", "verify", str(receipt_path), "--key", key)
    assert "job.released" in [e["type"] for e in verified["entries"]]
    # The receipt says who acted, with their keys: her browser's key approved and released.
    said = {
        (a["type"], a["signer"], a["key"]) for a in verified["actions"] if a["verdict"] == "signed"
    }
    assert {("job.approved", owner, browser_key), ("job.released", owner, browser_key)} <= said

    # The researcher may not open the owner's review page: the service's 403, as a page.
    answer = bob.page.goto(f"{stack.url}/ui/jobs/{other_id}/review")
    assert answer is not None
    assert answer.status == 403
    expect(bob.page.locator("h1")).to_have_text("Not allowed")
    assert "RandomForestClassifier" not in bob.page.content()
    # Chromium logs the refused navigation itself as a console error: that one is expected.
    assert [p for p in bob.problems if "403" not in p or "/review" not in p] == []
    bob.problems.clear()

    # A form without its CSRF token, or from another site, changes nothing; with it but
    # unsigned, neither (she holds a key, so her session alone cannot act); from the page, the
    # browser signs and it works.
    reject = f"{stack.url}/ui/jobs/{other_id}/reject"
    page.goto(f"{stack.url}/ui/jobs/{other_id}/review")
    token = alice.csrf()
    for form, headers in [
        ({"reason": "no"}, {}),
        ({"reason": "no", "csrf": "0" * 64}, {}),
        ({"reason": "no", "csrf": token}, {"Origin": "https://evil.example"}),
        ({"reason": "no", "csrf": token}, {}),
    ]:
        refused = alice.context.request.post(reject, form=form, headers=headers, max_redirects=0)
        assert refused.status == 403, (form, headers)
        assert stack.state(other_id) == "pending"
    page.get_by_label("Reason (the researcher reads it)").fill("no")
    page.get_by_role("button", name="Reject").click()
    expect(page.get_by_role("status")).to_contain_text("Rejected.")
    assert stack.state(other_id) == "rejected"
    rejected = [e for e in stack.entries(other_id) if e["type"] == "job.rejected"]
    assert rejected[0]["body"]["signed"]["key"] == browser_key

    # The ledger page: the job's entries and the server's verification.
    page.goto(f"{stack.url}/ui/ledger?job={job_id}")
    types = page.locator("table.entries tbody tr td:nth-child(3)").all_inner_texts()
    assert {"job.submitted", "job.dryrun", "job.approved", "job.finished", "job.released"} <= set(
        types
    )
    page.get_by_role("button", name="Verify now").click()
    expect(page.locator("#verify-result")).to_contain_text("ok: ")
    page.set_viewport_size(PHONE)
    assert alice.fits(), "the ledger page scrolls sideways on a phone"

    assert alice.problems == []
    assert bob.problems == []
    alice.context.close()
    bob.context.close()
