"""Fine-tuning a MACE model on the campaign's DFT forces (the ``finetune`` stage for
``calculator.backend: mace``; :mod:`phonion.finetune` prepares the data and checks the
result the same way for every backend).

MACE's own trainer does the work (``mace_run_train`` with ``--foundation_model``: the base
model's architecture and weights as the starting point, ``--multiheads_finetuning False``:
the campaign fine-tunes one model on its own data, no replay of the foundation's data),
run as a subprocess of the job's interpreter so that its logs and checkpoints stay in one
work folder. The base model's atomic reference energies (E0s) are kept: the energy labels
are DFT energy differences anchored at the base model's own energies
(:func:`phonion.finetune.energy_labels`), so the model keeps its zero. Every epoch writes a
MACE checkpoint; a job killed mid-way resumes from the latest one (``--restart_latest``)
when the data digest matches, else starts over.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
from ase import Atoms

from .errors import PhonionError

NAME = "finetuned"


def _write(path: Path, frames: list[Atoms], labels) -> None:
    from ase.io import write

    out = []
    for f, e in zip(frames, labels, strict=True):
        at = Atoms(f.numbers, positions=f.positions, cell=f.cell, pbc=True)
        at.info["REF_energy"] = float(e)
        at.arrays["REF_forces"] = np.asarray(f.arrays["dft_forces"], float)
        out.append(at)
    write(path, out, format="extxyz")


def base_e0s(base_model: Path) -> dict[int, float]:
    """The base model's atomic reference energies (eV) by atomic number."""
    import torch

    model = torch.load(base_model, map_location="cpu", weights_only=False)
    z = [int(x) for x in model.atomic_numbers]
    e = model.atomic_energies_fn.atomic_energies.detach().cpu().numpy().ravel().tolist()
    return dict(zip(z, e[:len(z)], strict=True))


def train_mace(base_model: Path, train: list[Atoms], labels, held_out: list[Atoms],
               held_labels, s, out_path: Path, digest: str, device: str = "cpu",
               log: Callable[[str], None] = print) -> list[dict]:
    """Fine-tune the MACE model file ``base_model`` on ``train`` (DFT forces, energy
    ``labels``), validating on ``held_out``, for ``s.epochs`` epochs at
    ``s.learning_rate`` in batches of ``s.batch_size`` (seed ``s.seed``); writes the model
    to ``out_path``. Returns the per-epoch history (held-out force RMSE in meV/Å as MACE
    evaluates it)."""
    work = Path(f"{out_path}.mace_work")
    stamp = work / "digest"
    if work.is_dir() and (not stamp.is_file() or stamp.read_text() != digest):
        shutil.rmtree(work)  # another data set or setting: never resume it
    work.mkdir(parents=True, exist_ok=True)
    stamp.write_text(digest)
    _write(work / "train.xyz", train, labels)
    _write(work / "valid.xyz", held_out, held_labels)
    resumed = any((work / "checkpoints").glob("*.pt"))
    if resumed:
        log("resuming from MACE's latest checkpoint")
    args = [sys.executable, "-m", "mace.cli.run_train", "--name", NAME,
            "--foundation_model", str(base_model), "--multiheads_finetuning", "False",
            "--E0s", repr(base_e0s(base_model)),
            "--train_file", "train.xyz", "--valid_file", "valid.xyz",
            "--energy_key", "REF_energy", "--forces_key", "REF_forces",
            "--max_num_epochs", str(s.epochs), "--lr", str(s.learning_rate),
            "--batch_size", str(s.batch_size), "--valid_batch_size", str(s.batch_size),
            "--seed", str(s.seed), "--device", device, "--default_dtype", "float64",
            "--restart_latest", "--save_cpu"]
    proc = subprocess.run(args, cwd=work, capture_output=True, text=True,
                          env={**os.environ, "PYTHONWARNINGS": "ignore"})
    (work / "mace_run_train.log").write_text(proc.stdout + proc.stderr)
    if proc.returncode or not (work / f"{NAME}.model").is_file():
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise PhonionError(f"MACE fine-tuning failed: {last} (log: {work}/mace_run_train.log)")
    history = []
    for path in sorted((work / "results").glob(f"{NAME}_run-*_train.txt")):
        for line in path.read_text().splitlines():
            row = json.loads(line)
            if row.get("mode") == "eval" and row.get("epoch") is not None:
                history.append({"epoch": int(row["epoch"]) + 1,
                                "held_out_force_rmse_meV_A": 1000 * float(row["rmse_f"])})
    tmp = out_path.with_name(out_path.name + ".tmp")
    shutil.copyfile(work / f"{NAME}.model", tmp)
    os.replace(tmp, out_path)
    shutil.rmtree(work, ignore_errors=True)
    return history
