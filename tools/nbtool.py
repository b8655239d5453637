"""Thin entry point: ``python tools/nbtool.py run|store ...`` (see esrgan_lab.notebooks)."""

import sys

from esrgan_lab.notebooks import main

if __name__ == "__main__":
    sys.exit(main())
