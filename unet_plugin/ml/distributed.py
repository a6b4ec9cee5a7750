"""Several processes under ``torchrun``: who is who, and the few collective steps we need.

``torchrun`` starts one process per GPU (or per share of a CPU) and sets ``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK`` and the rendezvous address. :func:`init` joins them: NCCL on CUDA GPUs, gloo on
CPUs. Outside ``torchrun`` (QGIS, ``python -m unet_plugin``) nothing here does anything: every
helper is the identity for a single process, so the algorithms have one code path.

Every decision that must be the same everywhere (a learning rate found by a range test, a
precision chosen by a timing, "the time is up") is taken by rank 0 and broadcast with
:func:`agree`; counts are summed with :func:`total`. A process that fails exits non-zero and
``torchrun`` stops the others (their own clean-up removes what they had half-written).
"""

from __future__ import annotations

import datetime
import os

import numpy as np
import torch
import torch.distributed as dist

_STATE = {"device": torch.device("cpu")}


def launched() -> bool:
    """Whether this process was started by ``torchrun`` with more than one process."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if active() else 0


def world() -> int:
    return dist.get_world_size() if active() else 1


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0")) if active() else 0


def local_world() -> int:
    return int(os.environ.get("LOCAL_WORLD_SIZE", str(world()))) if active() else 1


def is_main() -> bool:
    return rank() == 0


def init(device: str = "auto", timeout_minutes: float = 30.0) -> str:
    """Join the ``torchrun`` job: NCCL when this process will use a CUDA GPU, else gloo.

    Returns the backend's name. Each process of a machine gets its own GPU (``LOCAL_RANK``) or
    its share of the CPU's cores.
    """
    if not launched() or active():
        return dist.get_backend() if active() else ""
    use_cuda = device in ("auto", "cuda") and torch.cuda.is_available()
    backend = "nccl" if use_cuda else "gloo"
    if use_cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        _STATE["device"] = torch.device("cuda", torch.cuda.current_device())
    dist.init_process_group(backend, timeout=datetime.timedelta(minutes=timeout_minutes))
    return backend


def shutdown(together: bool = False) -> None:
    """Leave the process group. ``together`` (the run succeeded everywhere): wait for every process
    first — one that tears its group down while rank 0 still writes the report can abort at exit
    ("terminate called without an active exception")."""
    if dist.is_available() and dist.is_initialized():
        if together and active():
            dist.barrier()
        dist.destroy_process_group()


def cpu_threads() -> int:
    """Threads for this process: the machine's cores shared among its processes."""
    return max(1, (os.cpu_count() or 1) // max(local_world(), 1))


def agree(value):
    """Rank 0's ``value`` on every process (any picklable object)."""
    if not active():
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0, device=_STATE["device"] if dist.get_backend() == "nccl" else None)
    return box[0]


def total(values, op: str = "sum") -> np.ndarray:
    """The element-wise sum (or ``op="min"``) of ``values`` (a number or array) over all processes."""
    arr = np.asarray(values)
    if not active():
        return arr
    kind = torch.int64 if np.issubdtype(arr.dtype, np.integer) or arr.dtype == bool else torch.float64
    t = torch.as_tensor(arr.astype(np.int64) if arr.dtype == bool else arr, dtype=kind).to(_STATE["device"])
    dist.all_reduce(t, op=dist.ReduceOp.MIN if op == "min" else dist.ReduceOp.SUM)
    return t.cpu().numpy().reshape(arr.shape)


def anyone(flag: bool) -> bool:
    """Whether ``flag`` is true on any process."""
    if not active():
        return bool(flag)
    return bool(total(np.int64(1 if flag else 0)) > 0)


def barrier() -> None:
    if active():
        dist.barrier()


def share(items: list, r: int | None = None, n: int | None = None) -> list:
    """This process's share of ``items``: every ``world()``-th, starting at its rank."""
    r = rank() if r is None else r
    n = world() if n is None else n
    return items[r::n]
