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
