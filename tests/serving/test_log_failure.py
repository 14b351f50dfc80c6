"""When the prediction log cannot take a write, nothing is answered 200: /predict,
/predict/batch and /feedback answer 503 naming the log, /ready says why, and the app
serves again as soon as the log does (SQLite here; tests/serving/test_postgres_log.py
stops a real PostgreSQL server)."""

from __future__ import annotations

import sqlalchemy as sa

from tests.serving.conftest import FEEDBACK, HOUSE


def test_a_log_that_cannot_write_is_a_503_naming_it_and_the_app_recovers(client, tmp_path, logged):
    log = client.app.state.serving.log
    working = log.engine
    log.engine = sa.create_engine(f"sqlite:///{tmp_path / 'no such folder' / 'log.db'}")  # cannot open
    try:
        for path, body, headers in (
            ("/predict", HOUSE, {}),
            ("/predict/batch", {"houses": [HOUSE, HOUSE]}, {}),
            ("/feedback", {"request_id": "x", "actual": 2.0}, FEEDBACK),
        ):
            response = client.post(path, json=body, headers=headers)
            assert response.status_code == 503, (path, response.text)
            assert (
                "the prediction log" in response.json()["detail"]
                and "retry later" in response.json()["detail"]
            )
        ready = client.get("/ready")
        assert ready.status_code == 503 and "prediction log" in ready.json()["detail"]
    finally:
        log.engine.dispose()
        log.engine = working
    assert logged().empty, "nothing was answered, nothing is logged"
    assert client.get("/ready").status_code == 200
    answer = client.post("/predict", json=HOUSE)
    assert answer.status_code == 200
    assert logged()["request_id"].tolist() == [answer.json()["request_id"]]
    metrics = client.get("/metrics").text
    assert 'status="503"' in metrics
