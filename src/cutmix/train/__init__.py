"""The training tool behind ``cutmix train | compare | preview | evaluate``.

Modules: :mod:`~cutmix.train.data` (datasets), :mod:`~cutmix.train.models`,
:mod:`~cutmix.train.loop` (one training run, checkpoints, resume, DDP) and
:mod:`~cutmix.train.report` (the ``compare`` report). Needs the ``cli`` extras (numpy, Pillow,
matplotlib, tqdm, scikit-learn); the library itself never imports this package.

Example:
    >>> from cutmix.train.config import TrainConfig
    >>> TrainConfig(epochs=2).epochs
    2
"""

from cutmix.train.errors import UsageError

__all__ = ["UsageError"]
