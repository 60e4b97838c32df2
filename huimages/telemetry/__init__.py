"""Floor 2: what the processes report: Prometheus metrics (summed over a host's processes) and log lines."""
