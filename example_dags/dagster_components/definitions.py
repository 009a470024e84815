"""Load the defs.yaml folder: `dagster definitions validate -m example_dags.dagster_components.definitions`."""

from pathlib import Path

import dagster as dg

defs = dg.load_from_defs_folder(path_within_project=Path(__file__).parent)
