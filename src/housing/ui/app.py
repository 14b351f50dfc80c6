"""The housing UI: price a house, and see whether production data has drifted.

    streamlit run src/housing/ui/app.py

Two pages, each at its own URL (/price, /drift), so a reload or a shared link stays on
the page. It talks to the prediction API only (``HOUSING_API_URL``, default
http://127.0.0.1:8000; links for the browser use ``HOUSING_API_PUBLIC_URL`` when set).
Every failure of the API (down, slow, 4xx, 5xx) is shown as a message that says what to
do, never as a traceback.
"""

from __future__ import annotations

import logging
from pathlib import Path

import streamlit as st

import housing.ui
from housing.ui import client

logger = logging.getLogger(__name__)

# The page scripts, from the installed package: app.py may be run from a copy (the image
# runs /app/src/housing/ui/app.py against the package in its venv).
PAGES = Path(housing.ui.__file__).parent


def main() -> None:
    st.set_page_config(page_title="California house prices", page_icon=":house:", layout="wide")
    page = st.navigation(
        [
            st.Page(PAGES / "price_page.py", title="Price a house", icon=":material/sell:", default=True),
            st.Page(PAGES / "drift_page.py", title="Drift", icon=":material/monitoring:", url_path="drift"),
        ]
    )
    st.sidebar.caption(f"Prediction API: {client.api_url()}")
    try:
        page.run()
    except Exception:  # a bug or an answer we did not expect: a message, not a traceback
        logger.exception("The UI failed on page %s", page.title)
        st.error(
            "Something unexpected went wrong on this page. The details are in the UI's log; "
            "reload the page to try again."
        )


main()
