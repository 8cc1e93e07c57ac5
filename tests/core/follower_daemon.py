"""A minimal daemon for the restart test: records every Staked event it handles in its cursor state.

Run as: python follower_daemon.py RPC_URL BOOK_PATH CURSOR_PATH
"""
import sys
import time

from agents.core.chain import Chain
from agents.core.events import EventCursor, EventFollower


def handle(ev, state):
    state.setdefault("seen", []).append([ev.block, ev.log_index, ev.args["amount"]])
    time.sleep(0.01)  # widen the window a SIGKILL can land in


if __name__ == "__main__":
    rpc, book, cursor = sys.argv[1:4]
    chain = Chain.connect(rpc, book_path=book)
    follower = EventFollower(chain, EventCursor.open(cursor), contracts=["Staking"], names=["Staked"])
    follower.run(handle, interval=0.02)
