# The housing image. Its default command serves the prediction API; the same image runs
# the training job, the MLflow tracking server and the Streamlit UI (docker-compose.yml).
#
#   docker build -t housing .
#   docker run -p 8000:8000 housing
#
# tests/delivery/test_docker.py replays these steps in a fresh venv and starts the
# default command (no Docker engine is needed for that); hadolint checks this file.

# -- builder: the project and its dependencies, installed from its metadata into a venv
FROM python:3.11-slim AS builder

ENV VIRTUAL_ENV=/opt/venv \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /build
RUN python -m venv "$VIRTUAL_ENV"
ENV PATH="$VIRTUAL_ENV/bin:$PATH"

# pyproject.toml names the dependencies; README.md is its readme; src/ is the package
COPY pyproject.toml README.md ./
COPY src/ src/
# "./[ui]": the project in this folder, with the Streamlit UI's extra dependencies
RUN pip install --no-cache-dir "./[ui]"

# -- runtime: the venv, the Kedro configuration, an empty data tree and a C compiler
FROM python:3.11-slim AS runtime

ENV VIRTUAL_ENV=/opt/venv \
    PATH="/opt/venv/bin:$PATH" \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    MPLBACKEND=Agg \
    KEDRO_DISABLE_TELEMETRY=true \
    STREAMLIT_BROWSER_GATHER_USAGE_STATS=false \
    HOUSING_PROJECT_PATH=/app \
    HOUSING_HOST=0.0.0.0 \
    HOUSING_PORT=8000 \
    MLFLOW_TRACKING_URI=sqlite:////app/mlflow.db \
    HOUSING_MODEL_NAME=california-housing \
    HOUSING_MODEL_ALIAS=champion

# an unprivileged user (uid/gid 1000, like a typical host user, so bind-mounted data/
# stays writable for both)
RUN useradd --create-home --uid 1000 --user-group housing

# a C compiler: the API builds the tree tables' kernel (a second), or for a model the
# tables cannot hold compiles its trees, in the background (serving.yml compiled_trees);
# without one the LightGBM booster serves. Versions come with the base image's Debian release.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY --from=builder /opt/venv /opt/venv
# the Kedro project root: pyproject.toml ([tool.kedro]), conf/, the telemetry opt-out and
# the UI's Streamlit settings (.streamlit/config.toml: no Deploy button).
# The package itself is installed in the venv; Kedro only wants a src/ folder to exist,
# and the UI's script is run from it (streamlit run src/housing/ui/app.py).
COPY pyproject.toml .telemetry ./
COPY conf/ conf/
COPY .streamlit/ .streamlit/
COPY src/housing/ui/app.py src/housing/ui/app.py
RUN mkdir -p conf/local data/01_raw data/02_intermediate data/03_primary data/04_feature \
        data/05_model_input data/06_models data/07_model_output data/08_reporting \
        prediction-log /mlflow \
    && chown -R housing:housing /app /mlflow

USER 1000:1000
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as r; r.urlopen('http://127.0.0.1:%s/health' % os.environ.get('HOUSING_PORT', '8000'), timeout=4)"]
CMD ["housing", "serve"]
