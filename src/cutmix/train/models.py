"""Models for the training tool, built by name with :func:`build_model`.

- ``tutorial``: the tutorial's network, corrected: 3 × [conv 3×3 (padding 1), ReLU, max-pool 2],
  32/64/128 channels, then fc 128·(H/8)·(W/8) → 256 → C (2048 → 256 → C at 32×32), no BatchNorm, and
  one logit per class trained with cross entropy (the tutorial's two-class ``BCEWithLogitsLoss`` on
  class ids and missing ``optimizer.step()`` are its bugs, not copied);
- ``resnet8``: a small CIFAR-style ResNet (3 stages of one basic block, 16/32/64 channels) for CPUs;
- ``resnet20``: the CIFAR ResNet-20 of He et al. (3 stages of 3 blocks);
- ``preact_resnet18``: the pre-activation ResNet-18 used by the CutMix paper's CIFAR runs;
- ``timm:<name>`` or any other name timm knows, when timm is installed.

Example:
    >>> import torch
    >>> m = build_model("tutorial", num_classes=10, in_channels=3, image_size=32)
    >>> m(torch.zeros(2, 3, 32, 32)).shape
    torch.Size([2, 10])
"""

from __future__ import annotations

import ast
from typing import Any

import torch
from torch import Tensor, nn

from cutmix.train.errors import UsageError

__all__ = ["MODELS", "build_model", "check_model_fits", "parse_model_kwargs"]


class TutorialNet(nn.Module):
    """The tutorial's three-conv network with one logit per class."""

    def __init__(self, num_classes: int, in_channels: int = 3, image_size: int = 32) -> None:
        super().__init__()
        if image_size % 8:
            raise UsageError(
                f"image-size: expected a multiple of 8 for model 'tutorial', got {image_size}"
            )
        layers: list[nn.Module] = []
        c = in_channels
        for out in (32, 64, 128):
            layers += [nn.Conv2d(c, out, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2)]
            c = out
        self.features = nn.Sequential(*layers)
        side = image_size // 8
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(128 * side * side, 256),
            nn.ReLU(inplace=True),
            nn.Linear(256, num_classes),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x))


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
            )

    def forward(self, x: Tensor) -> Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))


class PreActBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.shortcut: nn.Module | None = None
        if stride != 1 or cin != cout:
            self.shortcut = nn.Conv2d(cin, cout, 1, stride, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        out = torch.relu(self.bn1(x))
        short = self.shortcut(out) if self.shortcut is not None else x
        out = self.conv1(out)
        out = self.conv2(torch.relu(self.bn2(out)))
        return out + short


class CifarResNet(nn.Module):
    """ResNet for small images: 3×3 stem, stages of blocks, global average pool, linear head."""

    def __init__(
        self,
        block: type[nn.Module],
        widths: tuple[int, ...],
        depths: tuple[int, ...],
        num_classes: int,
        in_channels: int,
        preact: bool = False,
    ) -> None:
        super().__init__()
        self.preact = preact
        self.stem = nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False)
        self.stem_bn = nn.Identity() if preact else nn.BatchNorm2d(widths[0])
        blocks: list[nn.Module] = []
        cin = widths[0]
        for i, (w, d) in enumerate(zip(widths, depths)):
            for j in range(d):
                blocks.append(block(cin, w, 2 if (i > 0 and j == 0) else 1))
                cin = w
        self.blocks = nn.Sequential(*blocks)
        self.final_bn = nn.BatchNorm2d(cin) if preact else nn.Identity()
        self.head = nn.Linear(cin, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.stem(x)
        if not self.preact:
            x = torch.relu(self.stem_bn(x))
        x = self.blocks(x)
        if self.preact:
            x = torch.relu(self.final_bn(x))
        return self.head(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


MODELS = ("tutorial", "resnet8", "resnet20", "preact_resnet18")
# timm.create_model options the tool sets itself, or that load files or move the model: a value
# from --model-kwargs (or from an untrusted checkpoint's config) must not read a path or pick a device.
_TOOL_KWARGS = (
    "pretrained",
    "pretrained_cfg",
    "pretrained_cfg_overlay",
    "checkpoint_path",
    "cache_dir",
    "device",
    "dtype",
    "num_classes",
    "in_chans",
)


def parse_model_kwargs(spec: str | None) -> dict[str, Any]:
    """``"img_size=32,drop_path_rate=0.1"`` -> ``{"img_size": 32, "drop_path_rate": 0.1}``.

    Values are Python literals (numbers, strings, booleans, None, tuples); anything else is a string.

    Example:
        >>> parse_model_kwargs("img_size=32,drop_path_rate=0.1,global_pool='avg'")
        {'img_size': 32, 'drop_path_rate': 0.1, 'global_pool': 'avg'}
    """
    if spec is None or not str(spec).strip():
        return {}
    out: dict[str, Any] = {}
    parts, depth, cur = [], 0, ""
    for ch in str(spec):  # split on commas outside brackets: patch_size=(4,4) stays one value
        depth += ch in "([{"
        depth -= ch in ")]}"
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    for part in parts:
        if not part.strip():  # "img_size=32," (a trailing comma)
            continue
        key, eq, value = part.partition("=")
        key = key.strip()
        if not eq or not key.isidentifier():
            raise UsageError(
                f"model-kwargs: expected comma-separated name=value pairs (e.g. img_size=32,drop_path_rate=0.1), got {part.strip()!r}"
            )
        if key in _TOOL_KWARGS:
            raise UsageError(
                f"model-kwargs: expected model options (the tool trains from scratch, on --device, "
                f"and sets the classes and channels itself), got {key}"
            )
        try:
            out[key] = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError, MemoryError, RecursionError):  # not a literal: a string
            out[key] = value.strip()
    return out


def check_model_fits(model: nn.Module, name: str, in_channels: int, image_size: int) -> None:
    """One dry forward pass on one blank sample (eval mode, no gradients, no RNG use).

    A model that cannot take ``in_channels × image_size × image_size`` images raises a
    :class:`UsageError` that says what to change, instead of a traceback in the first batch.
    """
    was_training = model.training
    model.eval()
    try:
        p = next(model.parameters(), None)
        dev = p.device if p is not None else torch.device("cpu")
        with torch.no_grad():
            model(torch.zeros(1, in_channels, image_size, image_size, device=dev))
    except Exception as e:  # models fail in many ways (AssertionError in timm, RuntimeError...)
        msg = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise UsageError(
            f"model: expected a model that takes {in_channels}x{image_size}x{image_size} images, "
            f"got {name!r} failing on one ({type(e).__name__}: {msg}); pick a model for this size "
            f"(e.g. resnet8), change --image-size, or pass timm options such as "
            f"--model-kwargs img_size={image_size}"
        ) from None
    finally:
        model.train(was_training)


def build_model(
    name: str,
    num_classes: int,
    in_channels: int = 3,
    image_size: int = 32,
    kwargs: dict[str, Any] | None = None,
) -> nn.Module:
    """A fresh model by name (see the module docstring); unknown names raise :class:`UsageError`.

    ``kwargs`` go to ``timm.create_model`` (``--model-kwargs``); the built-in models take none.

    Example:
        >>> sum(p.numel() for p in build_model("resnet8", 10).parameters()) > 0
        True
    """
    if kwargs and name in MODELS:
        raise UsageError(
            f"model-kwargs: expected none for the built-in model {name!r} (they go to timm models), "
            f"got {', '.join(f'{k}={v!r}' for k, v in kwargs.items())}"
        )
    if name == "tutorial":
        return TutorialNet(num_classes, in_channels, image_size)
    if name == "resnet8":
        return CifarResNet(BasicBlock, (16, 32, 64), (1, 1, 1), num_classes, in_channels)
    if name == "resnet20":
        return CifarResNet(BasicBlock, (16, 32, 64), (3, 3, 3), num_classes, in_channels)
    if name == "preact_resnet18":
        return CifarResNet(
            PreActBlock, (64, 128, 256, 512), (2, 2, 2, 2), num_classes, in_channels, preact=True
        )
    timm_name = name[5:] if name.startswith("timm:") else name
    try:
        import timm
    except ImportError:
        timm = None  # type: ignore[assignment]
    if timm is not None and timm.is_model(timm_name):
        try:
            return timm.create_model(
                timm_name,
                pretrained=False,
                num_classes=num_classes,
                in_chans=in_channels,
                **(kwargs or {}),
            )
        except Exception as e:  # models refuse options in many ways (TypeError, ValueError, assert)
            if not kwargs:
                raise
            raise UsageError(
                f"model-kwargs: expected options that timm model {timm_name!r} takes, got "
                f"{', '.join(sorted(kwargs))} ({type(e).__name__}: "
                f"{(str(e).strip().splitlines() or ['no message'])[0][:200]})"
            ) from None
    hint = " or any timm model name" if timm is not None else " (install timm for more)"
    raise UsageError(f"model: expected one of {', '.join(MODELS)}{hint}, got {name!r}")
