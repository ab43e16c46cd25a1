"""Loading an aggregate component: validate it, compile it (cached), pool its instances.

:func:`load_module` checks that the bytes are a component exporting thalo's
``aggregate`` interface and importing nothing the sandbox does not provide, and
reads its embedded ESDL. A :class:`WasmModule` hands out :class:`Entity` handles
placed on a bounded pool of instances.
"""

from __future__ import annotations

__all__ = ["PROVIDED_IMPORTS", "WasmModule", "load_module"]

import hashlib
import logging
import re
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from wasmtime import WasmtimeError
from wasmtime.component import (
    BorrowType,
    Component,
    Linker,
    OwnType,
    ResourceAny,
    ResultType,
    String,
    Variant,
)

from thalo.errors import GuestError, InvalidModule
from thalo.wasm._errors import EntityLost
from thalo.wasm.cache import CompileCache
from thalo.wasm.engine import Limits, engine
from thalo.wasm.entity import Entity, answer_error
from thalo.wasm.instance import AGGREGATE, CONTRACT_VERSION, Instance, guest_log

if TYPE_CHECKING:
    from wasmtime import Engine
    from wasmtime.component import ExportIndex

HOST = f"thalo:aggregate/host@{CONTRACT_VERSION}"
TYPES = f"thalo:aggregate/types@{CONTRACT_VERSION}"
PROVIDED_IMPORTS = (HOST, TYPES)
_EXPORTS = (
    "[constructor]entity",
    "[static]entity.restore",
    "[method]entity.apply",
    "[method]entity.handle",
    "[method]entity.execute",
    "[method]entity.snapshot",
    "schema",
)
_CORE_HEADER = b"\0asm\x01\0\0\0"
_COMPONENT_PREFIX = b"\0asm"
_AGGREGATE_NAME = re.compile(r"^\s*aggregate\s+([A-Za-z_][A-Za-z0-9_]*)", re.MULTILINE)
_CONTRACT_NAME = re.compile(r"^thalo:aggregate/[a-z0-9-]+@([0-9A-Za-z.+-]+)$")

LostCallback = Callable[[list[str], GuestError], None]
log = logging.getLogger("thalo.wasm")
# A call that grows its instance by more than 1/HOG_SHARE of ``Limits.recycle_at``
# marks its entity as the memory hog when the instance is retired.
HOG_SHARE = 4


def load_module(
    wasm: bytes,
    *,
    limits: Limits | None = None,
    max_instances: int = 2,
    cache: CompileCache | None = None,
    on_instance_lost: LostCallback | None = None,
    sha256: str | None = None,
) -> WasmModule:
    """Validates, compiles (or loads from the compile cache) and instantiates ``wasm``.

    Raises ``InvalidModule`` naming what is wrong: not WebAssembly, a core module,
    a corrupt or truncated component, a component built against another version of
    the contract, a component of another world, or an import the sandbox does not
    provide. A trap while starting raises a ``GuestError``.
    ``sha256`` (hex) spares hashing the bytes when the caller already knows their
    digest (the registry does): hashing 18 MB costs ~10 ms. It names the compile
    cache entry, so it must be the true digest of ``wasm``: a wrong one could load
    another component's compiled artifact.
    """
    started = time.perf_counter()
    _check_header(wasm)
    digest = sha256 or hashlib.sha256(wasm).hexdigest()
    shared = engine()
    try:
        component, cached = (cache or CompileCache()).load(shared, wasm, digest)
    except WasmtimeError as exc:
        raise InvalidModule(f"not a valid component: {_first_line(exc)}") from exc
    _check_contract_version(component, shared)
    _check_imports(component, shared)
    indexes = _check_exports(component)
    module = WasmModule(
        component,
        digest=digest,
        indexes=indexes,
        limits=limits or Limits(),
        max_instances=max_instances,
        on_instance_lost=on_instance_lost,
    )
    module.from_cache = cached
    first = module._spawn()
    _check_signatures(first)
    schema = first.invoke(first.schema_func, None)
    if not isinstance(schema, str):
        raise InvalidModule("the schema export did not return text")
    module.schema = schema
    found = _AGGREGATE_NAME.search(schema)
    module.name = found.group(1) if found else "?"
    module.load_seconds = time.perf_counter() - started
    return module


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _check_header(wasm: bytes) -> None:
    if not isinstance(wasm, (bytes, bytearray)):
        raise InvalidModule(f"expected the bytes of a component, got {type(wasm).__name__}")
    if len(wasm) < 8 or not wasm.startswith(_COMPONENT_PREFIX):
        raise InvalidModule(f"not WebAssembly: {len(wasm)} bytes without the \\0asm magic number")
    if wasm.startswith(_CORE_HEADER):
        raise InvalidModule(
            "a core WebAssembly module, not a component: build the aggregate with "
            "`thalo build` (componentize-py) so it implements thalo's WIT world"
        )


def _version_key(version: str) -> tuple[int, ...]:
    """``"0.10.1"`` -> ``(0, 10, 1)``, to tell an older contract from a newer one."""
    core = version.split("-")[0].split("+")[0]
    return tuple(int(part) if part.isdigit() else -1 for part in core.split("."))


def _check_contract_version(component: Component, shared: Engine) -> None:
    """Refuses a component built against another version of ``thalo:aggregate``, by name.

    Runs before the import check, which would otherwise only say that the old
    ``host`` interface is not provided.
    """
    names = [*component.type.exports(shared), *component.type.imports(shared)]
    found = {m.group(1) for m in map(_CONTRACT_NAME.match, names) if m}
    others = sorted(found - {CONTRACT_VERSION}, key=_version_key)
    if not others:
        return
    built = ", ".join(f"thalo:aggregate@{v}" for v in others)
    if all(_version_key(v) < _version_key(CONTRACT_VERSION) for v in others):
        raise InvalidModule(
            f"the component was built against an older contract ({built}) than this "
            f"thalo's (thalo:aggregate@{CONTRACT_VERSION}): it must be rebuilt with this "
            "thalo (`thalo build`, or `thalo publish` of the project; a registry that "
            "already holds this version needs the rebuild published as a new version)"
        )
    raise InvalidModule(
        f"the component was built against {built}, but this thalo speaks "
        f"thalo:aggregate@{CONTRACT_VERSION}: run it with the thalo it was built with, "
        "or rebuild it with this one (`thalo build`)"
    )


def _check_exports(component: Component) -> dict[str, ExportIndex]:
    interface = component.get_export_index(AGGREGATE)
    if interface is None:
        raise InvalidModule(
            f"the component does not export {AGGREGATE}: it was built for another WIT "
            "world (thalo aggregates target world thalo:aggregate/aggregate-module)"
        )
    indexes: dict[str, ExportIndex] = {}
    missing = []
    for name in _EXPORTS:
        index = component.get_export_index(name, interface)
        if index is None:
            missing.append(name)
        else:
            indexes[name] = index
    if missing:
        raise InvalidModule(f"{AGGREGATE} lacks {', '.join(missing)}: wrong contract version?")
    return indexes


def _check_imports(component: Component, shared: Engine) -> None:
    """Refuses every import but the host's log: no WASI, so no files, network, env, clock."""
    refused = [n for n in component.type.imports(shared) if n not in PROVIDED_IMPORTS]
    if not refused:
        return
    hint = ""
    if any(n.startswith("wasi:") for n in refused):
        hint = (
            "; build Python guests with `thalo build` (componentize-py --stub-wasi), "
            "other languages with their WASI imports disabled"
        )
    raise InvalidModule(
        f"the component imports {', '.join(refused)}, which the thalo sandbox does not "
        f"provide: guests get only {HOST} (no files, network, environment, stdin or "
        f"clock){hint}"
    )


# Parameter kinds per export ("b": borrow<entity>, "s": string) and the result kind.
_SIGNATURES = {
    "[constructor]entity": ("s", OwnType),
    "[static]entity.restore": ("ss", ResultType),
    "[method]entity.apply": ("bs", ResultType),
    "[method]entity.handle": ("bss", ResultType),
    "[method]entity.execute": ("bss", ResultType),
    "[method]entity.snapshot": ("b", ResultType),
    "schema": ("", String),
}


_WIT_NAMES = {BorrowType: "borrow", OwnType: "own", ResultType: "result", String: "string"}


def _wit(kind: object) -> str:
    return _WIT_NAMES.get(type(kind), type(kind).__name__)


def _check_signatures(instance: Instance) -> None:
    """The exports have the contract's shapes: the fast call path relies on them."""
    kinds = {"b": BorrowType, "s": String}
    for name, (params, result) in _SIGNATURES.items():
        ty = instance.funcs[name].type(instance.store)
        found = [kind for _, kind in ty.params]
        expected = [kinds[letter] for letter in params]
        if len(found) != len(expected) or not all(
            isinstance(kind, cls) for kind, cls in zip(found, expected, strict=True)
        ):
            shown = ", ".join(_wit(kind) for kind in found)
            wanted = ", ".join(_WIT_NAMES[cls] for cls in expected)
            raise InvalidModule(
                f"{AGGREGATE}#{name} takes ({shown}), but the contract says ({wanted}): "
                "the component was built against another version of the contract"
            )
        if not isinstance(ty.result, result):
            raise InvalidModule(
                f"{AGGREGATE}#{name} returns {_wit(ty.result)}, "
                f"but the contract says {_WIT_NAMES[result]}"
            )


class WasmModule:
    """A loaded aggregate component and its pool of instances.

    Entities go to the least-loaded idle instance; a new instance starts only when
    every existing one is busy on another thread, up to ``max_instances``. When an
    instance traps it is discarded (a fresh one replaces it on demand) and
    ``on_instance_lost(entity_ids, error)`` names the entities the caller must rebuild.
    """

    schema: str
    name: str
    from_cache: bool
    load_seconds: float

    def __init__(
        self,
        component: Component,
        *,
        digest: str,
        indexes: dict[str, ExportIndex],
        limits: Limits,
        max_instances: int,
        on_instance_lost: LostCallback | None,
    ) -> None:
        if max_instances < 1:
            raise ValueError("max_instances must be at least 1")
        self.engine = engine()
        self.component = component
        self.digest = digest
        self.export_indexes = indexes
        self.limits = limits
        self.max_instances = max_instances
        self.on_instance_lost = on_instance_lost
        self.instances_started = 0
        self.instances_retired = 0
        self.name = "?"
        self._pool: list[Instance] = []
        self._retired: list[Instance] = []  # out of the pool for their memory, still serving
        self._pool_lock = threading.Lock()
        # Entities whose call ran out of memory on an instance shared with others:
        # their next incarnation gets an instance of its own (see _give_own_instance).
        self._own_instance: set[str] = set()
        self._closed = False
        self.linker = Linker(self.engine)
        with self.linker.root() as root, root.add_instance(HOST) as host:
            host.add_func("log", guest_log)

    @property
    def instances(self) -> int:
        """How many live instances the pool holds now."""
        return len(self._pool)

    def _spawn(self) -> Instance:
        instance = Instance(self)
        self.instances_started += 1
        self._pool.append(instance)
        return instance

    def _place(self) -> Instance:
        with self._pool_lock:
            if self._closed:
                raise InvalidModule(f"module {self.name} is closed")
            idle = [i for i in self._pool if i.alive and not i.lock.locked()]
            if idle:
                return min(idle, key=lambda i: i.entity_count)
            if len(self._pool) < self.max_instances:
                return self._spawn()
            return min(self._pool, key=lambda i: i.entity_count)

    def _give_own_instance(self, entity_id: str) -> None:
        """Places ``entity_id``'s next incarnation on an instance holding no other entity.

        Called when its call ran out of memory on a shared instance: the memory may
        be a neighbour's, so the caller retries once where only its own counts.
        """
        with self._pool_lock:
            self._own_instance.add(entity_id)

    def _place_alone(self) -> Instance:
        """An instance with no entities: an idle empty one, or a new one (even past
        ``max_instances``, as the instance that ran out of memory just left the pool)."""
        with self._pool_lock:
            if self._closed:
                raise InvalidModule(f"module {self.name} is closed")
            for instance in self._pool:
                if instance.alive and instance.entity_count == 0 and not instance.lock.locked():
                    return instance
            return self._spawn()

    def _outgrown(self, instance: Instance, entity_id: str | None, grown: int) -> None:
        """``instance`` touched more memory than ``Limits.recycle_at``: it is retired.

        It takes no new entities and closes (freeing its memory) once its entities
        are dropped. If ``entity_id``'s call grew it by a large share itself (more
        than 1/``HOG_SHARE`` of the threshold), it keeps only that entity: the others
        are lost from their next call on and rebuilt on fresh instances, where the
        hog's memory cannot fail them. Never raises: the call that grew it succeeded.
        """
        recycle_at = self.limits.recycle_at
        hog = entity_id if grown * HOG_SHARE > recycle_at else None
        with self._pool_lock:
            if instance in self._pool:
                self._pool.remove(instance)
            self._retired = [i for i in self._retired if i.alive]
            self._retired.append(instance)
        moved = instance.retire(hog)
        self.instances_retired += 1
        log.info(
            "%s: instance retired at %d MiB touched (over %d MiB)%s",
            self.name,
            instance.touched >> 20,
            recycle_at >> 20,
            f"; it keeps {hog!r}, whose call took {grown >> 20} MiB, and {moved} other "
            "entities move to fresh instances"
            if hog is not None
            else "",
        )

    def _instance_died(self, instance: Instance, error: GuestError) -> None:
        with self._pool_lock:
            if instance in self._pool:
                self._pool.remove(instance)
        lost = instance.entity_ids()
        if self.on_instance_lost is not None and lost:
            self.on_instance_lost(lost, error)

    def _create(self, id: str, make: Callable[[Instance], Any]) -> tuple[Instance, Any]:
        for _ in range(3):
            if id in self._own_instance:
                self._own_instance.discard(id)
                instance = self._place_alone()
            else:
                instance = self._place()
            try:
                return instance, make(instance)
            except EntityLost:
                continue  # another thread's call killed it after placement: place again
        raise EntityLost(id, "instances keep dying while it is being created")

    def entity(self, id: str) -> Entity:
        """A new entity in its initial state (the guest constructor)."""
        instance, resource = self._create(id, lambda i: i.invoke(i.constructor, id, id))
        return Entity(instance, id, resource)

    def restore(self, id: str, snapshot: str) -> Entity:
        """An entity rebuilt from :meth:`Entity.snapshot` text.

        Raises ``GuestDecodeFailed`` if the guest cannot read the snapshot.
        """
        instance, result = self._create(id, lambda i: i.invoke(i.restore_func, id, id, snapshot))
        if isinstance(result, Variant):
            payload = result.payload
            raise answer_error(result.tag, payload if isinstance(payload, str) else None)
        if not isinstance(result, ResourceAny):
            raise InvalidModule(f"restore returned {type(result).__name__}, not an entity")
        return Entity(instance, id, result)

    def close(self) -> None:
        """Discards every instance; entities become lost. Idempotent."""
        with self._pool_lock:
            self._closed = True
            pool, self._pool = self._pool + self._retired, []
            self._retired = []
        for instance in pool:
            instance.kill()

    def __enter__(self) -> WasmModule:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<WasmModule {self.name} {self.digest[:12]} instances={self.instances}>"
