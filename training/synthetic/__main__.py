"""``python -m training.synthetic``: write the synthetic dataset (see ``dataset.main``)."""
from .dataset import main

if __name__ == "__main__":
    raise SystemExit(main())
