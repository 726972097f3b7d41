"""The one parameter system of every node: declare with descriptions, ranges and rules, and
refuse invalid values on set and at start-up, with the reason.

A node lists its parameters as :class:`ParamSpec` objects, calls :func:`declare` once and
reads them with :func:`values`. Besides a range or a list of choices, a spec may carry a
``rule``: a function of the value and the other parameters' values (for a check that
depends on another parameter). String arrays (``kind=STRING_ARRAY``) may be declared
without a default: the parameter then has no value until an override gives one, and
:func:`values` reads it as an empty list.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Optional, Sequence

from rcl_interfaces.msg import (FloatingPointRange, IntegerRange, ParameterDescriptor,
                                ParameterType, SetParametersResult)
from rclpy.exceptions import InvalidParameterValueException, ParameterException
from rclpy.node import Node
from rclpy.parameter import Parameter

__all__ = ["STRING_ARRAY", "ParamSpec", "ParameterValueError", "declare", "values"]

STRING_ARRAY = "string_array"

#: ``rule(value, others) -> reason or None``; ``others`` maps parameter names to their values
#: (those being set in the same call take precedence over the current ones).
Rule = Callable[[Any, Mapping[str, Any]], Optional[str]]


class ParameterValueError(InvalidParameterValueException, ValueError):
    """A parameter override refused at start-up (rclpy's exception, and a ValueError)."""

    def __init__(self, name: str, message: str) -> None:
        ParameterException.__init__(self, message, name)


@dataclass(frozen=True)
class ParamSpec:
    """One parameter: default, description and its allowed values.

    ``kind``: None (the type of ``default``) or :data:`STRING_ARRAY` (``default`` a list of
    strings, or None for a parameter without a default). ``rule``: see :data:`Rule`.
    """

    name: str
    default: Any
    description: str
    range: Optional[tuple[float, float]] = None
    choices: Optional[Sequence[str]] = None
    read_only: bool = False
    kind: Optional[str] = None
    rule: Optional[Rule] = None
    constraints: str = ""

    def descriptor(self) -> ParameterDescriptor:
        """The ROS descriptor: description (with the choices), range, read-only, type."""
        text = self.description
        if self.choices:
            text += f" One of: {', '.join(self.choices)}."
        d = ParameterDescriptor(description=text, read_only=self.read_only,
                                additional_constraints=self.constraints)
        if self.kind == STRING_ARRAY:
            d.type = ParameterType.PARAMETER_STRING_ARRAY
        if self.range is not None:
            lo, hi = self.range
            if isinstance(self.default, bool):
                pass
            elif isinstance(self.default, int):
                d.integer_range = [IntegerRange(from_value=int(lo), to_value=int(hi), step=0)]
            elif isinstance(self.default, float):
                d.floating_point_range = [FloatingPointRange(from_value=float(lo),
                                                             to_value=float(hi), step=0.0)]
        return d

    def check(self, value: Any, others: Optional[Mapping[str, Any]] = None) -> Optional[str]:
        """None when ``value`` is allowed, else the reason it is not."""
        if self.choices is not None and value not in self.choices:
            return f"{self.name}={value!r} is not one of {list(self.choices)}"
        if (self.range is not None and not isinstance(value, bool)
                and isinstance(value, (int, float))):
            lo, hi = self.range
            if not lo <= value <= hi:
                return f"{self.name}={value} is outside [{lo}, {hi}]"
        if self.rule is not None:
            return self.rule(value, others or {})
        return None

    def read(self, node: Node) -> Any:
        """The value on ``node`` (a string array without a value: its default, or [])."""
        value = (node.get_parameter_or(self.name, None).value
                 if node.has_parameter(self.name) else None)
        if value is None and self.kind == STRING_ARRAY:
            return list(self.default or [])
        return list(value) if self.kind == STRING_ARRAY else value


def _declared_values(node: Node, specs: Sequence[ParamSpec]) -> dict[str, Any]:
    return {s.name: s.read(node) for s in specs if node.has_parameter(s.name)}


def declare(node: Node, specs: Sequence[ParamSpec]) -> None:
    """Declare every parameter and refuse invalid values, with the reason.

    The check runs on every set and on the overrides given at start-up, where a refused
    value raises :class:`ParameterValueError`.
    """
    by_name = {s.name: s for s in specs}

    def on_set(params: list[Parameter]) -> SetParametersResult:
        others = _declared_values(node, specs)
        others.update({p.name: p.value for p in params if p.name in by_name})
        for p in params:
            spec = by_name.get(p.name)
            reason = spec.check(p.value, others) if spec and p.value is not None else None
            if reason:
                return SetParametersResult(successful=False, reason=reason)
        return SetParametersResult(successful=True)

    node.add_on_set_parameters_callback(on_set)
    for s in specs:
        initial = (Parameter.Type.STRING_ARRAY
                   if s.kind == STRING_ARRAY and not s.default else s.default)
        try:
            node.declare_parameter(s.name, initial, s.descriptor())
        except InvalidParameterValueException as exc:
            raise ParameterValueError(s.name, exc.args[0] if exc.args else str(exc)) from exc


def values(node: Node, specs: Sequence[ParamSpec]) -> dict[str, Any]:
    """Name -> current value of every parameter in ``specs``."""
    return {s.name: s.read(node) for s in specs}
