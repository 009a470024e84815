"""The local InfluxDB 3 stand-in server: pyarrow Flight + DataFusion + aiohttp."""
