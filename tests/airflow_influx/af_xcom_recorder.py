"""An XCom backend for tests: stores XComs as usual and also appends each serialised value to the
file named by ``AF_TEST_XCOM_RECORD`` (``airflow tasks test`` deletes its temporary run, XComs
included, so the test reads them from there)."""

from __future__ import annotations

import json
import os
from typing import Any

from airflow.sdk.bases.xcom import BaseXCom


class RecordingXCom(BaseXCom):
    @staticmethod
    def serialize_value(value: Any, **kwargs: Any) -> Any:
        out = BaseXCom.serialize_value(value, **kwargs)
        record = os.environ.get("AF_TEST_XCOM_RECORD")
        if record:
            with open(record, "a", encoding="utf-8") as f:
                f.write(
                    json.dumps({"task_id": kwargs.get("task_id"), "value": out}, default=str) + "\n"
                )
        return out
