"""torch.compile(fullgraph=True) captures the kernels: the proxy for "no host synchronisation".

A ``.item()``, ``.tolist()`` or data-dependent shape would be a graph break, and ``fullgraph=True``
turns any graph break into an error. Backend "eager" is enough to check the capture on CPU.
"""

from __future__ import annotations

import pytest
import torch

import cutmix
from cutmix import MixParams
from cutmix.functional import apply_images, cut_images, mix_images, mix_labels

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.fixture(autouse=True)
def fresh_dynamo():
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def compiled(fn):
    return torch.compile(fn, fullgraph=True, backend="eager", dynamic=False)


def test_cut_images_auto_is_captured_whole():
    # 3 x 64 x 72 per sample: large enough for eager CPU "auto" to prefer a Python loop over boxes;
    # under compile "auto" must pick the vectorised kernel, or fullgraph=True raises.
    g = torch.Generator().manual_seed(0)
    x = torch.rand(4, 3, 64, 72, generator=g).contiguous(memory_format=torch.channels_last)
    p = cutmix.sample_cutmix(4, (64, 72), generator=g)
    fn = compiled(
        lambda images, perm, lam, boxes: cut_images(images, MixParams(perm, lam, boxes, (64, 72)))
    )
    before = x.clone()
    got = fn(x, p.perm, p.lam, p.boxes)
    assert torch.equal(x, before) and torch.equal(got, cut_images(x, p))
    assert got.is_contiguous(memory_format=torch.channels_last)
    # New params of the same shapes run the same graph.
    q = cutmix.sample_cutmix(4, (64, 72), generator=g)
    assert torch.equal(fn(x, q.perm, q.lam, q.boxes), cut_images(x, q))


def test_cut_images_with_params_object_and_uint8():
    g = torch.Generator().manual_seed(1)
    x = torch.randint(0, 256, (5, 3, 8, 6), generator=g, dtype=torch.uint8)
    p = cutmix.sample_cutmix(5, (8, 6), mode="pair", generator=g)
    got = compiled(cut_images)(x, p)
    assert got.dtype == torch.uint8 and torch.equal(got, cut_images(x, p))


def test_mix_images_is_captured_whole():
    g = torch.Generator().manual_seed(2)
    x = torch.rand(5, 3, 8, 6, generator=g).half().contiguous(memory_format=torch.channels_last)
    p = cutmix.sample_mixup(5, (8, 6), alpha=1.0, generator=g)
    got = compiled(mix_images)(x, p)
    assert got.dtype == torch.float16 and torch.equal(got, mix_images(x, p))
    assert got.is_contiguous(memory_format=torch.channels_last)


def test_mix_labels_is_captured_whole():
    g = torch.Generator().manual_seed(3)
    p = cutmix.sample_cutmix(6, (8, 8), generator=g)
    ids = torch.randint(0, 5, (6,), generator=g)
    got = compiled(lambda y, q: mix_labels(y, q, 5, label_smoothing=0.1))(ids, p)
    assert torch.equal(got, mix_labels(ids, p, 5, label_smoothing=0.1))
    torch._dynamo.reset()
    soft = torch.rand(6, 5, generator=g).softmax(1)
    assert torch.equal(compiled(mix_labels)(soft, p), mix_labels(soft, p))


def test_apply_images_blend_path_and_loss_are_captured_whole():
    g = torch.Generator().manual_seed(4)
    x = torch.rand(6, 3, 8, 8, generator=g)
    mix = cutmix.RandomMix([cutmix.CutMix(1.0), cutmix.MixUp(1.0)], num_classes=4, choose="sample")
    p = mix.sample(x, generator=g)
    assert p.blend is not None
    assert torch.equal(compiled(apply_images)(x, p), apply_images(x, p))
    torch._dynamo.reset()
    logits, y = torch.randn(6, 4, generator=g), torch.randint(0, 4, (6,), generator=g)
    got = compiled(cutmix.mixed_cross_entropy)(logits, y, p)
    torch.testing.assert_close(got, cutmix.mixed_cross_entropy(logits, y, p))
