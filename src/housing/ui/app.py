"""The housing UI: price a house, and see whether production data has drifted.

    streamlit run src/housing/ui/app.py

It talks to the prediction API only (``HOUSING_API_URL``, default http://127.0.0.1:8000;
links for the browser use ``HOUSING_API_PUBLIC_URL`` when set). Every failure of the
API (down, slow, 4xx, 5xx) is shown as a message that says what to do, never as a
traceback.
"""

from __future__ import annotations

import logging

import altair as alt
import pandas as pd
import streamlit as st
import streamlit.components.v1 as components

from housing.ui import client

logger = logging.getLogger(__name__)

PAGES = ("Price a house", "Drift")
LOCATION = ("Latitude", "Longitude")
EFFECT_COLOURS = alt.Scale(domain=["raises the price", "lowers the price"], range=["#2e7d32", "#c62828"])
TOP_FEATURES = 15


@st.cache_data(ttl=30, show_spinner=False)
def cached_model_info(base_url: str) -> dict:
    """GET /model, kept 30 s (every widget change reruns the script); errors are not kept."""
    return client.model_info(base_url)


def md(text: str) -> str:
    """Text for Streamlit's markdown: a lone ``$`` (prices, "thousands of $") must not
    open a LaTeX formula."""
    return text.replace("$", "\\$")


def number_input(container, field: client.Field) -> float:
    default = client.MEDIANS[field.name]
    if field.widget_min is not None:
        default = max(default, field.widget_min)
    if field.maximum is not None:
        default = min(default, field.maximum)
    return container.number_input(
        field.label,
        min_value=field.widget_min,
        max_value=field.maximum,
        value=float(default),
        step=field.step,
        format=field.format,
        key=field.name,
        help=field.help,
    )


def contribution_chart(rows: list[dict]) -> alt.Chart:
    """Horizontal bars in dollars, in the API's order (largest effect on top)."""
    data = pd.DataFrame(rows)
    return (
        alt.Chart(data)
        .mark_bar()
        .encode(
            x=alt.X("dollars:Q", title="effect on the price ($)", axis=alt.Axis(format="$,.0f")),
            y=alt.Y(
                "name:N",
                title=None,
                sort=alt.EncodingSortField(field="rank", order="ascending"),
                axis=alt.Axis(labelLimit=260),
            ),
            color=alt.Color("effect:N", scale=EFFECT_COLOURS, legend=alt.Legend(title=None, orient="bottom")),
            tooltip=[alt.Tooltip("feature:N", title="feature"), alt.Tooltip("label:N", title="effect")],
        )
        .properties(height=alt.Step(26))  # one band per bar, whatever the count
    )


def price(api: str, values: dict[str, float]) -> dict:
    """POST /predict, then POST /explain; what went wrong is kept as a message."""
    result: dict = {"inputs": dict(values)}
    try:
        result["prediction"] = client.predict(api, values)
    except client.ApiError as exc:
        result["error"] = exc.message
        return result
    try:
        result["explanation"] = client.explain(api, values)
    except client.ApiError as exc:
        result["explain_error"] = exc.message
    return result


def show_result(result: dict, values: dict[str, float]) -> None:
    if "error" in result:
        st.error(md(result["error"]))
        return
    answer = result["prediction"]
    st.metric("Predicted median house value", client.format_usd(answer["price_usd"]))
    st.markdown(
        f"Model **{answer['model_name']}**, version **{answer['model_version']}** "
        f"(request `{answer['request_id']}`)."
    )
    if result["inputs"] != values:
        st.caption("The inputs have changed since this price: press **Price this house** again.")
    if "explain_error" in result:
        st.warning(md(f"No explanation for this price: {result['explain_error']}"))
        return
    explanation = result["explanation"]
    st.subheader("Why this price")
    base = client.format_usd(explanation["base_value"] * client.DOLLARS_PER_UNIT)
    st.caption(
        md(
            f"The model starts from its average prediction, {base}; each bar is what that part of "
            "the description adds or takes away (SHAP values, which sum to the price)."
        )
    )
    st.altair_chart(contribution_chart(client.contribution_rows(explanation["groups"])))
    with st.expander("Per feature, including the engineered ones"):
        rows = client.contribution_rows(explanation["contributions"])
        st.altair_chart(contribution_chart(rows[:TOP_FEATURES]))
        st.dataframe(
            pd.DataFrame(rows)[["feature", "label", "dollars"]],
            hide_index=True,
            column_config={
                "feature": "feature",
                "label": "effect",
                "dollars": st.column_config.NumberColumn("effect ($)", format="%.0f"),
            },
        )


def price_page(api: str) -> None:
    st.title("Price a house")
    st.caption(
        "Describe a California census block group; the API prices its median house value "
        "with the registered champion model and explains the price."
    )
    try:
        info = cached_model_info(api)
    except client.ApiError as exc:
        info = None
        st.warning(md(f"{exc.message}\n\nThe form uses the API's documented input rules meanwhile."))
    else:
        metrics = info.get("metrics") or {}
        rmse = metrics.get("test_rmse")
        quality = f", test RMSE {client.format_usd(rmse * client.DOLLARS_PER_UNIT)}" if rmse else ""
        st.caption(
            md(
                f"Serving **{info.get('name')}** version **{info.get('version')}** "
                f"({info.get('candidate') or 'model'}, alias {info.get('alias')}, "
                f"registered {info.get('trained_at') or 'at an unknown time'}{quality})."
            )
        )
    fields = {f.name: f for f in client.form_fields(info.get("features") if info else None)}

    st.subheader("Where")
    left, right = st.columns(2)
    values = {name: number_input(column, fields[name]) for name, column in zip(LOCATION, (left, right))}
    st.map(pd.DataFrame({"lat": [values["Latitude"]], "lon": [values["Longitude"]]}), zoom=5, height=280)

    with st.form("house"):
        st.subheader("The block group")
        columns = st.columns(3)
        others = [name for name in client.FEATURES if name not in LOCATION]
        for i, name in enumerate(others):
            values[name] = number_input(columns[i % 3], fields[name])
        submitted = st.form_submit_button("Price this house", type="primary")

    if submitted:
        with st.spinner("Asking the API..."):
            st.session_state["result"] = price(api, values)
    if "result" in st.session_state:
        show_result(st.session_state["result"], values)


def drift_page(api: str, public: str) -> None:
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

    for column, (name, value) in zip(st.columns(4), client.drift_headline(summary).items()):
        column.metric(name, value)
    st.caption(md(" ".join(client.drift_notes(summary))))
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
            client.drift_rows(summary), columns=["column", "drifted", "score", "threshold", "method"]
        ),
        hide_index=True,
        column_config={
            "score": st.column_config.NumberColumn(format="%.4f"),
            "threshold": st.column_config.NumberColumn(format="%.4f"),
        },
    )

    performance = summary.get("performance")
    st.subheader("Error on labelled production data")
    if performance:
        for cell, (name, value) in zip(st.columns(4), client.performance_cells(performance).items()):
            cell.metric(name, value)
    else:
        st.caption("No ground truth attached yet (POST /feedback with a request id and the observed value).")

    link = client.drift_report_link(public, summary)
    st.link_button("Open the full HTML report", link)
    st.caption(f"Report: {link}")
    if st.toggle("Show the report here"):
        try:
            html = client.drift_report_html(api, summary.get("report_url") or "/monitoring/drift/report")
        except client.ApiError as exc:
            st.error(md(exc.message))
        else:
            components.html(html, height=900, scrolling=True)


def main() -> None:
    st.set_page_config(page_title="California house prices", page_icon=":house:", layout="wide")
    api, public = client.api_url(), client.public_url()
    page = st.sidebar.radio("Page", PAGES, key="page")
    st.sidebar.caption(f"Prediction API: {api}")
    try:
        if page == "Drift":
            drift_page(api, public)
        else:
            price_page(api)
    except Exception as exc:  # a bug or an answer we did not expect: a message, not a traceback
        logger.exception("The UI failed")
        st.error(
            md(f"Something unexpected went wrong ({type(exc).__name__}: {exc}). The details are in the log.")
        )


main()
