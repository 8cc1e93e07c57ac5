"""The deploy hook wires the OML suite on a real Anvil."""
from __future__ import annotations

from agents.core.deploy import deploy_suite
from agents.oml import deploy as oml_deploy


def test_suite_deploys_oml_and_grants_claims_the_module_role(chain, signers):
    staking = chain.contract("Staking")
    claims = chain.contract("Claims")
    role = chain.call(staking.functions.MODULE_ROLE())
    assert chain.call(staking.functions.hasRole(role, claims.address))
    assert chain.call(claims.functions.usage()) == chain.contract("UsageLedger").address
    assert chain.call(claims.functions.claimBond()) == oml_deploy.CLAIM_BOND
    assert chain.call(chain.contract("UsageLedger").functions.permissionTtl()) == oml_deploy.PERMISSION_TTL


def test_redeploy_is_a_noop(chain, signers):
    d = deploy_suite(chain, signers[0])
    assert not any(name in d.deployed for name in oml_deploy.CONTRACTS)


def test_agreements_lock_host_stake_for_the_licence(oml):
    from common.errors import Reverted
    import pytest

    chain, staking = oml.chain, oml.chain.contract("Staking")
    agreements = chain.contract("HostAgreements")
    assert chain.call(staking.functions.hasRole(chain.call(staking.functions.LOCKER_ROLE()), agreements.address))
    assert chain.call(staking.functions.lockedOf(oml.honest.address)) == 500 * 10**18
    with pytest.raises(Reverted.named("StakeIsLocked")):
        chain.transact(oml.honest, staking.functions.requestUnstake(1))
    with pytest.raises(Reverted.named("LicenceStillActive")):
        chain.transact(oml.honest, agreements.functions.release(oml.model_id, oml.honest.address))
    chain.advance_time(30 * 24 * 3600)
    chain.transact(oml.prover, agreements.functions.release(oml.model_id, oml.honest.address))
    chain.transact(oml.honest, staking.functions.requestUnstake(500 * 10**18))
    assert chain.call(staking.functions.stakeOf(oml.honest.address)) == 0


def test_suite_wires_appeals_and_lineage_claims(chain):
    """ClaimAppeals is Claims' hook and a Staking module, bound to the DAO governor, whose Safety
    proposals (and no other type) may call its `decide`; LineageClaims is a Staking module with m."""
    from agents.dao.deploy import allowed_types, selector

    staking, claims = chain.contract("Staking"), chain.contract("Claims")
    appeals, lineage = chain.contract("ClaimAppeals"), chain.contract("LineageClaims")
    module = chain.call(staking.functions.MODULE_ROLE())
    assert chain.call(claims.functions.appeals()) == appeals.address
    assert chain.call(staking.functions.hasRole(module, appeals.address))
    assert chain.call(staking.functions.hasRole(module, lineage.address))
    assert chain.call(appeals.functions.governor()) == chain.contract("DaoGovernor").address
    assert chain.call(appeals.functions.bond()) == oml_deploy.APPEAL_BOND
    assert chain.call(appeals.functions.appealWindow()) == oml_deploy.APPEAL_WINDOW
    assert chain.call(lineage.functions.minMatches()) == oml_deploy.LINEAGE_MIN_MATCHES
    assert chain.call(lineage.functions.claims()) == claims.address
    assert allowed_types(chain, appeals.address, selector(chain, "ClaimAppeals", "decide")) == ["Safety"]
