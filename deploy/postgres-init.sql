-- Run once by the postgres image on an empty volume (docker-compose.team.yml): the
-- database POSTGRES_DB (housing: the prediction log) exists; add MLflow's and Optuna's.
CREATE DATABASE mlflow;
CREATE DATABASE optuna;
