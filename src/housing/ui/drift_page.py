"""Drift: the latest summary of the monitoring pipeline, as GET /monitoring/drift serves it.

A page script of app.py's ``st.navigation``, at /drift. The full Evidently report is
linked, not embedded: it is a whole page of its own, and a frame of fixed height would
cut it.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from housing.ui import client, formatting
from housing.ui.common import cached_model_info, md


def test_metrics(api: str) -> tuple[dict | None, str]:
    """The served champion's test-set metrics (GET /model) and what they describe."""
    try:
        info = cached_model_info(api)
    except client.ApiError:
        return None, "The test-set error is unknown: GET /model did not answer."
    return info.get("metrics") or {}, (
        f"Test set: version {info.get('version')} of {info.get('name')} (the model served now), "
        "scored on the held-out test rows when it was registered. Errors in $100,000s, as the "
        "model predicts, and in dollars."
    )


def show_errors(api: str, performance: dict | None) -> None:
    st.subheader("Error on labelled production data")
    if not performance:
        st.caption("No ground truth attached yet (POST /feedback with a request id and the observed value).")
        return
    metrics, note = test_metrics(api)
    st.metric("Labelled production rows", formatting.labelled_rows(performance))
    st.table(pd.DataFrame(formatting.error_rows(performance, metrics)).set_index("error"))
    st.caption(md(note))


def render() -> None:
    api, public = client.api_url(), client.public_url()
    st.title("Drift")
    st.caption(
        "The production inputs (the prediction log) compared with the training data by the "
        "monitoring pipeline (`kedro run --pipelines=drift`, Evidently)."
    )
    st.button("Refresh")  # any click reruns the page, which asks the API again
    try:
        summary = client.drift_summary(api)
    except client.NotFound as exc:
        st.info(md(exc.message))
        return
    except client.ApiError as exc:
        st.error(md(exc.message))
        return

    for column, (name, value) in zip(st.columns(4), formatting.drift_headline(summary).items()):
        column.metric(name, value)
    st.caption(md(" ".join(formatting.drift_notes(summary))))
    if summary.get("dataset_drift"):
        st.warning(
            "The production data has drifted from the training data: consider retraining "
            "(`kedro run --pipelines=retraining`)."
        )
    else:
        st.success("No dataset drift: the production inputs look like the training data.")

    st.subheader("Columns")
    st.dataframe(
        pd.DataFrame(
            formatting.drift_rows(summary), columns=["column", "drifted", "score", "threshold", "method"]
        ),
        hide_index=True,
        column_config={
            "score": st.column_config.NumberColumn(format="%.4f"),
            "threshold": st.column_config.NumberColumn(format="%.4f"),
        },
    )

    show_errors(api, summary.get("performance"))

    st.subheader("The full report")
    link = formatting.drift_report_link(public, summary)
    st.link_button("Open the full HTML report", link)
    st.caption(f"Evidently's report, every column's distributions, opens in a new tab: {link}")


render()
