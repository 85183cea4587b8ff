"""Tunables shared by mnnkit's kernels, in one place (no scattered literals)."""

from __future__ import annotations

#: Whether numba kernels may use fastmath. Off: exact mode must reproduce the reference bit for bit
#: up to IEEE rounding, and fastmath reassociates sums.
NUMBA_FASTMATH = False

#: batchelor's floor on a cell's l2 norm in cosine normalisation (all-zero cells stay zero). Every
#: cosine normalisation in mnnkit (both corrections, their dask path, the plots, the mnnpy drop-in)
#: divides by ``max(norm, COSINE_NORM_FLOOR)``.
COSINE_NORM_FLOOR = 1e-8

#: Target size in bytes of one float64 work block (a chunk of rows times the other side's cells).
#: The chunked kernels size their row blocks so that each temporary stays near this bound.
CHUNK_BYTES = 64 * 2**20
#: The exact kNN search's block of dot products: BLAS writes it and the selection kernel reads it right
#: after, so it should stay in the last-level cache. On this 2-core machine both directions of a
#: 10,000 x 20,000 x 50 search took 2.2 s with 64 MiB blocks, 1.4 s with 16 MiB and 1.3-1.5 s with 8 MiB.
KNN_CHUNK_BYTES = 16 * 2**20

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


# --------------------------------------------------------------- the fast method (PC space)
#: Neighbours per cell in each batch's graph (pynndescent); reverse edges are added up to twice this.
#: The graphs only steer the searches, whose pools and seeds do the rest: 12 instead of 15 builds a
#: 100,000-cell batch's graph in 1.55 s instead of 1.9 s, for MNN pair recall 0.960 instead of 0.962
#: against the exact path (``bench_fastmnn.py``, 100,000 cells in 10 batches).
GRAPH_DEGREE = 12
#: Threads of each pynndescent build. Its output depends on the number of threads it is given (it
#: splits the work and its random streams by thread) but not on their scheduling, so a fixed number
#: keeps the graphs the same on every machine that has that many threads for numba (one where numba
#: has a single thread builds with one, reproducibly too, but different graphs).
GRAPH_THREADS = 2
#: Batches smaller than this get an exact kNN graph (pynndescent needs more points to be useful).
SMALL_GRAPH = 1000
#: At most this many random pivots for a side of several batches (plus each component's first cell).
MAX_PIVOTS = 512
#: Result pool of a left cell's search for its nearest right cells, which starts from the right cells
#: that list it (often only one or two): the neighbours asked for plus this many.
LEFT_MARGIN = 40
#: A query without seeds starts from its nearest pivots: this many of them.
N_ENTRIES = 4
#: After a merge, each right cell keeps edges to this many of its nearest left cells ...
CROSS_NEIGHBOURS = 10
#: ... and each left cell keeps the reverse edges of at most this many right cells (no hubs).
CROSS_REVERSE = 20
#: Sides smaller than this are searched by brute force.
SMALL_SIDE = 1000
#: ``neighbors="auto"`` of the fast method searches exactly while the work of an exact search of every
#: merge, ``d`` times the number of pairs of cells from different batches (the same for every merge
#: order), is at most ``AUTO_PARTITION_MIN_WORK`` multiply-adds; up to ``AUTO_EXACT_MAX_WORK``, on k-means
#: partitions (``"partition"``); above it, on per-batch pynndescent graphs. Measured here (2 cores, 50
#: PCs, three equal batches): the partition search is as fast as the exact one at about 6,000 cells
#: (6e8) and twice as fast at 24,000 (9.6e9); at about 200,000 cells (6e11) the exact search takes about
#: as long as the graph path, which also pays pynndescent's compilation (tens of seconds) in every new
#: process, so the partition search, faster than the exact one, hands over no earlier.
AUTO_PARTITION_MIN_WORK = 1e9
AUTO_EXACT_MAX_WORK = 6e11
#: ``neighbors="partition"`` (the fast method's approximate search between moderate sizes, see
#: :mod:`mnnkit.neighbors._partition`): k-means partitions of about this many cells ...
PARTITION_CELLS = 200
#: ... fitted with this many Lloyd iterations (the partitions only steer the search: a rough fit does) ...
PARTITION_ITERATIONS = 3
#: ... and each partition's cells searched exactly among the cells of this many nearest partitions.
PARTITION_PROBES = 8
#: Randomized SVD settings: ``d`` oversamples (a subspace of ``2d`` columns) and 10 subspace
#: iterations. MNN pairs depend on the whole d-dimensional subspace, including its last components,
#: whose singular values are close together; the library defaults (10 oversamples, 7 iterations)
#: recovered only 70-91% of the exact path's pairs on the reference data sets, these settings 99-100%.
SVD_ITERATIONS = 10
#: Columns summed together by one ``prange`` iteration of :func:`column_sq_deviations` (a cache line).
COLUMN_TILE = 8
#: Queries handled by one ``prange`` iteration of the graph search (they share its scratch arrays,
#: ``O(targets)`` each): at least this many, and few enough iterations that the scratch is set up at
#: most ``MAX_SEARCH_BLOCKS`` times per call.
SEARCH_BLOCK = 128
MAX_SEARCH_BLOCKS = 64


# --------------------------------------------------------------- linalg, neighbors, cluster, stats, nn
# Values marked "compiled in" are read by numba kernels cached on disk, and the cache does not see a
# change here: clear the package's __pycache__ folders after changing one.

#: Bytes of one row block of the dense intermediates of :class:`mnnkit.linalg.CenteredScaledMatrix`'s
#: products with sparse input (eight times this for dense input): the working memory is one block instead
#: of ``n_rows x l``. 1 MiB keeps a sparse product's block in a core's L2 cache; dense blocks are larger
#: because BLAS, which multiplies them, needs a few hundred rows to run near its peak.
LINALG_BLOCK_BYTES = 1 << 20
#: Tasks per numba thread when :mod:`mnnkit.linalg` splits sparse work by stored entries: several per
#: thread even out columns of uneven density, and each task still gets enough entries to pay for itself.
LINALG_TASKS_PER_THREAD = 4
#: Elements of one row block when :func:`mnnkit.linalg.mean_var` sums dense data (32 MiB of float64):
#: bounds the float64 temporaries of float32 input. The blocks fix the summation order, so a change
#: changes the last bits of the moments.
MOMENTS_BLOCK_ELEMENTS = 1 << 22
#: ``randomized_svd(method="auto")`` computes the exact (dense LAPACK) SVD when the matrix has at most
#: this many elements (16 MB as float64): small enough that the exact SVD is quick and its dense copy
#: cheap; above it the randomized SVD is faster and never forms the matrix.
SVD_EXACT_MAX_ELEMENTS = 2_000_000
#: Elements per block when :mod:`mnnkit.linalg` checks data for NaN and infinity: the check's temporaries
#: stay at about 1 MB whatever the size of the data.
FINITE_CHECK_ELEMENTS = 1 << 20
#: Entries per block when :func:`mnnkit.stats.fit_genes` checks its counts: temporaries of a few MB.
COUNT_CHECK_ELEMENTS = 1 << 22
#: :func:`mnnkit.stats.fit_genes` tallies a gene's counts below this in a dense buffer (8 KiB, in cache)
#: and sorts the larger ones (compiled in): single-cell counts are mostly small.
COUNT_HISTOGRAM_CAP = 1024

#: Extra candidates per right cell that the exact :func:`mnnkit.neighbors.knn_both_ways` keeps for the
#: reverse direction beyond ``k_left``: near-ties at the k-th distance are settled from them without a
#: second search; only a cell with more near-ties than this (duplicated cells) is searched again.
KNN_REVERSE_SLACK = 16
#: Up to this many dimensions (PC space), the exact search both ways runs two row-wise searches, one
#: BLAS pass each, instead of one pass with a heap per right row: the products are cheap there and the
#: heaps are not (20,000 x 10,000 cells, 50 PCs, one thread: 2.0 s instead of 3.1 s; same neighbours).
KNN_TWO_PASS_MAX_DIM = 64
#: Data rows handled together by the reverse-direction kernel of the exact search (compiled in): one
#: 64-byte cache line of a row of float64 dot products.
KNN_REVERSE_TILE = 8
#: Multiply-adds (query rows x data rows x dimensions) below which the exact search's kernels run on one
#: numba thread: waking the threads costs more than such a search saves (many small searches, as in
#: merge_order="auto" over many small batches, ran several times slower in parallel on two cores).
KNN_PARALLEL_MIN_WORK = 2e7
#: Query rows of the exact search that share one set of scratch arrays (one ``prange`` iteration):
#: allocating them per row dominated searches of many rows against few cells.
SELECT_BLOCK_ROWS = 64

#: Rows per parallel task of the Gaussian mixture's E-step (one tile of responsibilities).
GMM_ESTEP_ROWS = 128
#: The M-step sums its statistics in at most ``GMM_MSTEP_MAX_CHUNKS`` partial sums, of at least
#: ``GMM_MSTEP_MIN_ROWS`` rows each and ``GMM_MSTEP_MAX_BYTES`` in all. Fixed numbers, independent of the
#: thread count, so that a fit is the same bit for bit on every machine; a change changes the last bits.
GMM_MSTEP_MAX_CHUNKS = 64
GMM_MSTEP_MIN_ROWS = 256
GMM_MSTEP_MAX_BYTES = 64 << 20
#: Multiply-adds per EM iteration below which the mixture's kernels run on one numba thread: waking the
#: threads costs more than such an iteration.
GMM_PARALLEL_MIN_WORK = 2e7

#: Bytes of the im2col columns (or padded copy) of one chunk of images in :mod:`mnnkit.nn`'s
#: convolutions: 8 MiB keeps the temporaries cache-sized, reused rather than freshly mapped on every call.
NN_CONV_CHUNK_BYTES = 8 << 20
#: ``method="auto"`` convolutions in :mod:`mnnkit.nn` use the direct loops when a group has at most this
#: many input channels and there is more than one group (depthwise and narrow grouped convolutions),
#: where im2col's columns cost more than the arithmetic they feed.
NN_DIRECT_MAX_CHANNELS_PER_GROUP = 2
#: Inner-loop operations (multiply-adds, copies, comparisons) below which an :mod:`mnnkit.nn` kernel runs
#: on the calling thread only: a parallel region can stall for a scheduler time slice when cores are
#: shared, which would dominate small layers (a 32-image batch of 32x32 crops).
NN_PARALLEL_MIN_WORK = 1 << 23

# --------------------------------------------------------------- compile time (see docs/compile_cache.md)
#: Entries up to which the kernels' shared small sort (``mnnkit._sort``, compiled once, in place of
#: numba's generic sorts) uses insertion sort; longer runs use heapsort (compiled in). The order sorted
#: by is total, so the result does not depend on this.
SORT_INSERTION_MAX = 16
#: Ranges of rows per thread that :func:`mnnkit._threads.run_in_ranges` splits a kernel's work into:
#: several per thread even out rows of uneven cost, and each range is still large enough that calling
#: the kernel on it costs little.
PARALLEL_TASKS_PER_THREAD = 4
#: Rows of a Fortran-ordered array that the classic smoothing's softmax turns into their softmax together
#: (as columns of the C-ordered transpose): 64 float64 accumulators, a few cache lines per row read.
SOFTMAX_COLUMN_TILE = 64

#: The robust flavour's correction vectors join the pairs' local centres of mass: the trimmed mean of
#: each paired cell's ROBUST_CENTRE_K nearest cells on its own side, keeping the ROBUST_CENTRE_KEEP of
#: them nearest to their plain mean. Chosen on benchmarks/bench_quality.py (9 data sets): 10-15
#: neighbours raised the mean scIB Total from 0.831 (single-cell endpoints, largest batch first) to
#: 0.840-0.841, mostly by mixing small batches better; 20 blurred neighbouring cell types on the
#: smallest sets. Keeping 15, 14 or 12 of 15 gave the same mean (0.825 +- 0.001 in a second run);
#: dropping the farthest one only guards against a stray neighbour.
ROBUST_CENTRE_K = 15
ROBUST_CENTRE_KEEP = 14
#: The dual-softmax pairing drops candidate pairs whose weight is below this (negligible pulls that
#: would only cost time in the averages).
SOFT_PAIR_MIN_WEIGHT = 1e-3

#: The auto merge's grouped pair counts: right nodes up to this many cells are searched in groups of
#: at most this many cells (a larger node is searched on its own: its call overhead is small next to
#: its search).
GROUP_MAX_CELLS = 4096
#: Bytes of the block of dot products of a chunk of left cells with one group's right cells.
GROUP_BLOCK_BYTES = 32 * 2**20
