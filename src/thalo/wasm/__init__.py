"""thalo.wasm: the wasmtime host for aggregate components, and ``thalo build``.

Names are imported lazily, so ``import thalo.wasm`` does not load wasmtime::

    from thalo.wasm import load_module, Limits
    module = load_module(wasm_bytes, limits=Limits(call_seconds=1.0))
    entity = module.entity("c-1")
    events = entity.handle({"streamName": "counter-c-1"}, "increment", {"amount": 2})
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from thalo.wasm._errors import EntityLost as EntityLost
    from thalo.wasm._errors import GuestAnswer as GuestAnswer
    from thalo.wasm._errors import GuestDecodeFailed as GuestDecodeFailed
    from thalo.wasm._errors import GuestIgnored as GuestIgnored
    from thalo.wasm._errors import GuestRejected as GuestRejected
    from thalo.wasm._errors import GuestUnknownCommand as GuestUnknownCommand
    from thalo.wasm._errors import GuestUnknownEvent as GuestUnknownEvent
    from thalo.wasm.cache import CompileCache as CompileCache
    from thalo.wasm.engine import Limits as Limits
    from thalo.wasm.entity import Entity as Entity
    from thalo.wasm.module import WasmModule as WasmModule
    from thalo.wasm.module import load_module as load_module

_LAZY = {
    "EntityLost": "thalo.wasm._errors",
    "GuestAnswer": "thalo.wasm._errors",
    "GuestDecodeFailed": "thalo.wasm._errors",
    "GuestIgnored": "thalo.wasm._errors",
    "GuestRejected": "thalo.wasm._errors",
    "GuestUnknownCommand": "thalo.wasm._errors",
    "GuestUnknownEvent": "thalo.wasm._errors",
    "CompileCache": "thalo.wasm.cache",
    "Limits": "thalo.wasm.engine",
    "Entity": "thalo.wasm.entity",
    "WasmModule": "thalo.wasm.module",
    "load_module": "thalo.wasm.module",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'thalo.wasm' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
