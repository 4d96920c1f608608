"""The Streamlit app, run headless through streamlit.testing.v1.AppTest."""

from pathlib import Path

from streamlit.testing.v1 import AppTest

import mamba_edu

APP = Path(__file__).resolve().parents[1] / "app"


def test_home_page_lists_device_and_registry():
    at = AppTest.from_file(str(APP / "Home.py"), default_timeout=60).run()
    assert not at.exception, at.exception
    assert "mamba-edu" in at.title[0].value
    device = at.metric[0].value
    assert device in ("GPU", "CPU only")
    table = at.dataframe[0].value
    assert list(table["implementation"]) == list(mamba_edu.implementations())
    assert all(v == "yes" or v.startswith("no: ") for v in table["runs here"])
