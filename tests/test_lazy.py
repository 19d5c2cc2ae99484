"""spxdl.lazy: a package's names loaded from their modules on first use."""

from __future__ import annotations

import subprocess
import sys

import pytest

from spxdl.lazy import lazy_getattr


def test_a_name_is_loaded_from_its_module_and_an_unknown_name_is_an_attribute_error():
    getattr_ = lazy_getattr("spxdl", {"redact": "urls"})
    from spxdl.urls import redact

    assert getattr_("redact") is redact
    with pytest.raises(AttributeError, match="module 'spxdl' has no attribute 'nothing'"):
        getattr_("nothing")


def test_importing_the_engine_package_loads_none_of_its_modules_until_a_name_is_asked_for():
    code = ("import sys, spxdl.engine as e; before = 'spxdl.engine.pool' in sys.modules; e.run; "
            "print(before, 'spxdl.engine.pool' in sys.modules)")
    shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert shown.stdout.split() == ["False", "True"]
