"""The one-click way from a comparison to the Change a fact page, with its domain and question carried over."""

from __future__ import annotations

import streamlit as st
from streamlit.errors import StreamlitAPIException

FACT_PAGE = "triptych/ui/fact_page.py"


def change_fact_link(domain: str | None, question: str) -> None:
    """A link under the RAG sources: change the sentence that holds the answer, then ask again in every column."""
    if not domain:
        return
    try:
        st.page_link(FACT_PAGE, label="Change a fact in these sources and ask again", icon=":material/edit_note:",
                     query_params={"domain": domain, "question": question})  # fmt: skip
    except StreamlitAPIException:  # the page run on its own (not through app.py's navigation): no page to link to
        st.caption("Change a fact: open the Change a fact page from the app's navigation.")
