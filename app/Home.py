"""mamba-edu: the Streamlit app's entry point (`mamba-edu app` runs `streamlit run app/Home.py`).

Builds the navigation from `_common.PAGES`: one page per file in app/pages/, grouped in sections,
each included only once its file exists. Every page runs inside this script, so the page config
and the sidebar's device line below apply to all of them.
"""

import streamlit as st
from _common import device_caption, present_pages  # app/ is on sys.path: Streamlit puts the main script's folder there

st.set_page_config(page_title="mamba-edu", page_icon="🐍", layout="wide")
# Markdown tables scroll inside their own box instead of widening the page (a phone is ~390 px wide)
st.html("<style>[data-testid='stMarkdownContainer'] table {display: block; max-width: 100%; overflow-x: auto;}</style>")

sections: dict[str, list] = {}
for info in present_pages():
    sections.setdefault(info.section, []).append(
        st.Page(f"pages/{info.file}", title=info.title, icon=info.icon, default=info.file == "home.py"))

page = st.navigation(sections)
st.sidebar.caption(f"Running on: {device_caption()}")
page.run()
