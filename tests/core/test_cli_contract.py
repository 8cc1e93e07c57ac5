"""The CLI contract, for every `loyal` command: each bad input a user can give is exactly one line
on stderr (`error: ...` naming the problem), no traceback, no usage box, exit code 1 (2 only for
an unknown option), and nothing half-done on-chain (no approval left behind a refused payment).

`CASES` lists the bad inputs of every command; `test_every_command_has_cases` fails when a command
is added without them. Bad-input kinds: wrong RPC URL, missing address book, nonexistent or
malformed file, bad keystore password, unknown CID, a revert, insufficient funds (LOYAL or gas),
a bad value; plus an unknown option for every command.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import click
import pytest
import torch
import typer
from eth_account import Account

from agents.core.signers import dev_signer, save_keystore
from tests.cli_runner import invoke

BAD_RPC = "http://127.0.0.1:9"
PASSWORD = "correct horse"
ABSENT_CID = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"


@dataclass
class Env:
    """What the cases point at: the session chain, key files, a DIN task, scratch files."""
    rpc: str
    book: Path
    tmp: Path
    ks: Path  # funded key (dev account 5): ETH and LOYAL
    poor: Path  # ETH for gas, no LOYAL
    broke: Path  # LOYAL, no ETH
    not_keystore: Path  # JSON that is not a keystore
    task: int
    oml_model: int = 0  # an OML model whose only copy is for dev account 6 (no licence signed)

    @property
    def nobook(self) -> str:
        return str(self.tmp / "no-such-book.json")

    def file(self, name: str, text: str) -> str:
        p = self.tmp / name
        p.write_text(text)
        return str(p)


@dataclass
class Case:
    kind: str  # rpc | book | file | password | cid | revert | funds | value | option
    args: Callable[[Env], list[str]]
    says: str  # substring of the one error line
    code: int = 1
    after: Callable[[Env, object], None] | None = None  # extra check (e.g. no approval left)


DAO_CALL = ("--call", 'PersonnelRegistry.fileReport ["0x' + "11" * 32 + '", "0x' + "22" * 32 + '"]', "--description", "d")
DC = ("--hardware", "1", "--measurement", "0x" + "ab" * 32, "--attestation-key", "no-such-key")
FOREIGN_BALLOT = {"kind": "loyal-dao-ballot", "chainId": 1, "governor": "0x" + "11" * 20, "proposalId": "1",
                  "support": "for", "voter": "0x" + "22" * 20, "nonce": 0, "signature": "0x" + "00" * 65}


def model_dir(e: Env, name: str, host: str) -> str:
    """A model directory as `loyal oml license` writes it, licensed to `host` for the env's OML model."""
    d = e.tmp / f"model-dir-{name}"
    d.mkdir(exist_ok=True)
    (d / "model.safetensors").write_bytes(b"not read before the checks")
    (d / "licence.json").write_text(json.dumps({"model_id": e.oml_model, "host": host}))
    return str(d)


NO_CUDA = not torch.cuda.is_available()


def not_causal_lm(e: Env) -> str:
    """A Hugging Face model directory holding a masked LM (BERT), not a causal LM."""
    d = e.tmp / "bert-mlm"
    d.mkdir(exist_ok=True)
    (d / "config.json").write_text(json.dumps({"model_type": "bert", "architectures": ["BertForMaskedLM"],
                                               "vocab_size": 30, "hidden_size": 8, "num_hidden_layers": 1,
                                               "num_attention_heads": 1, "intermediate_size": 8}))
    return str(d)


def other_tokenizer_fps(e: Env) -> str:
    """Fingerprints recorded as made with SmolLM2's tokenizer, to be used with the tiny byte model."""
    return e.file("smollm2-fps.jsonl", json.dumps({"key": "abc", "response": " d", "strategy": "random_tokens",
                                                   "tokenizer": "49152:0123456789abcdef"}) + "\n")


def fp_bad_inputs(cmd: str, *extra: str) -> list[Case]:
    """The cases every model-loading `loyal fingerprint` command shares: a model directory that is not
    a causal LM, fingerprints of another tokenizer, `--device cuda` without CUDA."""
    fp_opt = ["-f", "FP"] if cmd != "generate" else []

    def args(e: Env, model: str, fp: str | None = None, device: tuple = ()) -> list[str]:
        a = ["fingerprint", cmd, "--model", model, *[fp if x == "FP" else x for x in fp_opt], *extra, *device]
        return [x.replace("TMP", str(e.tmp)) for x in a]

    good_fp = lambda e: e.file("good-fps.jsonl", json.dumps({"key": "abc", "response": " d",  # noqa: E731
                                                             "strategy": "random_tokens"}) + "\n")
    out = [Case("file", lambda e: args(e, not_causal_lm(e), good_fp(e)), "BertForMaskedLM model, not a causal LM")]
    if cmd != "generate":
        out.append(Case("file", lambda e: args(e, "tiny", other_tokenizer_fps(e)),
                        "generated for tokenizer 49152:0123456789abcdef"))
    if NO_CUDA:
        out.append(Case("value", lambda e: args(e, "tiny", good_fp(e), ("--device", "cuda")), "no CUDA device"))
    return out


def lineage_trace(e: Env, *, model_id: str = "1", text: str | None = None, url: str = "http://127.0.0.1:9",
                  **chain) -> list[str]:
    """`loyal oml lineage trace` with a prover's fingerprints file for model 1 (or `text` as the file)."""
    fps = text if text is not None else json.dumps({"model_id": 1, "fingerprints": [["k", "r"]], "subsets": {}})
    return ["oml", "lineage", "trace", url, "--model-id", model_id, "--fingerprints",
            e.file("lineage-fps.json", fps), "--file", *chain_opts(e, **chain)]


def chain_opts(e: Env, *, rpc: str | None = None, book: str | None = None) -> list[str]:
    return ["--rpc", rpc or e.rpc, "--book", book or str(e.book)]


def no_allowance(owner_key: str, spender: str):
    """After a refused payment, the payer has granted nothing to the contract it tried to pay."""
    def check(e: Env, chain) -> None:
        owner = json.loads(getattr(e, owner_key).read_text())["address"]
        token = chain.contract("LoyalToken")
        got = chain.call(token.functions.allowance("0x" + owner.removeprefix("0x"), chain.book.address(spender)))
        assert got == 0, f"an approval of {got} was left behind"
    return check


def rpc_case(*cmd: str, extra: tuple[str, ...] = ()) -> Case:
    return Case("rpc", lambda e: [*cmd, *extra, *chain_opts(e, rpc=BAD_RPC)], "no JSON-RPC node answers at")


def book_case(*cmd: str, extra: tuple[str, ...] = ()) -> Case:
    return Case("book", lambda e: [*cmd, *extra, *chain_opts(e, book=e.nobook)], "no address book for chain 31337")


def not_registered(key: str):
    """After a refused start, the participant holds no registration (no bond paid) in the task."""
    def check(e: Env, chain) -> None:
        from agents.din.contracts import Din

        who = "0x" + json.loads(getattr(e, key).read_text())["address"].removeprefix("0x")
        assert not Din(chain).is_participant(e.task, chain.w3.to_checksum_address(who)), "registered anyway"
    return check


def password_case(*cmd: str, extra: tuple[str, ...] = ()) -> Case:
    return Case("password", lambda e: [*cmd, *extra, *chain_opts(e), "--keystore", str(e.ks), "#wrong-password"],
                "wrong password")


def ledger(*sub: str) -> Callable[[Env], list[str]]:
    return lambda e: ["ledger", *chain_opts(e), *sub]


CASES: dict[str, list[Case]] = {
    # -- core -------------------------------------------------------------------------------------
    "devnet": [Case("value", lambda e: ["devnet", "--port", "0"], "Invalid value for '--port'"),
               Case("value", lambda e: ["devnet", "--explorer"], "--explorer needs --keep or --deploy-only")],
    "deploy": [
        rpc_case("deploy"),
        password_case("deploy"),
        Case("file", lambda e: ["deploy", "--rpc", e.rpc, "--book", e.nobook, "--keystore", str(e.tmp / "nokey.json")],
             "does not exist"),
        Case("file", lambda e: ["deploy", "--rpc", e.rpc, "--book", e.nobook, "--keystore", str(e.not_keystore)],
             "is not a Web3 Secret Storage keystore"),
        Case("funds", lambda e: ["deploy", "--rpc", e.rpc, "--book", e.nobook, "--keystore", str(e.broke)],
             "ETH for gas", after=lambda e, chain: not Path(e.nobook).exists() or pytest.fail("book written")),
    ],
    "config": [
        Case("file", lambda e: ["--config", str(e.tmp / "none.toml"), "config"], "does not exist"),
        Case("file", lambda e: ["--config", e.file("bad.toml", "rpc_url = [1,"), "config"], "is not valid TOML"),
        Case("value", lambda e: ["--config", e.file("typo.toml", 'rpc_ulr = "x"\n'), "config"], "unknown setting 'rpc_ulr'"),
    ],
    "events": [rpc_case("events"), book_case("events"),
               Case("value", lambda e: ["events", *chain_opts(e), "-c", "NoSuchContract"], "not in the address book")],
    "stake": [
        rpc_case("stake", extra=("1",)), book_case("stake", extra=("1",)), password_case("stake", extra=("1",)),
        Case("funds", lambda e: ["stake", "5", *chain_opts(e), "--keystore", str(e.poor)], "has 0 LOYAL",
             after=no_allowance("poor", "Staking")),
        Case("funds", lambda e: ["stake", "5", *chain_opts(e), "--keystore", str(e.broke)], "ETH for gas",
             after=no_allowance("broke", "Staking")),
        Case("revert", lambda e: ["stake", "0", *chain_opts(e), "--keystore", str(e.ks)], "ZeroAmount"),
        Case("value", lambda e: ["stake", "lots", *chain_opts(e), "--keystore", str(e.ks)], "bad amount 'lots'"),
    ],
    "unstake": [rpc_case("unstake", extra=("1",)), book_case("unstake", extra=("1",)),
                Case("revert", lambda e: ["unstake", "1", *chain_opts(e), "--keystore", str(e.poor)], "InsufficientStake")],
    "withdraw": [rpc_case("withdraw"), book_case("withdraw"),
                 Case("revert", lambda e: ["withdraw", *chain_opts(e), "--keystore", str(e.poor)], "NothingToWithdraw")],
    "store put": [Case("file", lambda e: ["store", "put", str(e.tmp / "absent.bin")], "does not exist")],
    "store get": [Case("cid", lambda e: ["store", "get", ABSENT_CID], "not found"),
                  Case("cid", lambda e: ["store", "get", "not-a-cid"], "invalid CID")],
    "keys new": [Case("password", lambda e: ["keys", "new", "alice", "#no-password"], "LOYAL_KEY_PASSWORD"),
                 Case("value", lambda e: ["keys", "new", "../evil"], "bad key name")],
    "keys import": [
        Case("file", lambda e: ["keys", "import", "bob", "--private-key-file", str(e.tmp / "absent.key")], "cannot read"),
        Case("file", lambda e: ["keys", "import", "bob", "--private-key-file", e.file("k.txt", "0x1234")],
             "does not hold a 32-byte hex private key"),
    ],
    "keys list": [],
    "keys address": [Case("file", lambda e: ["keys", "address", str(e.tmp / "absent.json")], "does not exist"),
                     Case("file", lambda e: ["keys", "address", str(e.not_keystore)], "not a Web3 Secret Storage")],
    "token balance": [rpc_case("token", "balance", extra=("0x" + "11" * 20,)),
                      book_case("token", "balance", extra=("0x" + "11" * 20,)),
                      Case("value", lambda e: ["token", "balance", "nobody", *chain_opts(e)], "neither an address")],
    "token transfer": [
        rpc_case("token", "transfer", extra=("0x" + "11" * 20, "1")),
        book_case("token", "transfer", extra=("0x" + "11" * 20, "1")),
        password_case("token", "transfer", extra=("0x" + "11" * 20, "1")),
        Case("funds", lambda e: ["token", "transfer", "0x" + "11" * 20, "1", *chain_opts(e), "--keystore", str(e.poor)],
             "has 0 LOYAL"),
        Case("value", lambda e: ["token", "transfer", "0x" + "11" * 20, "1e-19", *chain_opts(e), "--keystore", str(e.ks)],
             "at most 18 decimals"),
    ],
    "token approve": [rpc_case("token", "approve", extra=("Staking", "1")),
                      book_case("token", "approve", extra=("Staking", "1")),
                      password_case("token", "approve", extra=("Staking", "1")),
                      Case("value", lambda e: ["token", "approve", "Nowhere", "1", *chain_opts(e), "--keystore", str(e.ks)],
                           "neither an address")],
    "chain info": [rpc_case("chain", "info")],
    "chain advance": [rpc_case("chain", "advance", extra=("60",)),
                      Case("value", lambda e: ["chain", "advance", "0", *chain_opts(e)], "Invalid value")],
    "chain fund": [rpc_case("chain", "fund", extra=("0x" + "11" * 20,)),
                   Case("value", lambda e: ["chain", "fund", "0xabc", *chain_opts(e)], "is not an address"),
                   Case("funds", lambda e: ["chain", "fund", "0x" + "11" * 20, "--loyal", "1e15", *chain_opts(e)],
                        "LOYAL")],
    # -- din --------------------------------------------------------------------------------------
    "din demo": [Case("value", lambda e: ["din", "demo", "--participants", "2", "--dropouts", "5"], "--dropouts")],
    "din create": [
        rpc_case("din", "create", extra=("--shards", "2")), book_case("din", "create", extra=("--shards", "2")),
        password_case("din", "create", extra=("--shards", "2")),
        Case("funds", lambda e: ["din", "create", "--shards", "2", *chain_opts(e), "--keystore", str(e.poor),
                                 "--home", str(e.tmp / "din")], "has 0 LOYAL", after=no_allowance("poor", "DinTasks")),
        Case("revert", lambda e: ["din", "create", "--shards", "2", "--per-subgroup", "33", "--max-evaluators", "40",
                                  *chain_opts(e),
                                  "--keystore", str(e.ks), "--home", str(e.tmp / "din")],
             "InvalidParams", after=no_allowance("ks", "DinTasks")),
        Case("value", lambda e: ["din", "create", "--shards", "2", "--reward", "ten", *chain_opts(e)], "bad amount"),
    ],
    "din participant": [
        rpc_case("din", "participant", extra=("--task", "0", "--shard", "0", "--shards", "2")),
        book_case("din", "participant", extra=("--task", "0", "--shard", "0", "--shards", "2")),
        password_case("din", "participant", extra=("--task", "0", "--shard", "0", "--shards", "2")),
        # a participant without LOYAL names the fix once and stops (it used to retry every second forever)
        Case("funds", lambda e: ["din", "participant", "--task", str(e.task), "--shard", "0", "--shards", "2",
                                 *chain_opts(e), "--keystore", str(e.poor), "--home", str(e.tmp / "din")],
             "the participant bond needs", after=no_allowance("poor", "DinTasks")),
        Case("value", lambda e: ["din", "participant", "--task", "0", "--shard", "5", "--shards", "2", *chain_opts(e)],
             "--shard must be in [0, 2)"),
        Case("value", lambda e: ["din", "participant", "--task", "0", *chain_opts(e)], "needs --shard and --shards"),
        Case("value", lambda e: ["din", "participant", "--task", "0", "--client", "no_such_pkg_xyz.train:client_fn",
                                 *chain_opts(e)], "no module named 'no_such_pkg_xyz'"),
        Case("value", lambda e: ["din", "participant", "--task", "0", "--client", "tests.din.custom_client",
                                 *chain_opts(e)], "expected module:attr"),
        Case("value", lambda e: ["din", "participant", "--task", "0", "--client", "tests.din.custom_client:nope",
                                 *chain_opts(e)], "has no attribute 'nope'"),
        Case("file", lambda e: ["din", "participant", "--task", "0", "--client", str(e.tmp / "absent.py") + ":fn",
                                *chain_opts(e)], "no such file"),
        Case("value", lambda e: ["din", "participant", "--task", "0", "--shard", "0", "--shards", "2",
                                 "--device", "tpu", *chain_opts(e)], "expected auto, cpu, cuda, cuda:N or mps"),
        *([Case("value", lambda e: ["din", "participant", "--task", "0", "--shard", "0", "--shards", "2",
                                    "--device", "cuda", *chain_opts(e)], "no CUDA device here")]
          if not torch.cuda.is_available() else []),
        # a second machine without a shared store: the genesis model is not in its embedded store.
        # Names the fix, stops at once (not a retry loop), pays no bond.
        Case("cid", lambda e: ["din", "participant", "--task", str(e.task), "--shard", "0", "--shards", "2",
                               *chain_opts(e), "--keystore", str(e.ks), "--home", str(e.tmp / "other-machine")],
             "set ipfs_api (env IPFS_API)", after=not_registered("ks")),
    ],
    "din evaluator": [
        rpc_case("din", "evaluator", extra=("--task", "0")), book_case("din", "evaluator", extra=("--task", "0")),
        password_case("din", "evaluator", extra=("--task", "0")),
        Case("funds", lambda e: ["din", "evaluator", "--task", str(e.task), "--stake", *chain_opts(e),
                                 "--keystore", str(e.poor), "--home", str(e.tmp / "din")], "has 0 LOYAL",
             after=no_allowance("poor", "Staking")),
        Case("revert", lambda e: ["din", "evaluator", "--task", "999", *chain_opts(e), "--keystore", str(e.ks)],
             "UnknownTask"),
    ],
    "din owner": [
        rpc_case("din", "owner", extra=("--task", "0", "--shards", "2")),
        book_case("din", "owner", extra=("--task", "0", "--shards", "2")),
        Case("revert", lambda e: ["din", "owner", "--task", "999", "--shards", "2", *chain_opts(e),
                                  "--keystore", str(e.ks)], "UnknownTask"),
        Case("value", lambda e: ["din", "owner", "--task", str(e.task), "--shards", "2", "--data-seed", "7", *chain_opts(e),
                                 "--keystore", str(e.ks)], "does not match the task's commitment"),
    ],
    # -- ledger -----------------------------------------------------------------------------------
    "ledger keygen": [Case("rpc", lambda e: ["ledger", *chain_opts(e, rpc=BAD_RPC), "keygen"], "no JSON-RPC node"),
                      Case("book", lambda e: ["ledger", *chain_opts(e, book=e.nobook), "keygen"], "no address book")],
    "ledger register-base": [Case("file", ledger("register-base", "--model-dir", "/no/such/dir", "--name", "x"),
                                  "/no/such/dir")],
    "ledger fork": [Case("rpc", lambda e: ["ledger", *chain_opts(e, rpc=BAD_RPC), "fork", "--base", "1"], "no JSON-RPC"),
                    Case("revert", ledger("fork", "--base", "999"), "UnknownBaseModel"),
                    Case("revert", ledger("fork", "--parent", "999", "--at-seq", "1"), "UnknownFork"),
                    Case("value", ledger("fork", "--parent", "1"), "--parent needs --at-seq"),
                    Case("value", ledger("fork", "--base", "1", "--parent", "1", "--at-seq", "1"), "exactly one of"),
                    Case("value", ledger("fork", "--base", "1", "--at-seq", "1"), "--at-seq goes with --parent"),
                    Case("value", ledger("fork", "--parent", "1", "--at-seq", "0"), "Invalid value for '--at-seq'"),
                    Case("password", lambda e: ["ledger", *chain_opts(e), "--keystore", str(e.ks), "fork", "--base", "1",
                                                "#wrong-password"], "wrong password")],
    "ledger train": [Case("file", ledger("train", "--fork", "1", "--prompt", "p", "--response", "r",
                                         "--model-dir", "/no/such/dir"), "ledger key"),
                     *([Case("value", ledger("train", "--fork", "1", "--prompt", "p", "--response", "r",
                                             "--model-dir", "/no/such/dir", "--device", "cuda"), "no CUDA device")]
                       if NO_CUDA else [])],
    "ledger seal": [Case("book", lambda e: ["ledger", *chain_opts(e, book=e.nobook), "seal"], "no address book")],
    "ledger history": [Case("rpc", lambda e: ["ledger", *chain_opts(e, rpc=BAD_RPC), "history"], "no JSON-RPC"),
                       Case("value", ledger("history", "--user", "nobody"), "--user 'nobody' is not an Ethereum address"),
                       Case("value", ledger("history", "--offset", "-1"), "Invalid value for '--offset'"),
                       Case("value", ledger("history", "--limit", "0"), "Invalid value for '--limit'")],
    "ledger export": [Case("file", ledger("export", "--fork", "1"), "ledger key")],
    "ledger verify": [Case("file", ledger("verify", "--fork", "1"), "ledger key")],
    "ledger claim": [Case("file", ledger("claim", "--attestation", "/no/such.json"), "does not exist"),
                     Case("value", lambda e: ["ledger", *chain_opts(e), "claim", "--attestation",
                                              e.file("att.json", '{"evaluator": 1}')], "not a quality attestation")],
    "ledger attest": [Case("file", ledger("attest", "--fork", "1", "--to-seq", "1", "--data", "/no/data.jsonl",
                                          "--model-dir", "/no/dir", "--out", "/tmp/a.json"), "ledger key"),
                      Case("value", ledger("attest", "--fork", "1", "--to-seq", "0", "--data", "/no/data.jsonl",
                                           "--model-dir", "/no/dir", "--out", "/tmp/a.json"), "Invalid value for '--to-seq'"),
                      Case("file", lambda e: ["ledger", *chain_opts(e), "--key-file", e.file("u3.key", "33" * 32), "attest",
                                              "--fork", "1", "--to-seq", "1", "--data", e.file("d.jsonl", "not json\n"),
                                              "--model-dir", "/no/dir", "--out", str(e.tmp / "a.json")],
                           "is not JSON lines")],
    "ledger finalize": [Case("revert", ledger("finalize", "--claim", "999"), "UnknownClaim")],
    "ledger recheck": [Case("file", ledger("recheck", "--claim", "1", "--model-dir", "/no/dir"), "ledger key"),
                       Case("revert", lambda e: ["ledger", *chain_opts(e), "--key-file", e.file("u4.key", "44" * 32),
                                                 "recheck", "--claim", "999", "--model-dir", "/no/dir"], "UnknownClaim")],
    "ledger authorise": [Case("value", ledger("authorise", "--fork", "1", "--recorder", "0xnope"),
                              "is not an Ethereum address")],
    "ledger prove": [Case("revert", ledger("prove", "--op", "999"), "999")],
    "ledger lineage": [Case("revert", ledger("lineage", "--fork", "999"), "UnknownFork"),
                       Case("book", lambda e: ["ledger", *chain_opts(e, book=e.nobook), "lineage", "--fork", "1"],
                            "no address book")],
    "ledger share-key": [Case("file", ledger("share-key", "--fork", "1", "--out", "/tmp/x.key"), "ledger key"),
                         Case("file", lambda e: ["ledger", *chain_opts(e), "--key-file", e.file("u2.key", "22" * 32),
                                                 "share-key", "--fork", "1", "--out", e.file("exists.key", "")],
                              "already exists")],
    "ledger add-key": [Case("file", ledger("add-key", "--fork", "1", "--file", "/no/such.key"), "does not exist"),
                       Case("file", lambda e: ["ledger", *chain_opts(e), "add-key", "--fork", "1", "--file",
                                               e.file("bad.key", "zz")], "not 64 hex characters")],
    "ledger register-key": [
        Case("file", ledger("register-key"), "block-signing key"),
        Case("file", lambda e: ["ledger", *chain_opts(e), "--block-key-file", e.file("k.json", '{"algorithm": "RSA"}'),
                                "register-key"], "is not an ML-DSA-65 key file")],
    "ledger sign": [Case("file", ledger("sign", "--fork", "1"), "ledger key"),
                    Case("file", lambda e: ["ledger", *chain_opts(e), "--key-file", e.file("u.key", "11" * 32),
                                            "--block-key-file", str(e.tmp / "absent.mldsa65"), "sign", "--fork", "1"],
                         "does not exist")],
    # -- oml --------------------------------------------------------------------------------------
    "oml appeal file": [rpc_case("oml", "appeal", "file", extra=("1",)), book_case("oml", "appeal", "file", extra=("1",)),
                        password_case("oml", "appeal", "file", extra=("1",)),
                        Case("value", lambda e: ["oml", "appeal", "file", "first", *chain_opts(e)], "is not a number"),
                        Case("value", lambda e: ["oml", "appeal", "file", "424242", *chain_opts(e), "--dev-account",
                                                 "13"], "no claim 424242")],
    "oml appeal propose": [rpc_case("oml", "appeal", "propose", extra=("1",)),
                           book_case("oml", "appeal", "propose", extra=("1",)),
                           password_case("oml", "appeal", "propose", extra=("1",)),
                           Case("value", lambda e: ["oml", "appeal", "propose", "0", *chain_opts(e)], "ids start at 1"),
                           Case("value", lambda e: ["oml", "appeal", "propose", "424242", *chain_opts(e),
                                                    "--dev-account", "21"], "no claim 424242")],
    "oml appeal release": [rpc_case("oml", "appeal", "release", extra=("1",)),
                           book_case("oml", "appeal", "release", extra=("1",)),
                           password_case("oml", "appeal", "release", extra=("1",)),
                           Case("value", lambda e: ["oml", "appeal", "release", "424242", *chain_opts(e),
                                                    "--dev-account", "13"], "no claim 424242")],
    "oml appeal show": [rpc_case("oml", "appeal", "show", extra=("1",)), book_case("oml", "appeal", "show", extra=("1",)),
                        Case("value", lambda e: ["oml", "appeal", "show", "424242", *chain_opts(e)], "no claim 424242")],
    "oml lineage threshold": [
        Case("value", lambda e: ["oml", "lineage", "threshold", "--base-matches", "70", "--trials", "64", "--subset",
                                 "64"], "exceeds --trials 64"),
        Case("value", lambda e: ["oml", "lineage", "threshold", "--base-matches", "0", "--trials", "64", "--subset",
                                 "64", "--bound", "2"], "false-positive bound must be in (0, 1)"),
        Case("value", lambda e: ["oml", "lineage", "threshold", "--base-matches", "30", "--trials", "64", "--subset",
                                 "4"], "no m <= 4 keeps the false-positive rate")],
    "oml lineage show": [rpc_case("oml", "lineage", "show", extra=("1",)), book_case("oml", "lineage", "show", extra=("1",)),
                         Case("value", lambda e: ["oml", "lineage", "show", "424242", *chain_opts(e)],
                              "no lineage claim 424242")],
    "oml lineage trace": [
        Case("rpc", lambda e: lineage_trace(e, rpc=BAD_RPC), "no JSON-RPC node answers at"),
        Case("book", lambda e: lineage_trace(e, book=e.nobook), "no address book for chain 31337"),
        Case("password", lambda e: [*lineage_trace(e), "--keystore", str(e.ks), "#wrong-password"], "wrong password"),
        Case("value", lambda e: lineage_trace(e, url="suspect:9000"), "expected http(s)://HOST:PORT"),
        Case("file", lambda e: lineage_trace(e, text="{}"), "is not a fingerprints file"),
        Case("file", lambda e: lineage_trace(e, model_id="2"), "holds the fingerprints of model 1, not 2"),
        Case("file", lambda e: [*lineage_trace(e)[:-6], str(e.tmp / "absent.json"), "--file", *chain_opts(e)],
             "does not exist")],
    "oml lineage vote": [rpc_case("oml", "lineage", "vote", extra=("1",)), book_case("oml", "lineage", "vote", extra=("1",)),
                         password_case("oml", "lineage", "vote", extra=("1",)),
                         Case("value", lambda e: ["oml", "lineage", "vote", "first", *chain_opts(e)], "is not a number"),
                         Case("value", lambda e: ["oml", "lineage", "vote", "424242", *chain_opts(e), "--dev-account",
                                                  "15"], "no lineage claim 424242")],
    "oml lineage finalize": [rpc_case("oml", "lineage", "finalize", extra=("1",)),
                             book_case("oml", "lineage", "finalize", extra=("1",)),
                             password_case("oml", "lineage", "finalize", extra=("1",)),
                             Case("value", lambda e: ["oml", "lineage", "finalize", "0", *chain_opts(e)], "ids start at 1"),
                             Case("value", lambda e: ["oml", "lineage", "finalize", "424242", *chain_opts(e),
                                                      "--dev-account", "13"], "no lineage claim 424242")],
    "oml demo": [Case("value", lambda e: ["oml", "demo", "--fingerprints", "0"], "Invalid value for '--fingerprints'")],
    "oml register": [
        rpc_case("oml", "register", extra=("--host", "0x" + "11" * 20)),
        book_case("oml", "register", extra=("--host", "0x" + "11" * 20)),
        Case("value", lambda e: ["oml", "register", "--host", "alice", *chain_opts(e)], "--host 'alice' is not an address"),
        Case("value", lambda e: ["oml", "register", "--host", "0x" + "11" * 20, "--base", "gpt5", *chain_opts(e)],
             "--base 'gpt5'"),
        Case("value", lambda e: ["oml", "register", "--host", "0x" + "11" * 20, "--fee", "lots", *chain_opts(e)],
             "bad amount 'lots'"),
    ],
    "oml platform": [
        rpc_case("oml", "platform"), book_case("oml", "platform"), password_case("oml", "platform"),
        Case("value", lambda e: ["oml", "platform", *chain_opts(e), "--keystore", str(e.ks)], "lacks PLATFORM_ROLE"),
        Case("file", lambda e: ["oml", "platform", "--content-keys", str(e.tmp / "absent-keys.json"), *chain_opts(e)],
             "does not exist"),
        Case("file", lambda e: ["oml", "platform", "--content-keys", str(e.not_keystore), *chain_opts(e)],
             "is not a content-keys file"),
    ],
    "oml license": [
        rpc_case("oml", "license", extra=("--model-id", "1", "--platform", BAD_RPC)),
        book_case("oml", "license", extra=("--model-id", "1", "--platform", BAD_RPC)),
        Case("value", lambda e: ["oml", "license", "--model-id", "424242", "--platform", BAD_RPC, *chain_opts(e),
                                 "--keystore", str(e.ks)], "UnknownModel(modelId=424242)"),
        # a host with no copy in the model (another host's copy is not its to decrypt)
        Case("value", lambda e: ["oml", "license", "--model-id", str(e.oml_model), "--platform", BAD_RPC,
                                 *chain_opts(e), "--keystore", str(e.ks)], "has no copy for host"),
        # the platform is down: refused before any licence is signed or stake moved
        Case("value", lambda e: ["oml", "license", "--model-id", str(e.oml_model), "--platform", BAD_RPC,
                                 *chain_opts(e), "--dev-account", "6"], "unreachable",
             after=lambda e, chain: chain.call(chain.contract("HostAgreements").functions.hasSigned(
                 e.oml_model, dev_signer(6).address)) and pytest.fail("licence signed anyway")),
    ],
    "oml host serve": [
        rpc_case("oml", "host", "serve", extra=("--model-id", "1", "--platform", BAD_RPC)),
        book_case("oml", "host", "serve", extra=("--model-id", "1", "--platform", BAD_RPC)),
        Case("file", lambda e: ["oml", "host", "serve", "--model-id", "1", "--platform", BAD_RPC, "--model-dir",
                                str(e.tmp / "no-model"), *chain_opts(e), "--keystore", str(e.ks)], "no licensed copy in"),
        Case("value", lambda e: ["oml", "host", "serve", "--model-id", str(e.oml_model), "--platform", BAD_RPC,
                                 "--model-dir", model_dir(e, "other", "0x" + "22" * 20), *chain_opts(e),
                                 "--keystore", str(e.ks)], "is licensed to"),
        # an unlicensed host with a (copied) model directory: refused before serving anything
        Case("value", lambda e: ["oml", "host", "serve", "--model-id", str(e.oml_model), "--platform", BAD_RPC,
                                 "--model-dir", model_dir(e, "mine", dev_signer(5).address), *chain_opts(e),
                                 "--keystore", str(e.ks)], "has no running licence"),
        Case("value", lambda e: ["oml", "host", "serve", "--model-id", str(e.oml_model), "--platform", BAD_RPC,
                                 "--model-dir", model_dir(e, "mine", dev_signer(5).address), "--device", "tpu",
                                 *chain_opts(e), "--keystore", str(e.ks)], "--device 'tpu'"),
    ],
    "oml prover": [
        Case("rpc", lambda e: ["oml", "prover", "--model-id", "1", "--platform", BAD_RPC, "--fingerprints",
                               e.file("fps.json", json.dumps({"model_id": 1, "fingerprints": [], "subsets": {}})),
                               "--target", "0x" + "11" * 20 + "=http://h", *chain_opts(e, rpc=BAD_RPC)],
             "no JSON-RPC node answers at"),
        Case("file", lambda e: ["oml", "prover", "--model-id", "1", "--platform", BAD_RPC, "--fingerprints",
                                str(e.tmp / "absent-fps.json"), "--target", "0x" + "11" * 20 + "=http://h",
                                *chain_opts(e)], "does not exist"),
        Case("file", lambda e: ["oml", "prover", "--model-id", "1", "--platform", BAD_RPC, "--fingerprints",
                                str(e.not_keystore), "--target", "0x" + "11" * 20 + "=http://h", *chain_opts(e)],
             "is not a fingerprints file"),
        Case("value", lambda e: ["oml", "prover", "--model-id", "1", "--platform", BAD_RPC, "--fingerprints", "f.json",
                                 "--target", "somewhere", *chain_opts(e)], "expected ADDRESS=http(s)://HOST:PORT"),
        Case("value", lambda e: ["oml", "prover", "--model-id", "1", "--platform", BAD_RPC, "--fingerprints", "f.json",
                                 *chain_opts(e)], "nothing to probe"),
        Case("value", lambda e: ["oml", "prover", "--model-id", "1", "--platform", BAD_RPC, "--fingerprints", "f.json",
                                 "--leak-endpoint", "ftp://x", *chain_opts(e)], "--leak-endpoint 'ftp://x'"),
    ],
    "oml verifier": [
        rpc_case("oml", "verifier", extra=("--platform", BAD_RPC)),
        book_case("oml", "verifier", extra=("--platform", BAD_RPC)),
        Case("value", lambda e: ["oml", "verifier", "--platform", BAD_RPC, *chain_opts(e), "--keystore", str(e.ks)],
             "is not a registered verifier"),
    ],
    "fingerprint generate": [Case("value", lambda e: ["fingerprint", "generate", "--model", "tiny", "--strategy", "bogus",
                                                      "--out", str(e.tmp / "fp.jsonl")], "unknown strategy"),
                             *fp_bad_inputs("generate", "--n", "1", "--out", "TMP/fp-out.jsonl")],
    "fingerprint inject": [Case("file", lambda e: ["fingerprint", "inject", "--model", "tiny", "-f", str(e.tmp / "no.jsonl"),
                                                   "-o", str(e.tmp / "m")], "no.jsonl"),
                           Case("value", lambda e: ["fingerprint", "inject", "--model", "tiny", "-f", str(e.tmp / "no.jsonl"),
                                                    "-o", str(e.tmp / "m"), "--recipe", "bogus"], "--recipe 'bogus'"),
                           *fp_bad_inputs("inject", "-o", "TMP/m-out", "--steps", "1")],
    "fingerprint check": [Case("file", lambda e: ["fingerprint", "check", "--model", "tiny", "-f", str(e.tmp / "no.jsonl")],
                               "no such fingerprint file"),
                          Case("file", lambda e: ["fingerprint", "check", "--model", "tiny", "-f",
                                                  e.file("bad.jsonl", "{oops\n")], "not valid JSON"),
                          *fp_bad_inputs("check")],
    "fingerprint attack": [Case("file", lambda e: ["fingerprint", "attack", "--model", "tiny", "-f",
                                                   str(e.tmp / "no.jsonl"), "--out-dir", str(e.tmp / "a")], "no.jsonl"),
                           *fp_bad_inputs("attack", "--kind", "wrap")],
    "fingerprint utility": [Case("file", lambda e: ["fingerprint", "utility", "--model", "tiny", "--text",
                                                    str(e.tmp / "none.txt")], "none.txt"),
                            *fp_bad_inputs("utility")],
    "fingerprint report": [Case("file", lambda e: ["fingerprint", "report", "--results", str(e.tmp / "none.json")],
                                "no results file")],
    # -- dao --------------------------------------------------------------------------------------
    "dao demo": [],
    "dao proposals": [rpc_case("dao", "proposals"), book_case("dao", "proposals")],
    "dao show": [rpc_case("dao", "show", extra=("1",)), book_case("dao", "show", extra=("1",)),
                 Case("value", lambda e: ["dao", "show", "first", *chain_opts(e)], "is not a number"),
                 Case("value", lambda e: ["dao", "show", "424242", *chain_opts(e)], "no proposal 424242")],
    "dao propose": [
        rpc_case("dao", "propose", extra=DAO_CALL), book_case("dao", "propose", extra=DAO_CALL),
        password_case("dao", "propose", extra=DAO_CALL),
        Case("value", lambda e: ["dao", "propose", "--type", "urgent", *DAO_CALL, *chain_opts(e), "--dev-account", "23"],
             "unknown proposal type 'urgent'"),
        Case("value", lambda e: ["dao", "propose", "--call", "Nowhere.fn []", "--description", "d", *chain_opts(e),
                                 "--dev-account", "23"], "Nowhere is not deployed"),
        Case("value", lambda e: ["dao", "propose", "--call", "PersonnelRegistry.fileReport [1,", "--description", "d",
                                 *chain_opts(e), "--dev-account", "23"], "are not JSON"),
        Case("value", lambda e: ["dao", "propose", "--call", "PersonnelRegistry.fileReport [1]", "--description", "d",
                                 *chain_opts(e), "--dev-account", "23"], "do not fit fileReport("),
        # an out-of-type action (an emergency power by a Review proposal): named, nothing created
        Case("revert", lambda e: ["dao", "propose", "--call", "DaoModelRegistry.revoke [1, \"0x" + "00" * 32 + "\"]",
                                  "--description", "d", *chain_opts(e), "--dev-account", "23"],
             "a Review proposal may not call DaoModelRegistry.revoke (only Emergency proposals may)"),
    ],
    "dao vote": [
        rpc_case("dao", "vote", extra=("1",)), book_case("dao", "vote", extra=("1",)),
        password_case("dao", "vote", extra=("1",)),
        Case("value", lambda e: ["dao", "vote", "first", *chain_opts(e), "--dev-account", "20"], "is not a number"),
        Case("value", lambda e: ["dao", "vote", "424242", *chain_opts(e), "--dev-account", "20"], "no proposal 424242"),
        Case("value", lambda e: ["dao", "vote", "1", "--support", "maybe", *chain_opts(e)], "unknown vote 'maybe'"),
        Case("value", lambda e: ["dao", "vote", "1", "--sign-only", "b.json", "--relay", "b.json", *chain_opts(e)],
             "exclude each other"),
        Case("file", lambda e: ["dao", "vote", "--relay", str(e.tmp / "absent-ballot.json"), *chain_opts(e),
                                "--dev-account", "26"], "does not exist"),
        Case("file", lambda e: ["dao", "vote", "--relay", str(e.not_keystore), *chain_opts(e), "--dev-account", "26"],
             "is not a signed ballot"),
        Case("value", lambda e: ["dao", "vote", "--relay", e.file("chain1.json", json.dumps(FOREIGN_BALLOT)),
                                 *chain_opts(e), "--dev-account", "26"], "signed for chain 1, this is chain 31337"),
    ],
    "dao execute": [rpc_case("dao", "execute", extra=("1",)), book_case("dao", "execute", extra=("1",)),
                    Case("value", lambda e: ["dao", "execute", "424242", *chain_opts(e), "--dev-account", "26"],
                         "no proposal 424242")],
    "dao submit-model": [
        rpc_case("dao", "submit-model", extra=("--artifact-hash", "0x" + "ab" * 32, "--uri", "u")),
        book_case("dao", "submit-model", extra=("--artifact-hash", "0x" + "ab" * 32, "--uri", "u")),
        Case("file", lambda e: ["dao", "submit-model", "--artifact", str(e.tmp / "absent.bin"), "--uri", "u",
                                *chain_opts(e)], "cannot read"),
        Case("value", lambda e: ["dao", "submit-model", "--uri", "u", *chain_opts(e)], "one of them"),
        Case("revert", lambda e: ["dao", "submit-model", "--artifact-hash", "0x" + "00" * 32, "--uri", "u",
                                  *chain_opts(e), "--dev-account", "27"], "EmptyArtifact"),
    ],
    "dao register-hardware": [
        rpc_case("dao", "register-hardware", extra=("--attestation-key", "k", "--measurement", "0x" + "ab" * 32)),
        book_case("dao", "register-hardware", extra=("--attestation-key", "k", "--measurement", "0x" + "ab" * 32)),
        Case("file", lambda e: ["dao", "register-hardware", "--attestation-key", str(e.tmp / "absent.json"),
                                "--measurement", "0x" + "ab" * 32, *chain_opts(e)], "does not exist"),
        Case("value", lambda e: ["dao", "register-hardware", "--attestation-key", str(e.ks), "--measurement", "0xzz",
                                 *chain_opts(e)], "is not hex"),
        Case("revert", lambda e: ["dao", "register-hardware", "--attestation-key", str(e.ks), "--measurement",
                                  "0x" + "00" * 32, *chain_opts(e), "--dev-account", "26"], "EmptyMeasurement"),
    ],
    "dao buy-credits": [
        rpc_case("dao", "buy-credits", extra=("10",)), book_case("dao", "buy-credits", extra=("10",)),
        password_case("dao", "buy-credits", extra=("10",)),
        Case("funds", lambda e: ["dao", "buy-credits", "10", *chain_opts(e), "--keystore", str(e.poor)], "has 0 LOYAL",
             after=no_allowance("poor", "GasCredits")),
        Case("value", lambda e: ["dao", "buy-credits", "0", *chain_opts(e)], "Invalid value"),
    ],
    "dao datacenter": [
        rpc_case("dao", "datacenter", extra=(*DC, "--run", "1")), book_case("dao", "datacenter", extra=(*DC, "--run", "1")),
        Case("value", lambda e: ["dao", "datacenter", "--hardware", "1", "--measurement", "0x12", "--attestation-key",
                                 "k", *chain_opts(e)], "--measurement must be 32 bytes"),
        Case("value", lambda e: ["dao", "datacenter", *DC, "--model", "1", "--scope", "wide", *chain_opts(e)],
             "narrow or general"),
        Case("value", lambda e: ["dao", "datacenter", *DC, "--model", "1", "--run", "1", *chain_opts(e)],
             "give one of them"),
        Case("file", lambda e: ["dao", "datacenter", "--hardware", "1", "--measurement", "0x" + "ab" * 32,
                                "--attestation-key", str(e.tmp / "absent-key.json"), "--run", "1", *chain_opts(e),
                                "--keystore", str(e.ks)], "does not exist"),
    ],
    # -- explorer ---------------------------------------------------------------------------------
    "index": [rpc_case("index", extra=("--once",)), book_case("index", extra=("--once",)),
              Case("value", lambda e: ["index", "--once", *chain_opts(e), "--db", "nosuchdb://x"],
                   "bad index database URL"),
              Case("file", lambda e: ["index", "--once", *chain_opts(e), "--db",
                                             f"sqlite:///{e.file('a-file', 'x')}/x.sqlite"], "cannot open the index database"),
              Case("value", lambda e: ["index", "--once", *chain_opts(e), "--batch-blocks", "0"], "Invalid value")],
    "explorer": [rpc_case("explorer"), book_case("explorer"),
                 Case("value", lambda e: ["explorer", *chain_opts(e), "--db", "nosuchdb://x"], "bad index database URL"),
                 Case("file", lambda e: ["explorer", *chain_opts(e), "--db", f"sqlite:///{e.tmp}/x.sqlite",
                                         "--din-reports", str(e.tmp / "no-reports")], "is not a folder"),
                 password_case("explorer", extra=("--db", "sqlite:///:memory:")),
                 Case("value", lambda e: ["explorer", *chain_opts(e), "--port", "70000"], "Invalid value")],
}


def leaf_commands() -> list[str]:
    from agents.cli import app

    def walk(cmd: click.Command, path: list[str]):
        if isinstance(cmd, click.Group):
            for name, sub in cmd.commands.items():
                yield from walk(sub, [*path, name])
        else:
            yield " ".join(path)

    return sorted(walk(typer.main.get_command(app), []))


def test_every_command_has_cases():
    """A new command must list its bad inputs here (an empty list only where it takes no input
    but flags, which the unknown-option case covers)."""
    commands = leaf_commands()
    assert sorted(CASES) == commands, (set(commands) ^ set(CASES))


def _all_cases() -> list:
    out = []
    for cmd, cases in CASES.items():
        out.append(pytest.param(cmd, Case("option", lambda e, c=cmd: [*c.split(), "--no-such-option"],
                                          "No such option", code=2), id=f"{cmd}-option"))
        for i, case in enumerate(cases):
            out.append(pytest.param(cmd, case, id=f"{cmd}-{case.kind}-{i}"))
    return out


@pytest.fixture(scope="module")
def env(_suite, anvil, tmp_path_factory):
    """Key files and a DIN task on the session chain (module-wide; each test reverts its own changes)."""
    from agents.core.store import LocalStore
    from agents.din.contracts import TaskConfig
    from agents.din.owner import create_task
    from ml.din import data

    chain = _suite
    snap = chain.snapshot()
    tmp = tmp_path_factory.mktemp("cli-contract")
    keys = {}
    for name, account in (("ks", dev_signer(5)), ("poor", Account.create()), ("broke", Account.create())):
        keys[name] = save_keystore(account, tmp / f"{name}.json", PASSWORD, scrypt_n=2)
    poor, broke = (Account.from_key(Account.decrypt(json.loads(keys[k].read_text()), PASSWORD)) for k in ("poor", "broke"))
    chain.w3.provider.make_request("anvil_setBalance", [poor.address, hex(10**18)])
    token = chain.contract("LoyalToken")
    chain.transact(dev_signer(0), token.functions.transfer(broke.address, 100 * 10**18))
    not_keystore = tmp / "not-keystore.json"
    not_keystore.write_text("{}")
    t = 10**18
    cfg = TaskConfig(reward=10 * t, evaluator_fee=t, participant_bond=t, min_evaluator_stake=5 * t, slash_amount=t,
                     rounds=1, subgroup_size=2, evaluators_per_subgroup=1, max_evaluators=2)
    # the genesis model in the store of the DIN home the cases run with (`--home <tmp>/din`)
    task, _ = create_task(chain, LocalStore(tmp / "din" / "store"), dev_signer(6), cfg, data.split(2, seed=0).test)
    # an OML model whose one (sealed) copy is for dev account 6, in the store the cases use (<home>/oml/store)
    from agents.oml.community import Terms, register_copies

    oml_model, _, _ = register_copies(chain, dev_signer(7), LocalStore(tmp / "home" / "oml" / "store"), "tiny",
                                      {dev_signer(6).address: b"weights"}, {}, [("k", "r")], Terms(t, 50 * t, 3600))
    yield Env(anvil.rpc_url, chain.book.path, tmp, keys["ks"], keys["poor"], keys["broke"], not_keystore, task,
              oml_model)
    chain.revert_to(snap)


@pytest.mark.parametrize("cmd, case", _all_cases())
def test_bad_input_is_one_line(cmd, case, env, chain, monkeypatch):
    monkeypatch.setenv("LOYAL_HOME", str(env.tmp / "home"))
    monkeypatch.delenv("LOYAL_KEYSTORE", raising=False)
    args = case.args(env)
    password = PASSWORD
    if "#wrong-password" in args:
        args.remove("#wrong-password")
        password = "not the password"
    if "#no-password" in args:
        args.remove("#no-password")
        monkeypatch.delenv("LOYAL_KEY_PASSWORD", raising=False)
    else:
        monkeypatch.setenv("LOYAL_KEY_PASSWORD", password)
    r = invoke(args)
    assert r.exit_code == case.code, f"exit {r.exit_code}, expected {case.code}: {r.output[-2000:]}"
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), f"not one error line: {r.stderr[-2000:]!r}"
    assert case.says in lines[0], f"{case.says!r} not in {lines[0]!r}"
    assert "Traceback" not in r.output and "Usage:" not in r.output and "internal error" not in lines[0]
    chain.reset_nonces()
    if case.after:
        case.after(env, chain)
