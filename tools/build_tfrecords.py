"""Thin script: image folder (one sub-folder per identity) -> sharded TFRecords.

Same as ``tfface build SRC OUT [options]``; see docs/data.md. Usable from a checkout without
installing: ``python tools/build_tfrecords.py SRC OUT --min-images 5``.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tfface import cli  # noqa: E402

if __name__ == "__main__":
    sys.exit(cli.main(["build", *sys.argv[1:]]))
