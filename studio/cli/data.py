"""``studio data info SPEC`` and ``studio data export SPEC DIR``: look at a dataset, or write it as a folder."""

from __future__ import annotations

import argparse

from tqdm import tqdm

from studio.data.spec import open_dataset


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("data", help="inspect a dataset or export it as a folder of images",
                                   description="Inspect a dataset (fonts, fonts:small, shapes:tiny,res=32, or a "
                                   "folder path) or export it as PNG files plus attributes.csv.")
    actions = parser.add_subparsers(dest="data_action", metavar="ACTION")
    info = actions.add_parser("info", help="print schema, size and fingerprint")
    info.add_argument("spec", metavar="SPEC", help="dataset spec, e.g. fonts:small,res=32 or a folder path")
    info.add_argument("--check", action="store_true",
                      help="also decode every image of a folder dataset and report unreadable files")
    export = actions.add_parser("export", help="write the dataset as PNG files plus attributes.csv")
    export.add_argument("spec", metavar="SPEC", help="dataset spec, e.g. fonts:tiny")
    export.add_argument("out_dir", metavar="DIR", help="folder to write (new or empty)")
    export.add_argument("--limit", type=int, default=None, metavar="N",
                        help="export N items drawn at random (see --seed) instead of all")
    export.add_argument("--seed", type=int, default=0, help="seed for --limit (default 0)")
    export.add_argument("--no-labels", action="store_true", help="write the images only, no attributes.csv")
    export.add_argument("--force", action="store_true", help="write into a folder that is not empty")
    parser.set_defaults(run=_run, _data_parser=parser)


def _run(args: argparse.Namespace) -> int:
    if args.data_action == "info":
        return _info(args)
    if args.data_action == "export":
        return _export(args)
    args._data_parser.print_help()
    return 0


def _info(args: argparse.Namespace) -> int:
    dataset = open_dataset(args.spec)
    print(dataset.describe(), flush=True)
    size_report = getattr(dataset, "size_report", None)  # a folder's images may need cropping and resizing
    if size_report is not None:
        with tqdm(total=len(dataset), desc="sizes", unit="img", leave=False) as bar:
            report = size_report(lambda done, total: bar.update(done - bar.n))
        print(f"image sizes  {report or f'all {dataset.resolution} x {dataset.resolution} px, used as they are'}")
    if args.check:
        verify = getattr(dataset, "verify", None)
        if verify is None:
            print("check        built-in dataset: rendered on demand, nothing to check")
        else:
            with tqdm(total=len(dataset), desc="check", unit="img", leave=False) as bar:
                verify(lambda done, total: bar.update(done - bar.n))
            print(f"check        all {len(dataset)} images decode")
    return 0


def _export(args: argparse.Namespace) -> int:
    from studio.data.export import export_dataset

    dataset = open_dataset(args.spec)
    out = export_dataset(dataset, args.out_dir, limit=args.limit, labels=not args.no_labels, seed=args.seed,
                         overwrite=args.force)
    count = len(dataset) if args.limit is None else min(args.limit, len(dataset))
    print(f"wrote {count} images{'' if args.no_labels else ' and attributes.csv'} to {out}")
    return 0
