"""cutmix.integrations.lightning with real Trainers: tuple / list / dict batches, eval unmixed, DDP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, default_collate

import cutmix

L = pytest.importorskip("lightning.pytorch")
from cutmix.integrations.lightning import MixCallback  # noqa: E402

C = 4


class _Data(Dataset):
    def __init__(self, kind: str, n: int = 8) -> None:
        g = torch.Generator().manual_seed(0)
        self.x, self.y, self.kind = torch.rand(n, 3, 8, 8, generator=g), torch.arange(n) % C, kind

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int):
        if self.kind == "dict":
            return {"image": self.x[i], "label": self.y[i], "idx": i}
        return [self.x[i], self.y[i]] if self.kind == "list" else (self.x[i], self.y[i])


def _module(base):
    class Tiny(base):
        def __init__(self) -> None:
            super().__init__()
            self.net = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, C))
            self.seen: list = []

        def _xy(self, batch):
            return (batch["image"], batch["label"]) if isinstance(batch, dict) else batch[:2]

        def training_step(self, batch, idx):
            x, y = self._xy(batch)
            self.seen.append(("train", type(batch), y.detach().clone(), self.hard_labels.clone(),
                              self.trainer.current_epoch))  # fmt: skip
            return cutmix.soft_target_cross_entropy(self.net(x), y)

        def validation_step(self, batch, idx):
            _, y = self._xy(batch)
            self.seen.append(("val", type(batch), y.detach().clone(), None, None))

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    return Tiny()


def _fit(pl, kind: str, cb, **kw):
    model = _module(pl.LightningModule)
    collate = (lambda b: tuple(default_collate(b))) if kind == "tuple" else default_collate
    loader = DataLoader(_Data(kind), batch_size=4, collate_fn=collate)
    trainer = pl.Trainer(accelerator="cpu", devices=1, callbacks=[cb], logger=False,
                         enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, **kw)  # fmt: skip
    trainer.fit(model, loader, loader)
    return model, trainer


@pytest.mark.parametrize("kind", ["tuple", "list", "dict"])
def test_fast_dev_run_mixes_train_batches_only(kind: str) -> None:
    cb = MixCallback(cutmix.CutMix(1.0, num_classes=C))
    model, trainer = _fit(L, kind, cb, fast_dev_run=True)
    train = [s for s in model.seen if s[0] == "train"]
    val = [s for s in model.seen if s[0] == "val"]
    assert train and val
    want_type = {"tuple": tuple, "list": list, "dict": dict}[kind]
    for _, typ, y, hard, _ in train:
        assert typ is want_type and y.shape == (4, C) and y.dtype == torch.float32
        assert hard.tolist() == [0, 1, 2, 3]  # hard labels kept for metrics
        assert torch.allclose(y.sum(1), torch.ones(4))
    for _, _, y, _, _ in val:
        assert y.dim() == 1  # never mixed
    lam = float(trainer.logged_metrics["cutmix/lambda_step"])
    assert lam == pytest.approx(float(cb.last_params.lam.mean()))
    # The module's hook is restored after fit.
    assert "on_after_batch_transfer" not in vars(model)


def test_works_with_pytorch_lightning_too() -> None:
    pl = pytest.importorskip("pytorch_lightning")
    cb = MixCallback(cutmix.MixUp(0.4, num_classes=C))
    assert isinstance(cb, pl.Callback) and isinstance(cb, L.Callback)
    model, _ = _fit(pl, "tuple", cb, fast_dev_run=True)
    assert any(s[0] == "train" and s[2].dim() == 2 for s in model.seen)


def test_off_for_the_last_epochs() -> None:
    cb = MixCallback(cutmix.CutMix(1.0, num_classes=C), off_last_epochs=1)
    model, _ = _fit(L, "tuple", cb, max_epochs=3, limit_val_batches=0)
    by_epoch: dict = {}
    for _, _, y, hard, epoch in (s for s in model.seen if s[0] == "train"):
        onehot = torch.nn.functional.one_hot(hard, C).float()
        by_epoch.setdefault(epoch, []).append(torch.equal(y, onehot))
    assert not all(by_epoch[0]) and not all(by_epoch[1])  # mixed
    assert all(by_epoch[2])  # the last epoch: hard one-hot targets


def test_mix_batch_structures_and_errors() -> None:
    cb = MixCallback(cutmix.CutMix(1.0, num_classes=C), seed=0)
    x, y = torch.rand(4, 3, 8, 8), torch.arange(4)
    out = cb.mix_batch({"pixel_values": x, "labels": y, "meta": "m"})
    assert out["labels"].shape == (4, C) and torch.equal(out["hard_labels"], y)
    assert out["meta"] == "m"
    custom = MixCallback(cutmix.CutMix(1.0, num_classes=C), image_key=1, label_key=0)
    assert custom.mix_batch((y, x))[0].shape == (4, C)
    with pytest.raises(ValueError, match="image_key"):
        cb.mix_batch({"foo": x})
    with pytest.raises(TypeError, match="batch"):
        cb.mix_batch(x)
    with pytest.raises(ValueError, match="off_last_epochs"):
        MixCallback(cutmix.CutMix(1.0), off_last_epochs=-1)


_DDP_SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    import torch
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset
    import lightning.pytorch as L
    import cutmix
    from cutmix.integrations.lightning import MixCallback

    out_dir = sys.argv[1]

    class Tiny(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = nn.Linear(3 * 16 * 16, 4)
        def training_step(self, batch, idx):
            x, y = batch
            return cutmix.soft_target_cross_entropy(self.net(x.flatten(1)), y)
        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    class Record(L.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, idx):
            samples = [(torch.zeros(1, 8, 8) + i, i % 4) for i in range(8)]
            collate = cutmix.MixCollate(cutmix.CutMix(1.0, num_classes=4), seed=0)
            xc, _ = collate(samples)
            rec = {"rank": trainer.global_rank, "world": trainer.world_size,
                   "boxes": mix.last_params.boxes.tolist(), "collate": xc.flatten(1).tolist()}
            with open(os.path.join(out_dir, f"rank{trainer.global_rank}.json"), "w") as f:
                json.dump(rec, f)

    L.seed_everything(0)
    data = TensorDataset(torch.rand(16, 3, 16, 16), torch.arange(16) % 4)
    mix = MixCallback(cutmix.CutMix(1.0, num_classes=4))
    trainer = L.Trainer(strategy="ddp", accelerator="cpu", devices=2, max_steps=1,
                        callbacks=[mix, Record()], logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(Tiny(), DataLoader(data, batch_size=8))
    """
)


@pytest.mark.slow  # ~90 s on 2 busy cores: three interpreters import lightning
def test_ddp_two_cpu_processes_draw_different_boxes(tmp_path: Path) -> None:
    script = tmp_path / "ddp_run.py"
    script.write_text(_DDP_SCRIPT)
    env = {**os.environ, "PL_DISABLE_FORK": "1", "MASTER_ADDR": "127.0.0.1",
           "OMP_NUM_THREADS": "1"}  # fmt: skip
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path(cutmix.__file__).parents[1]),
                                                      env.get("PYTHONPATH")]))  # fmt: skip
    start = time.monotonic()
    res = subprocess.run([sys.executable, str(script), str(tmp_path)], env=env,
                         capture_output=True, text=True, timeout=240)  # fmt: skip
    elapsed = time.monotonic() - start
    assert res.returncode == 0, res.stderr[-3000:]
    r0 = json.loads((tmp_path / "rank0.json").read_text())
    r1 = json.loads((tmp_path / "rank1.json").read_text())
    assert (r0["rank"], r1["rank"], r0["world"]) == (0, 1, 2)
    assert r0["boxes"] != r1["boxes"]  # the callback: each rank its own stream
    assert r0["collate"] != r1["collate"]  # MixCollate seeded alike: different streams too
    print(f"DDP run took {elapsed:.1f} s")


def test_without_off_epochs_the_users_switch_is_left_alone() -> None:
    mix = cutmix.CutMix(1.0, num_classes=C, enabled=False)
    model, _ = _fit(L, "list", MixCallback(mix), fast_dev_run=True)
    for _, _, y, hard, _ in (s for s in model.seen if s[0] == "train"):
        assert torch.equal(y, torch.nn.functional.one_hot(hard, C).float())
    assert mix.enabled is False


@pytest.mark.parametrize("package", ["lightning.pytorch", "pytorch_lightning"])
def test_a_datamodule_hook_still_runs_before_the_mix(package: str) -> None:
    pl = pytest.importorskip(package)

    class Data(pl.LightningDataModule):
        def train_dataloader(self):
            return DataLoader(_Data("list"), batch_size=4)

        def on_after_batch_transfer(self, batch, dataloader_idx):
            x, y = batch
            return [x * 0, y]  # the datamodule's own device-side step: zero the images

    cb = MixCallback(cutmix.CutMix(1.0, num_classes=C))
    model = _module(pl.LightningModule)
    trainer = pl.Trainer(accelerator="cpu", fast_dev_run=True, callbacks=[cb], logger=False,
                         enable_progress_bar=False, enable_model_summary=False)  # fmt: skip
    trainer.fit(model, datamodule=Data())
    _, _, y, _, _ = next(s for s in model.seen if s[0] == "train")
    assert y.shape == (4, C)  # mixed after the datamodule's hook ran
    assert cb.last_params is not None
