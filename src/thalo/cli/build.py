"""``thalo build`` (an aggregate project → a component) and ``thalo new`` (scaffold one).

Errors are ``BuildError`` or ``SchemaError``; ``thalo.cli.main`` prints them and exits 2.
"""

from __future__ import annotations

__all__ = [
    "NAME",
    "SCAFFOLD_SCHEMA",
    "build",
    "build_project",
    "class_name_of",
    "module_name_of",
    "new",
    "read_project",
    "refuse_existing",
    "scaffold",
    "write_files",
]

import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from thalo.errors import BuildError

if TYPE_CHECKING:
    from thalo.esdl import Schema
    from thalo.wasm.build import BuildResult, Project
    from thalo.wasm.build_js import JsProject


def read_project(path: Path) -> tuple[Project | JsProject, str, Schema]:
    """A project directory's config, ESDL text and parsed schema: a TypeScript/JavaScript
    project if it has a ``package.json`` (and no Python thalo config), else Python."""
    from thalo.esdl import parse
    from thalo.wasm.build import load_project
    from thalo.wasm.build_js import is_js_project, load_js_project

    project = load_js_project(path) if is_js_project(path) else load_project(path)
    try:
        text = project.schema.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BuildError(f"cannot read {project.schema}: {exc}") from exc
    return project, text, parse(text, str(project.schema))


def build_project(
    path: Path, output: Path | None = None, *, cache_root: Path | None = None
) -> BuildResult:
    """Generates the typed code from the project's ESDL and builds the component.

    A directory with a ``package.json`` (and no Python thalo config) is a
    TypeScript/JavaScript project, built with componentize-js; any other with
    componentize-py. Raises ``SchemaError`` for a bad schema and ``BuildError`` for
    everything else.
    """
    from thalo.esdl import generate_python, generate_typescript
    from thalo.wasm.build import build_component
    from thalo.wasm.build_js import JsProject, build_js_component

    if not path.is_dir():
        raise BuildError(f"{path} is not a directory: thalo build expects a project directory")
    project, _, schema = read_project(path)
    if isinstance(project, JsProject):
        return build_js_component(
            project,
            name=schema.name,
            version=schema.version,
            generated_source=generate_typescript(schema, source_name=project.schema.name),
            schema_text=schema.to_esdl(),
            output=output,
            cache_root=cache_root,
        )
    return build_component(
        project,
        name=schema.name,
        version=schema.version,
        generated_source=generate_python(schema),
        schema_text=schema.to_esdl(),
        output=output,
        cache_root=cache_root,
    )


@click.command()
@click.argument(
    "path", type=click.Path(file_okay=False, path_type=Path), default=".", required=False
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the component [default: PATH/dist/NAME-VERSION.wasm]",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def build(path: Path, output: Path | None, as_json: bool) -> None:
    """Build the aggregate project at PATH into a WebAssembly component."""
    result = build_project(path, output)
    if as_json:
        from thalo.cli.output import print_json

        print_json(
            {
                "path": str(result.path),
                "name": result.name,
                "version": result.version,
                "sha256": result.sha256,
                "cached": result.cached,
                "seconds": round(result.seconds, 3),
            }
        )
        return
    tool = "componentize-js" if _is_js(path) else "componentize-py"
    how = "from the build cache" if result.cached else f"with {tool}"
    click.echo(
        f"built {result.name} {result.version} → {result.path} "
        f"({result.path.stat().st_size / 2**20:.1f} MiB, {how}, {result.seconds:.1f} s)\n"
        f"sha256 {result.sha256}"
    )


def _is_js(path: Path) -> bool:
    from thalo.wasm.build_js import is_js_project

    return is_js_project(path)


NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")


def class_name_of(name: str) -> str:
    parts = re.split(r"[-_]+", name)
    return "".join(part[:1].upper() + part[1:] for part in parts if part)


def module_name_of(class_name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", class_name).lower()


def _refuse_python_names(name: str, class_name: str, module: str) -> None:
    """Raise ``BuildError`` when the project's module or class name cannot work in Python.

    ``thalo new class`` would write ``class.py`` (``import class`` is a syntax
    error) and ``thalo new json`` a ``json.py`` that shadows the standard
    library for the guest and its tests: neither project would test nor build.
    """
    import keyword

    for word in (module, class_name):
        if keyword.iskeyword(word):
            raise BuildError(
                f"{name!r} is not a usable aggregate name: {word!r} is a Python keyword, so "
                f"the module {module}.py or the class {class_name} could not be used; pick another"
            )
    for generated in (module, f"{module}_schema", f"test_{module}"):
        if generated in sys.stdlib_module_names:
            raise BuildError(
                f"{name!r} is not a usable aggregate name: the project's module {generated}.py "
                f"would shadow the standard library module {generated!r}; pick another"
            )


def scaffold(directory: Path, name: str, lang: str = "python") -> list[Path]:
    """Writes a working aggregate project named ``name`` into ``directory``.

    ``lang`` is ``python`` or ``typescript`` (the same ``Widget``-style aggregate, schema
    and tests in either). Raises ``BuildError`` if the name is not an identifier-like
    word, is a keyword or shadows a standard-library module, or the directory already
    holds files.
    """
    from thalo.esdl import generate_python, parse
    from thalo.wasm.build import RESERVED_MODULES

    if lang == "typescript":
        from thalo.cli.scaffold_typescript import scaffold_typescript

        return scaffold_typescript(directory, name)
    if not NAME.match(name):
        raise BuildError(
            f"{name!r} is not a usable aggregate name: use letters, digits, - or _ "
            "(for example bank-account or BankAccount)"
        )
    class_name = class_name_of(name)
    module = module_name_of(class_name)
    if module in RESERVED_MODULES or f"{module}_schema" in RESERVED_MODULES:
        raise BuildError(f"{name!r} clashes with a module every guest contains: pick another")
    _refuse_python_names(name, class_name, module)
    refuse_existing(directory)
    fields = {"Class": class_name, "module": module, "dist": module.replace("_", "-")}
    esdl = _ESDL.format(**fields)
    files = {
        "pyproject.toml": _PYPROJECT.format(**fields),
        f"{module}.esdl": esdl,
        f"{module}_schema.py": generate_python(parse(esdl, f"{module}.esdl")),
        f"{module}.py": _MODULE.format(**fields),
        f"test_{module}.py": _TEST.format(**fields),
        ".gitignore": _GITIGNORE,
    }
    return write_files(directory, files)


def refuse_existing(directory: Path) -> None:
    """Raises ``BuildError`` when ``directory`` already holds files."""
    if directory.exists() and any(directory.iterdir()):
        raise BuildError(f"{directory} already exists and is not empty")


def write_files(directory: Path, files: dict[str, str]) -> list[Path]:
    """Writes ``files`` (relative path -> text) under ``directory``; returns the paths."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for filename, content in files.items():
        target = directory / filename
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content, encoding="utf-8")
        written.append(target)
    return written


@click.command()
@click.argument("name")
@click.option(
    "-d",
    "--directory",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where to create the project [default: ./NAME]",
)
@click.option(
    "--lang",
    type=click.Choice(["python", "typescript"]),
    default="python",
    show_default=True,
    help="The language of the aggregate.",
)
def new(name: str, directory: Path | None, lang: str) -> None:
    """Scaffold a working aggregate project: ESDL, module, unit test, config."""
    target = directory or Path(name)
    written = scaffold(target, name, lang)
    click.echo(f"created {target}/ with {', '.join(p.name for p in written)}")
    if lang == "typescript":
        click.echo(f"next: cd {target} && npm install && npm test && thalo build")
    else:
        click.echo(f"next: cd {target} && python -m pytest -q && thalo build")


# The scaffold's schema, the same in every language (a format string: {Class}).
SCAFFOLD_SCHEMA = """\
version = "0.1.0"

aggregate {Class} {{
  increment(amount: Int) -> Incremented
}}

event Incremented {{
  amount: Int
  total: Long
  sequence: Long?
}}
"""

# What building, publishing and testing leave in the project: none of it is source.
_GITIGNORE = """\
# the default store of thalo publish / execute (sqlite:///.thalo/thalo.db)
.thalo/
# thalo build output
dist/
*.wasm
# Python and pytest
__pycache__/
*.pyc
.pytest_cache/
.venv/
"""

_ESDL = (
    """\
// {Class}: edit the schema, run `thalo codegen {module}.esdl -o {module}_schema.py`,
// implement the new methods in {module}.py, then `thalo build`.
"""
    + SCAFFOLD_SCHEMA
)

_PYPROJECT = """\
[project]
name = "{dist}"
version = "0.1.0"
requires-python = ">=3.11"
dependencies = ["thalo"]

[tool.thalo]
aggregate = "{module}:{Class}"
schema = "{module}.esdl"
generated = "{module}_schema"

[tool.pytest.ini_options]
pythonpath = ["."]
"""

_MODULE = '''\
"""The {Class} aggregate: decide commands in handle_*, change state in apply_*."""

from __future__ import annotations

from {module}_schema import {Class}Base, Incremented

from thalo.sdk import Context, Rejected


class {Class}({Class}Base):
    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.total = 0
        # Position of the last command applied: redeliveries at or before it are ignored.
        self.sequence: int | None = None

    def handle_increment(self, ctx: Context, amount: int) -> Incremented:
        ctx.ignore_if_processed(self.sequence)
        if amount <= 0:
            raise Rejected(f"amount must be positive, got {{amount}}")
        return Incremented(amount=amount, total=self.total + amount, sequence=ctx.position)

    def apply_incremented(self, event: Incremented) -> None:
        self.total = event.total
        if event.sequence is not None:
            self.sequence = event.sequence
'''

_TEST = '''\
"""Unit tests of {Class}, natively: no wasm needed."""

from __future__ import annotations

from {module} import {Class}
from {module}_schema import Incremented

from thalo.sdk.testing import AggregateTest


def test_increment_adds_to_the_total() -> None:
    test = AggregateTest({Class}).given(Incremented(amount=1, total=1))
    test.when("increment", {{"amount": 2}}).then(Incremented(amount=2, total=3))
    assert test.state.total == 3


def test_non_positive_amounts_are_rejected() -> None:
    AggregateTest({Class}).when("increment", {{"amount": 0}}).then_rejected("positive")


def test_a_redelivered_command_is_ignored() -> None:
    test = AggregateTest({Class})
    test.when("increment", {{"amount": 1}}, position=7).then(
        Incremented(amount=1, total=1, sequence=7)
    )
    test.when("increment", {{"amount": 1}}, position=7).then_ignored()


def test_snapshot_round_trip() -> None:
    test = AggregateTest({Class}).given(Incremented(amount=5, total=5, sequence=3))
    restored = test.restored()
    assert (restored.total, restored.sequence) == (5, 3)
'''
