"""``python -m training.trainer --selftest DIR`` (also under torchrun): the trainer's self-test."""
from .selftest import main

if __name__ == "__main__":
    raise SystemExit(main())
