"""The Streamlit front end (``streamlit run src/housing/ui/app.py``).

It talks to the prediction API over HTTP only: no Kedro, no MLflow, no model in this
process. ``client`` holds the HTTP calls and the formatting as plain functions.
"""
