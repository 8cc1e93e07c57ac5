"""Event decoding for auditors and the resumable follower daemons rely on."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agents.core.events import EventCursor, EventFollower, fetch_events
from common.errors import ConfigError

HERE = Path(__file__).parent


def _stake(chain, who, amounts):
    token, staking = chain.contract("LoyalToken"), chain.contract("Staking")
    chain.transact(who, token.functions.approve(staking.address, sum(amounts)))
    for a in amounts:
        chain.transact(who, staking.functions.stake(a))


def test_fetch_filters_by_contract_event_and_range(chain, signers):
    start = chain.w3.eth.block_number + 1
    _stake(chain, signers[1], [5, 6, 7])
    evs = fetch_events(chain, from_block=start, names=["Staked"])
    assert [e.args["amount"] for e in evs] == [5, 6, 7]
    assert {e.contract for e in evs} == {"Staking"}
    only_token = fetch_events(chain, from_block=start, contracts=["LoyalToken"])
    assert {e.name for e in only_token} == {"Approval", "Transfer"}
    last_block = evs[-1].block
    assert [e.args["amount"] for e in fetch_events(chain, from_block=last_block, names=["Staked"])] == [7]


def test_fetch_rejects_unknown_contract_and_bad_range(chain):
    with pytest.raises(ConfigError, match="not in the address book"):
        fetch_events(chain, contracts=["Nope"])
    with pytest.raises(ConfigError, match="bad block range"):
        fetch_events(chain, from_block=10**9)


def test_follower_resumes_from_cursor_in_process(chain, signers, tmp_path):
    start = chain.w3.eth.block_number + 1
    _stake(chain, signers[1], [1, 2])
    cursor = EventCursor.open(tmp_path / "c.json", start_block=start)
    seen = []
    f = EventFollower(chain, cursor, contracts=["Staking"], names=["Staked"])
    assert f.poll(lambda ev, st: seen.append(ev.args["amount"])) == 2
    _stake(chain, signers[1], [3])
    f2 = EventFollower(chain, EventCursor.open(tmp_path / "c.json"), contracts=["Staking"], names=["Staked"])
    assert f2.poll(lambda ev, st: seen.append(ev.args["amount"])) == 1
    assert seen == [1, 2, 3]


def test_corrupt_cursor_file_is_a_clear_error(tmp_path):
    p = tmp_path / "c.json"
    p.write_text("{not json")
    with pytest.raises(ConfigError, match="cursor file .* is corrupt"):
        EventCursor.open(p)


@pytest.mark.slow
def test_daemon_killed_with_sigkill_misses_nothing_and_repeats_nothing(chain, signers, anvil, tmp_path):
    cursor_path = tmp_path / "cursor.json"
    start = chain.w3.eth.block_number + 1
    EventCursor.open(cursor_path, start_block=start).commit()  # the daemon starts at this block
    amounts = list(range(1, 61))
    env = dict(os.environ, PYTHONPATH=str(HERE.parents[1]))
    cmd = [sys.executable, str(HERE / "follower_daemon.py"), anvil.rpc_url, str(chain.book.path), str(cursor_path)]
    kills = 0
    for batch in range(6):  # stake while the daemon runs, kill it at a random-ish point, restart
        proc = subprocess.Popen(cmd, env=env)
        _stake(chain, signers[1], amounts[batch * 10:(batch + 1) * 10])
        time.sleep(0.05 + 0.03 * batch)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        kills += 1
    proc = subprocess.Popen(cmd, env=env)  # final run drains everything
    try:
        deadline = time.time() + 30
        while time.time() < deadline:
            seen = json.loads(cursor_path.read_text())["state"].get("seen", []) if cursor_path.exists() else []
            if len(seen) >= len(amounts):
                break
            time.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    seen = json.loads(cursor_path.read_text())["state"]["seen"]
    assert kills == 6
    assert [s[2] for s in seen] == amounts  # every event once, in order
    assert len({(s[0], s[1]) for s in seen}) == len(seen)
