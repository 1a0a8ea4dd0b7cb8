"""cutmix.integrations.transformers: a real Trainer run with a tiny ViT built from a config."""

from __future__ import annotations

import importlib.util
import os

import pytest
import torch

import cutmix

os.environ.setdefault("HF_HUB_OFFLINE", "1")
transformers = pytest.importorskip("transformers")
from cutmix.integrations.transformers import CutMixTrainer  # noqa: E402

# transformers.Trainer / TrainingArguments need accelerate (in cutmix[transformers]).
needs_accelerate = pytest.mark.skipif(
    importlib.util.find_spec("accelerate") is None, reason="accelerate is not installed"
)

C = 4


def _model():
    cfg = transformers.ViTConfig(image_size=8, patch_size=4, num_channels=3, hidden_size=16,
                                 num_hidden_layers=1, num_attention_heads=2, intermediate_size=16,
                                 num_labels=C)  # fmt: skip
    torch.manual_seed(0)
    return transformers.ViTForImageClassification(cfg)


def _data(n: int) -> list:
    g = torch.Generator().manual_seed(n)
    return [{"pixel_values": torch.rand(3, 8, 8, generator=g), "labels": k % C} for k in range(n)]


class _Recording(CutMixTrainer):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.calls: list = []

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        res = super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        loss = res[0] if isinstance(res, tuple) else res
        with torch.no_grad():
            logits = model(pixel_values=inputs["pixel_values"]).logits
        self.calls.append((model.training, inputs["labels"].clone(), loss.detach(), logits))
        return res


@needs_accelerate
@needs_accelerate
def test_trainer_trains_with_soft_target_ce_and_evaluates_unmixed(tmp_path) -> None:
    model = _model()
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path), per_device_train_batch_size=4, per_device_eval_batch_size=4,
        max_steps=3, learning_rate=1e-3, report_to=[], save_strategy="no", logging_steps=1,
        use_cpu=True, dataloader_num_workers=0, disable_tqdm=True,
    )  # fmt: skip
    trainer = _Recording(model=model, args=args, train_dataset=_data(12), eval_dataset=_data(8),
                         mix=cutmix.CutMix(1.0, num_classes=C), mix_seed=0)  # fmt: skip
    trainer.train()
    metrics = trainer.evaluate()
    train = [c for c in trainer.calls if c[0]]
    evals = [c for c in trainer.calls if not c[0]]
    assert len(train) == 3 and len(evals) == 2
    for _, labels, loss, logits in train:
        assert labels.shape == (4, C) and labels.dtype == torch.float32  # mixed soft targets
        assert not torch.equal(labels, torch.nn.functional.one_hot(labels.argmax(1), C).float())
        want = cutmix.soft_target_cross_entropy(logits, labels)
        assert loss.item() == pytest.approx(want.item(), rel=1e-5)
        bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, labels)
        assert abs(loss.item() - bce.item()) > 0.1  # not the silent BCE switch
    assert model.config.problem_type in (None, "single_label_classification")
    for _, labels, loss, logits in evals:
        assert labels.dim() == 1 and labels.dtype == torch.long  # never mixed
        want = torch.nn.functional.cross_entropy(logits, labels)
        assert loss.item() == pytest.approx(want.item(), rel=1e-5)
    assert "eval_loss" in metrics
    # After training the plain collator is back (used for evaluation and predict).
    assert not isinstance(trainer.data_collator, cutmix.MixCollate)


@needs_accelerate
@needs_accelerate
def test_default_mix_from_the_model_config_and_errors(tmp_path) -> None:
    args = transformers.TrainingArguments(output_dir=str(tmp_path), report_to=[], use_cpu=True)
    trainer = CutMixTrainer(model=_model(), args=args, train_dataset=_data(4))
    assert isinstance(trainer.mix, cutmix.CutMix) and trainer.mix.num_classes == C
    assert trainer.loss_is_scaled_for_ga is False  # a per-batch mean: the Trainer divides by GA
    with pytest.raises(TypeError, match="mix"):
        CutMixTrainer(model=_model(), args=args, mix="cutmix")


@pytest.mark.parametrize("problem_type", [None, "multi_label_classification"])
def test_soft_labels_get_soft_target_ce_whatever_the_problem_type(problem_type) -> None:
    model = _model()
    model.config.problem_type = problem_type
    trainer = object.__new__(CutMixTrainer)  # compute_loss alone: no TrainingArguments needed
    trainer.label_key = "labels"
    x = torch.rand(4, 3, 8, 8)
    soft = torch.softmax(torch.rand(4, C), 1)
    loss, outputs = trainer.compute_loss(model, {"pixel_values": x, "labels": soft}, True)
    want = cutmix.soft_target_cross_entropy(model(pixel_values=x).logits, soft)
    assert loss.item() == pytest.approx(want.item(), rel=1e-6)
    assert outputs.loss is None  # the model never saw the float labels (no BCE switch)
    assert model.config.problem_type == problem_type
