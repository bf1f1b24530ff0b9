"""DEMO-1's fixture: running hello.py prints the greeting."""
import contextlib
import io
import os
import runpy

WORKSPACE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def verify_prints_greeting(_input):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        runpy.run_path(os.path.join(WORKSPACE, "hello.py"), run_name="__main__")
    return out.getvalue().strip()
