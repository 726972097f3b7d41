"""The YAML defaults, the declared parameters and the launch file agree."""
import ast
from pathlib import Path

import pytest
import yaml

pytest.importorskip("rclpy")
from avemo_ros.ros.perception_node import PARAMS  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def _check_yaml_section(node: str, params_specs) -> dict:
    """The YAML's section of ``node`` holds exactly ``params_specs``, each valid and typed
    like its default; returns the specs by name."""
    cfg = yaml.safe_load((ROOT / "config" / "perception.yaml").read_text())
    params = cfg[f"/**/{node}"]["ros__parameters"]
    specs = {s.name: s for s in params_specs}
    assert set(params) == set(specs), f"config/perception.yaml's {node} and its specs differ"
    for name, value in params.items():
        assert specs[name].check(value) is None, name
        assert type(value) is type(specs[name].default), name
    return specs


def test_yaml_defaults_are_declared_and_valid():
    _check_yaml_section("perception_node", PARAMS)


def test_fusion_node_yaml_and_readme():
    from avemo_ros.ros.fusion_node import FUSION_PARAMS

    specs = _check_yaml_section("fusion_node", FUSION_PARAMS)
    readme = (ROOT / "README.md").read_text()
    for name in set(specs) - {s.name for s in PARAMS}:
        assert f"| `{name}` |" in readme, name


def test_launch_file_declares_the_documented_arguments():
    tree = ast.parse((ROOT / "launch" / "perception.launch.py").read_text())
    declared = {node.args[0].value for node in ast.walk(tree)
                if isinstance(node, ast.Call)
                and getattr(node.func, "id", "") == "DeclareLaunchArgument"}
    readme = (ROOT / "README.md").read_text()
    assert {"namespace", "params_file", "model_dir", "backend", "image", "audio", "emotion",
            "use_sim_time", "autostart", "media"} <= declared
    for arg in declared:
        assert f"`{arg}`" in readme, f"launch argument {arg} is not in the README"


def test_readme_documents_every_parameter():
    readme = (ROOT / "README.md").read_text()
    for spec in PARAMS:
        assert f"| `{spec.name}` |" in readme, spec.name
