"""pip-installable core of avemo_ros (no ROS needed): ``pip install .[train]``.

The ROS 2 package itself (message generation, nodes, launch) is built by colcon from
package.xml + CMakeLists.txt; this file serves users who want the ROS-free pipeline
(window buffer, features, backends, estimator) in their own Python code.
"""
from setuptools import find_packages, setup

setup(
    packages=find_packages(include=["avemo_ros", "avemo_ros.*"], exclude=["avemo_ros.ros*"]),
    install_requires=[
        "numpy>=1.26,<3", "scipy>=1.11", "opencv-python-headless>=4.8,<5", "av>=12",
        "onnxruntime>=1.18", "PyYAML>=6",
    ],
    extras_require={
        "train": ["torch==2.13.0", "onnx>=1.16", "tqdm>=4.66", "matplotlib>=3.8"],
        "bags": ["rosbags>=0.11", "matplotlib>=3.8"],  # bag tools and evaluation reports
        "tensorrt": ["tensorrt>=10", "pycuda"],
    },
)
