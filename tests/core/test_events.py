"""Event decoding for auditors and the resumable follower daemons rely on."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agents.core.events import IDLE_WRITE_BLOCKS, EventCursor, EventFollower, LogSource, fetch_events
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


def test_followers_of_one_process_share_one_fetch_per_block_range(chain, signers):
    start = chain.w3.eth.block_number + 1
    _stake(chain, signers[1], [4, 5, 6])
    followers = [EventFollower(chain, EventCursor(None, start - 1), contracts=["Staking"], names=["Staked"])
                 for _ in range(5)]
    source = LogSource.of(chain)
    assert all(f.source is source for f in followers)
    fetched = source.fetched_ranges
    seen = [[] for _ in followers]
    for f, mine in zip(followers, seen):
        assert f.poll(lambda ev, st: mine.append(ev.args["amount"])) == 3
    assert seen == [[4, 5, 6]] * 5
    assert source.fetched_ranges == fetched + 1  # one eth_getLogs for all five


class CountingCursor(EventCursor):
    """The real cursor, counting its file writes."""
    writes = 0

    def commit(self) -> None:
        self.writes += 1
        super().commit()


def test_cursor_is_written_once_per_range_and_not_when_idle(chain, signers, tmp_path):
    start = chain.w3.eth.block_number + 1
    path = tmp_path / "c.json"
    cursor = CountingCursor(path, start - 1)
    f = EventFollower(chain, cursor, contracts=["Staking"], names=["Staked"])
    assert f.poll(lambda ev, st: None) == 0 and not path.exists()  # nothing handled: nothing written
    _stake(chain, signers[1], [1, 2, 3])
    assert f.poll(lambda ev, st: st.setdefault("amounts", []).append(ev.args["amount"])) == 3
    assert cursor.writes == 1  # three events, one write
    on_disk = json.loads(path.read_text())
    assert on_disk["state"]["amounts"] == [1, 2, 3] and on_disk["scanned_to"] == chain.w3.eth.block_number
    chain.mine(IDLE_WRITE_BLOCKS - 1)
    assert f.poll(lambda ev, st: None) == 0 and cursor.writes == 1
    chain.mine(1)
    assert f.poll(lambda ev, st: None) == 0 and cursor.writes == 2  # bounded rescan after a restart
    assert json.loads(path.read_text())["scanned_to"] == chain.w3.eth.block_number


def test_handler_failure_redelivers_only_the_failed_event(chain, signers):
    start = chain.w3.eth.block_number + 1
    _stake(chain, signers[1], [1, 2, 3])
    f = EventFollower(chain, EventCursor(None, start - 1), contracts=["Staking"], names=["Staked"])
    seen, failed = [], []

    def handle(ev, st):
        if ev.args["amount"] == 2 and not failed:
            failed.append(2)
            raise RuntimeError("handler failed")
        seen.append(ev.args["amount"])

    with pytest.raises(RuntimeError):
        f.poll(handle)
    assert f.poll(handle) == 2
    assert seen == [1, 2, 3]


def test_shared_source_forgets_blocks_of_a_reverted_chain(chain, signers):
    start = chain.w3.eth.block_number + 1
    snap = chain.snapshot()
    _stake(chain, signers[1], [7])
    first = EventFollower(chain, EventCursor(None, start - 1), contracts=["Staking"], names=["Staked"])
    assert first.poll(lambda ev, st: None) == 1
    chain.revert_to(snap)
    _stake(chain, signers[1], [8])  # the same block numbers, other blocks
    seen = []
    again = EventFollower(chain, EventCursor(None, start - 1), contracts=["Staking"], names=["Staked"])
    again.poll(lambda ev, st: seen.append(ev.args["amount"]))
    assert seen == [8]
    assert first.cursor.scanned_to >= start  # the first follower is alive and still pins those blocks


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
