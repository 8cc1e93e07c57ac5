"""Every fingerprint, ledger and protocol training path runs where `--device` puts it (tested on the
CPU: the choice logic, and models and batches landing on the picked device), and per-host copies
are built without a second full model in memory."""
import pytest
import torch

from common.errors import ConfigError
from ml.device import input_device, pick_device, to_device
from ml.lm import load_model, save_model, tiny_causal_lm
from ml.oml import copies as mc
from ml.oml import decode
from ml.oml.check import check
from ml.oml.fingerprints import Fingerprint
from ml.oml.inject import InjectConfig, inject

NO_CUDA = not torch.cuda.is_available()


def test_auto_is_cpu_without_accelerators():
    if NO_CUDA and not torch.backends.mps.is_available():
        assert pick_device("auto") == torch.device("cpu")
    assert pick_device("cpu") == torch.device("cpu")


@pytest.mark.skipif(not NO_CUDA, reason="a CUDA device is present")
@pytest.mark.parametrize("choice", ["cuda", "cuda:0"])
def test_cuda_without_cuda_is_a_config_error(choice):
    with pytest.raises(ConfigError, match="no CUDA device"):
        pick_device(choice)


def test_unknown_device_is_a_config_error():
    with pytest.raises(ConfigError, match="expected auto, cpu"):
        pick_device("tpu")


class Recorder(torch.nn.Module):
    """Records the device of every tensor a model is called with."""
    def __init__(self, model):
        super().__init__()
        self.seen = set()
        model.register_forward_pre_hook(self._hook, with_kwargs=True)

    def _hook(self, _mod, args, kwargs):
        for v in list(args) + list(kwargs.values()):
            if isinstance(v, torch.Tensor):
                self.seen.add(v.device)


def test_bf16_screen_only_where_bf16_is_native(monkeypatch):
    import ml.device as D

    cpu = torch.device("cpu")
    monkeypatch.setattr(D, "_cpu_flags", lambda: frozenset({"avx2", "avx512f"}))
    assert not D.bf16_native(cpu)  # AVX-512 without BF16: oneDNN would emulate bf16, slower than float32
    for flags in ({"avx512f", "avx512_bf16"}, {"amx_bf16"}):
        monkeypatch.setattr(D, "_cpu_flags", lambda f=flags: frozenset(f))
        assert D.bf16_native(cpu)
    assert not D.bf16_native(torch.device("meta"))


def test_model_and_batches_land_on_the_picked_device(tmp_path):
    """`load_model(spec, device)` puts the model there; generate/check/inject feed it batches there."""
    dev = pick_device("cpu")
    model, tok = tiny_causal_lm(seed=0)
    save_model(model, tok, tmp_path / "m")
    model, tok = load_model(str(tmp_path / "m"), dev)
    assert {p.device for p in model.parameters()} == {dev} and input_device(model) == dev
    rec = Recorder(model)
    fps = [Fingerprint("abc", " de", "random_tokens"), Fingerprint("fghij", " k", "random_tokens")]
    check(model, tok, fps)
    decode.greedy(model, [[1, 2, 3]], 2, tok.pad_token_id)
    inject(model, tok, fps, InjectConfig(steps=1, lr=1e-3, batch_size=2))
    assert rec.seen == {dev}
    assert to_device({"a": torch.zeros(1), "n": 3}, dev)["a"].device == dev


def test_ledger_trainer_trains_on_its_device():
    from ml.ledger.trainer import ForkTrainer, Interaction

    model, tok = tiny_causal_lm(seed=0, tokenizer="chars")
    tr = ForkTrainer(model, tok, lr=0.5, seed=0, device=pick_device("cpu"))
    assert tr.device == torch.device("cpu")
    assert {p.device for p in tr.model.parameters()} == {torch.device("cpu")}
    step = tr.step(Interaction("hi", "there"))
    assert all(t.device.type == "cpu" for t in tr.state.values()) and step.delta


def test_tiny_copies_on_a_device_and_read_from_disk(tmp_path):
    built = mc.build(mc.CopySpec(base="tiny", hosts=2, per_host=2), tmp_path / "cache", device=pick_device("cpu"))
    assert isinstance(built.blobs, mc.CopyBlobs) and len(built.blobs) == 2
    assert all(p.is_file() for p in built.blobs.paths)  # on disk, not held in memory
    served = mc.load(built.blobs[0], device=pick_device("cpu"))
    assert served.device == torch.device("cpu")
    key, resp = built.subsets[0][0]
    assert served.complete(key, len(resp.encode()) + 1) == resp
    again = mc.build(mc.CopySpec(base="tiny", hosts=2, per_host=2), tmp_path / "cache")
    assert again.cached and again.blobs[1] == built.blobs[1]


def test_base_is_reloaded_from_its_file_not_kept(tmp_path):
    """Between copies the base weights come back from the safetensors file, exactly."""
    model, tok = tiny_causal_lm(seed=0, arch="llama")
    save_model(model, tok, tmp_path / "base")
    base = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    mc._reload_base(model, tmp_path / "base" / "model.safetensors")
    assert all(torch.equal(v, base[k]) for k, v in model.state_dict().items())


def test_averaging_base_is_mapped_from_the_checkpoint_not_cloned(tmp_path):
    from ml.oml.base_weights import base_weights

    model, tok = tiny_causal_lm(seed=0, arch="llama")
    save_model(model, tok, tmp_path / "m")
    model, tok = load_model(str(tmp_path / "m"))
    base = base_weights(model)
    names = {n for n, _ in model.named_parameters()}
    assert base.mapped == names and base.mapped_fraction() == 1.0
    before = {n: t.clone() for n, t in base.items()}
    with torch.no_grad():  # training changes the parameters, never the mapped base (nor the file)
        for p in model.parameters():
            p.add_(1.0)
    assert all(torch.equal(base[n], before[n]) for n in names)
    # a parameter that no longer equals the file is cloned, not mapped
    again = base_weights(model)
    assert again.mapped == set() and all(torch.equal(again[n], p) for n, p in model.named_parameters())
    # a model that was not loaded from a directory: everything cloned
    fresh, _ = tiny_causal_lm(seed=0)
    assert base_weights(fresh).mapped == set()


def test_averaging_with_a_mapped_base_equals_averaging_with_a_copy(tmp_path):
    """Injection with model averaging gives bit-identical weights whichever way the base is held."""
    import ml.oml.inject as I

    model, tok = tiny_causal_lm(seed=0)
    save_model(model, tok, tmp_path / "m")
    fps = [Fingerprint("abc", " de", "random_tokens"), Fingerprint("fghij", " k", "random_tokens")]
    cfg = InjectConfig(steps=3, lr=1e-3, batch_size=2, avg_lambda=0.3)
    a, _ = inject(*load_model(str(tmp_path / "m")), fps, cfg)
    orig = I.base_weights
    try:
        I.base_weights = lambda m: {n: p.detach().clone() for n, p in m.named_parameters()}
        b, _ = inject(*load_model(str(tmp_path / "m")), fps, cfg)
    finally:
        I.base_weights = orig
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_copies_without_a_cache_leave_no_files_behind():
    import gc

    built = mc.build(mc.CopySpec(base="tiny", hosts=1, per_host=1))
    folder = built.blobs.paths[0].parent
    assert built.blobs[0] and folder.is_dir()
    del built
    gc.collect()
    assert not folder.exists()
