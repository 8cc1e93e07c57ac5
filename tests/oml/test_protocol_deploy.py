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
