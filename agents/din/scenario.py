"""A whole DIN task on a real chain: owner, participants and evaluators as daemons, driven stage
by stage. The driver only moves the dev chain's clock (to the next stage's start) once every
daemon is idle; all protocol work is done by the daemons themselves through the contracts.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from eth_account.signers.local import LocalAccount

from agents.core.chain import Chain
from agents.core.events import LogSource, fetch_events
from agents.core.signers import dev_signer
from agents.core.store import LocalStore
from ml.din import data

from . import adversaries as adv
from .contracts import ROUND_STAGES, Din, Stage, TaskConfig
from .daemon import DinDaemon
from .evaluator import EvaluatorDaemon
from .owner import OwnerDaemon, create_task
from .participant import ParticipantDaemon

TOKEN = 10**18


@dataclass(frozen=True)
class Scenario:
    participants: int = 20
    evaluators: int = 4
    rounds: int = 3
    subgroup_size: int = 10
    evaluators_per_subgroup: int = 3
    poisoners: tuple[int, ...] = (0,)  # participant indices training on flipped labels
    lazy: tuple[int, ...] = (3,)  # evaluator indices that never aggregate/vote/score
    forgers: tuple[int, ...] = ()  # evaluator indices committing wrong aggregates
    garbage_scorers: tuple[int, ...] = ()  # evaluator indices revealing 1.0 for every member
    secure_aggregation: bool = False  # participants upload pairwise-masked updates
    dropouts: tuple[int, ...] = ()  # participant indices that register, then never submit
    withholders: tuple[int, ...] = ()  # participant indices that commit to updates but never reveal
    copies: tuple[tuple[int, int], ...] = ()  # (copier, original): the copier gets the original's update
    near_copies: tuple[tuple[int, int], ...] = ()  # (copier, original): the original's update, slightly perturbed
    withheld_slices: tuple[int, ...] = ()  # rounds whose test slice the owner never reveals
    end_after: int | None = None  # the owner ends the task early, after this round
    first_account: int = 1  # dev account of the owner; participants and evaluators follow
    data_seed: int = 0

    def config(self) -> TaskConfig:
        return TaskConfig(reward=1_000 * TOKEN, evaluator_fee=20 * TOKEN, participant_bond=1 * TOKEN,
                          min_evaluator_stake=100 * TOKEN, slash_amount=10 * TOKEN, rounds=self.rounds,
                          subgroup_size=self.subgroup_size, evaluators_per_subgroup=self.evaluators_per_subgroup,
                          max_evaluators=max(self.evaluators, self.evaluators_per_subgroup),
                          secure_aggregation=self.secure_aggregation)


@dataclass
class Result:
    task: int
    accuracy: list[tuple[str, float | None]]
    roles: dict[str, str]  # address -> label
    slashed: dict[str, int] = field(default_factory=dict)
    rewards: dict[str, int] = field(default_factory=dict)
    fees: dict[str, int] = field(default_factory=dict)
    medians: dict[str, int] = field(default_factory=dict)  # participant -> sum of its medians over scored rounds
    unscored_rounds: dict[str, int] = field(default_factory=dict)  # participant -> unscored rounds it took part in
    owner_refund: int = 0
    slash_shares: dict[str, int] = field(default_factory=dict)  # from the task's slash pool (Staking)
    slash_pool: int = 0
    deposit: int = 0
    paid_out: int = 0
    report: tuple[Path, Path] | None = None
    secure_aggregation: bool = False


class Runner:
    """Builds the actors of `scenario` and drives one task through every stage."""

    def __init__(self, chain: Chain, store: LocalStore, workdir: Path, scenario: Scenario, *,
                 admin: LocalAccount | None = None):
        self.chain, self.store, self.workdir, self.sc = chain, store, Path(workdir), scenario
        self.din = Din(chain)
        self.admin = admin or dev_signer(0)
        a = scenario.first_account
        self.owner = dev_signer(a)
        self.participants = [dev_signer(a + 1 + i) for i in range(scenario.participants)]
        self.evaluators = [dev_signer(a + 1 + scenario.participants + i) for i in range(scenario.evaluators)]
        self.split = data.split(scenario.participants, seed=scenario.data_seed)
        self.daemons: list[DinDaemon] = []
        self.task: int | None = None
        self.start_block = 0

    # -- setup -----------------------------------------------------------------------------
    def fund(self) -> None:
        cfg = self.sc.config()
        need = {self.owner.address: cfg.deposit}
        need.update({p.address: cfg.participant_bond for p in self.participants})
        need.update({e.address: cfg.min_evaluator_stake for e in self.evaluators})
        for who, amount in need.items():
            have = self.chain.call(self.din.token.functions.balanceOf(who))
            if have < amount:
                self.chain.transact(self.admin, self.din.token.functions.mint(who, amount - have))
        for e in self.evaluators:
            if self.din.stake_of(e.address) < cfg.min_evaluator_stake:
                self.din.stake(e, cfg.min_evaluator_stake - self.din.stake_of(e.address))

    def create(self) -> int:
        self.start_block = self.chain.w3.eth.block_number
        self.task, _ = create_task(self.chain, self.store, self.owner, self.sc.config(), self.split.test)
        self.daemons = self.make_daemons()
        return self.task

    def cursor(self, name: str) -> Path:
        return self.workdir / "cursors" / f"task{self.task}-{name}.json"

    def make_daemons(self) -> list[DinDaemon]:
        common = dict(start_block=self.start_block)
        owner_kw = dict(test=self.split.test, end_after=self.sc.end_after, **common)
        if self.sc.withheld_slices:
            owner = adv.WithholdingOwner(self.chain, self.store, self.owner, self.task, self.cursor("owner"),
                                         withhold=self.sc.withheld_slices, **owner_kw)
        else:
            owner = OwnerDaemon(self.chain, self.store, self.owner, self.task, self.cursor("owner"), **owner_kw)
        ds: list[DinDaemon] = [owner]
        for i, p in enumerate(self.participants):
            ds.append(self.participant_daemon(i))
        for i, e in enumerate(self.evaluators):
            cls = (adv.LazyEvaluator if i in self.sc.lazy else adv.ForgingEvaluator if i in self.sc.forgers
                   else adv.GarbageScorer if i in self.sc.garbage_scorers else EvaluatorDaemon)
            ds.append(cls(self.chain, self.store, e, self.task, self.cursor(f"evaluator{i}"), **common))
        return ds

    def participant_class(self, i: int) -> type[ParticipantDaemon]:
        if i in self.sc.dropouts:
            return adv.DropoutParticipant
        if i in self.sc.withholders:
            return adv.WithholdingParticipant
        if i in dict(self.sc.near_copies):
            return adv.NearCopyParticipant
        return ParticipantDaemon

    def participant_daemon(self, i: int) -> ParticipantDaemon:
        # a copier colludes with its original: it trains on the original's data with the same seed,
        # i.e. it holds the original's update before committing (a near-copy perturbs it slightly);
        # a poisoner is an honest participant on a label-flipped shard
        original = dict(self.sc.copies + self.sc.near_copies).get(i, i)
        shard = self.split.shards[original]
        if i in self.sc.poisoners:
            shard = data.flip_labels(shard)
        return self.participant_class(i)(self.chain, self.store, self.participants[i], self.task,
                                         self.cursor(f"participant{i}"), shard=shard, start_block=self.start_block)

    # -- driving ---------------------------------------------------------------------------
    def labels(self) -> dict[int, str]:
        """participant index -> its misbehaviour, for reports."""
        out = {i: "poisoner" for i in self.sc.poisoners}
        out.update({i: "dropout" for i in self.sc.dropouts})
        out.update({i: "withholds its reveal" for i in self.sc.withholders})
        out.update({i: f"copies {j}" for i, j in self.sc.copies})
        out.update({i: f"near-copies {j}" for i, j in self.sc.near_copies})
        return out

    def schedule(self) -> list[tuple[Stage, int]]:
        out = [(Stage.Registration, 0)]
        for r in range(self.sc.rounds):
            out += [(st, r) for st in ROUND_STAGES]
        return out + [(Stage.Close, 0), (Stage.Settle, 0)]

    def warp_to(self, stage: Stage, round_: int) -> None:
        if stage == Stage.Registration:
            return
        self.din.note_rounds_held(self.task, self.din.rounds_held(self.task))
        start, _ = self.din.params(self.task).window(round_, stage)
        now = self.din.now()
        if start > now:
            self.chain.advance_time(start - now)

    def settle_stage(self, max_passes: int = 6) -> int:
        """Step every daemon until a full pass sends nothing. Returns transactions sent.

        The chain head is read once and handed to each daemon in turn until one sends a
        transaction (then read again): a daemon never acts on a head older than the last
        transaction of this process, and an idle pass costs one head read, not one per daemon."""
        total = 0
        source = LogSource.of(self.chain)
        for _ in range(max_passes):
            sent, head = 0, None
            for d in self.daemons:
                head = head or source.head()
                n = d.step(head)
                if n:
                    sent, head = sent + n, None
            total += sent
            if sent == 0:
                break
        return total

    def run(self, on_stage: Callable[[Stage, int, int], None] | None = None) -> Result:
        self.fund()
        self.create()
        for stage, r in self.schedule():
            if stage in ROUND_STAGES and r >= self.din.rounds_held(self.task):
                continue  # the owner ended the task early
            self.warp_to(stage, r)
            sent = self.settle_stage()
            if on_stage:
                on_stage(stage, r, sent)
        return self.result()

    # -- outcome ---------------------------------------------------------------------------
    def result(self) -> Result:
        owner_d = self.daemons[0]
        assert isinstance(owner_d, OwnerDaemon)
        roles = {self.owner.address: "owner"}
        labels = self.labels()
        for i, p in enumerate(self.participants):
            roles[p.address] = f"participant {i}" + (f" ({labels[i]})" if i in labels else "")
        for i, e in enumerate(self.evaluators):
            tag = (" (lazy)" if i in self.sc.lazy else " (forger)" if i in self.sc.forgers
                   else " (garbage scores)" if i in self.sc.garbage_scorers else "")
            roles[e.address] = f"evaluator {i}{tag}"
        res = Result(self.task, owner_d.accuracy(), roles, secure_aggregation=self.sc.secure_aggregation)
        rounds_addr = self.din.rounds.address
        for ev in fetch_events(self.chain, from_block=self.start_block,
                               contracts=["Staking", "DinScoring", "DinRounds"]):
            a = ev.args
            if ev.name == "Slashed" and a["module"] == rounds_addr and a["account"] in roles:
                res.slashed[a["account"]] = res.slashed.get(a["account"], 0) + a["amount"]
            elif ev.name == "RewardClaimed" and a["taskId"] == self.task:
                res.rewards[a["participant"]] = a["amount"]
            elif ev.name == "FeeClaimed" and a["taskId"] == self.task:
                res.fees[a["evaluator"]] = a["amount"]
            elif ev.name == "OwnerRefunded" and a["taskId"] == self.task:
                res.owner_refund = a["amount"]
            elif ev.name == "SlashShareClaimed" and a["taskId"] == self.task:
                res.slash_shares[a["account"]] = a["amount"]
        for p in self.participants:
            st = self.din.standing_of(self.task, p.address)
            res.medians[p.address] = st.score_sum
            res.unscored_rounds[p.address] = st.unscored_rounds
        info = self.din.task_info(self.task)
        res.deposit, res.paid_out = info["deposit"], info["paid_out"]
        res.slash_pool = self.din.slash_pool(self.task)
        res.report = owner_d.write_report(self.workdir / f"task{self.task}")
        return res
