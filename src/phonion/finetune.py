"""Fine-tuning the campaign's MLP on the campaign's own DFT forces (issue 26, F29).

Seed 000 fine-tuned its potential on DFT data of its own chemistry and validated it
against DFT (§2.2); seeds 001, 002 and 004 trained or fine-tuned on their own DFT. Here the
DFT forces are those of the ``dft_forces`` stage: DFT on the very displaced supercells the
MLP's phonons were fitted from, so the fine-tuned model is corrected exactly where the
screen reads it.

The data, per validated material: every displaced snapshot with its full DFT forces (the
force set's forces plus the reference's residual forces, i.e. what the DFT code printed)
and its energy. Absolute DFT energies mean nothing to an MLP trained on another code's
references (pseudopotentials, basis), so an energy label is the DFT energy *difference*
from the material's mean snapshot energy, anchored at the base model's mean energy of the
same snapshots: the model learns DFT's energy differences and keeps its own zero.

The split is per material and by snapshot (seeded): at least one snapshot of every material
with two or more is held out and never trained on; the reported errors are the held-out
ones, evaluated through the written model file with the campaign's own calculator loader
(:func:`phonion.calculators.get_calculator`), not the trainer's internal numbers.

Training uses SevenNet's own trainer (:class:`sevenn.train.trainer.Trainer`, its loss
definitions and graph builder) from the base checkpoint, or MACE's (``mace_run_train
--foundation_model``, :mod:`phonion.finetune_mace`) for a MACE campaign; every epoch writes
a resumable checkpoint, so a job killed at its wall time continues where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
from ase import Atoms

from .formats import ForceSet, atomic_path

#: backends whose checkpoints this stage can fine-tune (and why not the others)
NOT_TUNABLE = {
    "chgnet": "CHGNet fine-tuning is not wired into phonion (its trainer needs the "
              "CHGNet dataset classes); use a SevenNet model for a fine-tuned campaign",
    "fairchem": "fairchem fine-tuning needs fairchem's own training stack (hydra configs, "
                "the [train] extra); not wired into phonion",
    "rigid_ion": "the rigid-ion test potential has no trainable parameters",
}


def tunable(backend: str, modal: str = "") -> str:
    """Why ``backend`` (with ``modal``) cannot be fine-tuned here; empty when it can."""
    if backend == "mace":
        return ("fine-tuning one head of a multi-head MACE model (calculator.modal = "
                f"'{modal}') is not supported: use a single-head model" if modal else "")
    if backend != "sevenn":
        return NOT_TUNABLE.get(backend, f"backend '{backend}' cannot be fine-tuned here")
    if modal:
        return (f"fine-tuning a multi-fidelity SevenNet checkpoint (calculator.modal = "
                f"'{modal}') is not supported: pick a single-fidelity model (7net-0, "
                "7net-l3i5) for the fine-tuned campaign")
    return ""


def dft_frames(forcesets: Mapping[str, ForceSet]) -> list[Atoms]:
    """Every displaced snapshot of every material as ASE atoms with ``arrays['dft_forces']``
    (eV/Å, residual forces added back: the DFT code's forces on that configuration),
    ``info['dft_energy']`` (eV), ``info['material']`` and ``info['snapshot']``."""
    frames = []
    for mid in sorted(forcesets):
        fs = forcesets[mid]
        for k, u in enumerate(np.asarray(fs.displacements_A, float)):
            at = Atoms(fs.supercell.numbers, positions=fs.supercell.positions + u,
                       cell=fs.supercell.cell, pbc=True)
            at.arrays["dft_forces"] = fs.forces_eV_A[k] + fs.residual_forces_eV_A
            at.info.update(dft_energy=float(fs.energies_eV[k]), material=mid, snapshot=k)
            frames.append(at)
    return frames


def aimd_forcesets(trajectories: Mapping[str, str | os.PathLike], n_frames: int,
                   log: Callable[[str], None] = print) -> dict[str, ForceSet]:
    """``n_frames`` frames spread over each AIMD trajectory (key → ``trajectory.h5`` of the
    ``aimd`` stage) as a force set of their own: the first frame is the "supercell", every
    frame a "displacement" from it, with the DFT forces and potential energy the AIMD
    printed (no residual). Kept apart from the material's displaced snapshots (its own key):
    the AIMD's protocol can differ from the static runs' (time step, SCF settings), so its
    energies get their own reference in :func:`energy_labels`. A trajectory without forces
    or energies (written before phonion kept them; VASP's XDATCAR) is left out, with its
    reason in the log."""
    from .formats import read_frames_with_forces

    out = {}
    for key, path in sorted(trajectories.items()):
        fr = read_frames_with_forces(path, n_frames)
        if fr["forces_eV_A"] is None or not np.isfinite(fr["potential_energy_eV"]).all():
            log(f"left out {key}: the AIMD trajectory keeps no DFT forces or energies")
            continue
        pos = np.asarray(fr["positions_A"], float)
        sc = Atoms(numbers=fr["numbers"], positions=pos[0], cell=fr["cell_A"], pbc=True)
        out[key] = ForceSet(sc, pos - pos[0], np.asarray(fr["forces_eV_A"], float),
                            np.zeros_like(pos[0]), np.asarray(fr["potential_energy_eV"]),
                            {"source": "aimd", "frames": [int(i) for i in fr["frames"]]})
    return out


def relax_frames(paths: Mapping[str, str | os.PathLike], n_frames: int,
                 log: Callable[[str], None] = print) -> list[Atoms]:
    """``n_frames`` steps spread over each DFT relaxation path (key → ``relax_path.h5`` of
    the ``relax`` stage with ``relax.engine: vasp | cp2k``), first and last included, as
    training frames of the group ``key``: each with its own cell (a cell relaxation changes
    it step by step), the DFT forces and energy of that step. The path's energies share one
    protocol, so they get one reference in :func:`energy_labels`: the model learns the
    energy differences along the relaxation, volume changes included. A path that holds no
    frames (an MLP relaxation; a DFT run written before forces were printed) is left out,
    with its reason in the log."""
    from .formats import read_arrays

    frames = []
    for key, path in sorted(paths.items()):
        arr = read_arrays(path)
        if "forces_eV_A" not in arr or not len(arr["forces_eV_A"]):
            log(f"left out {key}: the relaxation kept no steps with DFT forces")
            continue
        n = len(arr["forces_eV_A"])
        picked = np.unique(np.linspace(0, n - 1, min(n, n_frames)).round().astype(int))
        for k, i in enumerate(picked):
            at = Atoms(arr["numbers"], positions=arr["positions_A"][i],
                       cell=arr["cells_A"][i], pbc=True)
            at.arrays["dft_forces"] = np.asarray(arr["forces_eV_A"][i], float)
            at.info.update(dft_energy=float(arr["energies_eV"][i]), material=key,
                           snapshot=k)
            frames.append(at)
    return frames


def split(frames: list[Atoms], validation_fraction: float, seed: int
          ) -> tuple[list[Atoms], list[Atoms]]:
    """(train, held out): per material, ``round(fraction × n)`` snapshots (at least one
    when the material has two or more, never all) drawn with ``seed``."""
    rng = np.random.default_rng(seed)
    train, held = [], []
    for mid in sorted({f.info["material"] for f in frames}):
        mine = [f for f in frames if f.info["material"] == mid]
        n_val = 0 if len(mine) < 2 else min(len(mine) - 1,
                                            max(1, round(validation_fraction * len(mine))))
        chosen = set(rng.choice(len(mine), n_val, replace=False).tolist())
        for k, f in enumerate(mine):
            (held if k in chosen else train).append(f)
    return train, held


def evaluate(calculator, frames: list[Atoms]) -> tuple[list[np.ndarray], list[float]]:
    """``calculator``'s forces (eV/Å) and energies (eV) on every frame, each at its own
    cell (the displaced snapshots share one; relaxation steps do not)."""
    forces, energies = [], []
    for f in frames:
        at = Atoms(f.numbers, positions=f.positions, cell=f.cell, pbc=True)
        at.calc = calculator
        forces.append(at.get_forces().copy())
        energies.append(float(at.get_potential_energy()))
    return forces, energies


def force_errors(frames: list[Atoms], forces: list[np.ndarray]) -> dict:
    """Force errors against the frames' DFT forces: RMSE and max over components (meV/Å),
    RMSE per species and per material, and the RMSE relative to the DFT forces' RMS."""
    if not frames:
        return {}
    diff = np.concatenate([p - f.arrays["dft_forces"] for p, f in zip(forces, frames,
                                                                       strict=True)])
    ref = np.concatenate([f.arrays["dft_forces"] for f in frames])
    symbols = np.concatenate([f.get_chemical_symbols() for f in frames])
    mids = np.concatenate([[f.info["material"]] * len(f) for f in frames])

    def rmse(mask) -> float:
        return float(np.sqrt(np.mean(diff[mask] ** 2)) * 1000)

    return {"rmse_meV_A": rmse(slice(None)), "max_meV_A": float(np.abs(diff).max() * 1000),
            "relative_rmse": float(np.sqrt(np.mean(diff ** 2) / np.mean(ref ** 2))),
            "rmse_by_species_meV_A": {s: rmse(symbols == s) for s in sorted(set(symbols))},
            "rmse_by_material_meV_A": {m: rmse(mids == m) for m in sorted(set(mids))},
            "n_snapshots": len(frames)}


def energy_labels(frames: list[Atoms], base_energies: list[float]) -> np.ndarray:
    """Energy labels (eV): per material, the DFT energy minus the material's mean DFT
    snapshot energy plus the base model's mean energy of the same snapshots."""
    e_dft = np.array([f.info["dft_energy"] for f in frames])
    e_base = np.asarray(base_energies, float)
    mids = np.array([f.info["material"] for f in frames])
    out = np.empty_like(e_dft)
    for m in set(mids):
        sel = mids == m
        out[sel] = e_dft[sel] - e_dft[sel].mean() + e_base[sel].mean()
    return out


def data_digest(frames: list[Atoms], labels: np.ndarray, settings_json: str,
                base_sha256: str) -> str:
    """SHA-256 of what decides a training run: the frames, their labels, the settings and
    the base checkpoint (a resumable checkpoint is reused only for the same digest)."""
    h = hashlib.sha256()
    for f, e in zip(frames, labels, strict=True):
        for arr in (f.numbers, np.round(f.positions, 8), np.round(f.cell.array, 8),
                    np.round(f.arrays["dft_forces"], 8)):
            h.update(np.ascontiguousarray(arr).tobytes())
        h.update(f"{e:.8f}".encode())
    h.update(settings_json.encode())
    h.update(base_sha256.encode())
    return h.hexdigest()


def train_sevenn(base_checkpoint: Path, train: list[Atoms], labels: np.ndarray,
                 held_out: list[Atoms], s, out_path: Path, resume_path: Path, digest: str,
                 device: str = "cpu", log: Callable[[str], None] = print) -> list[dict]:
    """Fine-tune the SevenNet checkpoint ``base_checkpoint`` on ``train`` (DFT forces,
    energy ``labels``) for ``s.epochs`` epochs of Adam at ``s.learning_rate`` (batches of
    ``s.batch_size`` snapshots, shuffled with ``s.seed``), stress not trained; writes the
    checkpoint to ``out_path``. ``resume_path`` holds the state after each epoch and is
    resumed when its ``digest`` matches. Returns the per-epoch history (train loss and
    the held-out force RMSE in meV/Å as the trainer computes it)."""
    import sevenn
    import sevenn.util as sevenn_util
    import torch
    from sevenn.atom_graph_data import AtomGraphData
    from sevenn.train.dataload import atoms_to_graph
    from sevenn.train.loss import get_loss_functions_from_config
    from sevenn.train.trainer import Trainer
    from torch_geometric.loader import DataLoader

    torch.manual_seed(s.seed)
    cp = sevenn_util.load_checkpoint(str(base_checkpoint))
    config = cp.config
    model = cp.build_model()
    cutoff = float(config["cutoff"])

    def graph(at: Atoms, energy: float):
        x = at.copy()
        x.info = {"y_energy": energy}
        x.arrays["y_force"] = at.arrays["dft_forces"]
        return AtomGraphData.from_numpy_dict(atoms_to_graph(x, cutoff, transfer_info=False))

    train_graphs = [graph(f, e) for f, e in zip(train, labels, strict=True)]
    held_graphs = [graph(f, 0.0) for f in held_out]
    trainer = Trainer(model, get_loss_functions_from_config({**config, "is_train_stress": False}),
                      torch.optim.Adam, {"lr": s.learning_rate}, device=device)
    history, start = [], 0
    if resume_path.is_file():
        state = torch.load(resume_path, map_location="cpu", weights_only=False)
        if state.get("phonion_digest") == digest:
            trainer.load_state_dicts(state["model_state_dict"], state["optimizer_state_dict"])
            history, start = state["phonion_history"], int(state["epoch"])
            log(f"resumed from epoch {start} of {s.epochs}")

    def held_rmse() -> float:
        if not held_graphs:
            return float("nan")
        trainer.model.eval()
        sq, n = 0.0, 0
        for batch in DataLoader(held_graphs, batch_size=s.batch_size):
            out = trainer.model(batch.to(trainer.device))
            sq += float(((out["inferred_force"] - out["force_of_atoms"]) ** 2).sum())
            n += out["force_of_atoms"].numel()
        return float(np.sqrt(sq / n) * 1000)

    for epoch in range(start, s.epochs):
        t0 = time.perf_counter()
        # a generator per epoch: a resumed run shuffles exactly as an uninterrupted one
        generator = torch.Generator().manual_seed(s.seed * 100_003 + epoch)
        loader = DataLoader(train_graphs, batch_size=s.batch_size, shuffle=True,
                            generator=generator)
        trainer.run_one_epoch(loader, is_train=True)
        history.append({"epoch": epoch + 1, "held_out_force_rmse_meV_A": held_rmse(),
                        "seconds": round(time.perf_counter() - t0, 2)})
        log(f"epoch {epoch + 1}/{s.epochs}: held-out force RMSE "
            f"{history[-1]['held_out_force_rmse_meV_A']:.1f} meV/Å "
            f"({history[-1]['seconds']:.1f} s)")
        with atomic_path(resume_path) as tmp:
            trainer.write_checkpoint(str(tmp), config=config, epoch=epoch + 1,
                                     phonion_digest=digest, phonion_history=history)
    # the checkpoint's state dict is in this sevenn's layout: its version must say so, or
    # loading it would re-apply the old-layout patches of the base checkpoint
    config = {**config, "version": sevenn.__version__}
    with atomic_path(out_path) as tmp:
        trainer.write_checkpoint(str(tmp), config=config, epoch=s.epochs)
    return history


def finetune(frames: list[Atoms], s, model_out: str | os.PathLike,
             device: str = "cpu", log: Callable[[str], None] = print
             ) -> tuple[dict, dict[str, np.ndarray]]:
    """Fine-tune the campaign model (``s.backend``/``s.model``) on ``frames`` (DFT
    configurations with ``arrays['dft_forces']``, ``info['dft_energy']``, ``material``: the
    group, ``snapshot``; :func:`dft_frames`, :func:`relax_frames`) and write it to
    ``model_out``. Returns the stage result: held-out force errors of the base and the
    fine-tuned model, training history, data counts, and the new model's hash; ``status:
    skipped`` with the reason when the model cannot be fine-tuned or there are too few
    snapshots. Second: the held-out forces (eV/Å; ``dft``, ``base``,
    ``finetuned``, flattened) and the epoch curve, for the parity figure."""
    from .calculators import get_calculator, model_file

    why = tunable(s.backend, s.modal)
    if why:
        return {"status": "skipped", "reason": why}, {}
    if len(frames) < s.min_snapshots:
        return {"status": "skipped",
                "reason": f"{len(frames)} DFT snapshots, fewer than finetune.min_snapshots "
                          f"= {s.min_snapshots}: nothing to learn from (validate more "
                          "materials with dft.validate)"}, {}
    groups = sorted({f.info["material"] for f in frames})
    train, held = split(frames, s.validation_fraction, s.seed)
    if not held:
        return {"status": "skipped", "reason": "no material has two or more DFT snapshots: "
                "nothing can be held out to check the fine-tuned model"}, {}
    base = get_calculator(s.backend, s.model, device, s.dtype)
    base_path = model_file(s.backend, s.model)
    log(f"{len(train)} training and {len(held)} held-out snapshots of "
        f"{len(groups)} group(s); base model {s.model}")
    base_train_f, base_train_e = evaluate(base.calculator, train)
    base_held_f, base_held_e = evaluate(base.calculator, held)
    labels = energy_labels(train, base_train_e)
    model_out = Path(model_out)
    resume = model_out.with_name(model_out.name + ".resume")
    digest = data_digest(train, labels, s.to_json(), base.description.get("sha256", ""))
    t0 = time.process_time()
    if s.backend == "mace":  # MACE's own trainer, in a subprocess (phonion.finetune_mace)
        from .finetune_mace import train_mace

        c0 = os.times()
        held_labels = energy_labels(held, base_held_e)
        history = train_mace(base_path, train, labels, held, held_labels, s, model_out,
                             digest, device, log)
        c1 = os.times()
        t0 -= (c1.children_user + c1.children_system) - (c0.children_user
                                                          + c0.children_system)
    else:
        history = train_sevenn(base_path, train, labels, held, s, model_out, resume, digest,
                               device, log)
    cpu_s = time.process_time() - t0
    tuned = get_calculator(s.backend, str(model_out), device, s.dtype)
    tuned_train_f, _ = evaluate(tuned.calculator, train)
    tuned_held_f, _ = evaluate(tuned.calculator, held)
    resume.unlink(missing_ok=True)
    before, after = force_errors(held, base_held_f), force_errors(held, tuned_held_f)
    gain = 1 - after["rmse_meV_A"] / before["rmse_meV_A"]
    log(f"held-out force RMSE {before['rmse_meV_A']:.1f} -> {after['rmse_meV_A']:.1f} "
        f"meV/Å ({100 * gain:+.0f} %)")
    arrays = {"dft_eV_A": np.concatenate([f.arrays["dft_forces"].ravel() for f in held]),
              "base_eV_A": np.concatenate([x.ravel() for x in base_held_f]),
              "finetuned_eV_A": np.concatenate([x.ravel() for x in tuned_held_f]),
              "epoch": np.array([h["epoch"] for h in history], float),
              "held_out_rmse_meV_A": np.array([h["held_out_force_rmse_meV_A"]
                                               for h in history])}
    return {
        "base_model": base.description, "model_file": str(model_out),
        "model_sha256": tuned.description["sha256"],
        "materials": groups, "n_train": len(train), "n_held_out": len(held),
        "held_out": [[f.info["material"], int(f.info["snapshot"])] for f in held],
        "held_out_base": before, "held_out_finetuned": after,
        "train_base": force_errors(train, base_train_f),
        "train_finetuned": force_errors(train, tuned_train_f),
        "held_out_rmse_reduction": gain,
        "history": history, "cpu_seconds": cpu_s,
        "cpu_seconds_per_100_snapshot_epochs": 100 * cpu_s / max(1, len(train) * s.epochs),
        "training": json.loads(s.to_json()),
    }, arrays
