"""Price a house: the eight features in, the price and why out (POST /predict, /explain).

A page script of app.py's ``st.navigation``, at /price (the default page).
"""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from housing.ui import client, fields, formatting
from housing.ui.common import cached_model_info, md

LOCATION = ("Latitude", "Longitude")
EFFECT_COLOURS = alt.Scale(domain=["raises the price", "lowers the price"], range=["#2e7d32", "#c62828"])
TOP_FEATURES = 15


def number_input(container, field: fields.Field) -> float:
    default = fields.MEDIANS[field.name]
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
    st.metric("Predicted median house value", formatting.format_usd(answer["price_usd"]))
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
    base = formatting.format_usd(explanation["base_value"] * formatting.DOLLARS_PER_UNIT)
    st.caption(
        md(
            f"The model starts from its average prediction, {base}; each bar is what that part of "
            "the description adds or takes away (SHAP values, which sum to the price)."
        )
    )
    st.altair_chart(contribution_chart(formatting.contribution_rows(explanation["groups"])))
    with st.expander("Per feature, including the engineered ones"):
        rows = formatting.contribution_rows(explanation["contributions"])
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


def serving_caption(info: dict) -> str:
    metrics = info.get("metrics") or {}
    rmse = metrics.get("test_rmse")
    quality = f", test RMSE {formatting.units_and_dollars(rmse)}" if rmse else ""
    return md(
        f"Serving **{info.get('name')}** version **{info.get('version')}** "
        f"({info.get('candidate') or 'model'}, alias {info.get('alias')}, "
        f"registered {info.get('trained_at') or 'at an unknown time'}{quality})."
    )


def render() -> None:
    api = client.api_url()
    st.title("Price a house")
    st.caption(
        "Describe a California census block group; the API prices its median house value "
        "with the registered champion model and explains the price."
    )
    notice = st.empty()  # what is wrong with the API, unless a price attempt says it below
    try:
        info = cached_model_info(api)
    except client.ApiError as exc:
        info, info_error = None, exc.message
    else:
        info_error = None
        st.caption(serving_caption(info))
    inputs = {f.name: f for f in fields.form_fields(info.get("features") if info else None)}

    st.subheader("Where")
    left, right = st.columns(2)
    values = {name: number_input(column, inputs[name]) for name, column in zip(LOCATION, (left, right))}
    st.map(pd.DataFrame({"lat": [values["Latitude"]], "lon": [values["Longitude"]]}), zoom=5, height=280)

    with st.form("house"):
        st.subheader("The block group")
        columns = st.columns(3)
        others = [name for name in fields.FEATURES if name not in LOCATION]
        for i, name in enumerate(others):
            values[name] = number_input(columns[i % 3], inputs[name])
        submitted = st.form_submit_button("Price this house", type="primary")

    if submitted:
        with st.spinner("Asking the API..."):
            st.session_state["result"] = price(api, values)
    result = st.session_state.get("result")
    if result is not None:
        show_result(result, values)
    if info_error and not (result and "error" in result):  # one message about the API, not two
        notice.warning(md(f"{info_error}\n\nThe form uses the API's documented input rules meanwhile."))


render()
