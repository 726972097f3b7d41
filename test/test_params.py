"""The nodes' one parameter system on a real rclpy node: string arrays, rules that read
another parameter, refusals on set and at start-up."""
import pytest
import rclpy
from rclpy.context import Context
from rclpy.exceptions import InvalidParameterValueException
from rclpy.node import Node
from rclpy.parameter import Parameter

from avemo_ros.ros.params import STRING_ARRAY, ParameterValueError, ParamSpec, declare, values

pytestmark = pytest.mark.ros


def _even_unless_odd_allowed(value, others):
    if value % 2 and not others.get("allow_odd", False):
        return f"count={value} is odd (allow_odd is false)"
    return None


SPECS = (
    ParamSpec("paths", None, "Paths, no default.", kind=STRING_ARRAY, read_only=True,
              rule=lambda v, _: "empty path" if "" in v else None),
    ParamSpec("names", ["a", "b"], "Names with a default.", kind=STRING_ARRAY),
    ParamSpec("mode", "fast", "A choice.", choices=("fast", "slow")),
    ParamSpec("rate", 1.0, "A range.", range=(0.1, 10.0)),
    ParamSpec("allow_odd", False, "Read by the count rule."),
    ParamSpec("count", 2, "Even unless allow_odd.", range=(0, 100), rule=_even_unless_odd_allowed),
)


@pytest.fixture
def context():
    ctx = Context()
    rclpy.init(context=ctx)
    yield ctx
    rclpy.try_shutdown(context=ctx)


def make(context, overrides=()):
    node = Node("params_test", context=context, parameter_overrides=list(overrides))
    try:
        declare(node, SPECS)
    except BaseException:
        node.destroy_node()
        raise
    return node


def test_defaults_and_string_arrays(context):
    node = make(context)
    try:
        v = values(node, SPECS)
        assert v == {"paths": [], "names": ["a", "b"], "mode": "fast", "rate": 1.0,
                     "allow_odd": False, "count": 2}
        desc = node.describe_parameter("paths")
        assert desc.read_only and desc.type == Parameter.Type.STRING_ARRAY.value
        assert "One of: fast, slow." in node.describe_parameter("mode").description
        assert node.describe_parameter("rate").floating_point_range[0].to_value == 10.0
    finally:
        node.destroy_node()
    node = make(context, [Parameter("paths", value=["x.mp4", "y.mkv"]),
                          Parameter("names", value=["c"])])
    try:
        assert values(node, SPECS)["paths"] == ["x.mp4", "y.mkv"]
        assert values(node, SPECS)["names"] == ["c"]
    finally:
        node.destroy_node()


def test_refused_on_set_with_the_reason(context):
    node = make(context)
    try:
        result = node.set_parameters([Parameter("mode", value="warp")])[0]
        assert not result.successful and "mode='warp' is not one of" in result.reason
        assert not node.set_parameters([Parameter("rate", value=50.0)])[0].successful
        assert not node.set_parameters([Parameter("paths", value=["z"])])[0].successful  # r/o
        result = node.set_parameters([Parameter("count", value=3)])[0]
        assert not result.successful and "allow_odd is false" in result.reason
        # the rule reads the other parameter's value, also when both are set together
        both = node.set_parameters_atomically([Parameter("allow_odd", value=True),
                                               Parameter("count", value=3)])
        assert both.successful and values(node, SPECS)["count"] == 3
        assert node.set_parameters([Parameter("count", value=5)])[0].successful
        assert values(node, SPECS)["mode"] == "fast"
    finally:
        node.destroy_node()


@pytest.mark.parametrize("overrides", [
    [Parameter("mode", value="warp")],
    [Parameter("paths", value=["ok", ""])],
    [Parameter("count", value=3)],  # odd while allow_odd keeps its default
])
def test_refused_at_start_up(context, overrides):
    with pytest.raises(ParameterValueError) as info:
        make(context, overrides)
    assert isinstance(info.value, InvalidParameterValueException)
    assert isinstance(info.value, ValueError)


def test_start_up_rule_sees_parameters_declared_before(context):
    node = make(context, [Parameter("allow_odd", value=True), Parameter("count", value=7)])
    try:
        assert values(node, SPECS)["count"] == 7
    finally:
        node.destroy_node()
