"""`loyal oml appeal ...` and `loyal oml lineage ...`: appeals against a verifier majority, and
lineage claims (threshold, trace and file, vote, finalize, show) from the command line
(agents/oml/appeals.py, agents/oml/lineage.py, ml/oml/lineage.py)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from agents.core.cli import BOOK, DEV_ACCOUNT, KEYSTORE, RPC, connect, require_suite, signer
from common.config import configure
from common.errors import ConfigError

appeal_app = typer.Typer(help="Appeal a claim's verifier decision to the DAO (ClaimAppeals).", no_args_is_help=True)
lineage_app = typer.Typer(help="Lineage claims: trace a served model to a host's copy, file, vote, finalize "
                          "(LineageClaims).",
                          no_args_is_help=True)
_JSON = typer.Option(False, "--json", help="print the result as JSON on stdout")


def _chain(rpc, book):
    s = configure(rpc_url=rpc)
    chain = connect(s, book)
    require_suite(chain)
    return s, chain


def _claim_id(text: str) -> int:
    try:
        value = int(text, 0)
    except ValueError:
        raise ConfigError(f"claim id {text!r} is not a number") from None
    if value < 1:
        raise ConfigError(f"claim id {text!r}: ids start at 1")
    return value


def _print(result: dict, as_json: bool, line: str) -> None:
    from agents.core.audit import json_safe

    print(json.dumps(json_safe(result), indent=2) if as_json else line)


def _existing_claim(chain, claim_id: int):
    from .claims import read_claim

    if claim_id > chain.call(chain.contract("Claims").functions.claimCount()):
        raise ConfigError(f"no claim {claim_id} (see `loyal events -c Claims`)")
    return read_claim(chain, claim_id)


@appeal_app.command("file")
def file_appeal(
    claim: str = typer.Argument(..., help="claim id"),
    rpc: Optional[str] = RPC, book: Optional[Path] = BOOK, keystore: Optional[str] = KEYSTORE,
    dev_account: Optional[int] = DEV_ACCOUNT, as_json: bool = _JSON,
):
    """Appeal a claim decided by the verifiers (the losing side: host of a confirmed claim, prover of
    a rejected one), posting the appeal bond."""
    from . import appeals as ap

    s, chain = _chain(rpc, book)
    cid = _claim_id(claim)
    who = signer(chain, s, keystore, dev_account)
    _existing_claim(chain, cid)
    bond = chain.call(chain.contract("ClaimAppeals").functions.bond())
    have = chain.call(chain.contract("LoyalToken").functions.balanceOf(who.address))
    if have < bond:
        raise ConfigError(f"the appeal bond is {bond / 1e18:g} LOYAL and {who.address} holds {have / 1e18:g}: "
                          "fund the account first")
    rec = ap.appeal(chain, who, cid)
    _print({"claimId": cid, "appellant": rec.appellant, "state": rec.state.name, "bond": bond}, as_json,
           f"claim {cid} appealed by {rec.appellant} ({bond / 1e18:g} LOYAL bond); the DAO decides by a Safety "
           f"vote: `loyal oml appeal propose {cid} --reverse`")


@appeal_app.command("propose")
def propose(
    claim: str = typer.Argument(..., help="claim id"),
    reverse: bool = typer.Option(True, "--reverse/--uphold", help="reverse the verifiers' outcome, or uphold it"),
    rpc: Optional[str] = RPC, book: Optional[Path] = BOOK, keystore: Optional[str] = KEYSTORE,
    dev_account: Optional[int] = DEV_ACCOUNT, as_json: bool = _JSON,
):
    """Propose (as a DAO member) a Safety vote deciding a pending appeal; vote and execute it with
    `loyal dao vote` / `loyal dao execute`."""
    from agents.dao.governance import Dao

    from . import appeals as ap

    s, chain = _chain(rpc, book)
    cid = _claim_id(claim)
    who = signer(chain, s, keystore, dev_account)
    _existing_claim(chain, cid)
    if ap.read_appeal(chain, cid).state != ap.AppealState.PENDING:
        raise ConfigError(f"claim {cid} has no pending appeal (file one with `loyal oml appeal file {cid}`)")
    p = ap.propose_decision(Dao(chain), who, cid, reverse)
    _print({"proposalId": str(p.id), "claimId": cid, "reverse": reverse, "voteStart": p.vote_start,
            "voteEnd": p.vote_end}, as_json, f"{p.id}")


@appeal_app.command("release")
def release(
    claim: str = typer.Argument(..., help="claim id"),
    rpc: Optional[str] = RPC, book: Optional[Path] = BOOK, keystore: Optional[str] = KEYSTORE,
    dev_account: Optional[int] = DEV_ACCOUNT, as_json: bool = _JSON,
):
    """Release a decided claim's held payouts once its outcome is final, then penalise the verifiers
    of a majority the DAO overturned."""
    from . import appeals as ap

    s, chain = _chain(rpc, book)
    cid = _claim_id(claim)
    who = signer(chain, s, keystore, dev_account)
    _existing_claim(chain, cid)
    state = ap.read_appeal(chain, cid).state
    released = False
    if state != ap.AppealState.REVERSED:
        if not chain.call(chain.contract("Claims").functions.released(cid)) and not ap.is_final(chain, cid):
            raise ConfigError(f"claim {cid}'s outcome is not final yet (appeal window open or appeal pending): "
                              "try again after it")
        released = ap.release_when_final(chain, who, cid)
    penalties = ap.penalise_overturned(chain, who, cid)
    _print({"claimId": cid, "released": released, "penalties": penalties}, as_json,
           f"claim {cid}: payouts {'released' if released else 'already made'}; "
           f"{len(penalties)} verifier(s) of an overturned majority penalised")


@appeal_app.command("show")
def show(claim: str = typer.Argument(..., help="claim id"), rpc: Optional[str] = RPC,
         book: Optional[Path] = BOOK, as_json: bool = _JSON):
    """A claim's appeal: state, appellant, whether its payouts are final and released."""
    from . import appeals as ap

    _, chain = _chain(rpc, book)
    cid = _claim_id(claim)
    c = _existing_claim(chain, cid)
    a = ap.read_appeal(chain, cid)
    released = chain.call(chain.contract("Claims").functions.released(cid))
    _print({"claimId": cid, "claimStatus": c.status.name, "appeal": a.state.name, "appellant": a.appellant,
            "final": ap.is_final(chain, cid), "released": released}, as_json,
           f"claim {cid} {c.status.name.lower()}; appeal {a.state.name.lower()}; "
           f"payouts {'released' if released else 'held'}")


@lineage_app.command("threshold")
def threshold(
    base_matches: int = typer.Option(..., "--base-matches", min=0, help="keys the base model answered with their "
                                     "responses"),
    trials: int = typer.Option(..., "--trials", min=1, help="keys checked on the base model"),
    subset: int = typer.Option(..., "--subset", min=1, help="n: keys in one host's subset"),
    bound: float = typer.Option(1e-6, "--bound", help="target false-positive rate of a lineage claim"),
    as_json: bool = _JSON,
):
    """The lineage threshold m: smallest m with P[Bin(n, p0) >= m] <= bound, p0 the 95 % upper bound
    of the base model's chance-match rate."""
    from ml.oml.lineage import derive

    if base_matches > trials:
        raise ConfigError(f"--base-matches {base_matches} exceeds --trials {trials}")
    try:
        t = derive(base_matches, trials, subset, bound)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    _print(t.as_dict(), as_json, f"m = {t.m} (p0 <= {t.p0_upper:.4g}, false-positive rate {t.fpr_at_m:.2e} "
                                 f"for a {subset}-key subset)")


@lineage_app.command("show")
def lineage_show(claim: str = typer.Argument(..., help="lineage claim id"), rpc: Optional[str] = RPC,
                 book: Optional[Path] = BOOK, as_json: bool = _JSON):
    """A lineage claim's record: host, revealed matches, votes, status."""
    _, chain = _chain(rpc, book)
    cid = _claim_id(claim)
    r = _existing_lineage(chain, cid)
    _print({"claimId": cid, "host": r.host, "matches": r.matches, "confirmations": r.confirmations,
            "rejections": r.rejections, "status": r.status.name}, as_json,
           f"lineage claim {cid} against {r.host}: {r.matches} keys, {r.confirmations} confirm / "
           f"{r.rejections} reject, {r.status.name.lower()}")


def _existing_lineage(chain, claim_id: int):
    from .lineage import read_lineage

    if claim_id > chain.call(chain.contract("LineageClaims").functions.claimCount()):
        raise ConfigError(f"no lineage claim {claim_id} (see `loyal events -c LineageClaims`)")
    return read_lineage(chain, claim_id)


@lineage_app.command("trace")
def lineage_trace(
    url: str = typer.Argument(..., help="endpoint serving the suspect model (http(s)://HOST:PORT)"),
    model_id: int = typer.Option(..., "--model-id", help="the registered model whose copies are traced"),
    fingerprints: Path = typer.Option(..., "--fingerprints", help="fingerprints file from `loyal oml register`"),
    file: bool = typer.Option(False, "--file", help="file a lineage claim (bond) if a host's keys reach m"),
    rpc: Optional[str] = RPC, book: Optional[Path] = BOOK, keystore: Optional[str] = KEYSTORE,
    dev_account: Optional[int] = DEV_ACCOUNT, as_json: bool = _JSON,
):
    """Query URL with every unspent key of every host's subset; report the host whose keys it
    reproduces most, and with --file claim against that host once at least m match."""
    from .lineage import LineageProver
    from .prover import read_fingerprints_file

    if not url.startswith(("http://", "https://")):
        raise ConfigError(f"endpoint {url!r}: expected http(s)://HOST:PORT")
    _, subsets = read_fingerprints_file(fingerprints, model_id)
    s, chain = _chain(rpc, book)
    who = signer(chain, s, keystore, dev_account)
    p = LineageProver(chain, who, model_id, subsets)
    t = p.catch(url.rstrip("/")) if file else p.trace(url.rstrip("/"))
    verdict = (f"traced to {t.host}: {len(t.matched)} keys >= m = {t.m}" if t.traced else
               f"not traced: best host {t.host} with {len(t.matched)} keys < m = {t.m}")
    filed = f"; lineage claim {t.claim_id} filed" if t.claim_id else ""
    _print({"endpoint": t.endpoint, "host": t.host, "matched": len(t.matched), "m": t.m, "traced": t.traced,
            "tried": t.tried, "counts": t.counts, "claimId": t.claim_id}, as_json, f"{url}: {verdict}{filed}")


@lineage_app.command("vote")
def lineage_vote(
    claim: str = typer.Argument(..., help="lineage claim id"),
    rpc: Optional[str] = RPC, book: Optional[Path] = BOOK, keystore: Optional[str] = KEYSTORE,
    dev_account: Optional[int] = DEV_ACCOUNT, as_json: bool = _JSON,
):
    """As a verifier: query the claim's endpoint with its revealed keys and vote to confirm only if
    the reveal matches the commitment and at least m keys are reproduced."""
    from .lineage import LineageVerifier

    s, chain = _chain(rpc, book)
    cid = _claim_id(claim)
    who = signer(chain, s, keystore, dev_account)
    _existing_lineage(chain, cid)
    v = LineageVerifier(chain, who).vote(cid)
    _print({"claimId": cid, "confirm": v.confirm, "reproduced": v.reproduced, "m": v.m,
            "inCommitment": v.in_commitment}, as_json,
           f"lineage claim {cid}: voted {'confirm' if v.confirm else 'reject'} ({v.reproduced} of the revealed keys "
           f"reproduced, m = {v.m})")


@lineage_app.command("finalize")
def lineage_finalize(
    claim: str = typer.Argument(..., help="lineage claim id"),
    rpc: Optional[str] = RPC, book: Optional[Path] = BOOK, keystore: Optional[str] = KEYSTORE,
    dev_account: Optional[int] = DEV_ACCOUNT, as_json: bool = _JSON,
):
    """Settle an undefended lineage claim after its challenge window (anyone may call it)."""
    s, chain = _chain(rpc, book)
    cid = _claim_id(claim)
    who = signer(chain, s, keystore, dev_account)
    _existing_lineage(chain, cid)
    chain.transact(who, chain.contract("LineageClaims").functions.finalize(cid))
    r = _existing_lineage(chain, cid)
    _print({"claimId": cid, "host": r.host, "status": r.status.name}, as_json,
           f"lineage claim {cid} against {r.host}: {r.status.name.lower()}")
