"""Dask distributed clients: a scheduler's address, or a LocalCluster of worker processes here.

A script that starts a LocalCluster needs the ``if __name__ == "__main__":`` guard: worker
processes are spawned and re-import the main module.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from distributed import Client, LocalCluster


@contextmanager
def dask_client(scheduler: str | None = None, *, workers: int = 2, threads: int = 1,
                memory_limit: str | None = "auto") -> Iterator[Client]:
    """Yield a client of the scheduler at ``scheduler`` or of a new local cluster (closed after).

    The local cluster runs ``workers`` processes of ``threads`` threads each, without the
    dashboard (no port is opened besides the scheduler's, on localhost).
    """
    if scheduler:
        with Client(scheduler) as client:
            yield client
        return
    with LocalCluster(n_workers=workers, threads_per_worker=threads, processes=True, dashboard_address=None,
                      host="127.0.0.1", memory_limit=memory_limit) as cluster, Client(cluster) as client:
        yield client


def worker_peak_rss(client: Client) -> dict[str, int]:
    """Return each worker's peak resident memory in bytes since its process started."""
    def peak() -> int:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: kilobytes

    return client.run(peak)
