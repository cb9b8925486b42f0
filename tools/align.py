#!/usr/bin/env python
"""Align an image folder with MTCNN: the same as ``tfface align SRC DST [options]``.

Kept for users who prepare data sets from a checkout without installing the console script.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tfface.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["align"] + sys.argv[1:]))
