"""Make the training tests' helper module importable (pytest runs with --import-mode=importlib)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def small_synthetic(tmp_path_factory):
    """8 synthetic identities at 32×32 (58 training images) as an image folder."""
    from tfface.data import generate_synthetic

    root = tmp_path_factory.mktemp("synthetic")
    generate_synthetic(str(root), num_identities=8, num_test_identities=4, image_size=32,
                       min_images=6, max_images=10, folds=0)
    return str(root / "train")
