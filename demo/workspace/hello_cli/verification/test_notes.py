"""DEMO-3's fixture: NOTES.md lists at least three different ideas."""
import os
import re

WORKSPACE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def verify_lists_three_ideas(_input):
    with open(os.path.join(WORKSPACE, "NOTES.md"), encoding="utf-8") as f:
        items = {
            re.sub(r"^([-*+]|\d+[.)])\s+", "", line.strip()).lower()
            for line in f
            if re.match(r"^([-*+]|\d+[.)])\s+\S", line.strip())
        }
    return len(items) >= 3
