"""The float32 arithmetic the compiled kernels share (the KDE sums and the training step).

- FAST: LLVM's fast-math flags minus nnan and ninf. Reassociation lets sums vectorise, while an
  infinite value (a diverging ReLU net's squared distance) still compares and clamps correctly.
- MIN_EXPONENT = -126: 2^-126 is float32's smallest normal number; exponents are clamped there so
  exp2 never enters the denormal range (slower, and no more accurate for a sum of such terms).
- exp2(x) = 2^n * 2^f for x in [-126, 0], n = round(x), f = x - n in [-1/2, 1/2]: 2^n from the
  exponent bits, 2^f = 1 + f q(f) with q a least-squares fit of (2^f - 1)/f at Chebyshev nodes
  (relative error 4e-9 in exact arithmetic, 8e-8 evaluated in float32). P0 = 1 exactly, so terms
  near 1, the ones that dominate a row sum, are the most accurate.
"""

from __future__ import annotations

import math

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

FAST = {"nsz", "arcp", "contract", "afn", "reassoc"}
MIN_EXPONENT = np.float32(-126.0)
LOG2E = np.float32(1.0 / math.log(2.0))
_P0, _P1, _P2, _P3, _P4, _P5, _P6 = (np.float32(c) for c in (
    1.0, 0.6931471875872558, 0.24022648373133768, 0.055503585295898696,
    0.0096184678328075, 0.0013390295787781934, 0.00015329347420496494,
))


@intrinsic
def _float32_from_bits(typingctx, bits):
    """Reinterpret an int32 as the float32 with the same bits (free, and vectorisable)."""
    signature = types.float32(types.int32)

    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.FloatType())

    return signature, codegen


@njit(inline="always", fastmath=FAST)
def exp2(x):
    """2^x for float32 x in [-126, 0]: 2^n from the exponent bits times 2^f, n = round(x)."""
    n = np.floor(x + np.float32(0.5))
    f = x - n
    p = _P6 * f + _P5
    p = p * f + _P4
    p = p * f + _P3
    p = p * f + _P2
    p = p * f + _P1
    p = p * f + _P0
    return p * _float32_from_bits((np.int32(n) + np.int32(127)) << np.int32(23))
