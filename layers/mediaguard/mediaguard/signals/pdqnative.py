"""PDQ through pdqhash's own compiled C++, called with a luma plane Pillow computes.

Why not ``pdqhash.compute*``: its Cython wrapper computes luma in numpy float64 (2.3 ms
of ~10 ms on a 1000x750 image) and holds the GIL for the whole hash, so parallel scans
serialise on it. The C++ it wraps (Meta's reference ``pdqhashing.cpp``) is exported by
the same extension module; ctypes calls it with the GIL released.

Pillow's RGB->F conversion (integer ``R*299 + G*587 + B*114`` over 1000, as float32)
equals pdqhash's ``(R*0.299 + G*0.587 + B*0.114).astype(float32)`` for all 16.7 M
colours (checked by a unit test), so the hashes are bit-identical to pdqhash's; a test
compares both on photos, noise and odd sizes. If the pinned pdqhash ever stops exporting
the symbols, :func:`available` is False and the callers use pdqhash's Python API.
"""

from __future__ import annotations

import ctypes
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image

# Itanium C++ ABI names in pdqhash 0.2.8's extension (``nm -D bindings*.so``).
_DIHEDRAL = ("_ZN8facebook3pdq7hashing33pdqDihedralHash256esFromFloatLuma"
             "EPfS2_iiPA64_fS4_PA16_fS6_PNS1_7Hash256ES8_S8_S8_S8_S8_S8_S8_Ri")
_SINGLE = "_ZN8facebook3pdq7hashing23pdqHash256FromFloatLumaEPfS2_iiPA64_fS4_PA16_fRNS1_7Hash256ERi"


class _Hash256(ctypes.Structure):
    _fields_ = [("w", ctypes.c_uint16 * 16)]

    def hex(self) -> str:
        # Reference hashToString: words 15..0, four hex digits each (MSB first), which is
        # also how pdqhash's bit vector packs.
        return "".join(f"{self.w[i]:04x}" for i in range(15, -1, -1))


@lru_cache(maxsize=1)
def _library():
    import pdqhash.bindings as bindings

    lib = ctypes.CDLL(bindings.__file__)
    try:
        dihedral, single = getattr(lib, _DIHEDRAL), getattr(lib, _SINGLE)
    except AttributeError:
        return None
    floats, cint = ctypes.POINTER(ctypes.c_float), ctypes.c_int
    hashp, intp = ctypes.POINTER(_Hash256), ctypes.POINTER(ctypes.c_int)
    dihedral.argtypes = [floats, floats, cint, cint, floats, floats, floats, floats, *[hashp] * 8, intp]
    dihedral.restype = None
    single.argtypes = [floats, floats, cint, cint, floats, floats, floats, hashp, intp]
    single.restype = None
    return dihedral, single


def available() -> bool:
    """Whether the compiled entry points were found in the installed pdqhash."""
    try:
        return _library() is not None
    except (ImportError, OSError):
        return False


def luma(rgb: Image.Image) -> np.ndarray:
    """PDQ's float32 luma plane, writable and C-contiguous (the C++ filters it in place)."""
    import numpy as np
    return np.array(rgb.convert("F"), dtype=np.float32, order="C", copy=True)


def hash_dihedral(rgb: Image.Image) -> tuple[list[str], int]:
    """The eight dihedral PDQs (pdqhash's order) and the quality, from one C++ call."""
    hashes = [_Hash256() for _ in range(8)]
    quality = _call(_library()[0], rgb, 4, hashes)
    return [h.hex() for h in hashes], quality


def hash_image(rgb: Image.Image) -> tuple[str, int]:
    """The PDQ and quality of the image as it is."""
    result = _Hash256()
    quality = _call(_library()[1], rgb, 3, [result])
    return result.hex(), quality


def _call(entry, rgb: Image.Image, work_buffers: int, hashes: list[_Hash256]) -> int:
    """Run one of the two entry points: (luma, scratch, rows, cols, the 64x64, 16x64 and
    16x16 work buffers (+ a second 16x16 for the dihedral one), hashes, quality&)."""
    import numpy as np
    plane = luma(rgb)
    scratch = np.empty_like(plane)
    buffers = [np.empty(n, dtype=np.float32) for n in (64 * 64, 16 * 64, 16 * 16, 16 * 16)[:work_buffers]]
    quality = ctypes.c_int()
    entry(_ptr(plane), _ptr(scratch), *plane.shape, *map(_ptr, buffers),
          *map(ctypes.byref, hashes), ctypes.byref(quality))
    return quality.value


def _ptr(array: np.ndarray):
    return array.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
