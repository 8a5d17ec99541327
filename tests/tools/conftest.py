"""Shared by the tests of the tools in tools/: paths, and the tools loaded as modules.

The tools are scripts without a .py suffix, so they are loaded by path; their functions (the rate
parser, the tree computation) are then tested directly, and the scripts as a whole through
subprocesses, the way an operator runs them.
"""
import importlib.machinery
import importlib.util
import os

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TOOLS = os.path.join(ROOT, "tools")
DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
LAB_CONFIG = os.path.join(ROOT, "conf", "lab.json")


def load_tool(name):
    path = os.path.join(TOOLS, name)
    loader = importlib.machinery.SourceFileLoader(name.replace("-", "_"), path)
    spec = importlib.util.spec_from_loader(loader.name, loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def fairnat_import():
    return load_tool("fairnat-import")


@pytest.fixture(scope="session")
def sched_graph():
    return load_tool("sched-graph")
