"""Deploy hook for the OML protocol contracts (one singleton each).

Windows are chosen so a claim settles well inside Staking's unstake delay (3 days): reveal 1 h +
challenge 1 day + voting 1 day, so a host that starts unbonding when it sees a commitment is still
slashable when the verdict lands. Set LOYAL_OML_PLATFORM to an address to grant it PLATFORM_ROLE
(the key whose signatures count as query permissions); tests and the demo grant it themselves.
"""
from __future__ import annotations

from common.config import current

from agents.core.deploy import Deployer

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

CONTRACTS = ("ModelRegistry", "HostAgreements", "UsageLedger", "Claims")


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
    platform = current().oml_platform
    if platform:
        d.grant_role("UsageLedger", "PLATFORM_ROLE", platform)
