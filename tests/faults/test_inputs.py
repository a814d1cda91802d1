"""Hostile inputs and configurations: each costs its material (or stops the parse with the
key named), never the campaign, and no case ends in a signal."""

from __future__ import annotations

import ctypes
import os
import time

import numpy as np
import pytest

from phonion.errors import StructureRejected
from phonion.runner import run_guarded

from conftest import BROKEN_CIF, DEMO, KCL_POSCAR, PARTIAL_CIF, RIGID, read_status, snakemake

pytestmark = pytest.mark.slow


def _poscar(lattice, species, counts, frac) -> str:
    lines = ["hostile", "1.0", *(" ".join(map(str, row)) for row in lattice),
             " ".join(species), " ".join(map(str, counts)), "Direct",
             *(" ".join(map(str, p)) for p in frac)]
    return "\n".join(lines) + "\n"


ROCKSALT = [[5.64, 0, 0], [0, 5.64, 0], [0, 0, 5.64]]

#: file name → (content, words of the expected reason). Every class the triage must survive.
HOSTILE = {
    "nan-coords.vasp": (_poscar(ROCKSALT, ["Na", "Cl"], [1, 1], [["nan", 0, 0], [0.5] * 3]),
                        "non-finite atomic coordinates"),
    "inf-coords.vasp": (_poscar(ROCKSALT, ["Na", "Cl"], [1, 1], [["inf", 0, 0], [0.5] * 3]),
                        "non-finite atomic coordinates"),
    "nan-lattice.vasp": (_poscar([["nan", 0, 0], [0, 5.6, 0], [0, 0, 5.6]], ["Na", "Cl"],
                                 [1, 1], [[0, 0, 0], [0.5] * 3]), "non-finite lattice"),
    "degenerate.vasp": (_poscar([[5.6, 0, 0], [5.6, 0, 0], [0, 0, 5.6]], ["Na", "Cl"], [1, 1],
                                [[0, 0, 0], [0.5] * 3]), "degenerate cell"),
    "isolated.vasp": (_poscar([[1e6, 0, 0], [0, 1e6, 0], [0, 0, 1e6]], ["Na", "Cl"], [1, 1],
                              [[0, 0, 0], [2.5e-6, 0, 0]]), "vacuum in the cell"),
    "huge.vasp": (_poscar([[100.0, 0, 0], [0, 100.0, 0], [0, 0, 100.0]], ["Na", "Cl"],
                          [2500, 2500],
                          np.random.default_rng(0).random((5000, 3)).round(6).tolist()),
                  "max_input_atoms"),
    "broken.cif": (BROKEN_CIF, "unreadable structure file"),
    "empty.cif": ("", "unreadable structure file"),
    "POSCAR-KCl": (KCL_POSCAR, "no mobile ion Na"),
    "NaKCl-disordered.cif": (PARTIAL_CIF, "partial occupancy"),
    "overlap.vasp": (_poscar(ROCKSALT, ["Na", "Cl"], [1, 1], [[0, 0, 0], [0.01, 0, 0]]),
                     "overlapping atoms"),
    "Na3PS4.cif": ((DEMO / "Na3PS4-cubic.cif").read_text(), "elements P not supported"),
    "bad name.cif": ((DEMO / "NaCl.cif").read_text(), "not a safe file name"),
}


def test_a_mixed_campaign_finishes_the_good_materials_and_gives_every_bad_one_its_reason(
        tmp_path):
    folder = tmp_path / "structures"
    folder.mkdir()
    for name, (text, _) in HOSTILE.items():
        (folder / name).write_text(text)
    (folder / "NaCl.cif").write_text((DEMO / "NaCl.cif").read_text())
    secret = tmp_path / "notes.txt"
    secret.write_text("password=hunter2\nnot a structure at all\n")
    (folder / "leak.cif").symlink_to(secret)  # a link to a text file
    (folder / "gone.cif").symlink_to(tmp_path / "nowhere.cif")  # a dangling link
    (folder / "NaCl-link.cif").symlink_to(folder / "NaCl.cif")  # a good link
    (folder / "dup.cif").write_text((DEMO / "NaF.cif").read_text())
    (folder / "dup.vasp").write_text(KCL_POSCAR)
    table = tmp_path / "extra.tsv"
    table.write_text("id\tpath\nmissing-row\tstructures/not-there.cif\n"
                     "NaF\tstructures/dup.cif\n")
    config = {**RIGID, "structures": {"folder": "structures", "table": "extra.tsv"},
              "phonons": {"min_atoms": 32, "temperatures_K": [800]}}
    proc = snakemake(tmp_path, "--cores", "2", config=config, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]  # no signal, no failed job
    status = read_status(tmp_path)
    for name, (_, words) in HOSTILE.items():
        mid = name.rsplit(".", 1)[0] if name.endswith((".cif", ".vasp")) else name
        assert status[mid]["status"] == "rejected", (mid, status[mid])
        assert words in status[mid]["reason"], (mid, status[mid]["reason"])
    assert status["leak"]["status"] == "rejected"
    assert "unreadable" in status["leak"]["reason"]
    assert "hunter2" not in (tmp_path / "results/campaign/status.tsv").read_text()
    assert "dangling symbolic link" in status["gone"]["reason"]
    assert "duplicate id" in status["dup"]["reason"]
    assert "does not exist" in status["missing-row"]["reason"]
    for good in ("NaCl", "NaCl-link"):
        assert status[good]["status"] == "ok", status[good]
        assert status[good]["stage"] == "arrhenius"
    assert status["NaF"]["stage"] != "intake"  # the table row went on (to its verdict)


@pytest.mark.parametrize("func, args, words", [
    (ctypes.string_at, (0,), r"crashed a native library \(signal 11\)"),  # a segfault
    (os.abort, (), r"crashed a native library \(signal 6\)"),
    (time.sleep, (30,), "took longer than 1 s"),
])
def test_a_crash_or_hang_inside_a_native_library_is_a_reason(func, args, words):
    with pytest.raises(StructureRejected, match=words):
        run_guarded(func, *args, timeout_s=1.0, what="the structure")
    assert run_guarded(divmod, 7, 2) == (3, 1)  # and a normal call returns its value
