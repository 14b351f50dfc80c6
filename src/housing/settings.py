"""Project settings; see https://docs.kedro.org/en/stable/configure/configuration_basics/."""

from housing.config_loader import ProjectConfigLoader
from housing.hooks import CheckParameters, CleanErrors

# pluggy calls the last registered first: CleanErrors must be in place before the check raises
HOOKS = (CheckParameters(), CleanErrors())

CONFIG_LOADER_CLASS = ProjectConfigLoader
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    # an environment (conf/test, conf/local) overrides single keys, not whole blocks
    "merge_strategy": {"parameters": "soft"},
    "config_patterns": {
        "mlflow": ["mlflow*", "mlflow*/**"],
        "serving": ["serving*", "serving*/**"],
    },
}
