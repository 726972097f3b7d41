"""Declaring parameters with descriptions and ranges, and validating them on set."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence

from rcl_interfaces.msg import (FloatingPointRange, IntegerRange, ParameterDescriptor,
                                SetParametersResult)
from rclpy.node import Node
from rclpy.parameter import Parameter


@dataclass(frozen=True)
class ParamSpec:
    """One parameter: default, description and its allowed values."""

    name: str
    default: Any
    description: str
    range: Optional[tuple[float, float]] = None
    choices: Optional[Sequence[str]] = None
    read_only: bool = False

    def descriptor(self) -> ParameterDescriptor:
        text = self.description
        if self.choices:
            text += f" One of: {', '.join(self.choices)}."
        d = ParameterDescriptor(description=text, read_only=self.read_only)
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

    def check(self, value: Any) -> Optional[str]:
        """None when ``value`` is allowed, else the reason it is not."""
        if self.choices is not None and value not in self.choices:
            return f"{self.name}={value!r} is not one of {list(self.choices)}"
        if (self.range is not None and not isinstance(value, bool)
                and isinstance(value, (int, float))):
            lo, hi = self.range
            if not lo <= value <= hi:
                return f"{self.name}={value} is outside [{lo}, {hi}]"
        return None


def declare(node: Node, specs: Sequence[ParamSpec]) -> None:
    """Declare every parameter and refuse invalid values on set, with the reason."""
    by_name = {s.name: s for s in specs}
    for s in specs:
        node.declare_parameter(s.name, s.default, s.descriptor())
        reason = s.check(node.get_parameter(s.name).value)
        if reason:
            raise ValueError(f"invalid initial parameter: {reason}")

    def on_set(params: list[Parameter]) -> SetParametersResult:
        for p in params:
            spec = by_name.get(p.name)
            reason = spec.check(p.value) if spec else None
            if reason:
                return SetParametersResult(successful=False, reason=reason)
        return SetParametersResult(successful=True)

    node.add_on_set_parameters_callback(on_set)


def values(node: Node, specs: Sequence[ParamSpec]) -> dict[str, Any]:
    return {s.name: node.get_parameter(s.name).value for s in specs}
