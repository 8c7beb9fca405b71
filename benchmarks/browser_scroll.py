"""Dataset browser scrolling through the full Fonts set (offscreen): thumbnails made per second, how much of the
screen shows real thumbnails rather than placeholders, the longest GUI stall, and memory.

The browser is the app's ``DatasetBrowser`` on ``fonts:full`` (every item, no filter). A 16 ms timer moves the
grid's scroll bar at a steady speed, as a wheel, a flick and a dragged scroll bar do, for a few seconds each:

* thumbnails/s: thumbnails the browser's worker rendered and stored per second of scrolling;
* on screen: at each tick, the share of the visible cells that already show their thumbnail (mean over ticks);
* filled after stop: once the scrolling stops, how long until every visible cell shows its thumbnail;
* stall: the longest gap between ticks of a 5 ms timer on the GUI thread;
* memory: peak resident size of the process (``getrusage``), and the resident size at the end.

No model is needed: thumbnails are the dataset's own pixels (``--checkpoint`` is accepted and ignored).
Run: ``.venv/bin/python benchmarks/browser_scroll.py [--size 64] [--res 64] [--quick] [--json out.json]``.
"""

from __future__ import annotations

import time
from typing import Any

import _common as common


def visible_rows(view: Any) -> list[int]:
    """Rows whose cells are on screen: the view is probed at the centre of every column, every half cell."""
    from PySide6.QtCore import QPoint

    rect = view.viewport().rect()
    size = view.model().thumbnail_size()
    pitch = size + 2 * view.spacing()
    rows = set()
    for y in range(rect.top() + view.spacing() + 1, rect.bottom(), max(1, pitch // 2)):
        for x in range(rect.left() + view.spacing() + size // 2, rect.right(), pitch):
            index = view.indexAt(QPoint(x, y))
            if index.isValid():
                rows.add(index.row())
    return sorted(rows)


def scroll_phase(browser: Any, rows_per_s: float, seconds: float, made: list[int]) -> dict[str, Any]:
    view, model = browser.view, browser.model
    bar = view.verticalScrollBar()
    row_px = model.thumbnail_size() + 2 * view.spacing()
    px_per_tick = max(1, round(rows_per_s * row_px * 0.016))
    coverage: list[float] = []
    made_before = made[0]

    def tick() -> None:
        bar.setValue(bar.value() + px_per_tick if bar.value() + px_per_tick <= bar.maximum() else 0)
        rows = visible_rows(view)
        if len(rows):
            coverage.append(sum(model.cached(model.item_at(r)) for r in rows) / len(rows))

    elapsed, stall = common.tick_for(tick, seconds)
    thumbs = made[0] - made_before
    stopped = time.perf_counter()
    filled = common.spin(lambda: all(model.cached(model.item_at(r)) for r in visible_rows(view)), 30)
    settle = time.perf_counter() - stopped if filled else float("nan")
    return {"screen_filled_after_stop_ms": round(settle * 1000, 1),
            "rows_per_s": rows_per_s, "items_per_s_scrolled": round(rows_per_s * items_per_row(browser), 1),
            "thumbnails": thumbs, "thumbnails_per_s": round(thumbs / elapsed, 1),
            "on_screen_ready": round(sum(coverage) / len(coverage), 3) if coverage else None,
            "stall": stall.summary(), "cache_items": len(model._cache)}


def items_per_row(browser: Any) -> int:
    view = browser.view
    cell = browser.model.thumbnail_size() + 2 * view.spacing()
    return max(1, view.viewport().width() // cell)


def main() -> None:
    p = common.parser(__doc__.split("\n\n")[0])
    p.add_argument("--preset", default="full", help="Fonts preset (default full: every built-in item)")
    p.add_argument("--res", type=int, default=64, help="dataset resolution (the app opens it at the model's)")
    p.add_argument("--size", type=int, default=64, help="thumbnail size in px (the app's default)")
    p.add_argument("--seconds", type=float, default=None, help="seconds per scrolling speed (default 5; "
                                                               "--quick: 1.5)")
    p.add_argument("--width", type=int, default=480, help="browser width in px")
    p.add_argument("--height", type=int, default=900, help="browser height in px")
    args = p.parse_args()
    info = common.machine()
    common.apply_threads(args.threads)
    app = common.qt_app()
    info["pyside6"] = common.machine().get("pyside6")
    seconds = args.seconds or (1.5 if args.quick else 5.0)

    from studio.data.spec import open_dataset
    from studio.service.items import DatasetItems
    from studio.ui.browser import DatasetBrowser

    report = common.Report("browser_scroll", info)
    report.start(f"Dataset browser scrolling ({app.platformName()} platform)")
    if args.checkpoint:
        report.note("--checkpoint is ignored: the browser shows the dataset's own pixels, no model is involved")
    rss_start = common.current_rss_mb()
    started = time.perf_counter()
    dataset = open_dataset(f"fonts:{args.preset},res={args.res}")
    browser = DatasetBrowser(thumbnail_size=args.size)
    browser.resize(args.width, args.height)
    browser.show()
    browser.set_dataset(DatasetItems(dataset))
    made = [0]
    # the count of finished thumbnails: the model's private relay carries each rendered batch to the GUI thread
    browser.model._relay.rendered.connect(lambda _generation, batch: made.__setitem__(0, made[0] + len(batch)))
    first_screen = common.spin(lambda: all(browser.model.cached(browser.model.item_at(r))
                                           for r in visible_rows(browser.view)) and len(visible_rows(browser.view)),
                               60)
    ready_s = time.perf_counter() - started
    report.note(f"fonts:{args.preset},res={args.res}: {len(dataset):,} items, {args.size} px thumbnails, "
                f"{items_per_row(browser)} per row in a {args.width}x{args.height} browser; first screen "
                f"{'filled' if first_screen else 'NOT filled'} {ready_s:.2f} s after opening")
    speeds = (("wheel", 8.0), ("flick", 60.0), ("scroll-bar drag", 600.0))
    rows = []
    try:
        for name, rows_per_s in speeds:
            r = scroll_phase(browser, rows_per_s, seconds, made)
            report.add(phase=name, **r)
            rows.append((name, r["items_per_s_scrolled"], r["thumbnails_per_s"],
                         f"{100 * r['on_screen_ready']:.0f}%" if r["on_screen_ready"] is not None else "n/a",
                         common.ms(r["screen_filled_after_stop_ms"]), common.ms(r["stall"]["max_ms"]),
                         common.ms(r["stall"]["p99_ms"]), r["stall"]["over_50ms"]))
            print(f"  {name}: {r['thumbnails_per_s']} thumbnails/s, stall {r['stall']['max_ms']} ms", flush=True)
    finally:
        browser.shutdown()
        browser.close()
        browser.deleteLater()
        common.run_for(0.05)
    peak, now = common.peak_rss_mb(), common.current_rss_mb()
    report.add(phase="memory", peak_rss_mb=round(peak, 1), rss_end_mb=round(now or 0, 1),
               rss_start_mb=round(rss_start or 0, 1))
    report.table(f"scrolling for {seconds:g} s per speed (on screen = share of visible cells showing their "
                 "thumbnail; filled = ms after stopping until the whole screen shows thumbnails)",
                 ["speed", "items/s passing", "thumbnails/s", "on screen", "filled ms", "max stall ms", "p99 gap ms",
                  "gaps>50ms"], rows)
    report.table("memory (MB)", ["", "resident at start", "peak resident", "resident at end"],
                 [("process", f"{rss_start or 0:.0f}", f"{peak:.0f}", f"{now or 0:.0f}")])
    report.finish(args.json)


if __name__ == "__main__":
    main()
