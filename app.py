"""Intrinsic task subspace explorer: the Streamlit entry point.

    streamlit run app.py            # then open http://127.0.0.1:8501

The sidebar (``ipt_app.sidebar``) picks the result store, the task suite and the backbone, and shows
the device; the pages in ``pages/`` read the store (and the results
shipped with the repository) and launch work as background jobs (``ipt_core.jobs``). Nothing trains
in this process.
"""
from __future__ import annotations

import streamlit as st

from ipt_app import warmup
from ipt_app.sidebar import sidebar

st.set_page_config(page_title="Intrinsic task subspace explorer", page_icon=":material/scatter_plot:", layout="wide")
sidebar()

PAGES = [
    st.Page("pages/overview.py", title="Overview", icon=":material/home:", default=True),
    st.Page("pages/tour.py", title="Guided tour", icon=":material/school:"),
    st.Page("pages/tasks.py", title="Tasks", icon=":material/list:"),
    st.Page("pages/prompt_tuning.py", title="Prompt tuning", icon=":material/tune:"),
    st.Page("pages/task_map.py", title="Subspace and task map", icon=":material/scatter_plot:"),
    st.Page("pages/transfer.py", title="Which task helps which", icon=":material/swap_horiz:"),
    st.Page("pages/recovery.py", title="Recovery", icon=":material/trending_up:"),
    st.Page("pages/stability.py", title="Stability", icon=":material/stacked_line_chart:"),
    st.Page("pages/methods.py", title="Methods", icon=":material/compare:"),
    st.Page("pages/jobs.py", title="Jobs", icon=":material/work_history:"),
]
st.navigation(PAGES).run()
warmup.start()  # after the first page: torch and scikit-learn load while the visitor reads it
