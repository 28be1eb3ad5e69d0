"""The sandbox editors' templates run in.

An ``ImmutableSandboxedEnvironment`` (no ``__class__``, ``__globals__``, no
mutating ``list.append``), strict about undefined names, no autoescaping
(templates write Markdown), hardened against exhaustion:

- ``range()`` yields at most ``Limits.max_range`` items;
- every render has a budget of steps (loop iterations, calls, operators) and
  of wall time, so nested loops and recursive macros stop early;
- no value a template builds (string, list) may exceed ``Limits.max_value``
  items, and operators and filters that could build one (``*``, ``**``, ``%``,
  ``~``, ``center``, ``indent``, ``replace``...) are checked *before* they run;
- string methods are limited to harmless ones (``format``, ``ljust``,
  ``center``, ``join``... are refused: use the filters);
- the rendered message may not exceed ``Limits.max_output_bytes`` (UTF-8).

Breaking any of these raises ``jinja2.exceptions.SecurityError``.
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import FileSystemLoader, StrictUndefined, Template, nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from broadcaster.templating import filters as cn_filters


@dataclass(frozen=True)
class Limits:
    max_range: int = 1000              # items one range() may yield
    max_steps: int = 20_000            # loop iterations + calls + operators per render
    max_seconds: float = 2.0           # wall time per render
    max_value: int = 64 * 1024         # length of any string or list a template builds
    max_printed: int = 1_000_000       # characters printed by {{ }} (including buffered)
    max_output_bytes: int = 64 * 1024  # the rendered message, UTF-8
    max_int_bits: int = 4096           # integers a template computes


class Budget:
    """What one render has used so far."""

    def __init__(self, limits: Limits):
        self.limits = limits
        self.steps = 0
        self.printed = 0
        self.started = time.perf_counter()

    def step(self) -> None:
        self.steps += 1
        if self.steps > self.limits.max_steps:
            raise SecurityError(
                f"the template does too much work (more than {self.limits.max_steps} "
                "loop turns and calls): is a loop too big or a macro calling itself?"
            )
        if self.steps % 64 == 0 and time.perf_counter() - self.started > self.limits.max_seconds:
            raise SecurityError(f"the template took longer than {self.limits.max_seconds:g} s")

    def print(self, text: str) -> None:
        self.printed += len(text)
        if self.printed > self.limits.max_printed:
            raise SecurityError(
                f"the template prints more than {self.limits.max_printed} characters"
            )


_BUDGET: ContextVar[Budget | None] = ContextVar("template_budget", default=None)

# Methods of str a template may call; everything else is done with filters,
# which are checked (see module docstring).
SAFE_STR_METHODS = frozenset({
    "startswith", "endswith", "strip", "lstrip", "rstrip", "split", "rsplit", "splitlines",
    "upper", "lower", "title", "capitalize", "find", "rfind", "count", "partition",
    "rpartition", "removeprefix", "removesuffix", "isdigit", "isalpha", "isalnum",
    "isspace", "isupper", "islower",
})

# Builtin globals that are not useful in a message and only add surface.
_DROPPED_GLOBALS = ("lipsum",)

_PRINTF_SPEC = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(\*|\d+)?(?:\.(\*|\d+))?")


class _GuardedCodeGenerator(CodeGenerator):
    """Routes every ``for`` iterable and every ``~`` through the budget."""

    def visit_For(self, node: nodes.For, frame: Frame) -> None:
        if not getattr(node, "_guarded", False):
            node.iter = nodes.Call(
                nodes.EnvironmentAttribute("guard_iter"), [node.iter], [], None, None,
                lineno=node.lineno,
            )
            node._guarded = True  # type: ignore[attr-defined]
        super().visit_For(node, frame)

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.guard_concat((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


class SandboxEnvironment(ImmutableSandboxedEnvironment):
    """The environment of one ``templates/`` directory."""

    code_generator_class = _GuardedCodeGenerator
    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self, directory: Path, limits: Limits | None = None):
        super().__init__(
            loader=FileSystemLoader(str(directory), encoding="utf-8"),
            undefined=StrictUndefined,
            autoescape=False,
            keep_trailing_newline=False,
            trim_blocks=True,
            lstrip_blocks=True,
            auto_reload=True,
            finalize=self._finalize,
        )
        self.limits = limits or Limits()
        for name in _DROPPED_GLOBALS:
            self.globals.pop(name, None)
        self.globals["range"] = self._range
        self.filters.update(cn_filters.FILTERS)
        self.filters = {name: self._guard_filter(name, f) for name, f in self.filters.items()}

    # -- rendering ------------------------------------------------------------
    def render(self, template: Template, context: dict[str, Any]) -> str:
        """Render within the budget; the whole message, or SecurityError."""
        token = _BUDGET.set(Budget(self.limits))
        chunks: list[str] = []
        size = 0
        stream = template.generate(context)
        try:
            for chunk in stream:
                size += len(chunk.encode("utf-8"))
                if size > self.limits.max_output_bytes:
                    raise SecurityError(
                        f"the message is longer than {self.limits.max_output_bytes} bytes"
                    )
                chunks.append(chunk)
        finally:
            stream.close()
            _BUDGET.reset(token)
        return "".join(chunks)

    # -- guards the compiled templates call -----------------------------------
    def guard_iter(self, iterable: Iterable) -> Iterator:
        budget = _BUDGET.get()
        for item in iterable:
            if budget is not None:
                budget.step()
            yield item

    def guard_concat(self, parts: tuple) -> str:
        self._step()
        total = 0
        texts = []
        for part in parts:
            text = str(part)
            total += len(text)
            self._check_len(total, "joined text")
            texts.append(text)
        return "".join(texts)

    def _finalize(self, value: Any) -> Any:
        if value is None:
            return ""  # an empty field prints nothing, not "None"
        text = str(value)
        budget = _BUDGET.get()
        if budget is not None:
            budget.print(text)
        return text

    def _range(self, *args: int) -> range:
        self._step()
        rng = range(*args)
        if len(rng) > self.limits.max_range:
            raise SecurityError(
                f"range() of {len(rng)} items is too big (at most {self.limits.max_range})"
            )
        return rng

    # -- sandbox hooks --------------------------------------------------------
    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        if isinstance(obj, str) and callable(value) and attr not in SAFE_STR_METHODS:
            return False
        return super().is_safe_attribute(obj, attr, value)

    def call(__self, __context, __obj, *args: Any, **kwargs: Any) -> Any:
        __self._step()
        return __self._checked(super().call(__context, __obj, *args, **kwargs))

    def call_binop(self, context, operator: str, left: Any, right: Any) -> Any:
        self._step()
        if operator == "*":
            for seq, times in ((left, right), (right, left)):
                if isinstance(seq, str | list | tuple) and isinstance(times, int):
                    self._check_len(len(seq) * times, "repeated text")
        elif operator == "**":
            if isinstance(right, int) and isinstance(left, int) and right > 0:
                bits = max(left.bit_length(), 1) * right
                if bits > self.limits.max_int_bits:
                    raise SecurityError("the number is too big")
        elif operator == "%" and isinstance(left, str):
            self._check_printf(left)
        elif operator == "+" and isinstance(left, str | list | tuple) and hasattr(right, "__len__"):
            self._check_len(len(left) + len(right), "joined value")
        return self._checked(super().call_binop(context, operator, left, right))

    # -- helpers ----------------------------------------------------------------
    def _step(self) -> None:
        budget = _BUDGET.get()
        if budget is not None:
            budget.step()

    def _check_len(self, length: int, what: str) -> None:
        if length > self.limits.max_value:
            raise SecurityError(
                f"the {what} would be too long ({length} > {self.limits.max_value})"
            )

    def _checked(self, value: Any) -> Any:
        if isinstance(value, str | bytes | list | tuple):
            self._check_len(len(value), "value")
        elif isinstance(value, int) and value.bit_length() > self.limits.max_int_bits:
            raise SecurityError("the number is too big")
        return value

    def _check_printf(self, fmt: str) -> None:
        for match in _PRINTF_SPEC.finditer(fmt):
            for size in match.groups():
                if size == "*" or (size and int(size) > 1000):
                    raise SecurityError(f"format width {size!r} is not allowed")

    def _guard_filter(self, name: str, func: Callable) -> Callable:
        precheck = _PRECHECKS.get(name)

        @functools.wraps(func)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            if precheck is not None:
                precheck(self, _value_and_args(func, args), kwargs)
            return self._checked(func(*args, **kwargs))

        return guarded


def _value_and_args(func: Callable, args: tuple) -> tuple:
    """Drop the context/environment argument Jinja passes to ``pass_*`` filters."""
    return args[1:] if getattr(func, "jinja_pass_arg", None) else args


def _sizes(env: SandboxEnvironment, args: tuple, kwargs: dict) -> None:
    """Integer arguments (widths, counts) may not exceed the value limit."""
    for arg in (*args[1:], *kwargs.values()):
        if isinstance(arg, int) and not isinstance(arg, bool) and abs(arg) > env.limits.max_value:
            raise SecurityError(f"the number {arg} is too big for this filter")


def _indent(env: SandboxEnvironment, args: tuple, kwargs: dict) -> None:
    _sizes(env, args, kwargs)
    text = str(args[0]) if args else ""
    width = args[1] if len(args) > 1 else kwargs.get("width", 4)
    per_line = len(width) if isinstance(width, str) else int(width)
    env._check_len(len(text) + per_line * (text.count("\n") + 1), "indented text")


def _replace(env: SandboxEnvironment, args: tuple, kwargs: dict) -> None:
    if len(args) < 3:
        return
    text, old, new = (str(a) for a in args[:3])
    hits = len(text) + 1 if old == "" else text.count(old)
    env._check_len(len(text) + hits * max(len(new) - len(old), 0), "replaced text")


def _join(env: SandboxEnvironment, args: tuple, kwargs: dict) -> None:
    sep = args[1] if len(args) > 1 else kwargs.get("d", "")
    items = args[0] if args else ()
    if hasattr(items, "__len__"):
        env._check_len(len(str(sep)) * len(items), "joined text")


def _wordwrap(env: SandboxEnvironment, args: tuple, kwargs: dict) -> None:
    _sizes(env, args, kwargs)
    wrap = kwargs.get("wrapstring") or (args[3] if len(args) > 3 else None) or "\n"
    text = str(args[0]) if args else ""
    env._check_len(len(text) * max(len(str(wrap)), 1), "wrapped text")


def _format(env: SandboxEnvironment, args: tuple, kwargs: dict) -> None:
    if args:
        env._check_printf(str(args[0]))


_PRECHECKS: dict[str, Callable[[SandboxEnvironment, tuple, dict], None]] = {
    "center": _sizes,
    "batch": _sizes,
    "slice": _sizes,
    "truncate": _sizes,
    "truncate_bytes": _sizes,
    "indent": _indent,
    "replace": _replace,
    "join": _join,
    "join_cn": _join,
    "wordwrap": _wordwrap,
    "format": _format,
}
