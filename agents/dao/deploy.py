"""Deploy hook of the governance DAO: registries, governor, OTK issuer, gas credits, treasury.

Bootstrapping: the deployer owns PersonnelRegistry, HardwareRegistry and GasCredits just long
enough to admit the genesis personnel, list the OTK issuer as challenger and credit spender and
set the prices; then they hand ownership to the governor, which owns every DAO contract from then
on. The deployer also fills each proposal type's allow-list (`ALLOWED_ACTIONS`) once and seals it:
from then on only a System vote with the rule-change supermajority changes a list. Re-running is
a no-op.

Genesis personnel: `LOYAL_DAO_GENESIS="0xaddr:safety:3,0xaddr:policy:2,..."`; on the dev chain
(31337) the default is Anvil dev accounts 20..25 (see DEV_MEMBERS).
"""
from __future__ import annotations


from agents.core.deploy import Deployer
from common.config import current
from common.errors import ConfigError
from agents.core.signers import dev_signer

POLICY, SAFETY, SOFTWARE, HARDWARE = 1, 2, 3, 4  # PersonnelRegistry.Track
TRACK_NAMES = {"policy": POLICY, "safety": SAFETY, "software": SOFTWARE, "hardware": HARDWARE}
SAFETY_T, REVIEW_T, SYSTEM_T, EMERGENCY_T = 0, 1, 2, 3  # DaoGovernor.ProposalType
PROPOSAL_TYPES = {"safety": SAFETY_T, "review": REVIEW_T, "system": SYSTEM_T, "emergency": EMERGENCY_T}

HOUR, DAY = 3600, 86400
TIERS_23, TIERS_123, TIER_3 = 0b1100, 0b1110, 0b1000
TRACK_SAFETY, TRACK_BOTH = 1 << SAFETY, (1 << POLICY) | (1 << SAFETY)
# (minProposerTier, tierMask, trackMask, quorumBps, thresholdBps, votingDelay s, votingPeriod s,
#  executionWindow s: a succeeded proposal not executed within it after voting ends is Expired)
TYPE_CONFIGS = [
    (1, TIERS_23, TRACK_SAFETY, 5000, 5000, HOUR, 2 * DAY, 7 * DAY),  # Safety: safety track, tiers 2-3
    (1, TIERS_123, TRACK_BOTH, 3000, 5000, HOUR, 2 * DAY, 7 * DAY),  # Review: everyone
    (2, TIERS_23, TRACK_BOTH, 5000, 6667, DAY, 5 * DAY, 14 * DAY),  # System: tiers 2-3, more than 2/3
    (3, TIER_3, TRACK_BOTH, 5000, 5000, 0, HOUR, DAY),  # Emergency: tier 3, one hour, no delay, act within a day
]
# A proposal that changes the governor's rules (type rules, allow-lists) is System and needs at
# least this quorum and For share, fixed at deployment (constructor immutables).
RULE_CHANGE_QUORUM_BPS = 6667
RULE_CHANGE_THRESHOLD_BPS = 7500
MODEL_MAX_RETRIES = 2
HARDWARE_FAILURE_LIMIT = 3
CHALLENGE_WINDOW = 30 * 60  # seconds a unit has to answer an attestation challenge
CHALLENGE_ODDS = 4  # one ration in four (drawn from prevrandao) opens a challenge
OTK_LIFETIME = HOUR
# GasCredits price rules (base, perUnit) for the issuer's operations.
PRICE_OPEN_RUN = (10, 0)
PRICE_RATION = (1, 1)
CREDIT_PRICE = 10**16  # LOYAL wei per credit (0.01 LOYAL)
GAS_TAX_BPS = 1_000  # 10 % of a spent credit's LOYAL backing goes to the treasury
TREASURY_DEV_FUNDS = 100_000 * 10**18

# What each proposal type may execute: (contract, function) pairs. The governor's own rule setters
# (setTypeConfig, setActionAllowed) are System's by construction and never listed.
ALLOWED_ACTIONS: dict[str, tuple[tuple[str, str], ...]] = {
    # safety standard: safety modules (awards), certification renewals, hardware approval
    "safety": (("HardwareRegistry", "approve"), ("DaoModelRegistry", "renewCertification"),
               ("DaoTreasury", "awardModule"), ("PersonnelRegistry", "fileReport"),
               ("ClaimAppeals", "decide")),  # OML: appeals against a verifier majority
    # reviews: models and hardware in, budgets unfrozen after review, bounties for findings
    "review": (("DaoModelRegistry", "approve"), ("DaoModelRegistry", "reject"), ("HardwareRegistry", "approve"),
               ("DaoModelRegistry", "unfreezeBudget"), ("HardwareRegistry", "unfreezeBudget"),
               ("DaoTreasury", "payBounty"), ("PersonnelRegistry", "fileReport")),
    # system: personnel, tokenomics, model tier changes, protocol parameters
    "system": (("PersonnelRegistry", "admit"), ("PersonnelRegistry", "setRole"), ("PersonnelRegistry", "remove"),
               ("GasCredits", "grant"), ("GasCredits", "setPriceRule"), ("GasCredits", "setSpender"),
               ("GasCredits", "setCreditPrice"), ("GasCredits", "setGasTax"), ("GasCredits", "payUpkeep"),
               ("DaoTreasury", "payBounty"), ("DaoTreasury", "awardModule"),
               ("DaoModelRegistry", "setTerms"), ("HardwareRegistry", "setFailureLimit"),
               ("HardwareRegistry", "setChallengeWindow"), ("HardwareRegistry", "setChallenger"),
               ("OTKIssuer", "setKeyLifetime"), ("OTKIssuer", "setChallengeOdds")),
    # emergency: threat response, only here
    "emergency": (("DaoModelRegistry", "revoke"), ("DaoModelRegistry", "freezeBudget"), ("DaoModelRegistry", "cutBudget"),
                  ("DaoModelRegistry", "unfreezeBudget"), ("HardwareRegistry", "revoke"),
                  ("HardwareRegistry", "freezeBudget"), ("HardwareRegistry", "cutBudget"),
                  ("HardwareRegistry", "unfreezeBudget"), ("OTKIssuer", "haltRun"), ("PersonnelRegistry", "remove"),
                  ("PersonnelRegistry", "fileReport")),
}
EMERGENCY_ONLY = ("revoke", "freezeBudget", "cutBudget", "haltRun")  # functions no other type may call

# Dev chain genesis: (dev account index, track, tier).
DEV_MEMBERS = [(20, SAFETY, 1), (21, SAFETY, 2), (22, SAFETY, 3), (23, POLICY, 1), (24, POLICY, 2), (25, POLICY, 3),
               (31, SOFTWARE, 2), (32, HARDWARE, 2)]

DAO_CONTRACTS = ["PersonnelRegistry", "DaoGovernor", "DaoModelRegistry", "HardwareRegistry", "GasCredits", "OTKIssuer",
                 "DaoTreasury"]


def genesis_members(chain_id: int) -> list[tuple[str, int, int]]:
    """(address, track, tier) of the genesis personnel from the dao_genesis setting or the dev default."""
    spec = (current().dao_genesis or "").strip()
    if not spec:
        if chain_id != 31337:
            raise ConfigError("dao_genesis (env LOYAL_DAO_GENESIS) is required off the dev chain "
                              "(\"0xaddr:safety:3,...\")")
        return [(dev_signer(i).address, track, tier) for i, track, tier in DEV_MEMBERS]
    out = []
    for item in spec.split(","):
        try:
            addr, track, tier = item.strip().split(":")
            out.append((addr, TRACK_NAMES[track.lower()], int(tier)))
        except (ValueError, KeyError):
            raise ConfigError(f"dao_genesis entry {item!r} is not address:policy|safety|software|hardware:1..3") from None
        if not 1 <= out[-1][2] <= 3:
            raise ConfigError(f"dao_genesis entry {item!r}: tier must be 1..3")
    return out


def selector(chain, contract: str, function: str) -> bytes:
    """4-byte selector of `contract.function` (the suite's one function of that name)."""
    from eth_utils import function_signature_to_4byte_selector

    from agents.core.artifacts import abi_type

    items = [i for i in chain.artifacts.get(contract).abi if i["type"] == "function" and i["name"] == function]
    if len(items) != 1:
        raise ConfigError(f"{contract}.{function}: {len(items)} functions of that name")
    sig = f"{function}({','.join(abi_type(i) for i in items[0]['inputs'])})"
    return function_signature_to_4byte_selector(sig)


def allowed_actions(chain) -> list[tuple[int, str, bytes]]:
    """ALLOWED_ACTIONS as (proposal type, target address, selector) for DaoGovernor.bootstrapAllow."""
    return [(PROPOSAL_TYPES[ptype], chain.book.address(contract), selector(chain, contract, fn))
            for ptype, actions in ALLOWED_ACTIONS.items() for contract, fn in actions]


def allowed_types(chain, target: str, selector_: bytes, governor=None) -> list[str]:
    """Names of the proposal types whose allow-list holds (target, selector) now (read on chain)."""
    gov = governor or chain.contract("DaoGovernor")
    return [name.capitalize() for name, t in PROPOSAL_TYPES.items()
            if chain.call(gov.functions.isActionAllowed(t, target, selector_))]


def deploy_dao(d: Deployer) -> None:
    chain = d.chain
    personnel = d.ensure("PersonnelRegistry", d.admin)
    governor = d.ensure("DaoGovernor", personnel, TYPE_CONFIGS, RULE_CHANGE_QUORUM_BPS, RULE_CHANGE_THRESHOLD_BPS)
    models = d.ensure("DaoModelRegistry", governor, MODEL_MAX_RETRIES)
    hardware = d.ensure("HardwareRegistry", d.admin, personnel, HARDWARE_FAILURE_LIMIT, CHALLENGE_WINDOW)
    treasury = d.ensure("DaoTreasury", d.address("LoyalToken"), governor)
    credits = d.ensure("GasCredits", d.admin, d.address("LoyalToken"), treasury)
    issuer = d.ensure("OTKIssuer", governor, models, hardware, credits, OTK_LIFETIME, CHALLENGE_ODDS)

    reg = chain.contract("PersonnelRegistry")
    if chain.call(reg.functions.owner()) == d.admin:
        for addr, track, tier in genesis_members(chain.chain_id):
            if not chain.call(reg.functions.isActive(addr)):
                chain.transact(d.signer, reg.functions.admit(addr, track, tier, b"genesis".ljust(32, b"\0")))
        chain.transact(d.signer, reg.functions.transferOwnership(governor))

    hw = chain.contract("HardwareRegistry")
    if chain.call(hw.functions.owner()) == d.admin:
        chain.transact(d.signer, hw.functions.setChallenger(issuer, True))
        chain.transact(d.signer, hw.functions.transferOwnership(governor))

    gc = chain.contract("GasCredits")
    if chain.call(gc.functions.owner()) == d.admin:
        iss = chain.contract("OTKIssuer")
        chain.transact(d.signer, gc.functions.setSpender(issuer, True))
        chain.transact(d.signer, gc.functions.setPriceRule(chain.call(iss.functions.OP_OPEN_RUN()), *PRICE_OPEN_RUN))
        chain.transact(d.signer, gc.functions.setPriceRule(chain.call(iss.functions.OP_RATION()), *PRICE_RATION))
        chain.transact(d.signer, gc.functions.setCreditPrice(CREDIT_PRICE))
        chain.transact(d.signer, gc.functions.setGasTax(GAS_TAX_BPS))
        chain.transact(d.signer, gc.functions.transferOwnership(governor))

    appeals = chain.contract("ClaimAppeals")  # OML (deployed earlier): the governor decides appeals
    if int(chain.call(appeals.functions.governor()), 16) == 0:
        chain.transact(d.signer, appeals.functions.setGovernor(governor))

    gov = chain.contract("DaoGovernor")
    if not chain.call(gov.functions.bootstrapSealed()):
        chain.transact(d.signer, gov.functions.bootstrapAllow(allowed_actions(chain)))
        chain.transact(d.signer, gov.functions.sealBootstrap())

    token = chain.contract("LoyalToken")
    if chain.chain_id == 31337 and chain.call(token.functions.balanceOf(treasury)) == 0:
        chain.transact(d.signer, token.functions.mint(treasury, TREASURY_DEV_FUNDS))
