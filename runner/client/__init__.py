"""What a person's machine runs to talk to c2d: the HTTP client, uploads, verified downloads.

``Client`` is one method per API route; ``runner.client.verify`` holds the checks that make a
fetched result trustworthy (digests against the outcome, the receipt against a key the person
holds), so a Python caller gets them as the CLI does. Nothing here imports the control plane or
the data host.
"""

from runner.client.api import Client

__all__ = ["Client"]
