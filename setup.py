"""pip-installable, ROS-free part of avemo_ros: ``pip install .``, ``.[bags]``, ``.[train]``.

The ROS 2 package itself (message generation, nodes, launch) is built by colcon from
package.xml + CMakeLists.txt; this file serves users who want the ROS-free pipeline
(window buffer, features, backends, estimator, bag tools, offline evaluation) and the
training package in their own Python environment. ``avemo_ros.ros`` (the rclpy nodes)
is left out: it needs a ROS 2 install and comes with the colcon build.

The message definitions the bag tools need ship as package data under
``avemo_ros/interfaces/``: the two audio_common_msgs flavours live there in the source
tree, and ``msg/EmotionEstimate.msg`` (top level, where colcon builds it from) is copied
into the build at ``interfaces/avemo_ros/msg/`` so that it has one source.
"""
import shutil
from pathlib import Path

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
# (source in the checkout, destination inside the built avemo_ros package)
GENERATED_DATA = [
    ("msg/EmotionEstimate.msg", "avemo_ros/interfaces/avemo_ros/msg/EmotionEstimate.msg"),
    ("msg/ModalityEstimate.msg", "avemo_ros/interfaces/avemo_ros/msg/ModalityEstimate.msg"),
]


class BuildPyWithMessages(build_py):
    """build_py that also copies the top-level .msg files into the package."""

    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):  # the checkout is imported: msg/ is found
            return
        for src, dst in GENERATED_DATA:
            out = Path(self.build_lib) / dst
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(HERE / src, out)

    def get_outputs(self, include_bytecode=True):
        outputs = list(super().get_outputs(include_bytecode))
        if not getattr(self, "editable_mode", False):
            outputs += [str(Path(self.build_lib) / dst) for _, dst in GENERATED_DATA]
        return outputs


setup(
    packages=find_packages(include=["avemo_ros", "avemo_ros.*", "training", "training.*"],
                           exclude=["avemo_ros.ros", "avemo_ros.ros.*"]),
    package_data={
        "avemo_ros": ["interfaces/*/*/msg/*.msg", "interfaces/*/msg/*.msg"],
        "training": ["configs/*.yaml", "configs/*.md", "models/*.json"],
    },
    include_package_data=False,
    install_requires=[
        "numpy>=1.26,<3", "scipy>=1.11", "opencv-python-headless>=4.8,<5", "av>=12",
        "onnxruntime>=1.18", "PyYAML>=6",
    ],
    extras_require={
        "train": ["torch==2.13.0", "onnx>=1.16", "tqdm>=4.66", "matplotlib>=3.8", "h5py>=3.8"],
        "bags": ["rosbags>=0.11", "matplotlib>=3.8"],  # bag tools and evaluation reports
        "tensorrt": ["tensorrt>=10", "pycuda"],
    },
    cmdclass={"build_py": BuildPyWithMessages},
)
