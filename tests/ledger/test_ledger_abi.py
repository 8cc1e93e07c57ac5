"""Immutability by enumeration: every state-changing function of TrainingLedger is one that
tests/ledger/TrainingLedger.t.sol::test_noFunctionModifiesARecordedOp calls after an op is recorded
and sealed (and checks the op and block root stay byte-identical). A new mutating function fails
this test until it is added there."""
from __future__ import annotations

import re
from pathlib import Path

from agents.core.artifacts import Artifacts

FORGE_TEST = Path(__file__).with_name("TrainingLedger.t.sol")


def test_every_mutating_function_is_exercised_by_the_immutability_test():
    abi = Artifacts().get("TrainingLedger").abi
    mutating = {f["name"] for f in abi if f["type"] == "function" and f["stateMutability"] not in ("view", "pure")}
    src = FORGE_TEST.read_text()
    body = src[src.index("function test_noFunctionModifiesARecordedOp"):]
    body = body[: body.index("\n    function ", 10)]
    called = set(re.findall(r"ledger\.(\w+)\(", body)) | ({"recordTraining"} if "_record(" in body else set())
    assert mutating == {
        "registerBaseModel", "forkModel", "setRecorder", "recordTraining", "sealBlock", "exportModel",
        "fundRewards", "setRewardPerOp", "grantRole", "revokeRole", "renounceRole",
        "submitRewardClaim", "finalizeRewardClaim", "rejectRewardClaim", "setQualityPolicy",
        "registerBlockKey", "submitBlockSignature", "forkFromExport",
    }
    assert mutating <= called, f"not exercised: {sorted(mutating - called)}"
