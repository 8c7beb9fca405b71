"""How the data layer scales: a Fonts-shaped code table of 1.4 M rows (52 letters x 3 sizes x 90 colour pairs x
100 fonts), timed through the zero-shot split, the group sampler, the cover query and the row lookup.

Prints build and sample timings and the bytes each structure keeps per item. Run:
``.venv/bin/python benchmarks/data_scale.py [--fonts 100]``.
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

import numpy as np

from studio.data.dataset import AttributedDataset
from studio.data.multigraph import GroupSampler, cover
from studio.data.schema import Attribute, AttributeSchema
from studio.data.splits import ZeroShotSplit


class CodesOnly(AttributedDataset):
    """A dataset with a code table and no pixels: enough to time everything that works on codes."""

    def _fingerprint_parts(self) -> list[str]:
        return []


def fonts_codes(num_fonts: int) -> np.ndarray:
    grids = np.meshgrid(np.arange(52), np.arange(3), np.arange(10), np.arange(10), np.arange(num_fonts),
                        indexing="ij")
    codes = np.stack([g.reshape(-1) for g in grids], axis=1).astype(np.int16)
    codes = codes[codes[:, 2] != codes[:, 3]]
    # Shuffled, as a user's folder would be: built-in sets come sorted, which flatters every sort below.
    return codes[np.random.default_rng(1).permutation(len(codes))]


def timed(fn, repeat: int = 1, trace_memory: bool = False):
    """Mean seconds per call, and the peak of memory allocated meanwhile (tracing slows Python: builds only)."""
    if trace_memory:
        tracemalloc.start()
    start = time.perf_counter()
    for _ in range(repeat):
        out = fn()
    seconds = (time.perf_counter() - start) / repeat
    peak = tracemalloc.get_traced_memory()[1] if trace_memory else 0
    if trace_memory:
        tracemalloc.stop()
    return out, seconds, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fonts", type=int, default=100, help="number of fonts (100 gives 1,404,000 rows)")
    parser.add_argument("--batch", type=int, default=64, help="groups per sampled batch")
    args = parser.parse_args()

    codes, t_codes, _ = timed(lambda: fonts_codes(args.fonts))
    n = len(codes)
    names = ["letter", "size", "font_color", "background_color", "font"]
    schema = AttributeSchema(tuple(Attribute(nm, tuple(str(v) for v in range(int(codes[:, j].max()) + 1)))
                                   for j, nm in enumerate(names)))
    print(f"code table      {n:,} rows x {codes.shape[1]}  ({codes.nbytes / n:.0f} B/item, built in {t_codes:.2f} s)")

    split, t_split, peak_split = timed(lambda: ZeroShotSplit.make(codes, 0.25, seed=0), trace_memory=True)
    split_bytes = split.train.nbytes + split.test.nbytes
    print(f"zero-shot split {t_split:6.2f} s   {split_bytes / n:5.1f} B/item kept, peak {peak_split / n:5.1f} B/item"
          f"   ({len(split.train):,} train / {len(split.test):,} test)")

    sampler, t_build, peak_build = timed(lambda: GroupSampler(codes, split.train), trace_memory=True)
    kept = sum(o.nbytes for o in sampler._order) + sum(o.nbytes for o in sampler._offsets)
    print(f"sampler build   {t_build:6.2f} s   {kept / n:5.1f} B/item kept, peak {peak_build / n:5.1f} B/item")

    rng = np.random.default_rng(0)
    sampler.sample(args.batch, rng)
    _, t_batch, _ = timed(lambda: sampler.sample(args.batch, rng), repeat=200)
    print(f"sample batch    {t_batch * 1e3:6.2f} ms  ({args.batch} groups of {1 + codes.shape[1]}; "
          f"{args.batch / t_batch:,.0f} groups/s; fallback rate {sampler.fallback_rate:.4f})")

    targets = codes[split.test[rng.integers(len(split.test), size=20)]]
    it = iter(targets)
    _, t_cover, _ = timed(lambda: cover(codes, split.train, next(it)), repeat=20)
    print(f"cover query     {t_cover * 1e3:6.2f} ms  per held-out target, over {len(split.train):,} train items")

    dataset = CodesOnly("bench", schema, codes, 64)
    _, t_index, peak_index = timed(lambda: dataset.index_of(codes[12345]), trace_memory=True)
    rows = codes[rng.integers(n, size=1000)]
    _, t_lookup, _ = timed(lambda: [dataset.index_of(r) for r in rows])
    print(f"row index build {t_index:6.2f} s   peak {peak_index / n:5.1f} B/item; lookup {t_lookup * 1e3:.1f} us/row")


if __name__ == "__main__":
    main()
