"""The loader refuses what is not a thalo aggregate component, precisely; the compile cache."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from wasmtime import wat2wasm

from thalo.errors import BuildError, InvalidModule
from thalo.esdl import generate_python, parse
from thalo.wasm import CompileCache, load_module
from thalo.wasm.build import build_component, find_wit_dir, load_project
from thalo.wasm.cache import default_cache_dir
from thalo.wasm.instance import AGGREGATE, CONTRACT_VERSION

GUESTS = Path(__file__).resolve().parent / "guests"

pytestmark = pytest.mark.wasm

OTHER_WORLD = """
(component
  (core module $m (func (export "run") (result i32) i32.const 0))
  (core instance $i (instantiate $m))
  (func $run (result u32) (canon lift (core func $i "run")))
  (export "run" (func $run))
)
"""

SOCKET_IMPORT = """
(component
  (import "wasi:sockets/tcp@0.2.0" (instance))
  (import "thalo:aggregate/host@0.2.0" (instance))
)
"""

# A component of the 0.1.0 contract as far as the loader looks: its names.
OLD_CONTRACT = """
(component
  (import "thalo:aggregate/host@0.1.0" (instance))
  (core module $m (func (export "run") (result i32) i32.const 0))
  (core instance $i (instantiate $m))
  (func $run (result u32) (canon lift (core func $i "run")))
  (instance $a (export "schema" (func $run)))
  (export "thalo:aggregate/aggregate@0.1.0" (instance $a))
)
"""


def refused(wasm: bytes, cache: CompileCache) -> str:
    with pytest.raises(InvalidModule) as caught:
        load_module(wasm, cache=cache)
    assert caught.value.exit_code == 2
    return caught.value.message


@pytest.fixture
def cache(tmp_path: Path) -> CompileCache:
    return CompileCache(tmp_path)


def test_not_bytes_empty_or_not_wasm(cache: CompileCache) -> None:
    assert "not WebAssembly: 0 bytes" in refused(b"", cache)
    assert "without the \\0asm magic" in refused(b"GIF89a......", cache)
    with pytest.raises(InvalidModule, match="expected the bytes of a component, got str"):
        load_module("(component)", cache=cache)  # type: ignore[arg-type]


def test_core_module_instead_of_component(cache: CompileCache) -> None:
    message = refused(wat2wasm("(module)"), cache)
    assert "a core WebAssembly module, not a component" in message


def test_truncated_component(guests: dict[str, object], cache: CompileCache) -> None:
    wasm: bytes = guests["tally"].wasm  # type: ignore[attr-defined]
    assert "not a valid component" in refused(wasm[: len(wasm) // 3], cache)


def test_component_of_another_world(cache: CompileCache) -> None:
    message = refused(wat2wasm(OTHER_WORLD), cache)
    assert f"does not export {AGGREGATE}" in message
    assert "another WIT world" in message


def test_the_host_speaks_the_contract_in_wit() -> None:
    text = (find_wit_dir() / "aggregate.wit").read_text()
    assert f"package thalo:aggregate@{CONTRACT_VERSION};" in text
    assert AGGREGATE.endswith(f"@{CONTRACT_VERSION}")


def test_a_component_of_an_older_contract_must_be_rebuilt(cache: CompileCache) -> None:
    message = refused(wat2wasm(OLD_CONTRACT), cache)
    assert message.startswith(
        "the component was built against an older contract (thalo:aggregate@0.1.0) than "
        "this thalo's (thalo:aggregate@0.2.0): it must be rebuilt with this thalo"
    )
    assert "thalo build" in message
    assert "as a new version" in message


def test_a_component_of_a_newer_contract_is_refused(cache: CompileCache) -> None:
    newer = OLD_CONTRACT.replace("@0.1.0", "@0.10.0")
    message = refused(wat2wasm(newer), cache)
    assert "built against thalo:aggregate@0.10.0, but this thalo speaks" in message
    assert "older" not in message


def test_component_importing_what_the_sandbox_does_not_provide(cache: CompileCache) -> None:
    message = refused(wat2wasm(SOCKET_IMPORT), cache)
    assert "imports wasi:sockets/tcp@0.2.0, which the thalo sandbox does not provide" in message
    assert "componentize-py --stub-wasi" in message
    other = SOCKET_IMPORT.replace("wasi:sockets/tcp@0.2.0", "acme:net/socket")
    message = refused(wat2wasm(other), cache)
    assert "imports acme:net/socket, which" in message and "stub-wasi" not in message


def test_second_load_comes_from_the_cache(guests: dict[str, object]) -> None:
    wasm: bytes = guests["tally"].wasm  # type: ignore[attr-defined]
    shared = CompileCache()  # the session's warm cache (the build loaded it once)
    first = load_module(wasm, cache=shared)
    assert first.from_cache
    artifact = shared.path(first.digest)
    assert artifact.is_file() and artifact.parent == default_cache_dir() / "wasm"
    assert not [p for p in artifact.parent.iterdir() if p.name.startswith(".tmp-")]


def test_a_corrupt_cache_entry_is_rebuilt(guests: dict[str, object], tmp_path: Path) -> None:
    wasm: bytes = guests["tally"].wasm  # type: ignore[attr-defined]
    cache = CompileCache(tmp_path)
    digest = load_module(wasm, cache=CompileCache()).digest
    cache.directory.mkdir(parents=True)
    cache.path(digest).write_bytes(b"garbage")
    module = load_module(wasm, cache=cache)
    assert not module.from_cache
    assert module.entity("c").handle({"streamName": "s"}, "reset") == []
    assert load_module(wasm, cache=cache).from_cache


def test_another_process_loads_from_the_cache_in_milliseconds(
    guests: dict[str, object],
) -> None:
    path: Path = guests["tally"].path  # type: ignore[attr-defined]
    load_module(path.read_bytes())  # make sure the shared cache holds it
    code = (
        "import sys, time; from pathlib import Path; from thalo.wasm import load_module;"
        "data = Path(sys.argv[1]).read_bytes(); t = time.perf_counter();"
        "m = load_module(data); print(m.from_cache, time.perf_counter() - t)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(path)],
        capture_output=True,
        text=True,
        check=True,
        env=os.environ.copy(),
    )
    from_cache, seconds = out.stdout.split()
    assert from_cache == "True"
    assert float(seconds) < 2.0  # a compile takes ~6–10 s; the figure itself is in the bench


def build_tally_against(tmp_path: Path, wit_text: str) -> None:
    """Builds the tally guest against ``wit_text`` instead of thalo's contract."""
    wit = tmp_path / "wit"
    wit.mkdir()
    (wit / "aggregate.wit").write_text(wit_text)
    project = load_project(GUESTS / "tally")
    schema = parse(project.schema.read_text(), "tally.esdl")
    build_component(
        project,
        name=schema.name,
        version=schema.version,
        generated_source=generate_python(schema),
        schema_text=schema.to_esdl(),
        output=tmp_path / "altered.wasm",
        wit=wit,
    )


@pytest.mark.slow  # one componentize-py build on the first run, cached afterwards
def test_a_component_built_against_an_altered_contract_is_refused(tmp_path: Path) -> None:
    text = (find_wit_dir() / "aggregate.wit").read_text()
    altered = text.replace(
        "handle: func(ctx: string, command: string)",
        "handle: func(ctx: string, command: string, extra: string)",
    )
    assert altered != text
    message = r"entity\.handle takes \(borrow, string, string, string\), but the contract says"
    with pytest.raises(BuildError, match=message):
        build_tally_against(tmp_path, altered)
    assert not (tmp_path / "altered.wasm").exists()


@pytest.mark.slow  # one componentize-py build on the first run, cached afterwards
def test_a_component_built_against_the_0_1_contract_must_be_rebuilt(tmp_path: Path) -> None:
    text = (find_wit_dir() / "aggregate.wit").read_text()
    start = text.index("    /// Decides a command and applies")
    end = text.index("execute: func", start)
    end = text.index("\n", end) + 1
    old = (text[:start] + text[end:]).replace("@0.2.0;", "@0.1.0;")
    assert "execute" not in old and "package thalo:aggregate@0.1.0;" in old
    message = (
        r"would be refused: the component was built against an older contract "
        r"\(thalo:aggregate@0\.1\.0\) than this thalo's \(thalo:aggregate@0\.2\.0\): "
        r"it must be rebuilt with this thalo"
    )
    with pytest.raises(BuildError, match=message):
        build_tally_against(tmp_path, old)
