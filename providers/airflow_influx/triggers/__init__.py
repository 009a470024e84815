"""triggers of the InfluxDB 3 provider (modules import nothing heavy at import time)."""
