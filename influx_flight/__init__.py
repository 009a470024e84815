"""Core of influxdb3-orchestration: InfluxDB 3 over Arrow Flight, without Airflow or Dagster."""
