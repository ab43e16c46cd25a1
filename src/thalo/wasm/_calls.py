"""Direct calls of string-only component functions through wasmtime's C API.

wasmtime-py's ``Func.__call__`` re-reads the function type through the C API and
converts every value generically on each call; for the aggregate contract every
argument is a string (plus the entity handle) and every result is
``result<string?, error>``, so this module marshals those shapes directly. It
speaks the same C structures wasmtime-py uses and frees what it allocates.
"""

from __future__ import annotations

__all__ = ["CallOutcome", "StringCall"]

import ctypes
from ctypes import POINTER, byref, c_char_p, c_size_t, string_at
from typing import Any

from wasmtime import WasmtimeError
from wasmtime import _bindings as bindings
from wasmtime import _ffi as ffi
from wasmtime.component import Func

_Val = ffi.wasmtime_component_val_t
_STRING = ffi.WASMTIME_COMPONENT_STRING.value
_RESOURCE = ffi.WASMTIME_COMPONENT_RESOURCE.value
_RESULT = ffi.WASMTIME_COMPONENT_RESULT.value
_VARIANT = ffi.WASMTIME_COMPONENT_VARIANT.value
_OPTION = ffi.WASMTIME_COMPONENT_OPTION.value

# Own prototypes, so wasmtime-py's argtypes stay untouched: copying a Python bytes
# object straight into a wasm_byte_vec_t avoids an intermediate ctypes array.
_byte_vec_new = ctypes.CFUNCTYPE(None, POINTER(ffi.wasm_byte_vec_t), c_size_t, c_char_p)(
    ("wasm_byte_vec_new", ffi.dll)
)
_func_call = bindings._wasmtime_component_func_call
_val_delete = bindings._wasmtime_component_val_delete
_resource_clone = bindings._wasmtime_component_resource_any_clone
_set_deadline = bindings._wasmtime_context_set_epoch_deadline

# (ok, payload): ok=True → the ok string (or None for result<_, error>);
# ok=False → (case name, case payload string or None).
CallOutcome = tuple[bool, Any]


def _text(vec: Any) -> str:
    return string_at(vec.data, vec.size).decode("utf-8")


class StringCall:
    """One exported function whose parameters are ``[borrow<entity>,] string*``."""

    __slots__ = ("_func", "_nargs", "_with_self")

    def __init__(self, func: Func, *, with_self: bool, strings: int) -> None:
        self._func = byref(func._func)
        self._with_self = with_self
        self._nargs = strings + (1 if with_self else 0)

    def __call__(
        self, context: Any, deadline_ticks: int, resource: Any, *args: str | bytes
    ) -> CallOutcome:
        """Calls the guest; raises ``WasmtimeError`` on a trap (the instance is then dead)."""
        params = (_Val * self._nargs)()
        index = 0
        try:
            if self._with_self:
                slot = params[0]
                slot.kind = _RESOURCE
                slot.of.resource = _resource_clone(resource)
                index = 1
            for text in args:
                data = text.encode("utf-8") if isinstance(text, str) else text
                slot = params[index]
                slot.kind = _STRING
                _byte_vec_new(byref(slot.of.string), len(data), data)
                index += 1
            result = _Val()
            _set_deadline(context, deadline_ticks)
            error = _func_call(self._func, context, params, index, byref(result), 1)
            if error:
                raise WasmtimeError._from_ptr(error)
            try:
                return _read_result(result)
            finally:
                _val_delete(byref(result))
        finally:
            for i in range(index):
                _val_delete(byref(params[i]))


def _read_result(result: Any) -> CallOutcome:
    if result.kind != _RESULT:
        raise WasmtimeError(f"guest returned value kind {result.kind}, expected a result")
    outcome = result.of.result
    payload = outcome.val
    if outcome.is_ok:
        if not payload:
            return True, None
        value = payload.contents
        if value.kind != _STRING:
            raise WasmtimeError(f"guest returned ok kind {value.kind}, expected a string")
        return True, _text(value.of.string)
    if not payload or payload.contents.kind != _VARIANT:
        raise WasmtimeError("guest returned an error that is not thalo's error variant")
    variant = payload.contents.of.variant
    case = _text(variant.discriminant)
    inner = variant.val
    detail: str | None = None
    if inner:
        value = inner.contents
        if value.kind == _OPTION:
            option = value.of.option
            detail = _text(option.contents.of.string) if option else None
        elif value.kind == _STRING:
            detail = _text(value.of.string)
    return False, (case, detail)
