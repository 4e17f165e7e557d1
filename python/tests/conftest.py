"""pytest set-up: the built package (build/python) is imported, never an installed one."""
import os
import pathlib
import sys

_BUILD = pathlib.Path(os.environ.get("QUANTSIM_BUILD_DIR",
                                     pathlib.Path(__file__).resolve().parents[2] / "build"))
sys.path.insert(0, str(_BUILD / "python"))
