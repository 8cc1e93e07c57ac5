"""`loyal events`: the suite's events, decoded for auditors (see audit.py for what is shown)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from common.config import configure

from .cli import BOOK, RPC, connect


def events(
    rpc: Optional[str] = RPC,
    contract: Optional[list[str]] = typer.Option(None, "--contract", "-c", help="address-book name; repeatable"),
    event: Optional[list[str]] = typer.Option(None, "--event", "-e", help="event name; repeatable"),
    where: Optional[list[str]] = typer.Option(
        None, "--where", "-w", help="NAME=VALUE: only events whose argument NAME is VALUE (taskId=3); repeatable"),
    from_block: int = typer.Option(0, "--from-block", min=0),
    to_block: Optional[int] = typer.Option(None, "--to-block", min=0),
    book: Optional[Path] = BOOK,
    follow: bool = typer.Option(False, "--follow", "-f", help="keep printing new events until Ctrl-C"),
    cursor: Optional[Path] = typer.Option(None, help="with --follow: resume from (and persist to) this cursor file"),
    as_json: bool = typer.Option(False, "--json", help="one JSON object per line (integers > 2^53-1 as strings)"),
):
    """Decode and print the suite's events for auditors: block time, LOYAL amounts, enum names, proposal calls."""
    from .audit import Auditor, Condition
    from .events import EventCursor, EventFollower, fetch_events

    def show(ev, _state=None):
        audited = auditor.audit(ev)
        if audited is None:
            return
        print(json.dumps(audited.to_json(), ensure_ascii=False) if as_json else audited.text(), flush=True)

    conditions = [Condition.parse(w) for w in where or ()]
    chain = connect(configure(rpc_url=rpc), book)
    auditor = Auditor(chain, conditions)
    auditor.check_book()
    auditor.check_where(contract, event)
    if follow:
        cur = EventCursor.open(cursor, start_block=from_block) if cursor else EventCursor(None, from_block - 1)
        try:
            EventFollower(chain, cur, contracts=contract, names=event).run(show)
        except KeyboardInterrupt:
            return
    for ev in fetch_events(chain, from_block=from_block, to_block=to_block, contracts=contract, names=event):
        show(ev)
