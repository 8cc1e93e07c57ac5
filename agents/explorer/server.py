"""The explorer's web app: FastAPI routes rendering Jinja2 templates from index rows.

Read-only from the index, except two live reads: the chain head (each page says how far behind
the index is) and, for a ballot, the voter's governor nonce; and one write: a relayed ballot
(ballot.py). Unknown ids and malformed ones get a 404 page, never a traceback.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path
from urllib.parse import parse_qs, quote

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from sqlalchemy.engine import Engine
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from agents.core.chain import Chain
from common.errors import LoyalError

from . import plots
from .ballot import BallotRefused, Relay, parse_ballot, support_of, voter_of
from .links import Linker, date, loyal
from .pages import dao, din, ledger, oml, overview
from .rows import Rows

HERE = Path(__file__).resolve().parent
log = logging.getLogger("loyal.explorer")


class NotFound(Exception):
    def __init__(self, what: str):
        self.what = what


def create_app(chain: Chain, engine: Engine, *, relayer=None, din_reports: Path | None = None) -> FastAPI:
    app = FastAPI(title="Loyal explorer", docs_url=None, redoc_url=None, openapi_url=None)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    templates = Jinja2Templates(directory=HERE / "templates")
    book = {n: e["address"] for n, e in chain.book.contracts.items()}
    linker = Linker(book)
    relay = Relay(chain, relayer)
    env = templates.env
    env.globals.update(L=linker, date=date, loyal=loyal, book=book, relaying=relayer is not None,
                       json=lambda v: json.dumps(v, indent=2))

    def status(rows: Rows) -> dict:
        cur = rows.cursor()
        try:
            head = chain.w3.eth.block_number
        except Exception:  # the node is down: the pages still render from the index
            head = None
        indexed = cur.scanned_to if cur else -1
        return {"indexed": indexed, "head": head, "behind": None if head is None else max(0, head - indexed),
                "tip_time": cur.tip_time if cur else None, "chain_id": chain.chain_id}

    def page(request: Request, name: str, code: int = 200, **ctx) -> HTMLResponse:
        with engine.connect() as conn:
            st = status(Rows(conn))
        return templates.TemplateResponse(request, name, {"status": st, **ctx}, status_code=code)

    def rows_of(fn):
        with engine.connect() as conn:
            return fn(Rows(conn))

    def num(text: str, what: str) -> int:
        if not text.isdigit():
            raise NotFound(f"{what} {text}")
        return int(text)

    @app.exception_handler(NotFound)
    async def not_found(request: Request, exc: NotFound):
        return page(request, "not_found.html", 404, what=exc.what)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        if exc.status_code == 404:
            return page(request, "not_found.html", 404, what=request.url.path)
        return page(request, "error.html", exc.status_code, message=str(exc.detail))

    # -- overview and generic lists ----------------------------------------------------------
    @app.get("/", response_class=HTMLResponse)
    def home(request: Request):
        def build(rows: Rows):
            return {"counts": rows.counts(), "recent": rows.events(limit=40, newest_first=True),
                    "stakes": overview.stakes(rows), "slashes": overview.slashes_by_module(rows)}
        return page(request, "overview.html", **rows_of(build))

    @app.get("/contract/{name}", response_class=HTMLResponse)
    def contract(request: Request, name: str):
        if name not in book:
            raise NotFound(f"contract {name}")
        evs = rows_of(lambda r: r.events(name, limit=300, newest_first=True))
        return page(request, "events.html", title=f"{name} at {book[name]}", events=evs, address=book[name])

    @app.get("/events", response_class=HTMLResponse)
    def events(request: Request, contract: str | None = None, event: str | None = None, subject: str | None = None,
               q: str | None = None, arg: str | None = None, value: str | None = None):
        """Events by contract, name, subject, an argument's value (`arg`, `value`) or text (`q`)."""
        def build(rows: Rows):
            if q:
                found = [r for r in rows.mentioning(q) if (contract is None or r.contract == contract)
                         and (event is None or r.event == event)]
            else:
                found = rows.events(contract, event, subject, limit=None if arg else 500, newest_first=True)
            if arg:
                found = [r for r in found if str(r.args.get(arg, "")).lower() == (value or "").lower()][:500]
            return found
        shown = [contract, event, f"#{subject}" if subject else None, f"{arg}={value}" if arg else None, q]
        return page(request, "events.html", title=" ".join(x for x in shown if x) or "all events", events=rows_of(build))

    @app.get("/account/{address}", response_class=HTMLResponse)
    def account(request: Request, address: str):
        try:
            a = voter_of(address)
        except BallotRefused:
            raise NotFound(f"account {address}") from None
        evs = rows_of(lambda r: r.mentioning(a))
        return page(request, "events.html", title=f"account {a}", events=evs, address=a)

    @app.get("/tx/{tx}", response_class=HTMLResponse)
    def transaction(request: Request, tx: str):
        evs = rows_of(lambda r: r.events(tx=tx))
        if not evs:
            raise NotFound(f"transaction {tx} (no suite event in the index)")
        return page(request, "events.html", title=f"transaction {tx}", events=evs)

    @app.get("/block/{number}", response_class=HTMLResponse)
    def block(request: Request, number: str):
        evs = rows_of(lambda r: r.events(block=num(number, "block")))
        return page(request, "events.html", title=f"block {number}", events=evs)

    @app.get("/cid/{cid}", response_class=HTMLResponse)
    def cid(request: Request, cid: str):
        evs = rows_of(lambda r: r.mentioning(cid))
        if not evs:
            raise NotFound(f"CID {cid} (no indexed event names it)")
        return page(request, "events.html", title=f"CID {cid}", events=evs, cid=cid)

    # -- DIN ---------------------------------------------------------------------------------
    @app.get("/din", response_class=HTMLResponse)
    def din_tasks(request: Request):
        return page(request, "din_tasks.html", tasks=rows_of(din.tasks))

    def din_task_of(task_id: str) -> din.Task:
        t = rows_of(lambda r: din.task(r, num(task_id, "DIN task"), din_reports))
        if t is None:
            raise NotFound(f"DIN task {task_id}")
        return t

    @app.get("/din/task/{task_id}", response_class=HTMLResponse)
    def din_task(request: Request, task_id: str):
        return page(request, "din_task.html", t=din_task_of(task_id))

    plot_cache: dict[str, tuple[int, str]] = {}  # task -> (index position drawn at, SVG)

    @app.get("/din/task/{task_id}/plot.svg")
    def din_plot(task_id: str):
        at = rows_of(lambda r: r.cursor().scanned_to)
        cached = plot_cache.get(task_id)
        if cached is None or cached[0] != at:  # redrawn only when the index has moved
            cached = plot_cache[task_id] = (at, plots.din_task_svg(din_task_of(task_id)))
        return Response(cached[1], media_type="image/svg+xml")

    # -- DAO ---------------------------------------------------------------------------------
    def now() -> int | None:
        return rows_of(lambda r: (r.cursor() or None) and r.cursor().tip_time)

    @app.get("/dao", response_class=HTMLResponse)
    def dao_home(request: Request):
        t = now()
        return page(request, "dao.html", proposals=rows_of(lambda r: dao.proposals(r, t)),
                    models=rows_of(dao.models), hardware=rows_of(dao.hardware), runs=rows_of(dao.runs))

    def proposal_of(pid: str) -> dao.Proposal:
        num(pid, "proposal")
        p = rows_of(lambda r: dao.proposal(r, pid, now()))
        if p is None:
            raise NotFound(f"proposal {pid}")
        return p

    @app.get("/dao/proposal/{pid}", response_class=HTMLResponse)
    def dao_proposal(request: Request, pid: str, relayed: str | None = None, refused: str | None = None):
        return page(request, "dao_proposal.html", p=proposal_of(pid), relayed=relayed, refused=refused)

    @app.get("/dao/proposal/{pid}/ballot", response_class=HTMLResponse)
    def dao_ballot(request: Request, pid: str, voter: str = "", support: str = "for"):
        p = proposal_of(pid)
        try:
            v, s = voter_of(voter), support_of(support)
        except BallotRefused as e:
            return page(request, "dao_proposal.html", 400, p=p, refused=str(e))
        data = relay.typed_data(int(pid), v, s)
        return page(request, "dao_ballot.html", p=p, typed=data, voter=v, support=s)

    @app.post("/dao/proposal/{pid}/ballot")
    async def dao_relay(request: Request, pid: str):
        p = proposal_of(pid)
        form = {k: v[-1] for k, v in parse_qs((await request.body()).decode(errors="replace")).items()}
        try:
            tx = await run_in_threadpool(relay.relay, parse_ballot(int(pid), form))
        except BallotRefused as e:
            log.info("ballot for proposal %s refused: %s", p.short_id, e)
            return page(request, "dao_proposal.html", 400, p=p, refused=str(e))
        except LoyalError as e:  # node down, relayer out of gas: not the voter's fault, still one line
            return page(request, "dao_proposal.html", 503, p=p, refused=f"could not relay: {e}")
        log.info("relayed a ballot for proposal %s in %s", p.short_id, tx)
        return RedirectResponse(f"/dao/proposal/{pid}?relayed={quote(tx)}", status_code=303)

    def thing_page(request: Request, kind: str, things, thing_id: str, template: str):
        i = num(thing_id, kind)
        found = next((t for t in rows_of(things) if (t.thing.id if hasattr(t, "thing") else t.id) == i), None)
        if found is None:
            raise NotFound(f"{kind} {thing_id}")
        return page(request, template, x=found, kind=kind)

    @app.get("/dao/model/{i}", response_class=HTMLResponse)
    def dao_model(request: Request, i: str):
        return thing_page(request, "DAO model", dao.models, i, "dao_thing.html")

    @app.get("/dao/hardware/{i}", response_class=HTMLResponse)
    def dao_hardware(request: Request, i: str):
        return thing_page(request, "hardware", dao.hardware, i, "dao_thing.html")

    @app.get("/dao/run/{i}", response_class=HTMLResponse)
    def dao_run(request: Request, i: str):
        return thing_page(request, "OTK run", dao.runs, i, "dao_run.html")

    # -- OML ---------------------------------------------------------------------------------
    @app.get("/oml", response_class=HTMLResponse)
    def oml_home(request: Request):
        return page(request, "oml.html", models=rows_of(oml.models), claims=rows_of(oml.claims))

    @app.get("/oml/model/{i}", response_class=HTMLResponse)
    def oml_model(request: Request, i: str):
        m = rows_of(lambda r: oml.model(r, num(i, "OML model")))
        if m is None:
            raise NotFound(f"OML model {i}")
        return page(request, "oml_model.html", m=m)

    @app.get("/oml/claim/{i}", response_class=HTMLResponse)
    def oml_claim(request: Request, i: str):
        c = rows_of(lambda r: oml.claim(r, num(i, "claim")))
        if c is None:
            raise NotFound(f"claim {i}")
        return page(request, "oml_claim.html", c=c)

    # -- ledger ------------------------------------------------------------------------------
    @app.get("/ledger", response_class=HTMLResponse)
    def ledger_home(request: Request):
        return page(request, "ledger.html", lg=rows_of(ledger.ledger))

    @app.get("/ledger/fork/{i}", response_class=HTMLResponse)
    def ledger_fork(request: Request, i: str):
        lg = rows_of(ledger.ledger)
        f = next((f for f in lg.forks if f.id == num(i, "fork")), None)
        if f is None:
            raise NotFound(f"fork {i}")
        return page(request, "ledger_fork.html", f=f, lg=lg)

    @app.get("/ledger/base/{i}", response_class=HTMLResponse)
    def ledger_base(request: Request, i: str):
        n = num(i, "base model")
        evs = rows_of(lambda r: [e for e in r.events("TrainingLedger", ("BaseModelRegistered", "ModelForked"))
                                 if int(e.args.get("baseModelId", -1)) == n])
        if not evs:
            raise NotFound(f"base model {i}")
        return page(request, "events.html", title=f"base model {i} and its forks", events=evs)

    return app


class Server:
    """uvicorn serving the app in a thread (and, optionally, the indexer in another)."""

    def __init__(self, app: FastAPI, host: str, port: int, index=None, poll: float = 1.0):
        import uvicorn

        self.config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off", ws="none")
        self.server = uvicorn.Server(self.config)
        self.index, self.poll = index, poll
        self.stop_event = threading.Event()
        self.threads: list[threading.Thread] = []

    @property
    def url(self) -> str:
        sock = self.server.servers[0].sockets[0]
        host, port = sock.getsockname()[:2]
        return f"http://{host}:{port}"

    def start(self) -> "Server":
        if self.index is not None:
            self.threads.append(threading.Thread(target=self._follow, name="index", daemon=True))
        self.threads.append(threading.Thread(target=self.server.run, name="http", daemon=True))
        for t in self.threads:
            t.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.threads[-1].is_alive():
                raise LoyalError(f"the explorer could not listen on {self.config.host}:{self.config.port}")
            time.sleep(0.02)
        return self

    def _follow(self) -> None:
        from agents.core.daemon import run_daemon

        def step() -> int:
            if self.stop_event.is_set():
                raise _Stop
            return self.index.step()

        try:
            run_daemon(step, log=logging.getLogger("loyal.index"), poll=self.poll,
                       sleep=lambda s: self.stop_event.wait(s))
        except _Stop:
            pass
        except LoyalError as e:
            log.error("the indexer stopped: %s", e)
        except Exception:  # a bug: the pages keep serving and say how far behind they fall
            log.exception("the indexer stopped")

    def stop(self) -> None:
        self.stop_event.set()
        self.server.should_exit = True
        for t in self.threads:
            t.join(timeout=10)


class _Stop(Exception):
    pass


DEVNET_RELAYER = 63  # dev account that relays ballots on `loyal devnet --explorer` (no scenario uses it)


def start_devnet_explorer(chain: Chain, scratch: Path, settings, port: int = 0) -> Server:
    """`loyal devnet --keep --explorer`: a fresh index of the devnet in its scratch folder, followed in
    a thread, and the pages (DIN owners' accuracy reports from the scenario, ballots relayed by a dev
    account) on a free port."""
    from agents.core.signers import dev_signer

    from .db import connect_db
    from .index import EventIndex

    db_file = Path(scratch) / "index.sqlite"
    for f in (db_file, Path(f"{db_file}-wal"), Path(f"{db_file}-shm")):
        f.unlink(missing_ok=True)  # a new devnet is a new chain
    engine = connect_db(f"sqlite:///{db_file.resolve()}")
    idx = EventIndex(chain, engine)
    idx.catch_up()
    reports = Path(scratch) / "din"
    app = create_app(chain, engine, relayer=dev_signer(DEVNET_RELAYER), din_reports=reports if reports.is_dir() else None)
    return Server(app, "127.0.0.1", port, index=idx, poll=settings.poll).start()


def serve(chain: Chain, engine: Engine, settings, *, host: str, port: int, index=None, relayer=None,
          din_reports: Path | None = None, on_start=None) -> None:
    """Serve until Ctrl-C (or SIGTERM)."""
    app = create_app(chain, engine, relayer=relayer, din_reports=din_reports)
    srv = Server(app, host, port, index=index, poll=settings.poll).start()
    try:
        print(f"explorer at {srv.url}/ (index of chain {chain.chain_id}); Ctrl-C stops it", flush=True)
        if on_start:
            on_start(srv)
        while all(t.is_alive() for t in srv.threads):
            time.sleep(0.5)
    finally:
        srv.stop()
