"""Settings of the DFT stages (config ``dft``, ``relax.engine``): DFT forces, DFT
relaxation, AIMD and the MLP-vs-DFT validation, on :class:`phonion.settings_base.Settings`
(see :mod:`phonion.settings`). The engines' own protocols are
:class:`phonion.dft.cp2k.Cp2kSettings` and :class:`phonion.dft.vasp.VaspSettings`."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import ClassVar

from .settings_base import CalculatorSettings, Settings
from .settings_base import config_field as _from


@dataclass(frozen=True)
class DftForcesSettings(Settings):
    """DFT static forces on the displaced supercells of a validated material (config
    ``dft``): the engine and that engine's protocol (``dft.cp2k`` or ``dft.vasp``, every
    key a field of :class:`phonion.dft.cp2k.Cp2kSettings` / :class:`phonion.dft.vasp.
    VaspSettings`). The run command is an execution detail (environment variable
    ``PHONION_DFT_COMMAND``) and the other engine's section is not read: editing either
    reruns nothing."""

    SECTION: ClassVar[str] = "dft"
    engine: str = "cp2k"
    cp2k: dict = _from("dft.cp2k", {})
    vasp: dict = _from("dft.vasp", {})

    def canonical(self) -> DftForcesSettings:
        mine = {k: v for k, v in getattr(self, self.engine).items()
                if k not in ("command", "gamma_command")}
        other = "vasp" if self.engine == "cp2k" else "cp2k"
        return dataclasses.replace(self, **{self.engine: mine, other: {}})


@dataclass(frozen=True)
class DftRelaxSettings(DftForcesSettings):
    """Relaxation by a DFT engine (config ``relax.engine: vasp | cp2k``): that engine's
    protocol (``dft.<engine>``: its relax keys, e.g. ``dft.cp2k.relax_cell`` or
    ``dft.vasp.relax_isif``) and the space-group check of ``relax``. A campaign with the
    MLP relaxation never reads these, so adding the engine key reran nothing."""

    SECTION: ClassVar[str] = "relax"
    engine: str = _from("relax.engine", "mlp")
    on_symmetry_change: str = "fail"
    symprec: float = 0.01

    def canonical(self) -> DftRelaxSettings:
        if self.engine not in ("vasp", "cp2k"):  # the MLP relaxes: no protocol is read
            return dataclasses.replace(self, cp2k={}, vasp={})
        return super().canonical()


@dataclass(frozen=True)
class AimdSettings(DftForcesSettings):
    """NVT AIMD of a material at one temperature (config ``dft``: the engine's protocol, and
    ``dft.aimd.steps``); the temperature is the job's wildcard, so adding one runs only
    the new temperature."""

    steps: int = _from("dft.aimd.steps", 20000)
    temperature_K: float = field(default=800.0, metadata={"wildcard": True})


@dataclass(frozen=True)
class DftValidationSettings(Settings):
    """MLP against DFT on the same displaced supercells (config ``phonons``, ``mobile_ion``):
    both force sets through the same symfc least-squares fit, then the stability verdict
    and the mobile-ion MSD of each on the same q-mesh."""

    SECTION: ClassVar[str] = "phonons"
    mobile_ion: str = _from("mobile_ion", "Na")
    temperatures_K: tuple[float, ...] = (300.0, 800.0)
    mesh_length_A: float = _from("phonons.stability_mesh_length_A", 30.0)
    tolerance_THz: float = _from("phonons.stability_tolerance_THz", 0.1)
    band_points: int = 51
    fc2_cutoff_A: float | None = None
    #: with phonons.fc3 the displacements were made for fc3 too: compare fc3 as well
    fc3: bool = False
    fc3_cutoff_A: float = 4.5

    def canonical(self) -> DftValidationSettings:
        return self if self.fc3 else dataclasses.replace(self, fc3_cutoff_A=4.5)


#: id suffix of a material screened again with the fine-tuned model (config finetune.rescreen)
FINETUNED_SUFFIX = "+finetuned"


def rescreened(mid: str) -> bool:
    """Whether material ``mid`` is one screened again with the fine-tuned model."""
    return str(mid).endswith(FINETUNED_SUFFIX)


@dataclass(frozen=True)
class FinetuneSettings(CalculatorSettings):
    """Fine-tuning the campaign model on the campaign's DFT forces (config ``finetune``;
    the base model is ``calculator``): the materials whose DFT snapshots train it (empty:
    every material of ``dft.validate``), the held-out share, and the optimiser (Adam)."""

    SECTION: ClassVar[str] = "finetune"
    materials: tuple[str, ...] = ()
    validation_fraction: float = 0.25
    epochs: int = 30
    learning_rate: float = 1e-3
    batch_size: int = 4
    seed: int = 0
    min_snapshots: int = 4
    #: frames of each AIMD run of a training material added as training data (0: none)
    aimd_frames: int = 20
    #: steps of each DFT relaxation (relax.engine vasp | cp2k) added as training data
    relax_frames: int = 10
