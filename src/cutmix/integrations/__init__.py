"""Drop-in adapters for the libraries people train with; each module imports its library lazily.

``import cutmix`` imports none of them, and importing one of these modules needs only its library:

- :mod:`cutmix.integrations.timm`: ``Mixup`` and ``FastCollateMixup`` with timm's arguments.
- :mod:`cutmix.integrations.torchvision`: ``CutMix`` / ``MixUp`` as ``transforms.v2`` transforms.
- :mod:`cutmix.integrations.lightning`: ``MixCallback`` for ``lightning`` / ``pytorch_lightning``.
- :mod:`cutmix.integrations.transformers`: ``CutMixTrainer`` and ``MixDataCollator`` for HF.

See ``docs/integrations.md`` for one runnable example each.
"""

__all__: list[str] = []
