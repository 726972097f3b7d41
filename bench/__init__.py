"""avemo_ros benchmark suite: ``scripts/rosenv.sh python -m bench`` (see bench/__main__.py)."""
