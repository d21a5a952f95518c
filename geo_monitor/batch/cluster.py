"""Dask distributed clients: a scheduler's address, or a LocalCluster of worker processes here.

A script that starts a LocalCluster needs the ``if __name__ == "__main__":`` guard: worker
processes are spawned and re-import the main module.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager

from distributed import Client, LocalCluster

from geo_monitor.errors import ConfigurationError


@contextmanager
def dask_client(scheduler: str | None = None, *, workers: int = 2, threads: int = 1,
                memory_limit: str | None = "auto") -> Iterator[Client]:
    """Yield a client of the scheduler at ``scheduler`` or of a new local cluster (closed after).

    The local cluster runs ``workers`` processes of ``threads`` threads each, without the
    dashboard, listening on 127.0.0.1 only. An unreachable scheduler is a ConfigurationError.
    """
    if scheduler:
        try:
            client = Client(scheduler, timeout="10s")
        except OSError as exc:
            raise ConfigurationError(
                f"cannot reach the Dask scheduler at {scheduler} ({exc}); start one with `dask scheduler` "
                "and its workers with `dask worker ADDRESS`, or leave --scheduler out for a local cluster"
            ) from None
        with client:
            yield client
        return
    with warnings.catch_warnings():  # its health route moves off a busy port 8787: nothing to report
        warnings.filterwarnings("ignore", message="Port 8787 is already in use")
        cluster = LocalCluster(n_workers=workers, threads_per_worker=threads, processes=True,
                               dashboard_address=None, host="127.0.0.1", memory_limit=memory_limit)
    with cluster, Client(cluster) as client:
        yield client


def worker_peak_rss(client: Client) -> dict[str, int]:
    """Return each worker's peak resident memory in bytes since its process started."""
    def peak() -> int:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: kilobytes

    return client.run(peak)
