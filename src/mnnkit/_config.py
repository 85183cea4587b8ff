"""Tunables shared by mnnkit's kernels, in one place (no scattered literals)."""

from __future__ import annotations

#: Whether numba kernels may use fastmath. Off: exact mode must reproduce the reference bit for bit
#: up to IEEE rounding, and fastmath reassociates sums.
NUMBA_FASTMATH = False

#: Target size in bytes of one float64 work block (a chunk of rows times the other side's cells).
#: The chunked kernels size their row blocks so that each temporary stays near this bound.
CHUNK_BYTES = 64 * 2**20

#: Largest size in bytes of the dot products of a merge step's right cells with every cell of both
#: sides (``n_right x (n_left + n_right)`` float64) that a classic merge step keeps in memory, so that
#: the neighbour search, the kernel smoothing and var.adj share one BLAS pass. Larger steps compute
#: them again in chunks where needed.
GRAM_CACHE_BYTES = 512 * 2**20


#: Cells per side over which the classic method's ``approximate=True`` takes the var.adj quantiles: a
#: seeded sample this large keeps the quantiles' deviation from exact mode small (bounded in
#: tests/test_mnn_approximate.py) while var.adj stops growing with the batch size.
APPROXIMATE_VAR_ADJ_SAMPLE = 2000


def rows_per_chunk(n_columns: int, *, n_blocks: int = 1, minimum: int = 16) -> int:
    """Rows per chunk so that ``n_blocks`` float64 blocks of ``rows x n_columns`` fit in ``CHUNK_BYTES``."""
    per_row = 8 * max(int(n_columns), 1) * max(int(n_blocks), 1)
    return max(minimum, CHUNK_BYTES // per_row)
