"""Model Owner: creates the task (genesis model in the store, the Merkle root of its per-round test
slices on-chain), reveals round r's slice once round r's updates are revealed (AggregateCommit or
AggregateReveal), evaluates each accepted global model on its whole test set, writes accuracy per
round as CSV and PNG, and reclaims unearned fees at the end. `end_after`: end the task early, after
that round (the owner signals it during the round). An owner that withholds slices is a subclass
in `adversaries.py`."""
from __future__ import annotations

import csv
from pathlib import Path

from eth_account.signers.local import LocalAccount

from agents.core.chain import Chain
from agents.core.store import ContentStore
from common.units import format_amount
from ml.din import data
from ml.din import model as M
from ml.din import scoring as S

from .contracts import GLOBAL, Din, Stage, TaskConfig
from .daemon import DinDaemon
from .slices import TestSlices


def create_task(chain: Chain, store: ContentStore, owner: LocalAccount, cfg: TaskConfig, test: data.Shard,
                *, model_seed: int = 0) -> tuple[int, str]:
    """Upload the genesis model (canonical safetensors bytes) and create the task. Returns (task id, genesis CID)."""
    genesis = store.put(M.to_bytes(M.state_of(M.build(seed=model_seed))))
    task = Din(chain).create_task(owner, cfg, genesis, TestSlices.cut(test, cfg.rounds).root)
    return task, genesis


class OwnerDaemon(DinDaemon):
    role = "owner"

    def __init__(self, *a, test: data.Shard, end_after: int | None = None, **kw):
        super().__init__(*a, **kw)
        self.test = test
        self.slices = TestSlices.cut(test, self.din.params(self.task).rounds)
        if self.slices.root != self.din.params(self.task).test_slice_root:
            raise ValueError(f"task {self.task}: this test set's slices do not match the task's root")
        self.end_after = end_after
        self.index.local.setdefault("accuracy", {})

    def act(self, stage: Stage, round_: int) -> int:
        din, task = self.din, self.task
        sent = 0
        if (self.end_after is not None and stage not in (Stage.Registration, Stage.Close, Stage.Settle)
                and round_ == self.end_after and din.params(task).rounds_held > self.end_after + 1):
            din.end_after_round(self.signer, task, self.end_after)
            self.note(f"ended the task after round {self.end_after}")
            sent += 1
        if stage in (Stage.AggregateCommit, Stage.AggregateReveal):
            sent += self._reveal_slice(round_)
        self._evaluate_globals()
        if stage == Stage.Settle:
            refund = din.owner_refund_of(task)  # 0 until everything is settled, and once refunded
            if refund > 0:
                din.refund_owner(self.signer, task)
                self.note(f"reclaimed {format_amount(refund)} of unearned fees and rewards")
                sent += 1
            pool = din.slash_share_of(task, self.address)
            if pool > 0:  # every evaluator was at fault
                din.claim_slash_share(self.signer, task)
                self.note(f"claimed the slash pool of {format_amount(pool)}")
                sent += 1
        return sent

    def _reveal_slice(self, round_: int) -> int:
        """Round `round_`'s updates are revealed: reveal its test slice (once)."""
        if self.latched(f"slice/{round_}", lambda: self.din.test_slice(self.task, round_) != b"\x00" * 32):
            return 0
        cid = self.store.put(self.slices.blob(round_))
        self.din.reveal_test_slice(self.signer, self.task, round_, cid, self.slices.hash(round_),
                                   self.slices.proof(round_))
        self.note(f"round {round_}: revealed test slice {cid}")
        return 1

    def _evaluate_globals(self) -> None:
        acc = self.index.local["accuracy"]
        if "genesis" not in acc and self.index.genesis:
            acc["genesis"] = S.evaluate(M.from_bytes(self.genesis_model()), self.test).accuracy
        for r in range(self.din.params(self.task).rounds_held):
            if str(r) in acc:
                continue
            tally = self.tally(r, GLOBAL)
            if not tally.finalized:
                break
            cid = self.index.cid(tally.best_hash) if tally.accepted else None
            blob = self.blobs.model(cid, f"accepted global model of round {r}") if cid else None
            acc[str(r)] = S.evaluate(M.from_bytes(blob), self.test).accuracy if blob else None
        self.index.commit_local()

    def accuracy(self) -> list[tuple[str, float | None]]:
        """(round label, test accuracy) rows: genesis, then each round's accepted global model."""
        acc = self.index.local["accuracy"]
        rows = [("genesis", acc.get("genesis"))]
        rows += [(str(r), acc[str(r)]) for r in range(self.din.params(self.task).rounds_held) if str(r) in acc]
        return rows

    def write_report(self, out_dir: Path) -> tuple[Path, Path]:
        """accuracy.csv and accuracy.png of the global model per round."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        out_dir.mkdir(parents=True, exist_ok=True)
        rows = self.accuracy()
        csv_path = out_dir / "accuracy.csv"
        with open(csv_path, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["round", "test_accuracy"])
            w.writerows((r, "" if a is None else f"{a:.4f}") for r, a in rows)
        png_path = out_dir / "accuracy.png"
        fig, ax = plt.subplots(figsize=(5, 3.2))
        xs = [r for r, a in rows if a is not None]
        ax.plot(range(len(xs)), [a for _, a in rows if a is not None], marker="o")
        ax.set_xticks(range(len(xs)), xs)
        ax.set_xlabel("round (global model)")
        ax.set_ylabel("test accuracy")
        ax.set_ylim(0, 1)
        ax.set_title(f"DIN task {self.task}: owner's test set")
        fig.tight_layout()
        fig.savefig(png_path, dpi=120)
        plt.close(fig)
        return csv_path, png_path
