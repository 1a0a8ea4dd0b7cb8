"""A restricted unpickler for CIFAR "python version" batches: plain containers and numpy arrays only,
with every allocation it makes on the file's behalf counted against a budget set by the file's size.

A pickle may *declare* sizes it does not hold (``ndarray((2_000_000, 3072), uint8)``,
``bytearray(1_500_000_000)``): the standard unpickler allocates them before noticing. Here each call
that allocates (``numpy.ndarray``, ``_reconstruct``, an array's ``__setstate__``, ``bytearray``,
``_codecs.encode``) first checks its size against the budget (``2 × file size + 1 MiB`` by default:
real batches hold their pixels as raw bytes, so they never need more) and any other global is refused.
It runs on the pure-Python unpickler, whose opcode table can be guarded; a CIFAR batch is a handful of
opcodes plus one large byte string, so this costs no measurable time.

Example:
    >>> import pickle, numpy as np
    >>> blob = pickle.dumps({"data": np.zeros((2, 3), np.uint8)}, protocol=2)
    >>> loads_restricted(blob)["data"].shape
    (2, 3)
    >>> loads_restricted(pickle.dumps(bytearray(10)), budget=4)
    Traceback (most recent call last):
    ...
    _pickle.UnpicklingError: refusing to allocate 10 bytes: the file declares more than it holds (budget 4 bytes)
"""

from __future__ import annotations

import io
import math
import pickle
from typing import Any, ClassVar

import numpy as np

__all__ = ["RestrictedUnpickler", "loads_restricted"]

_P = pickle._Unpickler  # the pure-Python one: its opcodes can be guarded
_LATIN1 = {"latin1", "latin-1", "iso-8859-1", "iso8859-1", "l1"}


def _nbytes(shape: Any, dtype: Any) -> int:
    if isinstance(shape, (int, np.integer)):
        shape = (shape,)
    if not isinstance(shape, tuple) or not all(
        isinstance(s, (int, np.integer)) and s >= 0 for s in shape
    ):
        raise pickle.UnpicklingError(f"refusing an array of shape {shape!r:.60}")
    dt = np.dtype(dtype) if dtype is not None else np.dtype(np.float64)
    if dt.hasobject:
        raise pickle.UnpicklingError("refusing an array of Python objects")
    return math.prod(int(s) for s in shape) * dt.itemsize


class RestrictedUnpickler(_P):
    """Rebuilds numpy arrays and plain containers only, allocating at most ``budget`` bytes."""

    ALLOWED: ClassVar[set[tuple[str, str]]] = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),
        ("builtins", "bytearray"),
    }
    dispatch: ClassVar[dict[int, Any]] = dict(_P.dispatch)
    stack: list[Any]  # the pure-Python unpickler's working stack

    def __init__(self, file: Any, *, budget: int, **kwargs: Any) -> None:
        super().__init__(file, **kwargs)
        self.budget = budget

    def _spend(self, n: int) -> None:
        if n > self.budget:
            raise pickle.UnpicklingError(
                f"refusing to allocate {n} bytes: the file declares more than it holds "
                f"(budget {self.budget} bytes)"
            )
        self.budget -= n

    def find_class(self, module: str, name: str) -> Any:
        module = {"__builtin__": "builtins"}.get(module, module)  # Python 2 pickles (protocol < 3)
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        if module == "numpy.core.multiarray":
            module = "numpy._core.multiarray" if hasattr(np, "_core") else module
        return super().find_class(module, name)

    def _guard_call(self, func: Any, args: tuple[Any, ...]) -> None:
        """Check the size a call of an allowed global will allocate, before it is made."""
        if func is np.ndarray or (isinstance(func, type) and issubclass(func, np.ndarray)):
            shape = args[0] if args else ()
            self._spend(_nbytes(shape, args[1] if len(args) > 1 else None))
        elif func is bytearray:
            if args and isinstance(args[0], int):
                self._spend(args[0])
            elif args and isinstance(args[0], (bytes, bytearray, str, list, tuple)):
                self._spend(len(args[0]))
        elif getattr(func, "__name__", "") == "_reconstruct":
            if len(args) != 3 or args[0] is not np.ndarray:
                raise pickle.UnpicklingError("refusing an unusual numpy _reconstruct call")
            self._spend(_nbytes(args[1], args[2]))
        elif getattr(func, "__name__", "") == "encode":
            if (
                len(args) != 2
                or not isinstance(args[0], str)
                or str(args[1]).lower() not in _LATIN1
            ):
                raise pickle.UnpicklingError("refusing _codecs.encode other than str to latin1")
            self._spend(len(args[0]))

    def load_reduce(self) -> None:
        args = self.stack[-1]
        func = self.stack[-2]
        if not isinstance(args, tuple):
            raise pickle.UnpicklingError("refusing a call with non-tuple arguments")
        self._guard_call(func, args)
        _P.load_reduce(self)  # type: ignore[attr-defined]

    def load_newobj(self) -> None:
        args, cls = self.stack[-1], self.stack[-2]
        self._guard_call(cls, args if isinstance(args, tuple) else ())
        _P.load_newobj(self)  # type: ignore[attr-defined]

    def load_newobj_ex(self) -> None:
        raise pickle.UnpicklingError("refusing NEWOBJ_EX")

    def load_build(self) -> None:
        state, inst = self.stack[-1], self.stack[-2]
        if isinstance(inst, np.ndarray):
            if not (isinstance(state, tuple) and len(state) == 5):
                raise pickle.UnpicklingError("refusing an unusual numpy array state")
            _, shape, dtype, _, raw = state
            n = _nbytes(shape, dtype)
            if not isinstance(raw, (bytes, bytearray)) or len(raw) != n:
                raise pickle.UnpicklingError(
                    f"refusing an array of {n} bytes stored in {len(raw) if hasattr(raw, '__len__') else '?'}"
                )
            self._spend(n)
        elif not isinstance(inst, np.dtype):
            raise pickle.UnpicklingError(f"refusing to set the state of a {type(inst).__name__}")
        _P.load_build(self)  # type: ignore[attr-defined]

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("refusing persistent ids")

    dispatch[pickle.REDUCE[0]] = load_reduce
    dispatch[pickle.NEWOBJ[0]] = load_newobj
    dispatch[pickle.NEWOBJ_EX[0]] = load_newobj_ex
    dispatch[pickle.BUILD[0]] = load_build


def loads_restricted(data: bytes, *, budget: int | None = None, encoding: str = "bytes") -> Any:
    """Unpickle ``data`` with :class:`RestrictedUnpickler`; ``budget`` defaults to ``2·len + 1 MiB``."""
    if budget is None:
        budget = 2 * len(data) + (1 << 20)
    return RestrictedUnpickler(io.BytesIO(data), budget=budget, encoding=encoding).load()
