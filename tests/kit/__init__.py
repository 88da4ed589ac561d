"""One test kit: the running installation, the unit worlds, the clock, data and job makers,
processes, Redis servers, the attack recorder and image archives; used by tests/ and bench/."""
