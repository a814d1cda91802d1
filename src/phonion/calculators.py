"""MLP backends: one small adapter per backend, one registry line each.

Every adapter takes ``(model, device, dtype)`` and returns a :class:`Loaded`
(the ASE calculator, the set of supported elements or ``None`` when the model
does not say, and a description for provenance). Adapters import their
package lazily, so this module imports in any environment; a backend whose
package is missing raises :class:`~phonion.errors.ModelUnavailable` naming the
environment and the config key that points to another one.

No adapter downloads anything: names that resolve to a file on disk are
loaded, names that would need a download raise ``ModelUnavailable`` naming
``calculator.model`` (set it to a local file).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from ase.calculators.calculator import Calculator
from ase.data import chemical_symbols

from .errors import ModelUnavailable, UnsupportedElements
from .provenance import file_sha256


@dataclass
class Loaded:
    """A ready calculator and what is known about it."""

    calculator: Calculator
    supported_elements: set[str] | None
    description: dict


def _missing(backend: str, package: str) -> ModelUnavailable:
    return ModelUnavailable(
        f"backend '{backend}' needs the '{package}' package, which is not installed in "
        f"{sys.prefix}; install envs/{backend}.yaml or point environments.{backend} "
        "in config to an interpreter that has it"
    )


def _describe(backend: str, name: str, path: Path | None, device: str, dtype: str,
              package: str | None) -> dict:
    return {
        "backend": backend,
        "name": name,
        "file": str(path) if path else None,
        "sha256": file_sha256(path) if path and path.is_file() else None,
        "package_version": metadata.version(package) if package else None,
        "device": device,
        "dtype": dtype,
    }


def _local_file(model: str) -> Path | None:
    p = Path(model).expanduser()
    return p.resolve() if p.is_file() else None


def load_rigid_ion(model: str, device: str, dtype: str) -> Loaded:
    """Analytic rigid-ion test potential (:mod:`phonion.potentials`); ``model`` is ignored."""
    from .potentials import RigidIonPotential

    calc = RigidIonPotential()
    return Loaded(calc, calc.supported_elements(),
                  _describe("rigid_ion", "rigid_ion-dsf-v1", None, "cpu", "float64", None))


def load_mace(model: str, device: str, dtype: str) -> Loaded:
    """mace-torch: a local ``.model`` file, or a foundation name already in the MACE cache."""
    try:
        from mace.calculators import MACECalculator
    except ImportError:
        raise _missing("mace", "mace-torch") from None
    path = _local_file(model)
    if path is None:
        path = _mace_cached_foundation(model)
    calc = MACECalculator(model_paths=str(path), device=device, default_dtype=dtype)
    elements = {chemical_symbols[int(z)] for z in calc.z_table.zs}
    return Loaded(calc, elements, _describe("mace", model, path, device, dtype, "mace-torch"))


def _mace_cached_foundation(name: str) -> Path:
    """Path of a MACE foundation model in the MACE cache, never downloading it."""
    try:
        from mace.calculators.foundations_models import mace_mp_urls
    except ImportError:  # older mace-torch
        mace_mp_urls = {}
    url = mace_mp_urls.get(name)
    if url:
        cached = Path("~/.cache/mace").expanduser() / Path(url).name.split("?")[0]
        if cached.is_file():
            return cached
    raise ModelUnavailable(
        f"MACE model '{name}' is not a file on this machine and loading it would need a "
        "download; put the .model file on disk and set calculator.model to its path"
    )


def load_fairchem(model: str, device: str, dtype: str) -> Loaded:
    """fairchem-core 2.x (UMA, eSEN) or 1.x (EquiformerV2) from a local checkpoint file."""
    try:
        version = metadata.version("fairchem-core")
    except metadata.PackageNotFoundError:
        raise _missing("fairchem", "fairchem-core") from None
    path = _local_file(model)
    if path is None:
        raise ModelUnavailable(
            f"fairchem model '{model}' would need a download from Hugging Face; put the "
            "checkpoint (.pt) on disk and set calculator.model to its path"
        )
    if int(version.split(".")[0]) >= 2:
        from fairchem.core import FAIRChemCalculator, pretrained_mlip

        predictor = pretrained_mlip.load_predict_unit(str(path), device=device)
        calc = FAIRChemCalculator(predictor, task_name="omat")
    else:  # fairchem-core 1.x: EquiformerV2 fine-tuned on OMat24 + MPtrj (seed 000)
        from fairchem.core.common.relaxation.ase_utils import OCPCalculator

        calc = OCPCalculator(checkpoint_path=str(path), cpu=(device == "cpu"), seed=0)
    return Loaded(calc, None, _describe("fairchem", model, path, device, dtype, "fairchem-core"))


#: CHGNet checkpoints shipped inside the chgnet wheel.
CHGNET_SHIPPED = ("0.3.0", "0.2.0", "r2scan")


def load_chgnet(model: str, device: str, dtype: str) -> Loaded:
    """CHGNet: a shipped version name (0.3.0, 0.2.0, r2scan) or a local checkpoint."""
    try:
        from chgnet.model import CHGNet
        from chgnet.model.dynamics import CHGNetCalculator
    except ImportError:
        raise _missing("chgnet", "chgnet") from None
    path = _local_file(model)
    if path is not None:
        net = CHGNet.from_file(str(path))
    elif model in CHGNET_SHIPPED:
        net = CHGNet.load(model_name=model, use_device=device, verbose=False)
        import chgnet

        shipped = sorted((Path(chgnet.__file__).parent / "pretrained" / model).glob("*.pth.tar"))
        path = shipped[0] if shipped else None
    else:
        raise ModelUnavailable(
            f"CHGNet model '{model}' is neither shipped ({', '.join(CHGNET_SHIPPED)}) nor a "
            "file; set calculator.model to a local checkpoint path"
        )
    calc = CHGNetCalculator(model=net, use_device=device)
    elements = set(chemical_symbols[1:95])  # CHGNet embeds Z = 1..94
    return Loaded(calc, elements, _describe("chgnet", model, path, device, "float32", "chgnet"))


def model_cache_dir() -> Path | None:
    """Folder of built MLP models kept between processes: ``$PHONION_MODEL_CACHE``, by
    default ``$XDG_CACHE_HOME/phonion/models`` (``~/.cache/...``); ``off`` disables it."""
    value = os.environ.get("PHONION_MODEL_CACHE", "")
    if value.lower() in ("off", "none", "0"):
        return None
    if value:
        return Path(value).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "phonion/models"


def _sevenn_model(path: Path, sha256: str):
    """The SevenNet network of checkpoint ``path``, built once and kept pickled in
    :func:`model_cache_dir` under the checkpoint's hash and the sevenn and torch versions.

    Building the network from a checkpoint (e3nn's tensor-product set-up) takes ~1.9 s per
    process, unpickling the built one ~0.4 s, with identical forces; relax, forces, elastic
    and every MD job load the model, so a material saves ~1.5 s per job. A damaged or
    unreadable cache entry is rebuilt; a cache folder that cannot be written is skipped.
    Hand-written: sevenn has no cache of built models (and dropped TorchScript)."""
    import sevenn.util as sevenn_util
    import torch

    folder = model_cache_dir()
    key = f"sevenn-{sha256[:16]}-{metadata.version('sevenn')}-torch{torch.__version__}.pt"
    entry = folder / key if folder else None
    if entry is not None and entry.is_file():
        try:
            net = torch.load(entry, map_location="cpu", weights_only=False)
            if type(net).__name__ == "AtomGraphSequential":
                return net
        except Exception:  # noqa: BLE001 - any unreadable entry is rebuilt below
            pass
    net = sevenn_util.load_checkpoint(str(path)).build_model()
    if entry is not None:
        try:
            entry.parent.mkdir(parents=True, exist_ok=True)
            tmp = entry.with_suffix(f".{os.getpid()}.tmp")
            torch.save(net, tmp)
            os.replace(tmp, entry)  # atomic: a concurrent job reads the old or the new file
        except OSError:
            pass
    return net


def load_sevenn(model: str, device: str, dtype: str, modal: str = "") -> Loaded:
    """SevenNet: a pretrained name whose checkpoint is on disk (7net-0 ships) or a file.
    The built network comes from the model cache when it is there (:func:`_sevenn_model`)."""
    try:
        import sevenn.util as sevenn_util
        from sevenn.calculator import SevenNetCalculator
    except ImportError:
        raise _missing("sevenn", "sevenn") from None
    path = _local_file(model) or _sevenn_offline_path(sevenn_util, model)
    desc = _describe("sevenn", model, path, device, "float32", "sevenn")
    net = _sevenn_model(path, desc["sha256"])
    calc = SevenNetCalculator(model=net, file_type="model_instance", device=device,
                              modal=modal or None)
    elements = {chemical_symbols[int(z)] for z in calc.type_map}
    if modal:
        desc["modal"] = modal
    return Loaded(calc, elements, desc)


#: backend name → adapter. A new backend is one function plus one line here.
BACKENDS: dict[str, Callable[[str, str, str], Loaded]] = {
    "rigid_ion": load_rigid_ion,
    "mace": load_mace,
    "fairchem": load_fairchem,
    "chgnet": load_chgnet,
    "sevenn": load_sevenn,
}


def get_calculator(backend: str, model: str = "", device: str = "cpu",
                   dtype: str = "float64", modal: str = "") -> Loaded:
    """Load the calculator of ``backend`` (a key of :data:`BACKENDS`); ``modal`` picks the
    fidelity head of a multi-fidelity model (SevenNet-MF-0)."""
    try:
        adapter = BACKENDS[backend]
    except KeyError:
        raise ModelUnavailable(
            f"unknown calculator.backend '{backend}'; choose one of {', '.join(BACKENDS)}"
        ) from None
    if modal and backend != "sevenn":
        raise ModelUnavailable(f"calculator.modal is for SevenNet multi-fidelity models, not "
                               f"{backend}; leave it empty")
    return adapter(model, device, dtype, modal) if modal else adapter(model, device, dtype)


def model_file(backend: str, model: str = "") -> Path | None:
    """The file a model would be loaded from, without loading it; None for the analytic
    potential. Raises :class:`ModelUnavailable` (with the reason and the key to set) when
    it is not on this machine: the workflow runs this for the configured backend when it
    parses, so a missing model stops the campaign at once instead of in every job."""
    if backend not in BACKENDS:
        raise ModelUnavailable(
            f"unknown calculator.backend '{backend}'; choose one of {', '.join(BACKENDS)}")
    if backend == "rigid_ion":
        return None
    local = _local_file(model)
    if local is not None:
        return local
    if backend == "mace":
        try:
            import mace  # noqa: F401
        except ImportError:
            raise _missing("mace", "mace-torch") from None
        return _mace_cached_foundation(model)
    if backend == "chgnet" and model in CHGNET_SHIPPED:
        import importlib.util

        spec = importlib.util.find_spec("chgnet")
        if spec is None:
            raise _missing("chgnet", "chgnet")
        shipped = sorted((Path(spec.origin).parent / "pretrained" / model).glob("*.pth.tar"))
        if shipped:
            return shipped[0]
    if backend == "sevenn":
        try:
            import sevenn.util as sevenn_util
        except ImportError:
            raise _missing("sevenn", "sevenn") from None
        return _sevenn_offline_path(sevenn_util, model)
    raise ModelUnavailable(
        f"{backend} model '{model}' is not a file on this machine; set calculator.model to a "
        "local model file")


def _sevenn_offline_path(sevenn_util, model: str) -> Path:
    """Path of a SevenNet pretrained name, refusing any download."""
    def refuse(*_args, **_kwargs):
        raise ModelUnavailable(
            f"SevenNet model '{model}' is not on this machine and would need a download; "
            "set calculator.model to a local checkpoint path (7net-0 ships with sevenn)"
        )

    original = sevenn_util.download_checkpoint
    sevenn_util.download_checkpoint = refuse
    try:
        return Path(sevenn_util.pretrained_name_to_path(model))
    except ValueError:
        raise ModelUnavailable(
            f"'{model}' is not a SevenNet pretrained name nor a file; fix calculator.model"
        ) from None
    finally:
        sevenn_util.download_checkpoint = original


def check_elements(loaded: Loaded, symbols: list[str]) -> None:
    """Raise :class:`UnsupportedElements` when the model lacks any of ``symbols``."""
    if loaded.supported_elements is None:
        return
    missing = sorted(set(symbols) - loaded.supported_elements)
    if missing:
        d = loaded.description
        raise UnsupportedElements(
            f"elements {', '.join(missing)} not supported by {d['backend']} model '{d['name']}'"
        )
