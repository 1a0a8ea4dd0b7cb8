"""Datasets for the training tool, all held in memory as uint8 ``(N, C, H, W)`` tensors.

Sources (nothing is ever downloaded):

- ``digits``: scikit-learn's bundled handwritten digits (1,797 real 8×8 images, 10 classes), scaled to
  0–255 and resized to 32×32 (bilinear), one channel;
- an image folder ``root/<class>/<image>``: decoded once and cached (see :func:`cache_dir`, which must
  not be writable by group or others) under a key made of the folder's resolved path and every file's
  relative path, size, modification time and inode, verified against a hash of the files' contents,
  so a changed folder is decoded again; unreadable or refused files are counted, named in a warning
  and skipped. Decoding policy (bit depths, size limits, resize): :mod:`cutmix.train.images`;
- a CIFAR-10/100 "python version" folder (``data_batch_*``/``test_batch`` or ``train``/``test``), read
  with a restricted unpickler (:mod:`cutmix.train.safe_pickle`) that only rebuilds numpy arrays and
  plain containers, and never allocates more than the file holds;
- an ``.npz`` file with ``x``/``y`` (or ``images``/``labels``), optionally ``x_test``/``y_test`` and
  ``classes``.

Sources without a test split get a stratified validation split with a fixed seed.

Example:
    >>> splits = load_data("digits")
    >>> splits.train.x.shape[1:], splits.train.x.dtype, len(splits.classes)
    (torch.Size([1, 32, 32]), torch.uint8, 10)
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
import tempfile
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from cutmix.train.checks import MAX_CLASSES
from cutmix.train.config import MAX_IMAGE_SIZE
from cutmix.train.errors import UsageError
from cutmix.train.images import ImageRefused, decode_image
from cutmix.train.safe_pickle import loads_restricted

__all__ = [
    "IMAGE_EXTENSIONS",
    "Data",
    "Splits",
    "cache_dir",
    "fingerprint",
    "load_data",
    "stratified_split",
]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm")
_CACHE_VERSION = "2"


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


@dataclass
class Data:
    """Images ``x`` (uint8 ``(N, C, H, W)``) and class ids ``y`` (int64 ``(N,)``)."""

    x: Tensor
    y: Tensor

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def subset(self, idx: np.ndarray | Tensor) -> Data:
        idx = torch.as_tensor(np.asarray(idx), dtype=torch.int64)
        return Data(self.x[idx], self.y[idx])


@dataclass
class Splits:
    """A train and a validation set with their class names and a description of the source."""

    train: Data
    val: Data
    classes: list[str]
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        c, h, w = self.train.x.shape[1:]
        return int(c), int(h), int(w)


def cache_dir() -> Path:
    """Where decoded image folders are cached: ``$CUTMIX_CACHE`` or ``~/.cache/cutmix``."""
    env = os.environ.get("CUTMIX_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "cutmix"


def stratified_split(
    y: np.ndarray, fraction: float, seed: int, *, count: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(keep, held_out)``, stratified by class, with a fixed seed.

    Exactly ``count`` (default ``round(fraction · N)``) samples are held out, shared among the classes
    in proportion to their sizes (largest remainders get the rounding).

    Example:
        >>> keep, held = stratified_split(np.array([0, 0, 1, 1]), 0.5, seed=0)
        >>> sorted(np.array([0, 0, 1, 1])[held].tolist())
        [0, 1]
    """
    rng = np.random.default_rng(seed)
    classes, sizes = np.unique(y, return_counts=True)
    total = round(fraction * len(y)) if count is None else count
    quota = sizes * (total / len(y))
    take = np.floor(quota).astype(np.int64)
    order = np.argsort(-(quota - take), kind="stable")
    take[order[: total - int(take.sum())]] += 1
    keep, held = [], []
    for c, k in zip(classes, take):
        idx = np.flatnonzero(y == c)
        idx = idx[rng.permutation(len(idx))]
        held.append(idx[:k])
        keep.append(idx[k:])
    return np.sort(np.concatenate(keep)), np.sort(np.concatenate(held))


# ----------------------------------------------------------------------------------------- digits
def _load_digits() -> tuple[Data, None, list[str], dict[str, Any]]:
    try:
        from sklearn.datasets import load_digits
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise UsageError(
            "data: the built-in digits need scikit-learn (pip install 'cutmix[cli]')"
        ) from e
    d = load_digits()
    x = torch.from_numpy(d.images.astype(np.float32) / 16.0)[:, None]
    x = torch.nn.functional.interpolate(x, size=(32, 32), mode="bilinear", align_corners=False)
    x = (x.clamp(0, 1) * 255).round().to(torch.uint8)
    y = torch.from_numpy(d.target.astype(np.int64))
    info = {"source": "digits", "description": "scikit-learn digits, 1x8x8 resized to 1x32x32"}
    return Data(x, y), None, [str(i) for i in range(10)], info


# ------------------------------------------------------------------------------------ image folder
def _list_folder(root: Path, limit_per_class: int | None) -> tuple[list[str], list[list[Path]]]:
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise UsageError(f"data: expected class folders in {root} (root/<class>/<image>), got none")
    files: list[list[Path]] = []
    for c in classes:
        found = sorted(
            p for p in (root / c).iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
        )
        if not found:
            raise UsageError(
                f"data: expected images ({', '.join(IMAGE_EXTENSIONS)}) in class folder "
                f"{root / c}, got none"
            )
        files.append(found[:limit_per_class] if limit_per_class else found)
    return classes, files


def _folder_key(root: Path, files: list[list[Path]], image_size: int) -> str:
    """The cache entry of a folder: its resolved location and every file's path, size, mtime and
    inode (the contents are checked against :func:`_content_hash` when the entry is read)."""
    h = hashlib.sha256(f"cutmix-imagefolder/{_CACHE_VERSION}/{image_size}".encode())
    h.update(os.fsencode(root.resolve()) + b"\0")  # fsencode: names need not be valid UTF-8
    for group in files:
        for p in group:
            st = p.stat()
            h.update(os.fsencode(p.relative_to(root).as_posix()))
            h.update(f"\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_ino}\n".encode())
    return h.hexdigest()[:24]


def _content_hash(files: list[list[Path]]) -> str:
    """A hash of every file's bytes, in listing order (reading is far cheaper than decoding)."""
    h = hashlib.blake2b(digest_size=16)
    for group in files:
        for p in group:
            with open(p, "rb") as f:  # in chunks: a huge file must not be read into memory whole
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
            h.update(b"\0")
    return h.hexdigest()


def _cache_folder(log: Callable[[str], None]) -> Path | None:
    """The cache folder, created private; ``None`` (with a warning) if others could write to it."""
    d = cache_dir()
    try:
        d.mkdir(parents=True, exist_ok=True, mode=0o700)
        st = d.stat()
    except OSError as e:
        log(f"warning: not using the image cache {d}: {e}")
        return None
    if st.st_mode & 0o022 or (hasattr(os, "getuid") and st.st_uid != os.getuid()):
        log(
            f"warning: not using the image cache {d}: it is writable by group or others, or not "
            f"yours, so its entries cannot be trusted (chmod go-w {d}, or set CUTMIX_CACHE)"
        )
        return None
    return d


def _read_cache(cache: Path, content: str) -> tuple[np.ndarray, np.ndarray, list[str]] | None:
    try:
        if cache.is_symlink() or not cache.is_file():
            return None
        with np.load(cache, allow_pickle=False) as z:
            if str(z["content"]) != content:
                return None
            return z["x"], z["y"], [str(s) for s in z["skipped"]]
    except Exception:  # a broken or foreign entry is decoded again, and rewritten
        return None


def _write_cache(
    cache: Path, x: np.ndarray, y: np.ndarray, skipped: list[str], content: str
) -> None:
    fd, tmp = tempfile.mkstemp(dir=cache.parent, prefix=f".{cache.stem}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(
                f, x=x, y=y, skipped=np.asarray(skipped, dtype=str), content=np.asarray(content)
            )
        os.replace(tmp, cache)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _decode(path: Path, size: int) -> np.ndarray:
    return decode_image(path, size)


def _load_folder(
    root: Path,
    image_size: int,
    limit_per_class: int | None,
    use_cache: bool,
    log: Callable[[str], None],
) -> tuple[Data, None, list[str], dict[str, Any]]:
    classes, files = _list_folder(root, limit_per_class)
    _check_fits(
        sum(map(len, files)) * 3 * image_size * image_size,
        f"{root}: {sum(map(len, files))} images of 3x{image_size}x{image_size}",
    )
    folder = _cache_folder(log) if use_cache else None
    use_cache = folder is not None
    key = _folder_key(root, files, image_size)
    cache = (folder or cache_dir()) / f"imagefolder-{key}.npz"
    info: dict[str, Any] = {"source": "folder", "root": str(root), "cache": str(cache)}
    content = _content_hash(files) if use_cache else ""
    hit = _read_cache(cache, content) if use_cache else None
    if hit is not None:
        x, y, skipped = hit
        info["cached"] = True
    else:
        try:
            from tqdm import tqdm
        except ImportError:  # pragma: no cover
            tqdm = None
        flat = [(p, c) for c, group in enumerate(files) for p in group]
        it = (
            tqdm(flat, desc=f"decoding {root.name}", unit="img", disable=None, leave=False)
            if tqdm
            else flat
        )
        xs, ys, skipped = [], [], []
        for p, c in it:
            try:
                xs.append(_decode(p, image_size))
                ys.append(c)
            except ImageRefused as e:
                skipped.append(f"{p.relative_to(root).as_posix()} ({e})")
            except Exception:  # PIL raises many kinds for broken files: all mean "skip it"
                skipped.append(p.relative_to(root).as_posix())
        if not xs:
            raise UsageError(f"data: expected readable images in {root}, got none")
        x = np.stack(xs)
        y = np.asarray(ys, dtype=np.int64)
        if use_cache:
            try:
                _write_cache(cache, x, y, skipped, content)
            except OSError as e:  # a full disk or a read-only cache: the run goes on without it
                log(f"warning: could not write the image cache {cache}: {e}")
        info["cached"] = False
    if skipped:
        shown = ", ".join(skipped[:10]) + (" ..." if len(skipped) > 10 else "")
        log(f"warning: skipped {len(skipped)} unreadable image(s) in {root}: {shown}")
    counts = np.bincount(y, minlength=len(classes))
    for c, n in zip(classes, counts):
        if n == 0:
            raise UsageError(f"data: expected readable images in class folder {root / c}, got none")
    info["skipped"] = skipped
    info["description"] = f"image folder {root}, {len(y)} images, 3x{image_size}x{image_size}"
    return Data(torch.from_numpy(x), torch.from_numpy(y)), None, classes, info


# ------------------------------------------------------------------------------------------ CIFAR
def _unpickle(path: Path) -> dict[Any, Any]:
    try:
        with open(path, "rb") as f:
            obj = loads_restricted(f.read())
    except Exception as e:  # a hostile or broken file fails in many ways: all mean "not a batch"
        raise UsageError(f"data: expected a CIFAR python-version batch in {path}, got: {e}") from e
    if not isinstance(obj, dict):
        raise UsageError(f"data: expected a dict in {path}, got {type(obj).__name__}")
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in obj.items()}


def _cifar_batch(path: Path) -> Data:
    d = _unpickle(path)
    labels = d.get("labels", d.get("fine_labels"))
    if "data" not in d or labels is None:
        raise UsageError(f"data: expected 'data' and 'labels' in {path}, got {sorted(map(str, d))}")
    data = d["data"]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.size % 3072:
        got = (
            f"{data.dtype} array of shape {data.shape}"
            if isinstance(data, np.ndarray)
            else type(data).__name__
        )
        raise UsageError(
            f"data: expected 'data' to be a uint8 array of N x 3072 (3x32x32) values in {path}, got {got}"
        )
    x = data.reshape(-1, 3, 32, 32)
    if not isinstance(labels, (list, tuple, np.ndarray)):
        raise UsageError(
            f"data: expected 'labels' to be a list of ints in {path}, got {type(labels).__name__}"
        )
    y = _labels(np.asarray(labels), path, "labels", len(x))
    return Data(torch.from_numpy(x.copy()), y)


def _is_cifar(root: Path) -> bool:
    return (root / "data_batch_1").is_file() or (
        (root / "train").is_file() and (root / "meta").is_file()
    )


def _load_cifar(root: Path) -> tuple[Data, Data | None, list[str], dict[str, Any]]:
    if (root / "data_batch_1").is_file():
        parts = [_cifar_batch(p) for p in sorted(root.glob("data_batch_*"))]
        train = Data(torch.cat([p.x for p in parts]), torch.cat([p.y for p in parts]))
        test = _cifar_batch(root / "test_batch") if (root / "test_batch").is_file() else None
        meta, key = root / "batches.meta", "label_names"
    else:
        train = _cifar_batch(root / "train")
        test = _cifar_batch(root / "test") if (root / "test").is_file() else None
        meta, key = root / "meta", "fine_label_names"
    classes = _default_classes(train, test, root)
    if meta.is_file():
        names = _unpickle(meta).get(key)
        if names:
            if not isinstance(names, (list, tuple)) or len(names) > MAX_CLASSES:
                raise UsageError(
                    f"data: expected {key!r} to be a list of at most {MAX_CLASSES} names in {meta}, "
                    f"got {type(names).__name__} of {len(names) if hasattr(names, '__len__') else '?'}"
                )
            classes = [
                s.decode(errors="replace") if isinstance(s, bytes) else str(s) for s in names
            ]
    info = {"source": "cifar", "root": str(root), "description": f"CIFAR python folder {root}"}
    return train, test, classes, info


# -------------------------------------------------------------------------------------------- npz
def _as_nchw_uint8(a: np.ndarray, path: Path, key: str) -> Tensor:
    if a.dtype.kind not in "uifb":
        raise UsageError(f"data: expected {key} to hold numbers in {path}, got dtype {a.dtype}")
    if a.ndim == 3:
        a = a[:, None]
    if a.ndim != 4:
        raise UsageError(f"data: expected {key} of shape (N, H, W[, C]) in {path}, got {a.shape}")
    if a.shape[-1] in (1, 3) and a.shape[1] not in (1, 3):
        a = a.transpose(0, 3, 1, 2)
    if not (1 <= a.shape[2] <= MAX_IMAGE_SIZE and 1 <= a.shape[3] <= MAX_IMAGE_SIZE):
        raise UsageError(
            f"data: expected {key} images of 1..{MAX_IMAGE_SIZE} pixels a side in {path}, got {a.shape}"
        )
    if a.dtype != np.uint8:
        a = np.asarray(a, dtype=np.float64)
        if not np.isfinite(a).all():
            raise UsageError(
                f"data: expected finite pixel values in {key} of {path}, got NaN or inf"
            )
        if a.max(initial=0) <= 1.0:
            a = a * 255.0
        a = np.clip(np.round(a), 0, 255).astype(np.uint8)
    return torch.from_numpy(np.ascontiguousarray(a))


_NPZ_ERRORS = (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error, KeyError)


def _npz_array(z: Any, key: str, path: Path) -> np.ndarray:
    """One array of an open ``.npz``, its declared size checked against the archive first."""
    try:
        info = z.zip.getinfo(f"{key}.npy")
        with z.zip.open(info) as f:
            version = np.lib.format.read_magic(f)
            read = (
                np.lib.format.read_array_header_1_0
                if version == (1, 0)
                else np.lib.format.read_array_header_2_0
            )
            shape, _, dtype = read(f)
        declared = int(np.prod(shape, dtype=object)) * dtype.itemsize
        _check_fits(declared, f"{key} of {path}: {shape} {dtype}")
        if declared > info.file_size:
            raise UsageError(
                f"data: expected {key} to fit in its {info.file_size} bytes in {path}, got a "
                f"header declaring {shape} {dtype} ({declared} bytes)"
            )
        return z[key]
    except _NPZ_ERRORS as e:
        raise UsageError(f"data: expected a numeric array {key!r} in {path}, got: {e}") from e


def _memory_bytes() -> int | None:
    try:
        return int(os.sysconf("SC_PHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError):  # pragma: no cover - not POSIX
        return None


def _check_fits(nbytes: int, what: str) -> None:
    """Refuse data that needs more than half of this machine's memory before allocating it."""
    total = _memory_bytes()
    if total is not None and nbytes > total // 2:
        raise UsageError(
            f"data: expected data that fits in memory (half of {total / 2**30:.1f} GiB), got "
            f"{what} = {nbytes / 2**30:.1f} GiB (lower --image-size or use --limit-per-class)"
        )


def _labels(a: np.ndarray, path: Path, key: str, n: int) -> Tensor:
    """Class ids of ``n`` images: a 1-D integer array (or ``(n, 1)``), values in ``[0, MAX_CLASSES)``."""
    if a.ndim == 2 and a.shape[1] == 1:
        a = a[:, 0]
    if a.ndim != 1:
        raise UsageError(
            f"data: expected {key} to be one class id per image, shape ({n},), in {path}, got {a.shape}"
        )
    if len(a) != n:
        raise UsageError(
            f"data: expected {n} labels in {key} (one per image) in {path}, got {len(a)}"
        )
    if a.dtype.kind == "f" and np.isfinite(a).all() and (a == np.round(a)).all():
        a = a.astype(np.float64)
    elif a.dtype.kind not in "iub":
        raise UsageError(
            f"data: expected integer class ids in {key} of {path}, got dtype {a.dtype}"
        )
    if len(a) and (a.min() < 0 or a.max() >= MAX_CLASSES):
        raise UsageError(
            f"data: expected class ids in [0, {MAX_CLASSES}) in {key} of {path}, "
            f"got {a.min():.0f}..{a.max():.0f}"
        )
    return torch.from_numpy(a.astype(np.int64))


def _default_classes(train: Data, test: Data | None, where: Path) -> list[str]:
    """``"0"``..``"K-1"`` for the largest label seen (labels were checked to be < MAX_CLASSES)."""
    n = int(train.y.max()) + 1 if len(train) else 0
    if test is not None and len(test):
        n = max(n, int(test.y.max()) + 1)
    return [str(i) for i in range(n)]


def _load_npz(path: Path) -> tuple[Data, Data | None, list[str], dict[str, Any]]:
    try:
        z = np.load(path, allow_pickle=False)
    except _NPZ_ERRORS as e:
        raise UsageError(f"data: expected a readable .npz file, got {path}: {e}") from e
    if not isinstance(z, np.lib.npyio.NpzFile):
        raise UsageError(f"data: expected an .npz archive of arrays, got a single array in {path}")
    with z:
        keys = set(z.files)
        xk = next((k for k in ("x", "images", "x_train") if k in keys), None)
        yk = next((k for k in ("y", "labels", "y_train") if k in keys), None)
        if xk is None or yk is None:
            raise UsageError(
                f"data: expected arrays 'x' and 'y' (or 'images'/'labels') in {path}, got {sorted(keys)}"
            )
        x = _as_nchw_uint8(_npz_array(z, xk, path), path, xk)
        train = Data(x, _labels(_npz_array(z, yk, path), path, yk, len(x)))
        test = None
        for xt, yt in (("x_test", "y_test"), ("x_val", "y_val")):
            if xt in keys and yt in keys:
                x = _as_nchw_uint8(_npz_array(z, xt, path), path, xt)
                test = Data(x, _labels(_npz_array(z, yt, path), path, yt, len(x)))
                break
        if "classes" in keys:
            names = _npz_array(z, "classes", path)
            if names.ndim != 1 or not 1 <= len(names) <= MAX_CLASSES:
                raise UsageError(
                    f"data: expected 'classes' to be 1..{MAX_CLASSES} names in {path}, got shape {names.shape}"
                )
            classes = [str(c) for c in names]
        else:
            classes = _default_classes(train, test, path)
    info = {"source": "npz", "path": str(path), "description": f"arrays from {path}"}
    return train, test, classes, info


# ------------------------------------------------------------------------------------------- main
def load_data(
    spec: str,
    *,
    image_size: int = 32,
    val_fraction: float | None = None,
    split_seed: int = 0,
    train_subset: int | None = None,
    limit_per_class: int | None = None,
    use_cache: bool = True,
    log: Callable[[str], None] = _stderr,
) -> Splits:
    """Load ``spec`` (``"digits"``, a folder or an ``.npz``) and split it into train and validation.

    Args:
        spec: ``"digits"``, an image folder, a CIFAR python-version folder or an ``.npz`` file.
        image_size: side of the square images an image folder is resized and cropped to.
        val_fraction: fraction of every class held out for validation (stratified, ``split_seed``).
            ``None``: the source's own test split if it has one, else 0.8 for digits (train on
            359 images, validate on 1,438: little data, where CutMix pays), 0.2 otherwise.
        split_seed: seed of the validation split and of ``train_subset``.
        train_subset: keep only this many training images (stratified).
        limit_per_class: use only the first ``k`` files (name order) of every class of a folder
            (fewer to decode), or the first ``k`` images of every class of arrays.
        use_cache: read and write the decoded-array cache for image folders.
        log: where warnings go (stderr by default).

    Example:
        >>> s = load_data("digits", val_fraction=0.5)
        >>> len(s.train), len(s.val)
        (899, 898)
    """
    if val_fraction is not None and not 0.0 < val_fraction < 1.0:
        raise UsageError(f"val-fraction: expected a number in (0, 1), got {val_fraction}")
    if not 1 <= image_size <= MAX_IMAGE_SIZE:
        raise UsageError(f"image-size: expected a side in 1..{MAX_IMAGE_SIZE}, got {image_size}")
    if limit_per_class is not None and limit_per_class < 1:
        raise UsageError(
            f"limit-per-class: expected at least 1 image per class, got {limit_per_class}"
        )
    if spec == "digits":
        train, test, classes, info = _load_digits()
        default_fraction = 0.8
    else:
        path = Path(spec).expanduser()
        if not path.exists():
            raise UsageError(
                f"data: expected 'digits', a folder or an .npz file, got missing path {spec!r}"
            )
        if path.is_file():
            if path.suffix != ".npz":
                raise UsageError(f"data: expected a folder or an .npz file, got file {spec!r}")
            train, test, classes, info = _load_npz(path)
        elif not path.is_dir():
            raise UsageError(
                f"data: expected a folder or an .npz file, got {spec!r}, which is neither"
            )
        elif _is_cifar(path):
            train, test, classes, info = _load_cifar(path)
        else:
            if not any(path.iterdir()):
                raise UsageError(f"data: expected class folders in {path}, got an empty folder")
            train, test, classes, info = _load_folder(
                path, image_size, limit_per_class, use_cache, log
            )
            limit_per_class = None  # applied while listing
        default_fraction = 0.2
    if len(train) == 0:
        raise UsageError(f"data: expected at least one image in {spec!r}, got none")
    for part, d in (("train", train), ("test", test)):
        if d is None or len(d) == 0:
            continue
        if int(d.y.min()) < 0 or int(d.y.max()) >= len(classes):
            raise UsageError(
                f"data: expected {part} labels in [0, {len(classes)}) ({len(classes)} classes), "
                f"got {int(d.y.min())}..{int(d.y.max())}"
            )
    if test is not None and test.x.shape[1:] != train.x.shape[1:]:
        raise UsageError(
            f"data: expected test images of the training images' shape {tuple(train.x.shape[1:])}, "
            f"got {tuple(test.x.shape[1:])}"
        )
    y = train.y.numpy()
    if limit_per_class:
        keep = np.sort(
            np.concatenate([np.flatnonzero(y == c)[:limit_per_class] for c in np.unique(y)])
        )
        train = train.subset(keep)
        y = train.y.numpy()
    if test is None or val_fraction is not None:
        frac = default_fraction if val_fraction is None else val_fraction
        keep, held = stratified_split(y, frac, split_seed)
        val, train = train.subset(held), train.subset(keep)
        info["split"] = f"stratified {frac:g} held out, seed {split_seed}"
    else:
        val = test
        info["split"] = "the source's own test split"
    if train_subset is not None:
        if not 0 < train_subset <= len(train):
            raise UsageError(f"train-subset: expected 1..{len(train)}, got {train_subset}")
        if train_subset < len(train):
            _, chosen = stratified_split(train.y.numpy(), 0.0, split_seed + 1, count=train_subset)
            train = train.subset(chosen)
    if len(train) == 0 or len(val) == 0:
        raise UsageError(
            f"data: expected non-empty train and validation sets, got {len(train)} and {len(val)}"
        )
    info.update(train_size=len(train), val_size=len(val))
    info["fingerprint"] = fingerprint(train, val, classes)
    return Splits(train, val, classes, info)


def fingerprint(train: Data, val: Data, classes: list[str]) -> str:
    """A short hash of the pixels, labels and class names of a split (stored in checkpoints).

    Example:
        >>> d = Data(torch.zeros(2, 1, 2, 2, dtype=torch.uint8), torch.tensor([0, 1]))
        >>> fingerprint(d, d, ["a", "b"]) == fingerprint(d, d, ["a", "c"])
        False
    """
    h = hashlib.blake2b(digest_size=12)
    for d in (train, val):
        h.update(repr((tuple(d.x.shape), tuple(d.y.shape))).encode())
        h.update(d.x.contiguous().numpy().tobytes())
        h.update(d.y.contiguous().numpy().tobytes())
    h.update("\0".join(classes).encode("utf-8", "surrogateescape"))  # folder names: any bytes
    return h.hexdigest()
