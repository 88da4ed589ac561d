"""What the control plane runs: the API (and its pages), the dispatcher that sends jobs to data
hosts, the reconciler, and starting and initialising an installation."""
