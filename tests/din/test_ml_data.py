"""Data: deterministic non-IID shards, the owner's test set and its on-chain commitment."""
import numpy as np
import pytest
from eth_utils import keccak

from ml.din import data


def test_split_is_deterministic_and_seed_dependent():
    a, b, c = data.split(20, seed=4), data.split(20, seed=4), data.split(20, seed=5)
    assert a.test.to_bytes() == b.test.to_bytes()
    assert [s.to_bytes() for s in a.shards] == [s.to_bytes() for s in b.shards]
    assert [s.to_bytes() for s in a.shards] != [s.to_bytes() for s in c.shards]


def test_shards_partition_the_training_pool_and_are_non_iid():
    sp = data.split(20, seed=1, min_size=5)
    full = data.load()
    rows = lambda s: {r.tobytes() + bytes([int(y)]) for r, y in zip(s.x, s.y)}
    parts = [rows(s) for s in sp.shards] + [rows(sp.test)]
    assert sum(len(s) for s in sp.shards) + len(sp.test) == len(full)
    assert min(len(s) for s in sp.shards) >= 5
    assert len(set().union(*parts)) == sum(len(p) for p in parts)  # pairwise disjoint
    # every class is in the test set, about 20% of it
    counts = np.bincount(sp.test.y, minlength=10)
    assert np.all(np.abs(counts / np.bincount(full.y, minlength=10) - 0.2) < 0.01)
    # label mixes differ strongly between shards (IID shards would all be ~10% per class)
    mixes = np.array([np.bincount(s.y, minlength=10) / len(s) for s in sp.shards])
    assert mixes.max() > 0.4


def test_test_set_commitment_binds_the_exact_test_set():
    sp = data.split(10, seed=0)
    blob = sp.test.to_bytes()
    com = data.test_set_commitment(sp.test)
    assert len(com) == 32 and com == keccak(blob)
    back = data.Shard.from_bytes(blob)
    assert data.test_set_commitment(back) == com
    y = sp.test.y.copy()
    y[0] = (y[0] + 1) % 10
    assert data.test_set_commitment(data.Shard(sp.test.x, y)) != com
    with pytest.raises(ValueError, match="wrong length"):
        data.Shard.from_bytes(blob[:-1])


def test_flip_labels_inverts_every_label_only():
    s = data.split(5, seed=0).shards[0]
    f = data.flip_labels(s)
    assert np.array_equal(f.x, s.x) and np.array_equal(f.y, 9 - s.y)


def test_impossible_split_is_refused():
    with pytest.raises(ValueError, match="do not fit"):
        data.split(1000, min_size=5)
