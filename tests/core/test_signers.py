import json

import pytest

from common.errors import BadKeyFile
from agents.core.signers import dev_signer, load_keystore, save_keystore


def test_dev_signers_are_anvils_accounts():
    assert dev_signer(0).address == "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
    assert dev_signer(1).address == "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"


def test_keystore_round_trip_and_refuses_overwrite(tmp_path):
    p = save_keystore(dev_signer(3), tmp_path / "k.json", "pw")
    assert load_keystore(p, "pw").address == dev_signer(3).address
    with pytest.raises(BadKeyFile, match="already exists"):
        save_keystore(dev_signer(3), p, "pw")


@pytest.mark.parametrize("content,match", [
    (None, "does not exist"),
    ("not json", "is not a JSON keystore"),
    (json.dumps({"address": "00"}), "no 'crypto' section"),
])
def test_bad_key_files_are_one_line_errors(tmp_path, content, match):
    p = tmp_path / "k.json"
    if content is not None:
        p.write_text(content)
    with pytest.raises(BadKeyFile, match=match):
        load_keystore(p, "pw")


def test_wrong_password(tmp_path):
    p = save_keystore(dev_signer(4), tmp_path / "k.json", "right")
    with pytest.raises(BadKeyFile, match="wrong password"):
        load_keystore(p, "wrong")
