"""``thalo cache info`` / ``thalo cache clear``: the local build and compile cache.

The cache (``$THALO_CACHE_DIR`` or ``~/.cache/thalo``) is capped at
``$THALO_CACHE_MAX_SIZE`` (default 2 GB), least recently used entries first.
"""

from __future__ import annotations

__all__ = ["cache"]

import click

from thalo.cli.output import print_json, show, text


def _mb(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


@click.group()
def cache() -> None:
    """The local cache of builds and compiled components (capped, least recently used out)."""


@cache.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def info(as_json: bool) -> None:
    """Where the cache is, what it holds and its cap ($THALO_CACHE_MAX_SIZE)."""
    from thalo.wasm.cachedir import info as cache_info

    found = cache_info()
    if as_json:
        print_json(found.to_dict())
        return
    show(text(f"cache {found.directory}"))
    show(
        f"  builds    {found.entries['builds']:>4} entries  {_mb(found.bytes['builds']):>10}\n"
        f"  compiled  {found.entries['wasm']:>4} entries  {_mb(found.bytes['wasm']):>10}\n"
        f"  total                 {_mb(found.total):>10} of {_mb(found.max_size)} "
        "(THALO_CACHE_MAX_SIZE)"
    )


@cache.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def clear(as_json: bool) -> None:
    """Delete every cached build and compiled component (they are rebuilt on demand)."""
    from thalo.wasm.cachedir import clear as cache_clear
    from thalo.wasm.cachedir import default_cache_dir

    freed = cache_clear()
    if as_json:
        print_json({"directory": str(default_cache_dir()), "freed_bytes": freed})
        return
    show(text(f"cleared {default_cache_dir()}: freed {_mb(freed)}"))
