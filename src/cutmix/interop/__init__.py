"""Optional adapters to other libraries, each imported lazily (torch stays the only requirement).

- :mod:`cutmix.interop.torchvision`: ``tv_tensors`` (``Image``, ``BoundingBoxes``, ``Mask``) in and out.
"""

__all__: list[str] = []
