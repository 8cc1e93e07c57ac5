"""Deploy hook of the governance DAO: registries, governor, OTK issuer, gas credits, treasury.

Bootstrapping: the deployer owns PersonnelRegistry and GasCredits just long enough to admit the
genesis personnel, list the OTK issuer as a credit spender and set the price rules; then both
hand ownership to the governor, which owns every DAO contract from then on. Re-running is a no-op.

Genesis personnel: `LOYAL_DAO_GENESIS="0xaddr:safety:3,0xaddr:policy:2,..."`; on the dev chain
(31337) the default is Anvil dev accounts 20..25 (see DEV_MEMBERS).
"""
from __future__ import annotations


from agents.core.deploy import Deployer
from common.config import current
from common.errors import ConfigError
from agents.core.signers import dev_signer

POLICY, SAFETY = 1, 2  # PersonnelRegistry.Track
TRACK_NAMES = {"policy": POLICY, "safety": SAFETY}
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
MODEL_MAX_RETRIES = 2
HARDWARE_FAILURE_LIMIT = 3
OTK_LIFETIME = HOUR
# GasCredits price rules (base, perUnit) for the issuer's operations.
PRICE_OPEN_RUN = (10, 0)
PRICE_RATION = (1, 1)
TREASURY_DEV_FUNDS = 100_000 * 10**18

# Dev chain genesis: (dev account index, track, tier).
DEV_MEMBERS = [(20, SAFETY, 1), (21, SAFETY, 2), (22, SAFETY, 3), (23, POLICY, 1), (24, POLICY, 2), (25, POLICY, 3)]

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
            raise ConfigError(f"dao_genesis entry {item!r} is not address:policy|safety:1..3") from None
        if not 1 <= out[-1][2] <= 3:
            raise ConfigError(f"dao_genesis entry {item!r}: tier must be 1..3")
    return out


def deploy_dao(d: Deployer) -> None:
    chain = d.chain
    personnel = d.ensure("PersonnelRegistry", d.admin)
    governor = d.ensure("DaoGovernor", personnel, TYPE_CONFIGS)
    models = d.ensure("DaoModelRegistry", governor, MODEL_MAX_RETRIES)
    hardware = d.ensure("HardwareRegistry", governor, personnel, HARDWARE_FAILURE_LIMIT)
    credits = d.ensure("GasCredits", d.admin)
    issuer = d.ensure("OTKIssuer", governor, models, hardware, credits, OTK_LIFETIME)
    treasury = d.ensure("DaoTreasury", d.address("LoyalToken"), governor)

    reg = chain.contract("PersonnelRegistry")
    if chain.call(reg.functions.owner()) == d.admin:
        for addr, track, tier in genesis_members(chain.chain_id):
            if not chain.call(reg.functions.isActive(addr)):
                chain.transact(d.signer, reg.functions.admit(addr, track, tier, b"genesis".ljust(32, b"\0")))
        chain.transact(d.signer, reg.functions.transferOwnership(governor))

    gc = chain.contract("GasCredits")
    if chain.call(gc.functions.owner()) == d.admin:
        iss = chain.contract("OTKIssuer")
        chain.transact(d.signer, gc.functions.setSpender(issuer, True))
        chain.transact(d.signer, gc.functions.setPriceRule(chain.call(iss.functions.OP_OPEN_RUN()), *PRICE_OPEN_RUN))
        chain.transact(d.signer, gc.functions.setPriceRule(chain.call(iss.functions.OP_RATION()), *PRICE_RATION))
        chain.transact(d.signer, gc.functions.transferOwnership(governor))

    token = chain.contract("LoyalToken")
    if chain.chain_id == 31337 and chain.call(token.functions.balanceOf(treasury)) == 0:
        chain.transact(d.signer, token.functions.mint(treasury, TREASURY_DEV_FUNDS))
