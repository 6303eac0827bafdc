"""What happened and what is wrong now: invocation history, alerts, the cluster view,
node heartbeats and store gauges (logs and metrics themselves: `wasmlet.telemetry`)."""
