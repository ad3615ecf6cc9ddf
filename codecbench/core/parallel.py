"""Where parallel work runs: joblib's loky or threading backends, or a dask.distributed cluster.

One function, :func:`parallel_map`, serves every stage that fans out (encoding, featurising),
so the choice of backend is made in one place and the caller only sees results arriving.
"""
from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import sys
import warnings
from typing import Callable, Iterable, Iterator

from codecbench.core.vocabulary import PARALLEL_BACKENDS, ParallelBackend
from codecbench.errors import EnvironmentProblem, UsageError


class SchedulerError(EnvironmentProblem, ConnectionError):
    """A dask scheduler that cannot be reached; the message names its address."""


#: How long a dask scheduler may take to answer before the run is refused.
SCHEDULER_TIMEOUT_S = 10


def usable_cores() -> int:
    """The cores this process may run on: its CPU affinity (a container's or a job scheduler's share, `taskset`),
    else every core of the machine. The one core count every default, plan and benchmark uses."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):  # not on every platform
        return os.cpu_count() or 1


def resolve_jobs(jobs: int | None) -> int:
    """``None`` or ``-1`` means every core; more workers than cores are capped (with a warning: they would only
    compete for the cores and memory); anything below 1 is an error."""
    cores = usable_cores()
    if jobs is None or jobs == -1:
        return cores
    if jobs < 1:
        raise UsageError(f"--jobs: a positive number of workers or -1 for all cores, got {jobs}")
    if jobs > cores:
        warnings.warn(f"--jobs {jobs}: capped at {cores}, the cores of this machine", stacklevel=3)
        return cores
    return jobs


@contextlib.contextmanager
def dask_client(scheduler: str, jobs: int):
    """A dask client: ``"local"`` starts a LocalCluster of ``jobs`` single-threaded worker processes."""
    from dask.distributed import Client, LocalCluster

    if scheduler == "local":
        with LocalCluster(n_workers=jobs, threads_per_worker=1, processes=True, dashboard_address=None,
                          silence_logs=logging.WARNING) as cluster, \
                Client(cluster) as client:
            yield client
    else:
        try:
            client = Client(scheduler, timeout=f"{SCHEDULER_TIMEOUT_S}s")
        except (OSError, TimeoutError) as exc:
            raise SchedulerError(f"--scheduler {scheduler}: no dask scheduler answered within "
                                 f"{SCHEDULER_TIMEOUT_S} s ({type(exc).__name__}: {exc}); start one there "
                                 "(`dask scheduler`, then `dask worker ADDRESS`) or use --scheduler local") from None
        with client:
            yield client


def check_scheduler(scheduler: str | None) -> None:
    """Reach a remote scheduler once, before any work (``local`` and None need nothing)."""
    if scheduler and scheduler != "local":
        with dask_client(scheduler, 1):
            pass


def parallel_map(func: Callable, items: Iterable, *, jobs: int | None = None, backend: ParallelBackend = "loky",
                 scheduler: str | None = None) -> Iterator:
    """Yield ``func(item)`` for every item, in completion order.

    ``scheduler`` (``"local"`` or a ``tcp://host:port`` address) sends the work to a dask cluster
    through joblib's dask backend; otherwise ``backend`` picks a local joblib backend.
    """
    import joblib  # slow to import (it loads its backends): only where work is spread

    items = list(items)
    if not items:
        return
    n_jobs = min(resolve_jobs(jobs), len(items))   # never more workers than work
    if scheduler:
        with dask_client(scheduler, n_jobs) as client, joblib.parallel_config(backend="dask"):
            workers = max(1, len(client.scheduler_info().get("workers", {})))
            yield from joblib.Parallel(n_jobs=workers, return_as="generator_unordered")(
                joblib.delayed(func)(item) for item in items)
        return
    if backend not in PARALLEL_BACKENDS:
        raise UsageError(f"unknown backend {backend!r}; expected one of {', '.join(PARALLEL_BACKENDS)} or a dask "
                         "scheduler")
    if backend == "sequential" or n_jobs == 1 or len(items) == 1:
        yield from map(func, items)
        return
    yield from joblib.Parallel(n_jobs=n_jobs, backend=backend, return_as="generator_unordered")(
        joblib.delayed(func)(item) for item in items)
    if backend == "loky" and multiprocessing.parent_process() is not None:
        # inside a multiprocessing child, exit joins every child process, loky's idle workers too: they would keep
        # this process alive for loky's idle timeout (300 s) after its work is done
        stop_local_workers()


def stop_local_workers() -> None:
    """Stop the local worker processes (joblib's reusable loky pool); the next parallel map starts them afresh."""
    if "joblib" not in sys.modules:
        return  # joblib never loaded in this process: no pool of it can exist
    from joblib.externals.loky import get_reusable_executor

    get_reusable_executor().shutdown(wait=True)
