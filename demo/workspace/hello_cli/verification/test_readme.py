"""DEMO-2's fixture: README.md has a title and says how to run hello.py."""
import os

WORKSPACE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _lines():
    with open(os.path.join(WORKSPACE, "README.md"), encoding="utf-8") as f:
        return [line.strip() for line in f if line.strip()]


def verify_has_a_title(_input):
    lines = _lines()
    return bool(lines) and lines[0].startswith("#")


def verify_names_the_script(_input):
    return any("hello.py" in line for line in _lines())
