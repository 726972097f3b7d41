"""``python -m training.engines --bundle DIR [--precision fp16|int8|fp32]``: see ``cli.main``."""
from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
