"""Deploy hook for the OML protocol contracts (one singleton each).

Windows are chosen so a claim settles well inside Staking's unstake delay (3 days): reveal 1 h +
challenge 1 day + voting 1 day, so a host that starts unbonding when it sees a commitment is still
slashable when the verdict lands. Set LOYAL_OML_PLATFORM to an address to grant it PLATFORM_ROLE
(the key whose signatures count as query permissions); tests and the demo grant it themselves.
"""
from __future__ import annotations

from common.config import current

from agents.core.deploy import Deployer

ZERO_ADDRESS = "0x" + "00" * 20

TOKEN = 10**18
PERMISSION_TTL = 3600  # seconds a permission σ(q) lives; also bounds "issued before the claim"
CLAIM_BOND = 10 * TOKEN
MIN_VERIFIER_STAKE = 100 * TOKEN
REVEAL_WINDOW = 3600
CHALLENGE_WINDOW = 24 * 3600
VOTING_WINDOW = 24 * 3600
PROVER_SHARE_BPS = 2_000  # 20 % of a slash to the prover
VERIFIER_SHARE_BPS = 600  # 6 % of a slash (or of a rejected claim's bond) to the verifiers of the outcome
VERIFIER_PENALTY = 5 * TOKEN  # slashed from a verifier that voted against the outcome or did not vote

# Appeals (ClaimAppeals): a vote-decided claim's payouts are held APPEAL_WINDOW; the losing side may
# appeal with APPEAL_BOND; the DAO (a Safety proposal, voting 1 h + 2 days) decides within
# APPEAL_DECISION_WINDOW or the outcome stands; each verifier of an overturned majority loses OVERTURN_PENALTY.
APPEAL_BOND = 50 * TOKEN
APPEAL_WINDOW = 2 * 24 * 3600
APPEAL_DECISION_WINDOW = 10 * 24 * 3600
OVERTURN_PENALTY = 20 * TOKEN
# Lineage claims (LineageClaims): m = LINEAGE_MIN_MATCHES subset keys. 14 keeps the false-positive
# rate of a 64-key subset below 1e-6 at the chance-match rate measured on SmolLM2-135M (0 of 64 keys,
# 95 % upper bound p0 = 0.0457; bench/results/oml_lineage_fpr.json, ml/oml/lineage.py).
LINEAGE_MIN_MATCHES = 14

CONTRACTS = ("ModelRegistry", "HostAgreements", "UsageLedger", "Claims", "ClaimAppeals", "LineageClaims")


def deploy_oml(d: Deployer) -> None:
    token = d.address("LoyalToken")
    staking = d.address("Staking")
    registry = d.ensure("ModelRegistry")
    agreements = d.ensure("HostAgreements", registry, staking)
    usage = d.ensure("UsageLedger", token, registry, agreements, PERMISSION_TTL, d.admin)
    claims = d.ensure("Claims", token, staking, registry, agreements, usage,
                      [CLAIM_BOND, MIN_VERIFIER_STAKE, VERIFIER_PENALTY],
                      [REVEAL_WINDOW, CHALLENGE_WINDOW, VOTING_WINDOW], [PROVER_SHARE_BPS, VERIFIER_SHARE_BPS])
    d.grant_module(claims)
    d.grant_role("Staking", "LOCKER_ROLE", agreements)  # a licence locks the host's required stake
    d.grant_role("Staking", "LOCKER_ROLE", claims)  # a registered verifier's minimum stake is locked
    appeals = d.ensure("ClaimAppeals", claims, staking,
                       (APPEAL_BOND, APPEAL_WINDOW, APPEAL_DECISION_WINDOW, OVERTURN_PENALTY))
    c = d.chain.contract("Claims")
    if d.chain.call(c.functions.appeals()) == ZERO_ADDRESS:
        d.chain.transact(d.signer, c.functions.setAppeals(appeals))  # Claims' hook role: overturn, release
    d.grant_module(appeals)  # slashes the verifiers of an overturned majority
    lineage = d.ensure("LineageClaims", claims, (LINEAGE_MIN_MATCHES, CLAIM_BOND, REVEAL_WINDOW, CHALLENGE_WINDOW,
                                                 VOTING_WINDOW, PROVER_SHARE_BPS))
    d.grant_module(lineage)  # slashes a host whose copy's descendant is served elsewhere
    if d.chain.call(c.functions.lineageClaims()) == ZERO_ADDRESS:
        d.chain.transact(d.signer, c.functions.setLineageClaims(lineage))  # one ledger of spent keys
    platform = current().oml_platform
    if platform:
        d.grant_role("UsageLedger", "PLATFORM_ROLE", platform)
