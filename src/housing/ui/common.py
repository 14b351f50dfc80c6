"""What both pages of the UI share: the API's addresses, its model description, markdown."""

from __future__ import annotations

import streamlit as st

from housing.ui import client


@st.cache_data(ttl=30, show_spinner=False)
def cached_model_info(base_url: str) -> dict:
    """GET /model, kept 30 s (every widget change reruns the script); errors are not kept."""
    return client.model_info(base_url)


def md(text: str) -> str:
    """Text for Streamlit's markdown: a lone ``$`` (prices, "thousands of $") must not
    open a LaTeX formula."""
    return text.replace("$", "\\$")
