"""`loyal ledger`: per-user model forks and their immutable training ops."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from agents.core.cli import BOOK, DEV_ACCOUNT, KEYSTORE, RPC, connect, require_suite, signer
from common.config import Settings, configure
from common.errors import ConfigError

app = typer.Typer(help="Immutable training ledger: fork a base model (or a fork), train it op by op, sign blocks, "
                       "verify, claim quality-attested rewards.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
out = Console()


class Opts:
    """The group's options, resolved against the configuration when a command runs."""

    def __init__(self, rpc, book, keystore, dev_account, key_file, block_key_file, store_dir):
        self.rpc, self.book, self.keystore, self.dev_account = rpc, book, keystore, dev_account
        self.key_file, self.block_key_file, self.store_dir = key_file, block_key_file, store_dir
        self._settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = configure(rpc_url=self.rpc)
        return self._settings

    def chain(self):
        chain = connect(self.settings, self.book)
        require_suite(chain)
        return chain

    def signer(self, chain):
        return signer(chain, self.settings, self.keystore, self.dev_account, default_dev=0)

    def key_path(self, address: str) -> Path:
        return self.key_file or self.settings.home / "ledger" / "keys" / f"{address.lower()}.key"

    def block_key_path(self, address: str) -> Path:
        return self.block_key_file or self.settings.home / "ledger" / "keys" / f"{address.lower()}.mldsa65"

    def agent(self, need_key: bool = True, need_block_key: bool = False):
        from agents.core.store import open_store
        from agents.ledger.agent import UserAgent
        from ml.ledger.blocksig import BlockSigningKey
        from ml.ledger.crypto import UserKey

        chain = self.chain()
        who = self.signer(chain)
        store = open_store(root=self.store_dir) if self.store_dir else open_store()
        key = UserKey.load(self.key_path(who.address)) if need_key else None
        block_key = BlockSigningKey.load(self.block_key_path(who.address)) if need_block_key else None
        return UserAgent(chain, who, store, key, self.settings.home / "ledger", block_key=block_key)


_opts: Opts | None = None


@app.callback()
def main(
    rpc: Optional[str] = RPC,
    book: Optional[Path] = BOOK,
    keystore: Optional[str] = KEYSTORE,
    dev_account: Optional[int] = DEV_ACCOUNT,
    key_file: Optional[Path] = typer.Option(None, "--key-file", help="ledger key (default <home>/ledger/keys/<address>.key)"),
    block_key_file: Optional[Path] = typer.Option(None, "--block-key-file",
                                                  help="ML-DSA-65 block-signing key (default <home>/ledger/keys/<address>.mldsa65)"),
    store_dir: Optional[Path] = typer.Option(None, "--store", help="local content store dir (default: ipfs_api or <home>/store)"),
):
    global _opts
    _opts = Opts(rpc, book, keystore, dev_account, key_file, block_key_file, store_dir)


def _emit(data: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(data, default=str))
    else:
        for k, v in data.items():
            out.print(f"{k:18} {v}", highlight=False)


@app.command()
def keygen():
    """Create the signer's ledger key (32 random bytes) and ML-DSA-65 block-signing key pair (files,
    mode 0600), whichever is missing. Neither secret leaves this machine."""
    from ml.ledger.blocksig import BlockSigningKey
    from ml.ledger.crypto import UserKey

    chain = _opts.chain()
    who = _opts.signer(chain).address
    path, block_path = _opts.key_path(who), _opts.block_key_path(who)
    if path.exists() and block_path.exists():
        raise ConfigError(f"ledger key {path} and block-signing key {block_path} already exist; refusing to overwrite them")
    if not path.exists():
        UserKey.create_file(path)
        out.print(f"ledger key written to {path}")
    if not block_path.exists():
        BlockSigningKey.create_file(block_path)
        out.print(f"ML-DSA-65 block-signing key written to {block_path} (register it: `loyal ledger register-key`)")


@app.command("register-key")
def register_key(as_json: bool = typer.Option(False, "--json")):
    """Put the signer's ML-DSA-65 public key in the store and bind its hash on chain (once per account)."""
    agent = _opts.agent(need_key=False, need_block_key=True)
    cid = agent.register_block_key()
    _emit({"account": agent.signer.address, "key_cid": cid, "key_hash": "0x" + agent.block_key.key_hash.hex()}, as_json)


@app.command()
def sign(fork: int = typer.Option(..., "--fork"), as_json: bool = typer.Option(False, "--json")):
    """Sign (ML-DSA-65) the root of every sealed block holding the fork's ops that the owner has not signed yet."""
    blocks = _opts.agent(need_block_key=True).sign_blocks(fork)
    _emit({"fork": fork, "blocks_signed": blocks}, as_json)


@app.command("register-base")
def register_base(model_dir: Path = typer.Option(..., help="Hugging Face model directory"),
                  name: str = typer.Option(..., help="human-readable name"),
                  as_json: bool = typer.Option(False, "--json")):
    """Store a base model's weights and register their CID (REGISTRAR_ROLE)."""
    from ml.ledger.base import load_base

    agent = _opts.agent(need_key=False)
    model, _ = load_base(model_dir)
    base_id, cid = agent.register_base(model, name)
    _emit({"base_model_id": base_id, "cid": cid}, as_json)


@app.command()
def fork(base: Optional[int] = typer.Option(None, help="base model id (a generation-1 fork)"),
         parent: Optional[int] = typer.Option(None, help="fork id to fork instead (a fork of a fork)"),
         at_seq: Optional[int] = typer.Option(None, "--at-seq", min=1,
                                              help="with --parent: the parent's op whose exported state to start from"),
         as_json: bool = typer.Option(False, "--json")):
    """Fork a base model, or another fork at one of its exported ops; the signer owns the new user model."""
    if (base is None) == (parent is None):
        raise ConfigError("give exactly one of --base (fork a base model) or --parent with --at-seq (fork a fork)")
    if parent is not None and at_seq is None:
        raise ConfigError("--parent needs --at-seq: the parent's op whose exported state the fork starts from")
    if base is not None and at_seq is not None:
        raise ConfigError("--at-seq goes with --parent, not --base")
    agent = _opts.agent(need_key=False)
    fid = agent.fork(base) if base is not None else agent.fork_from(parent, at_seq)
    f = agent.ledger.fork(fid)
    _emit({"user_model_id": fid, "base_model_id": f.base_model_id, "owner": f.owner, "fork_height": f.forked_at_block,
           "generation": f.generation, "parent": f.parent_id, "parent_seq": f.parent_seq}, as_json)


@app.command()
def lineage(fork: int = typer.Option(..., "--fork"), as_json: bool = typer.Option(False, "--json")):
    """The fork's ancestry back to its base model: each generation, its owner, fork point and ops (no key needed)."""
    from agents.ledger.agent import Ledger

    ledger = Ledger(_opts.chain())
    forks = ledger.lineage(fork)
    base_id = forks[0].base_model_id
    rows = [{"fork": f.user_model_id, "generation": f.generation, "owner": f.owner, "parent": f.parent_id,
             "parent_seq": f.parent_seq, "ops": f.op_count, "head": "0x" + f.head.hex(),
             "latest_export_seq": ledger.chain.call(ledger.c.functions.latestExportSeq(f.user_model_id))}
            for f in forks]
    base = {"base_model_id": base_id, "cid": ledger.base_cid(base_id)}
    if as_json:
        print(json.dumps({"base": base, "lineage": rows}))
        return
    out.print(f"base model {base_id}  {base['cid']}", highlight=False)
    for i, r in enumerate(rows):
        point = "the base model" if r["parent"] == 0 else f"fork {r['parent']} at op {r['parent_seq']}"
        out.print(f"{'   ' * i}└─ fork {r['fork']} (generation {r['generation']}, owner {r['owner']}): from {point}; "
                  f"{r['ops']} ops, head {r['head'][:18]}…", highlight=False)


@app.command("share-key")
def share_key(fork: int = typer.Option(..., "--fork"),
              out_file: Path = typer.Option(..., "--out", help="file to write the fork key to (mode 0600, not overwritten)")):
    """Write the key of one of your forks (opens its deltas and states only: not its interactions, not
    your other forks) for someone who may fork, evaluate or verify it."""
    agent = _opts.agent()
    if out_file.exists():
        raise ConfigError(f"{out_file} already exists; refusing to overwrite it")
    agent.share_fork_key(fork).save(out_file)
    out.print(f"fork {fork}'s key written to {out_file}")


@app.command("add-key")
def add_key(fork: int = typer.Option(..., "--fork"), key_file: Path = typer.Option(..., "--file", help="a shared fork key")):
    """Keep a fork key another owner shared, after checking it opens that fork's first delta."""
    from ml.ledger.crypto import ForkKey

    agent = _opts.agent(need_key=False)
    agent.add_fork_key(fork, ForkKey.load(key_file))
    out.print(f"fork {fork}'s key kept")


@app.command()
def train(fork: int = typer.Option(..., "--fork", help="user model id"),
          prompt: str = typer.Option(...), response: str = typer.Option(...),
          feedback: Optional[str] = typer.Option(None, help="corrected answer to train on instead of the response"),
          model_dir: Path = typer.Option(..., help="the fork's base model directory"),
          lr: float = typer.Option(0.05), rank: int = typer.Option(4), seed: int = typer.Option(0),
          device: Optional[str] = typer.Option(None, "--device", help="auto | cpu | cuda | cuda:N | mps "
                                                                      "[env LOYAL_DEVICE; default auto]"),
          as_json: bool = typer.Option(False, "--json")):
    """One SFT step on one interaction, recorded as one op (ciphertext to the store, hashes on chain)."""
    from common.config import configure
    from ml.device import pick_device
    from ml.ledger.base import load_base
    from ml.ledger.trainer import Interaction

    dev = pick_device(configure(device=device).device)
    agent = _opts.agent()
    agent.check_recorder(fork)
    model, tok = load_base(model_dir)
    agent.attach(fork, model, tok, lr=lr, rank=rank, alpha=2 * rank, seed=seed, device=dev)
    r = agent.train(fork, Interaction(prompt, response, feedback))
    _emit({"op_id": r.op_id, "seq": r.seq, "op_hash": "0x" + r.op_hash.hex(), "interaction_cid": r.interaction_cid,
           "delta_cid": r.delta_cid, "loss": round(r.loss, 5), "gas_used": r.gas_used}, as_json)


@app.command()
def seal(as_json: bool = typer.Option(False, "--json")):
    """Seal every pending op into Merkle blocks (anyone may; one bounded batch per transaction)."""
    from agents.ledger.agent import Ledger

    chain = _opts.chain()
    blocks = Ledger(chain).seal_all(_opts.signer(chain))
    _emit({"blocks_sealed": [b for b, _ in blocks]}, as_json)


@app.command()
def history(user: Optional[str] = typer.Option(None, help="address (default: the signer)"),
            offset: int = typer.Option(0, min=0), limit: int = typer.Option(100, min=1),
            as_json: bool = typer.Option(False, "--json")):
    """A page of the ops on a user's forks, oldest first, with their block times (read from events)."""
    from eth_utils import is_address, to_checksum_address

    from agents.ledger.agent import Ledger

    if user is not None and not is_address(user):
        raise ConfigError(f"--user {user!r} is not an Ethereum address")
    chain = _opts.chain()
    who = to_checksum_address(user) if user else _opts.signer(chain).address
    ops, total = Ledger(chain).history(who, offset, limit)
    if as_json:
        print(json.dumps({"user": who, "total": total, "ops": [o.to_json() for o in ops]}))
        return
    t = Table(title=f"ops of {who} ({offset + 1}-{offset + len(ops)} of {total})")
    for col in ("op", "fork", "seq", "recorded (UTC)", "block", "op hash", "delta cid"):
        t.add_column(col)
    for o in ops:
        when = datetime.fromtimestamp(o.recorded_at, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
        t.add_row(str(o.op_id), str(o.user_model_id), str(o.seq), when, str(o.recorded_at_block),
                  "0x" + o.op_hash.hex()[:16] + "…", o.delta_cid)
    out.print(t)


@app.command()
def export(fork: int = typer.Option(..., "--fork"), as_json: bool = typer.Option(False, "--json")):
    """Encrypt the fork's state at its head, store it, and publish its CID with the op-chain head."""
    r = _opts.agent().export(fork)
    _emit({"state_cid": r.state_cid, "head": "0x" + r.head.hex(), "op_count": r.op_count}, as_json)


@app.command()
def verify(fork: int = typer.Option(..., "--fork"), as_json: bool = typer.Option(False, "--json")):
    """Rebuild the adapter from the recorded deltas; check hashes, commitments, Merkle proofs and the export."""
    report = _opts.agent().verify(fork)
    _emit(report, as_json)


@app.command()
def attest(fork: int = typer.Option(..., "--fork"), to_seq: int = typer.Option(..., "--to-seq", min=1),
           data: Path = typer.Option(..., "--data", help="held-out set: JSON lines of {prompt, response, feedback}"),
           model_dir: Path = typer.Option(..., help="the fork's base model directory"),
           out_file: Path = typer.Option(..., "--out", help="where to write the signed attestation (JSON)"),
           from_seq: Optional[int] = typer.Option(None, "--from-seq", min=1, help="default: the first op not yet paid"),
           as_json: bool = typer.Option(False, "--json")):
    """As a staked evaluator holding the fork's key: measure held-out loss before and after a range of
    the fork's ops, store the held-out set, sign the attestation (EIP-712) for the owner to claim with."""
    from agents.ledger import rewards

    agent = _opts.agent()
    rows = _read_jsonl(data)
    att = rewards.attest(agent, fork, to_seq, rows, model_dir, from_seq)
    from common.files import atomic_write_json

    atomic_write_json(out_file, att.to_json())
    _emit({"fork": fork, "from_seq": att.from_seq, "to_seq": att.to_seq, "loss_before": att.loss_before / 1e9,
           "loss_after": att.loss_after / 1e9, "eval_data_cid": att.eval_data_cid, "attestation": str(out_file)}, as_json)


def _read_jsonl(path: Path):
    from ml.ledger.trainer import Interaction

    try:
        lines = [line for line in path.read_text().splitlines() if line.strip()]
        rows = [json.loads(line) for line in lines]
        data = [Interaction(r["prompt"], r["response"], r.get("feedback")) for r in rows]
    except FileNotFoundError:
        raise ConfigError(f"held-out data file {path} does not exist") from None
    except (ValueError, KeyError, TypeError):
        raise ConfigError(f"{path} is not JSON lines of {{prompt, response, feedback}}") from None
    if not data:
        raise ConfigError(f"{path} holds no interactions")
    return data


@app.command()
def claim(attestation: Path = typer.Option(..., "--attestation", help="the evaluator's signed attestation (JSON)"),
          as_json: bool = typer.Option(False, "--json")):
    """As the fork's owner: claim the reward an evaluator's attestation supports (paid after the
    challenge window with `loyal ledger finalize`)."""
    from agents.ledger import rewards
    from agents.core.views import read

    agent = _opts.agent(need_key=False)
    claim_id = rewards.submit_claim(agent, rewards.Attestation.load(attestation))
    c = read(agent.chain, agent.ledger.c.functions.getRewardClaim(claim_id))
    _emit({"claim_id": claim_id, "fork": c.userModelId, "ops": f"{c.fromSeq}..{c.toSeq}", "amount": c.amount,
           "evaluator_bond": c.bond, "ready_at": c.readyAt}, as_json)


@app.command()
def finalize(claim_id: int = typer.Option(..., "--claim"), as_json: bool = typer.Option(False, "--json")):
    """Pay a reward claim whose challenge window has passed (anyone may; the fork owner is paid)."""
    from agents.ledger import rewards

    paid = rewards.finalize(_opts.agent(need_key=False), claim_id)
    _emit({"claim_id": claim_id, "paid": paid}, as_json)


@app.command()
def recheck(claim_id: int = typer.Option(..., "--claim"),
            model_dir: Path = typer.Option(..., help="the fork's base model directory"),
            reject: bool = typer.Option(False, "--reject", help="reject the claim (REFEREE_ROLE) if the re-check fails"),
            as_json: bool = typer.Option(False, "--json")):
    """Re-run a pending claim's evaluation (needs the fork's key); with --reject, a claim whose
    stated losses do not hold is rejected and its evaluator's bond slashed into the pool."""
    from agents.ledger import rewards

    agent = _opts.agent()
    r = rewards.recheck(agent, claim_id, model_dir)
    out_ = {"claim_id": claim_id, "fork": r.user_model_id, "ops": f"{r.from_seq}..{r.to_seq}",
            "attested": [x / 1e9 for x in r.attested], "recomputed": [x / 1e9 for x in r.recomputed], "holds": r.holds}
    if reject and not r.holds:
        out_["slashed"] = rewards.reject(agent, claim_id, f"re-check: losses {r.recomputed}, attested {r.attested}")
    _emit(out_, as_json)


@app.command()
def authorise(fork: int = typer.Option(..., "--fork"), recorder: str = typer.Option(..., help="address"),
              revoke: bool = typer.Option(False, "--revoke", help="withdraw the authorisation instead"),
              as_json: bool = typer.Option(False, "--json")):
    """Let another address (e.g. your second device) record ops on your fork, or stop it."""
    from eth_utils import is_address, to_checksum_address

    if not is_address(recorder):
        raise ConfigError(f"--recorder {recorder!r} is not an Ethereum address")
    chain = _opts.chain()
    from agents.ledger.agent import Ledger

    c = Ledger(chain).c
    chain.transact(_opts.signer(chain), c.functions.setRecorder(fork, to_checksum_address(recorder), not revoke))
    _emit({"fork": fork, "recorder": to_checksum_address(recorder), "allowed": not revoke}, as_json)


@app.command()
def prove(op: int = typer.Option(..., "--op", help="op id"), as_json: bool = typer.Option(False, "--json")):
    """Merkle inclusion proof of a sealed op against its block's stored root (no key needed)."""
    from agents.ledger.agent import Ledger
    from ml.ledger.ophash import verify_proof

    chain = _opts.chain()
    ledger = Ledger(chain)
    h = ledger.op_hash(op)
    block = chain.call(ledger.c.functions.blockOfOp(op))
    tree, root = ledger.block_tree(block)
    proof = tree.proof(op)
    on_chain = chain.call(ledger.c.functions.verifyOpInclusion(block, op, h, proof))
    _emit({"op_id": op, "op_hash": "0x" + h.hex(), "block": block, "root": "0x" + root.hex(),
           "proof": ["0x" + p.hex() for p in proof], "valid_locally": verify_proof(proof, root, op, h),
           "valid_on_chain": on_chain}, as_json)
