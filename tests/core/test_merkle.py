"""common.merkle is OpenZeppelin's StandardMerkleTree: same roots and same proofs as the npm package
`@openzeppelin/merkle-tree` (run through node), for every leaf encoding Loyal uses, sorted and not."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from eth_utils import keccak

from common.merkle import StandardMerkleTree, leaf_hash, node_hash, process_proof, verify

REPO = Path(__file__).resolve().parents[2]
OZ_SCRIPT = Path(__file__).with_name("oz_merkle_tree.js")
COUNTS = [*range(1, 10), 16, 33]
ENCODINGS = {  # the leaves in use: usage batches, fingerprint pairs, training-ledger ops
    "usage": ("bytes32",),
    "fingerprint": ("bytes32", "bytes32"),
    "ledger_op": ("uint256", "bytes32"),
}


def _values(types: tuple[str, ...], n: int, tag: str) -> list[tuple]:
    def field(t: str, i: int, j: int):
        h = keccak(f"{tag}/{n}/{i}/{j}".encode())
        return h if t == "bytes32" else int.from_bytes(h[:4], "big") + i  # small, distinct-ish ids
    return [tuple(field(t, i, j) for j, t in enumerate(types)) for i in range(n)]


def _json_value(types, v):
    return [("0x" + x.hex()) if t == "bytes32" else str(x) for t, x in zip(types, v)]


def _oz(cases: list[dict]) -> list[dict]:
    node = shutil.which("node")
    assert node, "node is needed to run OpenZeppelin's @openzeppelin/merkle-tree (make setup installs it)"
    r = subprocess.run([node, str(OZ_SCRIPT)], input=json.dumps(cases), capture_output=True, text=True,
                       cwd=REPO, timeout=120)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


CASES = [(name, n, sort) for name in ENCODINGS for n in COUNTS for sort in (True, False)]


@pytest.fixture(scope="module")
def oz_answers() -> dict:
    inputs = [{"types": list(ENCODINGS[name]), "values": [_json_value(ENCODINGS[name], v)
                                                          for v in _values(ENCODINGS[name], n, name)],
               "sortLeaves": sort} for name, n, sort in CASES]
    return dict(zip(CASES, _oz(inputs)))


@pytest.mark.parametrize("name,n,sort", CASES, ids=[f"{a}-n{b}-{'sorted' if c else 'unsorted'}" for a, b, c in CASES])
def test_root_and_every_proof_match_openzeppelin(oz_answers, name, n, sort):
    types = ENCODINGS[name]
    values = _values(types, n, name)
    tree = StandardMerkleTree.of(values, types, sort_leaves=sort)
    oz = oz_answers[(name, n, sort)]
    assert "0x" + tree.root.hex() == oz["root"]
    assert len(tree.tree) == 2 * n - 1
    for i, v in enumerate(values):
        proof = tree.proof(i)
        assert ["0x" + p.hex() for p in proof] == oz["proofs"][i], f"proof of leaf {i}"
        assert tree.proof(v) == proof
        assert tree.verify(i, proof) and verify(tree.root, types, v, proof)


def test_odd_count_is_not_the_promote_the_odd_node_tree():
    """n=5 unsorted: OZ pairs leaf 4 with the (0,1) node, not carried up alone (what OpMerkle did)."""
    types = ("uint256", "bytes32")
    values = _values(types, 5, "shape")
    leaves = [leaf_hash(types, v) for v in values]
    oz_root = node_hash(node_hash(leaves[2], leaves[3]), node_hash(leaves[4], node_hash(leaves[0], leaves[1])))
    promoted_root = node_hash(node_hash(node_hash(leaves[0], leaves[1]), node_hash(leaves[2], leaves[3])), leaves[4])
    root = StandardMerkleTree.of(values, types, sort_leaves=False).root
    assert root == oz_root and root != promoted_root


def test_unsorted_keeps_order_sorted_does_not_depend_on_it():
    types = ("bytes32",)
    values = _values(types, 7, "order")
    assert StandardMerkleTree.of(values, types).root == StandardMerkleTree.of(values[::-1], types).root
    assert (StandardMerkleTree.of(values, types, sort_leaves=False).root
            != StandardMerkleTree.of(values[::-1], types, sort_leaves=False).root)


def test_forged_values_and_proofs_fail():
    types = ("uint256", "bytes32")
    values = _values(types, 6, "forge")
    tree = StandardMerkleTree.of(values, types)
    proof = tree.proof(2)
    assert tree.verify(2, proof)
    assert not verify(tree.root, types, (values[2][0] + 1, values[2][1]), proof), "altered value"
    assert not tree.verify(3, proof), "another leaf's proof"
    assert not tree.verify(2, proof[:-1]), "truncated proof"
    assert not tree.verify(2, [keccak(b"x")] + proof[1:]), "altered sibling"
    inner = node_hash(leaf_hash(types, values[2]), proof[0])
    assert process_proof(inner, proof[1:]) == tree.root
    assert not verify(tree.root, ("bytes32",), (inner,), proof[1:]), "an inner node never passes as a leaf"
    with pytest.raises(KeyError):
        tree.proof((1, keccak(b"not a leaf")))
    with pytest.raises(IndexError):
        tree.proof(6)


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="at least one leaf"):
        StandardMerkleTree.of([], ("bytes32",))
    with pytest.raises(ValueError, match="2 fields"):
        StandardMerkleTree.of([(keccak(b"a"),)], ("bytes32", "bytes32"))
