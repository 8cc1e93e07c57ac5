"""The auditors' declared tables stay true to the compiled contracts (no chain needed)."""
import pytest

from agents.core.artifacts import Artifacts
from agents.core.audit import ENUM_ARGS, TOKEN_AMOUNTS, json_safe
from common.units import format_amount
from agents.core.enums import EnumNames, enum_type


@pytest.fixture(scope="module")
def artifacts():
    return Artifacts()


def _paths(inputs, prefix=""):
    for i in inputs:
        yield prefix + i["name"], i
        if i["type"] == "tuple":
            yield from _paths(i["components"], prefix + i["name"] + ".")


@pytest.mark.parametrize("contract", sorted(TOKEN_AMOUNTS))
def test_every_declared_token_amount_is_a_uint_argument_of_the_contract(artifacts, contract):
    members = {i["name"]: dict(_paths(i["inputs"]))
               for i in artifacts.get(contract).abi if i["type"] in ("event", "function")}
    for member, names in TOKEN_AMOUNTS[contract].items():
        assert member in members, f"{contract} has no event or function {member}"
        for name in names:
            assert members[member].get(name, {}).get("type") == "uint256", f"{contract}.{member}.{name}: not uint256"


@pytest.mark.parametrize("contract", sorted(ENUM_ARGS))
def test_every_declared_enum_argument_exists_and_its_enum_is_found(artifacts, contract):
    enums = EnumNames(artifacts)
    events = {i["name"]: dict(_paths(i["inputs"])) for i in artifacts.get(contract).abi if i["type"] == "event"}
    for event, args in ENUM_ARGS[contract].items():
        for name, qualified in args.items():
            assert events[event][name]["type"] == "uint8"
            assert enums.members(qualified)


def test_every_enum_in_the_suite_abis_is_named_and_matches_the_python_mirrors(artifacts):
    from agents.din.contracts import Stage
    from agents.oml.claims import ClaimStatus

    enums = EnumNames(artifacts)
    found = {q for name in artifacts.names() for item in artifacts.get(name).abi
             for _, i in _paths(item.get("inputs", []) + item.get("outputs", []))
             if (q := enum_type(i.get("internalType")))}
    assert {"OTKIssuer.HaltReason", "PersonnelRegistry.Track", "DaoGovernor.ProposalType", "Claims.Status"} <= found
    for q in found:
        assert enums.members(q), q
    from agents.dao.datacenter import HALT_REASONS, SCOPES

    assert enums.members("OTKIssuer.HaltReason") == list(HALT_REASONS)
    assert [n.lower() for n in enums.members("DaoModelRegistry.Scope")] == list(SCOPES)
    assert [n.upper() for n in enums.members("Claims.Status")] == [s.name for s in ClaimStatus]
    assert enums.members("DinTasks.Stage") == [s.name for s in Stage if s >= 0]
    assert enums.members("IGovernor.ProposalState")[-1] == "Executed"  # OZ source, through node_modules


def test_loyal_is_exact_and_json_keeps_big_integers_as_strings():
    loyal = lambda wei: format_amount(wei, "")  # noqa: E731
    assert loyal(1_500_000_000_000_000_000) == "1.5" and loyal(10**27) == "1000000000"
    assert loyal(1) == "0." + "0" * 17 + "1" and loyal(0) == "0"
    assert json_safe({"a": 2**53 - 1, "b": 2**53, "c": [b"\x01", True, -(2**60)]}) == \
        {"a": 2**53 - 1, "b": str(2**53), "c": ["0x01", True, str(-(2**60))]}
