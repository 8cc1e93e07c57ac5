"""The explorer in a real browser (headless Chromium via Playwright) against a real server, a real
SQLite index and a real Anvil on which the devnet scenario steps ran (DIN task, ledger, OML claim,
DAO votes and OTK run) plus an open proposal: pages render, links resolve, the plot appears, a
signed ballot is relayed and shows in the tally; bad ballots are refused with nothing relayed;
unknown ids get a 404 page; an index behind the chain says by how much."""
from __future__ import annotations

import io
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from eth_account.messages import encode_typed_data
from eth_utils import keccak
from rich.console import Console

from agents.core.devnet import ScenarioContext, steps
from agents.core.signers import dev_signer
from agents.core.subsystem import resolve
from agents.dao.demo import members
from agents.dao.governance import Action, Dao
from agents.explorer.db import connect_db
from agents.explorer.index import EventIndex
from agents.explorer.server import Server, create_app

pytestmark = pytest.mark.slow
RELAYER = 12  # dev account that relays ballots (pays the gas)


@dataclass
class Site:
    chain: object
    url: str
    server: Server
    index: EventIndex
    proposal: int
    shots: Path

    def caught_up(self, timeout: float = 20) -> None:
        """Wait until the in-process indexer has the chain head."""
        head = self.chain.w3.eth.block_number
        deadline = time.monotonic() + timeout
        while self.index.cursor.scanned_to < head:
            assert time.monotonic() < deadline, "the indexer did not catch up"
            time.sleep(0.05)


@pytest.fixture(scope="module")
def site(_suite, tmp_path_factory):
    chain = _suite
    snap = chain.snapshot()
    tmp = tmp_path_factory.mktemp("explorer")
    for i in range(64):  # the devnet's 64 dev accounts (the session Anvil funds fewer)
        chain.w3.provider.make_request("anvil_setBalance", [dev_signer(i).address, hex(10**22)])
    ctx = ScenarioContext(chain, tmp, Console(file=io.StringIO()))
    for title, ref in steps():  # the `loyal devnet` scenario: core, din, ledger, oml, dao
        resolve(ref)(ctx)
    # an open Review proposal (everyone votes), with one direct vote of a tier-2 member
    dao, m = Dao(chain), members()
    dao.advance_past(dao.now())
    p = dao.propose(m["safety1"], "review", [Action.call(dao.treasury, "payBounty", keccak(text="ui-test"),
                                                         dev_signer(7).address, 10**18)],
                     "Pay a small UI bounty <script>window.pwned = 1</script>")  # chain text is data, never markup
    dao.advance_past(p.vote_start)
    dao.vote(m["safety2"], p, "for")
    engine = connect_db(f"sqlite:///{tmp / 'index.sqlite'}")
    idx = EventIndex(chain, engine)
    idx.catch_up()
    app = create_app(chain, engine, relayer=dev_signer(RELAYER), din_reports=tmp / "din")
    srv = Server(app, "127.0.0.1", 0, index=idx, poll=0.05).start()
    shots = Path(os.environ.get("LOYAL_SCREENSHOTS") or tmp / "screenshots")
    shots.mkdir(parents=True, exist_ok=True)
    yield Site(chain, srv.url, srv, idx, p.id, shots)
    srv.stop()
    chain.revert_to(snap)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    exe = shutil.which("chromium")
    if exe is None:
        pytest.fail("chromium is not installed: apt-get install chromium (make test installs it)", pytrace=False)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture
def page(browser):
    ctx = browser.new_context(viewport={"width": 1400, "height": 900})
    pg = ctx.new_page()
    yield pg
    ctx.close()


def test_pages_render_and_every_link_resolves(site, page):
    pages = ["/", "/din", "/din/task/0", "/dao", f"/dao/proposal/{site.proposal}", "/oml", "/oml/claim/1",
             "/oml/model/1", "/ledger", "/ledger/fork/1", "/dao/run/1", "/dao/hardware/1", "/dao/model/1"]
    links: set[str] = set()
    for path in pages:
        resp = page.goto(site.url + path)
        assert resp.status == 200, path
        assert page.locator("h1").first.is_visible()
        assert "Traceback" not in page.content() and "the index is up to date" in page.inner_text("#index-status")
        links |= set(page.eval_on_selector_all("a[href^='/']", "els => els.map(e => e.getAttribute('href'))"))
    page.goto(site.url + "/")
    page.screenshot(path=site.shots / "overview.png", full_page=False)
    bad = {}
    for href in sorted(links):
        r = page.request.get(site.url + href)
        if r.status != 200:
            bad[href] = r.status
    assert not bad and len(links) > 100, (bad, len(links))
    # the links a reader follows: overview -> DIN -> task -> a participant's account
    page.goto(site.url + "/")
    page.click("header >> text=DIN")
    page.click("a.id >> text=0")
    assert page.url.endswith("/din/task/0")
    page.locator("#scores td:nth-child(2) a.addr").first.click()
    assert "/account/0x" in page.url and "ParticipantRegistered" in page.content()


def test_dao_emergency_powers_challenges_and_gas_tax_show(site, page):
    """The devnet's DAO step revokes its model by Emergency vote, answers attestation challenges and
    pays the gas tax: the DAO page shows the new statuses, the event list the new events."""
    page.goto(site.url + "/dao")
    assert "Revoked (emergency vote)" in page.inner_text("main")
    page.goto(site.url + "/dao/model/1")
    assert "ModelRevoked" in page.inner_text("main")
    for contract, event in (("GasCredits", "CreditsBought"), ("GasCredits", "GasTaxPaid"),
                            ("OTKIssuer", "RunTermsDeclared")):
        page.goto(f"{site.url}/events?contract={contract}&event={event}")
        assert event in page.inner_text("main"), event


def test_din_task_page_plots_and_reconciles(site, page):
    page.goto(site.url + "/din/task/0")
    page.wait_for_function("document.getElementById('din-plot').complete")
    assert page.eval_on_selector("#din-plot", "img => img.naturalWidth") > 400  # the SVG loaded and drew
    assert "owner's off-chain evaluation" in page.inner_text("main")
    assert page.locator("#scores tr").count() == 1 + 8  # header + 8 participants
    assert page.locator("#scores td.agree").count() > 0  # who scored what, against the median
    assert page.inner_text("#reconciled").startswith("yes")
    page.screenshot(path=site.shots / "din_task.png", full_page=True)
    svg = httpx.get(site.url + "/din/task/0/plot.svg")
    assert svg.headers["content-type"].startswith("image/svg+xml") and "<svg" in svg.text


def _sign(typed: dict, account) -> str:
    return "0x" + bytes(account.sign_message(encode_typed_data(full_message=typed)).signature).hex()


def _open_ballot(page, site, voter: str, support: str = "for") -> dict:
    page.goto(f"{site.url}/dao/proposal/{site.proposal}")
    page.fill("#ballot-form input[name=voter]", voter)
    page.select_option("#ballot-form select[name=support]", support)
    page.click("#ballot-form button[type=submit]")
    return json.loads(page.inner_text("#typed-data"))


def test_a_signed_ballot_is_relayed_and_shows_in_the_tally(site, page):
    voter = members()["policy3"]  # a tier-3 member: a second tier in the tally
    page.goto(f"{site.url}/dao/proposal/{site.proposal}")
    assert page.inner_text("#state") == "Active" and page.inner_text("#for") == "1"
    assert "DaoTreasury.payBounty(" in page.inner_text("#calls")  # decoded calldata
    assert "<script>window.pwned" in page.inner_text("main") and page.evaluate("window.pwned") is None
    typed = _open_ballot(page, site, voter.address, "for")
    assert typed["primaryType"] == "Ballot" and typed["domain"]["chainId"] == site.chain.chain_id
    assert int(typed["message"]["proposalId"]) == site.proposal
    page.fill("#relay-form textarea[name=signature]", _sign(typed, voter))  # the wallet's part
    page.click("#relay-form button[type=submit]")
    assert "Ballot relayed in transaction" in page.inner_text("#relayed")
    site.caught_up()
    page.reload()
    assert page.inner_text("#for") == "2"
    votes = page.inner_text("#votes")
    assert voter.address[:8] in votes and "tier 3" in page.inner_text("#tally")
    page.screenshot(path=site.shots / "dao_proposal.png", full_page=True)


def _relayer_nonce(site) -> int:
    return site.chain.w3.eth.get_transaction_count(dev_signer(RELAYER).address)


@pytest.mark.parametrize("case", ["malformed", "wrong_chain", "wrong_signer", "replay", "not_eligible"])
def test_a_bad_ballot_is_refused_and_nothing_is_relayed(site, page, case):
    m = members()
    voter = m["policy1"] if case != "not_eligible" else dev_signer(7)
    typed = _open_ballot(page, site, voter.address, "against")
    sig = _sign(typed, voter)
    if case == "malformed":
        sig = sig[:-4]
    elif case == "wrong_chain":
        page.eval_on_selector("#relay-form input[name=chain_id]", "e => e.value = '1'")
        typed = {**typed, "domain": {**typed["domain"], "chainId": 1}}
        sig = _sign(typed, voter)
    elif case == "wrong_signer":
        sig = _sign(typed, m["policy2"])
    elif case == "replay":  # the voter's ballot, relayed once already: its nonce is spent
        page.fill("#relay-form textarea[name=signature]", sig)
        page.click("#relay-form button[type=submit]")
        assert "Ballot relayed" in page.inner_text("#relayed")
        site.caught_up()
        page.go_back()
    before, for_votes = _relayer_nonce(site), site.index.count()
    page.fill("#relay-form textarea[name=signature]", sig)
    page.click("#relay-form button[type=submit]")
    refused = page.inner_text("#refused")
    expected = {"malformed": "the signature has 63 bytes, not 65", "wrong_chain": "signed for chain 1",
                "wrong_signer": f"signed by {m['policy2'].address}", "replay": "was already used",
                "not_eligible": "VoterNotEligible"}[case]
    assert refused.startswith("Ballot refused, nothing relayed") and expected in refused, refused
    assert _relayer_nonce(site) == before  # nothing was sent
    site.caught_up()
    assert site.index.count() == for_votes
    if case == "wrong_signer":
        page.screenshot(path=site.shots / "ballot_refused.png", full_page=False)


def test_unknown_ids_get_a_404_page(site, page):
    for path in ("/din/task/999", "/din/task/abc", "/dao/proposal/12345", "/oml/claim/77", "/ledger/fork/9",
                 "/dao/run/5", "/contract/Nope", "/tx/0x" + "ab" * 32, "/account/0x12", "/no/such/page",
                 "/din/task/999/plot.svg"):
        resp = page.goto(site.url + path)
        assert resp.status == 404, path
        assert page.inner_text("h1") == "Not found" and "Traceback" not in page.content()


def test_an_index_behind_the_chain_says_by_how_much(site, tmp_path, page):
    engine = connect_db(f"sqlite:///{tmp_path / 'behind.sqlite'}")
    EventIndex(site.chain, engine).catch_up()
    site.chain.mine(3)
    srv = Server(create_app(site.chain, engine), "127.0.0.1", 0).start()  # no indexer: it stays behind
    try:
        page.goto(srv.url + "/")
        assert "the index is behind by 3 blocks" in page.inner_text("#index-status")
    finally:
        srv.stop()
