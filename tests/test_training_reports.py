"""What `studio train` tells a scripted user: exit codes of planned and interrupted stops, what `--init-from` carries
over onto other vocabularies and image sizes, and the mixed-size note in the training log."""

from __future__ import annotations

import os
import signal
import threading
import time

import numpy as np
from PIL import Image

from studio.cli.main import main
from studio.data.export import export_dataset
from studio.data.spec import open_dataset
from studio.training.model_io import load_model

DATASET = "fonts:tiny,res=32"
COMMON = ["train", "--method", "gzs", "--batch", "2", "--device", "cpu", "--threads", "1", "--recipe", "none",
          "--width", "8", "--hidden", "32", "--checkpoint-every", "0", "--sample-every", "0"]


def test_a_minutes_stop_and_a_spent_budget_exit_0_and_ctrl_c_exits_130(tmp_path, capsys):
    timed = tmp_path / "timed"
    assert main([*COMMON, "--dataset", DATASET, "--out", str(timed), "--steps", "100000", "--minutes", "0.0005"]) == 0
    err = capsys.readouterr().err
    assert "time limit of 0.0005 min reached" in err and "by the --minutes 0.0005 limit" in err
    assert 0 < load_model(timed).step < 100000  # stopped early, with a checkpoint to --resume from

    budget = tmp_path / "budget"
    assert main([*COMMON, "--dataset", DATASET, "--out", str(budget), "--steps", "100000",
                 "--budget-minutes", "0.0005"]) == 0
    assert "training budget of 0.0005 min spent" in capsys.readouterr().err

    interrupted = tmp_path / "interrupted"

    def press_ctrl_c_once_training() -> None:
        deadline = time.monotonic() + 120
        while not (interrupted / "metrics.jsonl").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGINT)  # the trainer's handler: finish the step, save, return

    presser = threading.Thread(target=press_ctrl_c_once_training, daemon=True)
    presser.start()
    # --minutes 3 only ends the run should the signal never come (then the exit is 0 and the test fails)
    code = main([*COMMON, "--dataset", DATASET, "--out", str(interrupted), "--steps", "100000", "--log-every", "1",
                 "--minutes", "3"])
    presser.join()
    err = capsys.readouterr().err
    assert code == 130 and "Ctrl-C: stopping after this step" in err and "(interrupted)" in err
    assert load_model(interrupted).step >= 1


def test_init_from_onto_other_values_and_image_sizes_says_what_carries_over(tmp_path, capsys):
    source = tmp_path / "source"
    assert main([*COMMON, "--dataset", DATASET, "--out", str(source), "--steps", "1"]) == 0
    # The same attributes with two other letters, in 24-px images (the folder opens at 32 px, the model's size).
    folder = export_dataset(open_dataset(DATASET), tmp_path / "mine", progress=False)
    rows = (folder / "attributes.csv").read_text().splitlines()
    header = rows[0].split(",")
    letter = header.index("letter")
    renamed = []
    for row in rows[1:]:
        cells = row.split(",")
        cells[letter] = {"A": "K", "B": "L"}.get(cells[letter], cells[letter])
        renamed.append(",".join(cells))
        path = folder / cells[header.index("file")]
        Image.fromarray(np.asarray(Image.open(path).convert("RGB"))).resize((24, 24)).save(path)
    (folder / "attributes.csv").write_text("\n".join([rows[0], *renamed]) + "\n")
    capsys.readouterr()
    assert main([*COMMON, "--dataset", str(folder), "--out", str(tmp_path / "tuned"), "--steps", "1",
                 "--init-from", str(source)]) == 0
    err = capsys.readouterr().err
    before_training = err.split("training gzs on")[0]
    assert f"--init-from {source}: a gzs model trained on {DATASET} at 32 px" in before_training
    assert "carries over all its weights; slots: letter (" in before_training
    assert "letter: 3 of its 5 values known; 2 new to the model (K, L); 2 of the model's not in this dataset " \
           "(A, B)" in before_training
    assert "size: the same 2 values" in before_training
    assert "images: 24x24 (240) are centre-cropped and resized to 32 x 32 px (short side 24 -> 32)" in before_training
    # ... and the training log says once that every image is resized
    assert err.count("images: 240 images in one size (24x24: 240): loading resizes 240 to 32 x 32 px") == 1


def test_mixed_sizes_are_said_once_in_the_training_log(tmp_path, capsys):
    folder = tmp_path / "mixed"
    folder.mkdir()
    rng = np.random.default_rng(0)
    lines = ["file,shade"]
    for k, (w, h) in enumerate([(64, 64), (32, 20), (100, 48)] * 4):
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(folder / f"{k}.png")
        lines.append(f"{k}.png,{'ab'[k % 2]}")
    (folder / "attributes.csv").write_text("\n".join(lines) + "\n")
    assert main([*COMMON, "--dataset", f"{folder},res=16", "--out", str(tmp_path / "run"), "--steps", "1"]) == 0
    err = capsys.readouterr().err
    note = ("images: 12 images in 3 different sizes (32x20: 4, 64x64: 4, 100x48: 4): loading centre-crops the 8 "
            "non-square one(s) to a square and resizes 12 to 16 x 16 px")
    assert err.count(note) == 1
