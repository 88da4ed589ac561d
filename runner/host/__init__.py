"""What a data host runs: the Celery tasks, the job pipeline, preflight, heartbeats, dry runs on
mock data, the reaper, the sandbox (``runner.host.sandbox``) and the job images
(``runner.host.images``). Nothing here imports the control plane or the CLI."""
