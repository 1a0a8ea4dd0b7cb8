import torch

import cutmix


def test_public_names_import():
    for name in cutmix.__all__:
        assert hasattr(cutmix, name), name


def test_cutmix_call_returns_images_and_soft_targets(generator, device):
    images = torch.rand(6, 3, 16, 12, device=device)
    labels = torch.randint(0, 5, (6,), device=device)
    mixed, targets = cutmix.CutMix(1.0, num_classes=5)(images, labels, generator=generator)
    assert mixed.shape == images.shape and targets.shape == (6, 5)
    assert torch.allclose(targets.sum(1), torch.ones(6, device=device))
