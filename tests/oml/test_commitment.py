import pytest

from ml.oml.commitment import FingerprintTree, leaf, verify


@pytest.mark.parametrize("n", [1, 2, 3, 7, 64])
def test_every_pair_proves_against_root(n):
    pairs = [(f"key {i}", f"resp {i}") for i in range(n)]
    tree = FingerprintTree(pairs)
    for k, r in pairs:
        assert verify(tree.proof(k, r), tree.root, k, r)


def test_foreign_pair_does_not_prove():
    pairs = [(f"key {i}", f"resp {i}") for i in range(5)]
    tree = FingerprintTree(pairs)
    proof = tree.proof("key 1", "resp 1")
    assert not verify(proof, tree.root, "key 1", "resp 2")
    with pytest.raises(KeyError):
        tree.proof("key 1", "resp 2")


def test_root_is_order_independent_and_rejects_empty_or_duplicates():
    pairs = [(f"k{i}", f"r{i}") for i in range(6)]
    assert FingerprintTree(pairs).root == FingerprintTree(pairs[::-1]).root
    with pytest.raises(ValueError):
        FingerprintTree([])
    with pytest.raises(ValueError):
        FingerprintTree([("a", "b"), ("a", "b")])


def test_leaf_is_double_hashed_abi_pair():
    from eth_abi import encode
    from eth_utils import keccak

    assert leaf("a", "b") == keccak(keccak(encode(["bytes32", "bytes32"], [keccak(b"a"), keccak(b"b")])))
