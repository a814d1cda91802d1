"""Every file phonion writes or reads, in one place.

- stage results: JSON, one per stage and material (:func:`write_result`, :func:`read_result`);
- structures: plain-data dicts inside results (:func:`atoms_to_dict`) and VASP POSCAR files
  (:func:`write_poscar`);
- force sets: ``forces.h5`` (:class:`ForceSet`, the same layout for MLP and DFT forces);
- force constants: phonopy's fc2 HDF5 and phono3py's fc3 HDF5 (:func:`write_fc2`, …);
- MD trajectories: ``trajectory.h5``, written incrementally with its own checkpoint
  (:class:`TrajectoryWriter`, :func:`read_trajectory`);
- arrays of a stage for its figures and the campaign: flat HDF5 (:func:`write_arrays`).

Writes are atomic (a temporary file renamed onto the target, so a killed job never
leaves a file that looks complete) and follow the process umask. Reads validate what
they return (readable, complete, finite) and raise :class:`~phonion.errors.DamagedFile`
naming the file otherwise. Only numpy, h5py and ASE are imported here: backend
environments read and write these files too.
"""

from ..errors import DamagedFile
from .files import (
    STATUSES,
    ForceSet,
    atomic_path,
    atoms_from_dict,
    atoms_to_dict,
    file_record,
    lock_tree,
    new_result,
    read_arrays,
    read_fc2,
    read_forceset,
    read_json,
    read_result,
    verify_record,
    write_arrays,
    write_fc2,
    write_fc3,
    write_forceset,
    write_json,
    write_poscar,
    write_result,
)
from .trajectory import (
    FORCES_DATASET,
    FRAME_DATASETS,
    TRAJECTORY_ATTRS,
    TrajectoryWriter,
    read_any_trajectory,
    read_frames_with_forces,
    read_trajectory,
    write_trajectory,
)

__all__ = [
    "DamagedFile", "FORCES_DATASET", "FRAME_DATASETS", "STATUSES", "TRAJECTORY_ATTRS",
    "ForceSet", "TrajectoryWriter",
    "atomic_path", "atoms_from_dict", "atoms_to_dict", "file_record", "lock_tree",
    "new_result", "read_any_trajectory", "read_arrays", "read_fc2", "read_forceset",
    "read_frames_with_forces", "read_json", "read_result", "read_trajectory",
    "verify_record", "write_arrays",
    "write_fc2", "write_fc3", "write_forceset", "write_json", "write_poscar",
    "write_result", "write_trajectory",
]
