"""Plots as SVG (matplotlib, Agg): drawn on the server, embedded as images; no JavaScript."""
from __future__ import annotations

import io
import threading

import matplotlib

matplotlib.use("Agg")
matplotlib.rcParams["svg.fonttype"] = "none"  # text as text: smaller SVG, drawn faster
import matplotlib.pyplot as plt  # noqa: E402

from .pages.din import SCALE, Task  # noqa: E402

_LOCK = threading.Lock()  # pyplot's state is global: one figure at a time


def din_task_svg(t: Task) -> str:
    """Per round: the owner's test accuracy when its report is given (off-chain), and what the chain
    records (updates revealed, subgroup aggregates accepted); then each participant's median score
    with every evaluator's score."""
    rounds = sorted(t.rounds.values(), key=lambda r: r.number)
    panels = 3 if t.accuracy else 2
    with _LOCK:
        fig, axes = plt.subplots(1, panels, figsize=(4.2 * panels, 3.4))
        ax = list(axes)
        i = 0
        if t.accuracy:
            labels = [r for r, _ in t.accuracy]
            ax[0].plot(range(len(labels)), [a if a is not None else float("nan") for _, a in t.accuracy], marker="o")
            ax[0].set_xticks(range(len(labels)), labels)
            ax[0].set_ylim(0, 1)
            ax[0].set_title("test accuracy (owner, off-chain)", fontsize=10)
            ax[0].set_xlabel("round")
            i = 1
        xs = [r.number for r in rounds]
        ax[i].bar([x - 0.2 for x in xs], [len(r.updates) for r in rounds], width=0.4, label="updates revealed")
        ax[i].bar([x + 0.2 for x in xs], [r.accepted_subgroups for r in rounds], width=0.4, label="subgroups accepted")
        ax[i].set_xticks(xs)
        ax[i].set_xlabel("round")
        ax[i].set_title("per round (on chain)", fontsize=10)
        ax[i].legend(fontsize=8)
        parts = sorted(t.participants.values(), key=lambda p: p.index)
        px = [p.index for p in parts]
        ax[i + 1].bar(px, [(p.median or 0) / SCALE for p in parts], color="#9ecae1", label="mean median (settled)")
        for e in sorted(t.evaluators.values(), key=lambda e: e.index):
            pts = [(j, s / SCALE) for j, s in sorted(e.scores.items())]
            if pts:
                ax[i + 1].scatter([j for j, _ in pts], [s for _, s in pts], s=12, label=f"evaluator {e.index}")
        ax[i + 1].set_ylim(0, 1.05)
        ax[i + 1].set_xlabel("participant index")
        ax[i + 1].set_title("scores (on chain)", fontsize=10)
        ax[i + 1].legend(fontsize=7)
        fig.tight_layout()
        buf = io.StringIO()
        fig.savefig(buf, format="svg")
        plt.close(fig)
    return buf.getvalue()
