"""Fuzzing the loaders with seeded random mutations: a checkpoint's header and description, a project file,
attributes.csv, dataset specs and `studio compose` arguments. Whatever the damage, the answer is the file loading
or a StudioError with a message (naming the file where there is one), never another exception."""

from __future__ import annotations

import contextlib
import copy
import io
import json
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from studio.cli.main import main
from studio.data.spec import open_dataset, parse_spec
from studio.errors import StudioError
from studio.methods.base import MethodContext
from studio.methods.registry import get_method
from studio.service.composition import Composition, ItemSource, MixtureSource, Project, SlotValue
from studio.training.checkpoint import META_KEY, read_checkpoint_meta
from studio.training.model_io import load_model, save_checkpoint
from studio.training.trainer import build_config

DATASET = "fonts:tiny,res=16"
JUNK: list[Any] = [None, True, False, -1, 0, 3, 10**6, -1e9, 1e308, "", "x", "../../etc", [], {}, [1, "a"],
                   {"a": 1}, [[]], "\u00e9\x00"]


def expect_clean(run: Callable[[], Any], what: str, name: str | None = None) -> str:
    """Run a loader on one damaged input: success, or a StudioError (naming ``name`` when given)."""
    try:
        run()
    except StudioError as e:
        message = str(e)
        assert message.strip(), f"{what}: an empty message"
        if name is not None:
            assert name in message, f"{what}: the message does not name {name}: {message}"
        return message
    except Exception as e:
        pytest.fail(f"{what}: {type(e).__name__}: {e}")
    return ""


def mutate_json(rng: np.random.Generator, value: Any) -> Any:
    """Delete, replace or retype one node of a JSON value, chosen at random among all its nodes."""
    value = copy.deepcopy(value)
    slots: list[tuple[Any, Any]] = []

    def walk(node: Any) -> None:
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else []
        for key, child in list(items):
            slots.append((node, key))
            walk(child)

    walk(value)
    if not slots:
        return JUNK[rng.integers(len(JUNK))]
    node, key = slots[rng.integers(len(slots))]
    if rng.random() < 0.25 and isinstance(node, dict):
        del node[key]
    else:
        node[key] = copy.deepcopy(JUNK[rng.integers(len(JUNK))])
    return value


def mutate_text(rng: np.random.Generator, text: str, alphabet: str) -> str:
    chars = list(text)
    for _ in range(int(rng.integers(1, 4))):
        where = int(rng.integers(len(chars) + 1))
        op = rng.integers(3)
        if op == 0 and chars:
            del chars[min(where, len(chars) - 1)]
        elif op == 1:
            chars.insert(where, alphabet[rng.integers(len(alphabet))])
        elif chars:
            chars[min(where, len(chars) - 1)] = alphabet[rng.integers(len(alphabet))]
    return "".join(chars)


# --- checkpoints ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """An untrained tiny GZS-Net saved as a checkpoint: the format, not the weights, is under test."""
    dataset = open_dataset(DATASET)
    cls = get_method("gzs")
    method = cls(build_config(cls, {"width": 4, "hidden": 16}), MethodContext(dataset.schema, 16, 10))
    meta = {"dataset": {"spec": DATASET, "fingerprint": dataset.fingerprint, "resolution": 16},
            "split": {"test_fraction": 0.25, "seed": 0}}
    return save_checkpoint(tmp_path_factory.mktemp("fuzz") / "model", method, step=3, meta=meta)


def _split(data: bytes) -> tuple[dict[str, Any], bytes]:
    length = struct.unpack("<Q", data[:8])[0]
    return json.loads(data[8:8 + length]), data[8 + length:]


def _join(header: dict[str, Any], body: bytes) -> bytes:
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw)) + raw + body


def damaged_checkpoints(rng: np.random.Generator, original: bytes, count: int):
    header, body = _split(original)
    meta = json.loads(header["__metadata__"][META_KEY])
    tensors = [k for k in header if k != "__metadata__"]
    for i in range(count):
        kind = i % 6
        if kind == 0:  # cut short anywhere
            yield "truncated", original[: int(rng.integers(len(original)))]
        elif kind == 1:  # a few bytes of the header overwritten
            data = bytearray(original)
            for _ in range(int(rng.integers(1, 6))):
                data[int(rng.integers(8, 8 + 400))] = int(rng.integers(256))
            yield "header bytes", bytes(data)
        elif kind == 2:  # the length prefix claims anything up to 2^64 - 1
            claims = [0, 7, len(original), 2**31, 2**63 - 1, 2**64 - 1, int(rng.integers(2**40))]
            claim = claims[rng.integers(len(claims))]
            yield f"length {claim}", struct.pack("<Q", claim) + original[8:]
        elif kind == 3:  # one tensor entry with a huge, negative or odd shape, offsets or dtype
            damaged = copy.deepcopy(header)
            name = tensors[rng.integers(len(tensors))]
            field, junk = [("shape", [2**40, 2**40]), ("shape", [-4]), ("data_offsets", [0, 2**62]),
                           ("data_offsets", [9, 3]), ("dtype", "Q99"), ("shape", "big")][rng.integers(6)]
            damaged[name][field] = junk
            yield f"tensor {field}={junk}", _join(damaged, body)
        elif kind == 4:  # the description: one field deleted or replaced
            damaged = copy.deepcopy(header)
            damaged["__metadata__"][META_KEY] = json.dumps(mutate_json(rng, meta))
            yield "description field", _join(damaged, body)
        else:  # the description as a whole: not JSON, not an object, absent, the metadata not strings
            damaged = copy.deepcopy(header)
            junk = ['{"method": ', "[1, 2]", None, 7][rng.integers(4)]
            if junk is None:
                del damaged["__metadata__"][META_KEY]
            elif junk == 7:
                damaged["__metadata__"] = {"x": 7}
            else:
                damaged["__metadata__"][META_KEY] = junk
            yield f"description {junk!r}", _join(damaged, body)


def test_damaged_checkpoints_give_studio_errors_naming_the_file(checkpoint, tmp_path):
    rng = np.random.default_rng(15)
    original = checkpoint.read_bytes()
    assert load_model(checkpoint).step == 3
    refused = 0
    for i, (what, data) in enumerate(damaged_checkpoints(rng, original, 60)):
        path = tmp_path / f"damaged-{i}.safetensors"
        path.write_bytes(data)
        first = expect_clean(lambda p=path: read_checkpoint_meta(p), f"case {i} ({what}) meta", path.name)
        second = expect_clean(lambda p=path: load_model(p), f"case {i} ({what}) load", path.name)
        refused += bool(first or second)
    assert refused >= 50, refused  # nearly every mutation damages something that matters


def test_a_header_claiming_huge_sizes_is_refused_before_anything_is_read(checkpoint, tmp_path):
    header, body = _split(checkpoint.read_bytes())
    huge = tmp_path / "huge.safetensors"
    huge.write_bytes(struct.pack("<Q", 2**62) + b"{}")
    message = expect_clean(lambda: load_model(huge), "huge header")
    assert "claims 4,611,686,018,427,387,904 bytes" in message
    name = next(k for k in header if k != "__metadata__")
    header[name]["shape"] = [2**20, 2**20, 2**20]
    wide = tmp_path / "wide.safetensors"
    wide.write_bytes(_join(header, body))
    assert "claims shape" in expect_clean(lambda: load_model(wide), "huge tensor")


def test_a_description_asking_for_a_bigger_network_is_refused_without_building_it(checkpoint, tmp_path):
    header, body = _split(checkpoint.read_bytes())
    meta = json.loads(header["__metadata__"][META_KEY])
    meta["config"]["width"] = 2**20  # a real network this wide would need terabytes
    header["__metadata__"][META_KEY] = json.dumps(meta)
    path = tmp_path / "wide-config.safetensors"
    path.write_bytes(_join(header, body))
    assert "do not fit" in expect_clean(lambda: load_model(path), "wide config")


# --- projects -------------------------------------------------------------------------------------------------
def test_damaged_projects_give_studio_errors_naming_the_file(tmp_path):
    rng = np.random.default_rng(16)
    comp = Composition({"letter": SlotValue(a=ItemSource(3), b=ItemSource(4), t=0.3),
                        "font": SlotValue(a=MixtureSource(((ItemSource(1), 1.0), (ItemSource(2), 0.5))))},
                       base=ItemSource(0))
    good = tmp_path / "good.studio.json"
    Project(comp, checkpoint="runs/a/checkpoints/last.safetensors", dataset=DATASET).save(good)
    data = json.loads(good.read_text())
    assert Project.load(good).composition == comp
    for i in range(60):
        path = tmp_path / f"p{i}.studio.json"
        if i % 4 == 3:
            path.write_bytes(mutate_text(rng, good.read_text(), '{}[]":,0\\\n').encode())
        else:
            path.write_text(json.dumps(mutate_json(rng, data)))
        expect_clean(lambda p=path: Project.load(p), f"project case {i}", path.name)


# --- attributes.csv --------------------------------------------------------------------------------------------
@pytest.fixture
def small_folder(tmp_path) -> Path:
    folder = tmp_path / "folder"
    (folder / "img").mkdir(parents=True)
    rows = ["file,letter,colour"]
    for i in range(8):
        buffer = io.BytesIO()
        Image.fromarray(np.full((12, 12, 3), 30 * i, np.uint8)).save(buffer, format="PNG")
        (folder / "img" / f"{i}.png").write_bytes(buffer.getvalue())
        rows.append(f"img/{i}.png,{'ab'[i % 2]},{'rgb'[i % 3]}")
    (folder / "attributes.csv").write_text("\n".join(rows) + "\n")
    return folder


def test_damaged_attribute_tables_give_studio_errors(small_folder):
    rng = np.random.default_rng(17)
    table = small_folder / "attributes.csv"
    good = table.read_text()
    assert len(open_dataset(str(small_folder))) == 8
    for i in range(40):
        text = mutate_text(rng, good, ',"\n\r=:/.\\ \x00\ufeffab01')
        if i % 5 == 4:  # whole lines shuffled, doubled or dropped
            lines = text.splitlines()
            text = "\n".join(lines[j] for j in rng.integers(len(lines), size=len(lines)))
        table.write_bytes(text.encode("utf-8") if i % 7 else b"file,letter\n\xff\xfe,a\n")
        expect_clean(lambda: open_dataset(str(small_folder)), f"csv case {i}: {text!r}")
    table.write_text("file,letter,colour\n../../x.png,a,r\n" + "\n".join(good.splitlines()[2:]) + "\n")
    assert "inside the folder" in expect_clean(lambda: open_dataset(str(small_folder)), "escaping path")


# --- dataset specs -----------------------------------------------------------------------------------------------
def test_malformed_dataset_specs_give_studio_errors(small_folder):
    rng = np.random.default_rng(18)
    seeds = [DATASET, "shapes:tiny,res=16", f"{small_folder},res=16", "fonts:tiny,fonts=/nowhere"]
    for spec in seeds[:3]:
        assert len(open_dataset(spec)) > 0
    assert "nowhere" in expect_clean(lambda: open_dataset(seeds[3]), "missing fonts folder")
    for i in range(60):
        spec = mutate_text(rng, seeds[i % len(seeds)], ":,=res0123456789-/. tinyfontsshapes")

        def attempt(spec: str = spec) -> None:
            kind, preset, options = parse_spec(spec)
            big = kind != "folder" and preset != "tiny"
            res = options.get("res", "16")
            if big or (res.isdigit() and int(res) > 64):  # a valid spec of a big dataset: parsing is the test
                return
            open_dataset(spec)

        expect_clean(attempt, f"spec case {i}: {spec!r}")


# --- studio compose --------------------------------------------------------------------------------------------
def test_malformed_compose_arguments_give_messages_not_tracebacks(checkpoint, tmp_path, capsys):
    rng = np.random.default_rng(19)
    good = ["compose", str(checkpoint), "--dataset", DATASET, "--cache-dir", str(tmp_path / "cache"), "--device",
            "cpu", "--take", "letter=12", "--out", str(tmp_path / "a.png")]
    assert main(good) == 0
    tokens = ["--take", "letter=", "=", "x=1", "letter=999999", "font=-3", "--query", "letter=Z,size=huge",
              "--interpolate", "font=10:", "font=1:2", ":", "--frames", "0", "-5", "abc", "--gif",
              str(tmp_path / "no" / "x.gif"), "--out", "", "--base", "1e9", "--scale", "0", "--device", "tpu"]
    for i in range(24):
        args = list(good)
        for _ in range(int(rng.integers(1, 4))):
            where = int(rng.integers(2, len(args) + 1))
            if rng.random() < 0.5 and where < len(args):
                args[where] = tokens[rng.integers(len(tokens))]
            else:
                args.insert(where, tokens[rng.integers(len(tokens))])
        code: Any = None
        try:
            code = main(args)
        except SystemExit as e:  # argparse's usage errors: a message and exit status 2
            code = e.code
        except Exception as e:
            pytest.fail(f"compose case {i} {args[2:]}: {type(e).__name__}: {e}")
        err = capsys.readouterr().err
        assert "Traceback" not in err, err
        assert code == 0 or err.strip(), f"compose case {i} {args[2:]}: exit {code} without a message"
        with contextlib.suppress(FileNotFoundError):
            (tmp_path / "a.png").unlink()
