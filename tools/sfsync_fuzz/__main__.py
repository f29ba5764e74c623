"""``python -m sfsync_fuzz``: see ``cli``.

Runs with ``PYTHONHASHSEED=0`` (re-executing itself if needed): the code under test iterates sets
(pynamodb builds a batch's keys from one), whose order follows the hash seed, and a seed must
replay the same run in any process.
"""

import os
import sys

if os.environ.get("PYTHONHASHSEED") != "0":
    os.environ["PYTHONHASHSEED"] = "0"
    os.execv(sys.executable, [sys.executable, "-m", "sfsync_fuzz", *sys.argv[1:]])  # noqa: S606

from .cli import main

sys.exit(main())
